package yangjson

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/netfeat/netfeat/schema"
)

// leafString renders one leaf for comparison.
func leafString(path []byte, o schema.Observation, ok bool) string {
	if !ok {
		return string(path) + " bad"
	}
	var v string
	switch o.Kind {
	case schema.KindCounter64:
		v = fmt.Sprint(o.Uint)
	case schema.KindInteger, schema.KindBool:
		v = fmt.Sprint(o.Int)
	case schema.KindFloat:
		v = fmt.Sprint(o.Float)
	default:
		v = o.Str
	}
	return fmt.Sprintf("%s %v %s", path, o.Kind, v)
}

// TestDecode covers the rules of the flattener, in particular every rule
// in which the recording reader's former flattener (recording.jsonLeaves,
// with recording.typed for leaves) differed from the collector's; "before"
// says what that one produced. The collector's rules were kept.
func TestDecode(t *testing.T) {
	tests := []struct {
		name, prefix, in string
		want             []string
		before           string
	}{
		{name: "module prefixes removed from members", prefix: "p",
			in:     `{"openconfig-interfaces:interfaces":{"interface":{"openconfig-interfaces:mtu":1500}}}`,
			want:   []string{"p/interfaces/interface/mtu counter64 1500"},
			before: "p/openconfig-interfaces:interfaces/interface/openconfig-interfaces:mtu"},
		{name: "members in order of unqualified name", prefix: "p",
			in:     `{"b:a":1,"a:b":2}`,
			want:   []string{"p/a counter64 1", "p/b counter64 2"},
			before: "ordered by the qualified name: b first"},
		{name: "list keyed by name", prefix: "p",
			in:   `{"interface":[{"name":"Gi0/0","mtu":1500},{"name":"x]y","mtu":9000}]}`,
			want: []string{"p/interface[name=Gi0/0]/mtu counter64 1500", "p/interface[name=Gi0/0]/name string Gi0/0", `p/interface[name=x\]y]/mtu counter64 9000`, `p/interface[name=x\]y]/name string x]y`}},
		{name: "list keyed by a -name member", prefix: "p",
			in:     `{"proc":[{"process-name":"aib","process-id":7}]}`,
			want:   []string{"p/proc[process-name=aib]/process-id counter64 7", "p/proc[process-name=aib]/process-name string aib"},
			before: "p/proc[index=0]/..."},
		{name: "list keyed by a numeric id", prefix: "p",
			in:     `{"slot":[{"id":3,"temp":40}]}`,
			want:   []string{"p/slot[id=3]/id counter64 3", "p/slot[id=3]/temp counter64 40"},
			before: "p/slot[index=0]/..."},
		{name: "list keyed by a -index member", prefix: "p",
			in:     `{"q":[{"queue-index":"2","depth":1}]}`,
			want:   []string{"p/q[queue-index=2]/depth counter64 1", "p/q[queue-index=2]/queue-index counter64 2"},
			before: "p/q[index=0]/...; queue-index a string"},
		{name: "list without a key-like member is not keyed", prefix: "p",
			in:     `{"e":[{"v":1},{"v":2}]}`,
			want:   []string{"p/e/v counter64 1", "p/e/v counter64 2"},
			before: "p/e[index=0]/v and p/e[index=1]/v"},
		{name: "leaf-list is one JSON leaf", prefix: "p",
			in:     `{"l":[1,"a",true]}`,
			want:   []string{`p/l json [1,"a",true]`},
			before: "one leaf per element, all at p/l"},
		{name: "empty array is one JSON leaf", prefix: "p",
			in:     `{"l":[]}`,
			want:   []string{"p/l json []"},
			before: "no leaf"},
		{name: "YANG empty", prefix: "p",
			in:   `{"flag":[null]}`,
			want: []string{"p/flag null "}},
		{name: "array mixing objects and scalars is one JSON leaf", prefix: "p",
			in:     `{"l":[{"name":"a"},1]}`,
			want:   []string{`p/l json [{"name":"a"},1]`},
			before: "p/l[name=a]/name and p/l"},
		{name: "numeric strings are numbers (RFC 7951 64-bit and decimal64)", prefix: "p",
			in:     `{"a":"18446744073709551615","b":"-5","c":"1.5","d":"1e3","e":"0x1"}`,
			want:   []string{"p/a counter64 18446744073709551615", "p/b integer -5", "p/c float 1.5", "p/d string 1e3", "p/e string 0x1"},
			before: "all KindString"},
		{name: "enumerations and identityrefs", prefix: "p",
			in:     `{"s":"UP","t":"openconfig-if-types:IF_ETHERNET","u":"Up","v":"a:b"}`,
			want:   []string{"p/s enum UP", "p/t enum IF_ETHERNET", "p/u string Up", "p/v string a:b"},
			before: "all KindString with the text as sent"},
		{name: "scalars", prefix: "p",
			in:   `{"a":true,"b":false,"c":null,"d":-1.25}`,
			want: []string{"p/a bool 1", "p/b bool 0", "p/c null ", "p/d float -1.25"}},
		{name: "bare scalar at the prefix", prefix: "p/q",
			in:   ` "UP" `,
			want: []string{"p/q enum UP"}},
		{name: "bare escaped string takes the decoder", prefix: "p",
			in:   `"a\"b"`,
			want: []string{`p string a"b`}},
		{name: "empty prefix has no leading slash", prefix: "",
			in:   `{"a":{"b":1}}`,
			want: []string{"a/b counter64 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			dst, err := Decode([]byte(tt.prefix), []byte(tt.in), func(path []byte, o schema.Observation, ok bool) {
				got = append(got, leafString(path, o, ok))
			})
			if err != nil {
				t.Fatalf("Decode(%s): %v", tt.in, err)
			}
			if string(dst) != tt.prefix {
				t.Fatalf("Decode returned %q, want the prefix %q back", dst, tt.prefix)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode(%s):\n got  %s\n want %s", tt.in, strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

func TestDecodeRejectsBrokenJSON(t *testing.T) {
	called := false
	if _, err := Decode([]byte("p"), []byte(`{"a":`), func([]byte, schema.Observation, bool) { called = true }); err == nil || called {
		t.Fatalf("Decode of broken JSON: err %v, leaf called %v", err, called)
	}
}

func TestFlattenReportsUnrepresentable(t *testing.T) {
	var got []string
	Flatten([]byte("p"), map[string]any{"a": 1.5, "b": json.Number("2")}, func(path []byte, o schema.Observation, ok bool) {
		got = append(got, leafString(path, o, ok))
	})
	// float64 is not what a UseNumber decoder produces.
	if want := []string{"p/a bad", "p/b counter64 2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
