package gnmipath

import (
	"reflect"
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
)

func TestSplitPath(t *testing.T) {
	tests := []struct {
		in      string
		want    Split
		wantErr bool
	}{
		{in: "Cisco-IOS-XE-interfaces-oper:interfaces/interface[name=Gi0/0]/statistics/in-octets",
			want: Split{Schema: "interfaces/interface/statistics/in-octets", Keys: []Key{{"name", "Gi0/0"}}, Module: "Cisco-IOS-XE-interfaces-oper"}},
		{in: "/a/b[k1=x][k2=y]/m:c[n=z]",
			want: Split{Schema: "a/b/c", Keys: []Key{{"k1", "x"}, {"k2", "y"}, {"n", "z"}}}},
		{in: `a[name=x\]y\\z]`, want: Split{Schema: "a", Keys: []Key{{"name", `x]y\z`}}}},
		{in: "sys/intf/phys-[eth1/1]/operSt", want: Split{Schema: "sys/intf/phys-/operSt", Keys: []Key{{"id", "eth1/1"}}}},
		{in: "interfaces/interface[name]/state", want: Split{Schema: "interfaces/interface/state", Keys: []Key{{"id", "name"}}}},
		{in: "", wantErr: true},
		{in: "a//b", wantErr: true},
		{in: "a[name=x", wantErr: true},
		{in: "a[k=v]b", wantErr: true},
	}
	for _, tt := range tests {
		got, err := SplitPath(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Fatalf("SplitPath(%q) = %+v, want error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Fatalf("SplitPath(%q): %v", tt.in, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Fatalf("SplitPath(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// TestAppendRoundTrip: what AppendElems writes, Parse reads back and
// SplitPath splits into the same keys, for string and byte keys alike.
func TestAppendRoundTrip(t *testing.T) {
	elems := []*gpb.PathElem{
		{Name: "interfaces"},
		{Name: "interface", Key: map[string]string{"name": `Gi0/0]\x`, "unit": "0"}},
		{Name: "state"},
	}
	b, ok := AppendElems(nil, elems)
	const want = `interfaces/interface[name=Gi0/0\]\\x][unit=0]/state`
	if !ok || string(b) != want {
		t.Fatalf("AppendElems = %q, %v; want %q, true", b, ok, want)
	}
	if got := string(AppendKey([]byte("interface"), []byte("name"), []byte(`Gi0/0]\x`))); got != `interface[name=Gi0/0\]\\x]` {
		t.Fatalf("AppendKey on bytes = %q", got)
	}
	p, err := Parse("openconfig:" + string(b))
	if err != nil {
		t.Fatal(err)
	}
	if p.Origin != "openconfig" || !reflect.DeepEqual(p.Elem[1].Key, elems[1].Key) {
		t.Fatalf("Parse(AppendElems) = %v", p)
	}
	sp, err := SplitPath(string(b))
	if err != nil || !reflect.DeepEqual(sp.Keys, []Key{{"name", `Gi0/0]\x`}, {"unit", "0"}}) {
		t.Fatalf("SplitPath(AppendElems) = %+v, %v", sp, err)
	}
	for _, bad := range [][]*gpb.PathElem{{{Name: ""}}, {{Name: "a", Key: map[string]string{"": "v"}}}} {
		if _, ok := AppendElems(nil, bad); ok {
			t.Fatalf("AppendElems(%v) reported ok", bad)
		}
	}
}

func TestSplitOrigin(t *testing.T) {
	for _, tt := range []struct{ in, origin, rest string }{
		{"Cisco-IOS-XR-foo:a/b", "Cisco-IOS-XR-foo", "a/b"},
		{"a/b[name=x:y]", "", "a/b[name=x:y]"},
		{"a[k=x:y]", "", "a[k=x:y]"},
		{":a", "", ":a"},
	} {
		if o, r := SplitOrigin(tt.in); o != tt.origin || r != tt.rest {
			t.Fatalf("SplitOrigin(%q) = %q, %q; want %q, %q", tt.in, o, r, tt.origin, tt.rest)
		}
	}
}
