package scenario

import (
	"math"
	"testing"
	"time"
)

func TestTrafficRatios(t *testing.T) {
	tr := Traffic{Octets: 125_000}
	ucast := 125_000.0 / DefaultPacketSize
	want := map[Counter]float64{
		InOctets: 125_000, OutOctets: 125_000,
		InUnicastPkts: ucast, OutUnicastPkts: ucast,
		InMulticastPkts: ucast * MulticastShare, OutBroadcastPkts: ucast * BroadcastShare,
		InNUcastPkts: ucast * (MulticastShare + BroadcastShare),
		InPkts:       ucast * (1 + MulticastShare + BroadcastShare),
		InErrors:     0, OutErrors: 0, InDiscards: 0, OutDiscards: 0, Other: 0,
	}
	for c, w := range want {
		if got := tr.Rate(c); math.Abs(got-w) > 1e-9 {
			t.Errorf("Rate(%d) = %v, want %v", c, got, w)
		}
	}
	if got := (Traffic{Octets: 700_000, PacketSize: 700}).Rate(InUnicastPkts); got != 1000 {
		t.Errorf("700 kB/s of 700-byte packets = %v packets/s, want 1000", got)
	}
	if (Traffic{}).Rate(InOctets) != 0 {
		t.Error("the zero Traffic carries octets")
	}
}

func TestCarriesTraffic(t *testing.T) {
	for _, tc := range []struct {
		f    Interface
		want bool
	}{
		{Interface{Name: "1/1/1", Speed: 10e9, Up: true}, true},
		{Interface{Name: "1/1/2", Speed: 10e9}, false},                           // down
		{Interface{Name: "tunnel", Up: true}, false},                             // no speed
		{Interface{Name: "system", Speed: 1e9, Up: true, Loopback: true}, false}, // loopback
	} {
		if got := tc.f.CarriesTraffic(); got != tc.want {
			t.Errorf("%s: CarriesTraffic = %v, want %v", tc.f.Name, got, tc.want)
		}
	}
}

func TestNextLinkChange(t *testing.T) {
	plans := bind(t, demoLike(), demoIfcs)
	ge1, uplink := plans[1], plans[0]
	if _, ok := uplink.NextLinkChange(0); ok {
		t.Fatal("uplink has no link-down event but a link change")
	}
	for _, tc := range []struct{ after, want time.Duration }{{0, 60 * s}, {60 * s, 100 * s}, {59 * s, 60 * s}} {
		if got, ok := ge1.NextLinkChange(tc.after); !ok || got != tc.want {
			t.Errorf("NextLinkChange(%v) = %v %v, want %v", tc.after, got, ok, tc.want)
		}
	}
	if _, ok := ge1.NextLinkChange(100 * s); ok {
		t.Error("a change after the last event without repeat")
	}
	rep := demoLike()
	rep.Repeat = 120 * s
	ge1 = bind(t, rep, demoIfcs)[1]
	for _, tc := range []struct{ after, want time.Duration }{{100 * s, 180 * s}, {180 * s, 220 * s}, {250 * s, 300 * s}} {
		if got, ok := ge1.NextLinkChange(tc.after); !ok || got != tc.want {
			t.Errorf("repeating: NextLinkChange(%v) = %v %v, want %v", tc.after, got, ok, tc.want)
		}
	}
}

func TestOutages(t *testing.T) {
	var o Outages
	inc := func(t time.Duration) float64 { return 10 * t.Seconds() } // 10/s
	if !o.Set(10*s, false) || o.Set(12*s, false) {
		t.Fatal("Set down: want a change, then none")
	}
	if o.Down(9*s) || !o.Down(10*s) || !o.Down(time.Hour) {
		t.Fatal("Down around an open outage")
	}
	if got := o.Increase(inc, 15*s); got != 100 {
		t.Fatalf("increase during an outage = %v, want 100 (stopped at 10s)", got)
	}
	if !o.Set(20*s, true) || o.Set(21*s, true) {
		t.Fatal("Set up: want a change, then none")
	}
	if o.Down(20*s) || !o.Down(19*s) {
		t.Fatal("Down around a closed outage")
	}
	if got := o.Increase(inc, 30*s); got != 200 {
		t.Fatalf("increase after the outage = %v, want 200 (300 less 10s down)", got)
	}
}
