package gnmitarget

import (
	"strings"
	"testing"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/internal/sim/scenario"
)

// Leaves of the IOS-XR model the scenario below drives.
const (
	gi0OutOctets = "interfaces/interface[name=GigabitEthernet0/0/0/0]/state/counters/out-octets"
	gi0BytesSent = "infra-statistics/interfaces/interface[interface-name=GigabitEthernet0/0/0/0]/latest/generic-counters/bytes-sent"
	gi0Discards  = "interfaces/interface[name=GigabitEthernet0/0/0/0]/state/counters/out-discards"
	gi0Speed     = "interfaces/interface[name=GigabitEthernet0/0/0/0]/ethernet/state/port-speed"
	gi1InErrors  = "interfaces/interface[name=GigabitEthernet0/0/0/1]/state/counters/in-errors"
	gi1InputErrs = "infra-statistics/interfaces/interface[interface-name=GigabitEthernet0/0/0/1]/latest/generic-counters/input-errors"
	gi1InOctets  = "interfaces/interface[name=GigabitEthernet0/0/0/1]/state/counters/in-octets"
	gi1Oper      = "interfaces/interface[name=GigabitEthernet0/0/0/1]/state/oper-status"
	// recordedBytesSent is bytes-sent of GigabitEthernet0/0/0/0 in the
	// IOS-XR capture; its errors and GigabitEthernet0/0/0/1's are 0.
	recordedBytesSent = 5596301200
)

// once reads the current value of every leaf below paths with a ONCE
// subscription, keyed by path without origin.
func once(t *testing.T, cli gpb.GNMIClient, paths ...string) map[string]*gpb.TypedValue {
	t.Helper()
	st := openSub(t, cli, gpb.SubscriptionList_ONCE, gpb.Encoding_PROTO, paths...)
	out := map[string]*gpb.TypedValue{}
	for _, n := range untilSync(t, st) {
		for _, u := range n.GetUpdate() {
			out[gnmipath.Format(&gpb.Path{Elem: u.GetPath().GetElem()})] = u.GetVal()
		}
	}
	return out
}

// TestScenarioOverGNMI publishes the device's state at simulated times and
// reads it over gNMI: the congested link's OpenConfig and native octet
// counters advance by the same, scripted amount, errors climb before the
// other link goes DOWN, and everything comes back.
func TestScenarioOverGNMI(t *testing.T) {
	sec := time.Second
	s, cli := start(t, Options{Interval: time.Hour, Scenario: &scenario.Scenario{
		Baseline: &scenario.Baseline{Utilization: 0}, // idle links: only the events count
		Events: []scenario.Event{
			{Kind: scenario.Congestion, Interface: "GigabitEthernet0/0/0/0", At: 20 * sec, Until: 80 * sec, Ramp: 10 * sec, Utilization: 0.98, DiscardsPerSecond: 1000},
			{Kind: scenario.Errors, Interface: "GigabitEthernet0/0/0/1", At: 45 * sec, Until: 60 * sec, Ramp: 15 * sec, ErrorsPerSecond: 200},
			{Kind: scenario.LinkDown, Interface: "GigabitEthernet0/0/0/1", At: 60 * sec, Until: 100 * sec},
		},
	}})
	octets := func(v float64) uint64 { return recordedBytesSent + uint64(v) }
	const target = 0.98 * 1e9 / 8 // GigabitEthernet at 98%, octets/s
	errorsAt50 := 200.0 / 15 * 5 * 5 / 2
	tests := []struct {
		at    time.Duration
		uints map[string]uint64
		strs  map[string]string
	}{
		{0, map[string]uint64{gi0OutOctets: recordedBytesSent, gi0BytesSent: recordedBytesSent, gi1InErrors: 0},
			map[string]string{gi1Oper: "UP", gi0Speed: "SPEED_1GB"}},
		{25 * sec, map[string]uint64{gi0OutOctets: octets(target * 1.25), gi0BytesSent: octets(target * 1.25), gi0Discards: 1250}, nil},
		{50 * sec, map[string]uint64{gi0OutOctets: octets(target * 25), gi1InErrors: uint64(errorsAt50), gi1InputErrs: uint64(errorsAt50)},
			map[string]string{gi1Oper: "UP"}},
		{60 * sec, map[string]uint64{gi1InErrors: 1500, gi1InputErrs: 1500, gi1InOctets: 1442}, map[string]string{gi1Oper: "DOWN"}},
		{99 * sec, map[string]uint64{gi0OutOctets: octets(target * 55), gi1InErrors: 1500}, map[string]string{gi1Oper: "DOWN"}},
		{100 * sec, map[string]uint64{gi1InErrors: 1500}, map[string]string{gi1Oper: "UP"}},
	}
	for _, tc := range tests {
		s.publish(s.start.Add(tc.at))
		got := once(t, cli, "openconfig-interfaces:interfaces", "Cisco-IOS-XR-infra-statsd-oper:infra-statistics")
		for p, want := range tc.uints {
			v, ok := got[p]
			if !ok {
				t.Fatalf("at %v: %s not served", tc.at, p)
			}
			if g := v.GetUintVal(); g+1 < want || g > want+1 {
				t.Errorf("at %v: %s = %d, want %d", tc.at, p, g, want)
			}
		}
		for p, want := range tc.strs {
			if g := got[p].GetStringVal(); g != want {
				t.Errorf("at %v: %s = %q, want %q", tc.at, p, g, want)
			}
		}
		// OpenConfig and native views of one counter always agree.
		if a, b := got[gi0OutOctets].GetUintVal(), got[gi0BytesSent].GetUintVal(); a != b {
			t.Errorf("at %v: out-octets %d but bytes-sent %d", tc.at, a, b)
		}
	}
}

func TestScenarioBindErrors(t *testing.T) {
	tests := []struct {
		name string
		ev   scenario.Event
		want string
	}{
		{"unknown interface", scenario.Event{Kind: scenario.LinkDown, Interface: "HundredGigE0/0/0/9"}, `interface "HundredGigE0/0/0/9" not found; the device has Null0, MgmtEth0/RP0/CPU0/0`},
		{"congestion on a tunnel", scenario.Event{Kind: scenario.Congestion, Interface: "tunnel-te0"}, "congestion on tunnel-te0 needs the interface's speed"},
		{"invalid event", scenario.Event{Kind: scenario.LinkDown}, "events[0].interface: is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Options{Listen: "127.0.0.1:0", Scenario: &scenario.Scenario{Events: []scenario.Event{tc.ev}}}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "gnmi simulator: scenario:") {
				t.Fatalf("New error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
