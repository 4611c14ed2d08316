package gnmi

import (
	"testing"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/schema"
)

func TestDecoder(t *testing.T) {
	sub, err := gnmipath.Parse("openconfig-interfaces:interfaces/interface/state/counters")
	if err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder("r1", []*gpb.Path{sub})
	n := &gpb.Notification{
		Timestamp: 1_700_000_000_000_000_000,
		Prefix:    &gpb.Path{Origin: "openconfig-interfaces", Elem: []*gpb.PathElem{{Name: "interfaces"}, {Name: "interface", Key: map[string]string{"name": "Gi0/0"}}}},
		Update: []*gpb.Update{
			{Path: &gpb.Path{Elem: []*gpb.PathElem{{Name: "state"}, {Name: "counters"}, {Name: "in-octets"}}}, Val: &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: 42}}},
			{Path: &gpb.Path{Elem: []*gpb.PathElem{{Name: "state"}, {Name: "oper-status"}}}, Val: &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: "UP"}}},
		},
	}
	prior := []schema.Observation{{Device: "kept"}}
	out := dec.Decode(prior, n, 1_700_000_000_500_000_000)
	if len(out) != 3 || out[0].Device != "kept" {
		t.Fatalf("%d observations %+v, want the prior one and two", len(out), out)
	}
	o := out[1]
	if o.Device != "r1" || o.Protocol != schema.ProtocolGNMI || o.Origin != "openconfig-interfaces" ||
		o.Path != "interfaces/interface[name=Gi0/0]/state/counters/in-octets" || o.Uint != 42 ||
		o.DeviceTime != 1_700_000_000_000_000_000 || o.RecvTime != 1_700_000_000_500_000_000 {
		t.Fatalf("observation %+v", o)
	}
	// An update of an origin the subscriptions do not have is rejected.
	n.Prefix.Origin = "Cisco-IOS-XR-infra-statsd-oper"
	if out := dec.Decode(nil, n, 1); len(out) != 0 || dec.Rejected() != 2 {
		t.Fatalf("other origin: %d observations, %d rejected", len(out), dec.Rejected())
	}
}
