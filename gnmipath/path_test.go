package gnmipath

import (
	"fmt"
	"testing"
)

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in, want string
		origin   string
		elems    int
		wantErr  bool
	}{
		{in: "openconfig-interfaces:interfaces/interface/state/counters", origin: "openconfig-interfaces", elems: 4},
		{in: "interfaces/interface[name=Gi0/0/0/0]/state", want: "interfaces/interface[name=Gi0/0/0/0]/state", elems: 3},
		{in: "/a/b[k2=y][k1=x]/c", want: "a/b[k1=x][k2=y]/c", elems: 3},
		{in: "a/b[name=x:y]/c", want: "a/b[name=x:y]/c", elems: 3},
		{in: `a/b[name=x\]y]`, want: `a/b[name=x\]y]`, elems: 2},
		{in: "DME:sys/intf", origin: "DME", elems: 2},
		{in: "", wantErr: true},
		{in: "a//b", wantErr: true},
		{in: "a/b[name=x", wantErr: true},
		{in: "a/b[=x]", wantErr: true},
		{in: "a/b[k=v]c", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := Parse(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Parse(%q) = %v, want error", tt.in, p)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if p.Origin != tt.origin || len(p.Elem) != tt.elems {
				t.Fatalf("Parse(%q) = origin %q, %d elems; want %q, %d", tt.in, p.Origin, len(p.Elem), tt.origin, tt.elems)
			}
			if tt.want != "" {
				if got := Format(p); got != tt.want {
					t.Fatalf("Format(Parse(%q)) = %q, want %q", tt.in, got, tt.want)
				}
			}
		})
	}
}

func ExampleParse() {
	p, _ := Parse("openconfig-interfaces:interfaces/interface[name=Gi0/0/0/0]/state")
	fmt.Println(p.Origin, len(p.Elem), p.Elem[1].Key["name"])
	// Output: openconfig-interfaces 3 Gi0/0/0/0
}
