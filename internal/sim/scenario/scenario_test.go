package scenario

import (
	"math"
	"strings"
	"testing"
	"time"
)

const s = time.Second

// demoLike is the shape of the demo's timeline: a congestion episode on one
// link, errors climbing on another before it goes down and comes back.
func demoLike() *Scenario {
	return &Scenario{
		Baseline: &Baseline{Utilization: 0.2},
		Events: []Event{
			{Kind: Congestion, Interface: "uplink", At: 20 * s, Until: 80 * s, Ramp: 10 * s, Utilization: 0.98, DiscardsPerSecond: 1000},
			{Kind: Errors, Interface: "ge1", At: 45 * s, Until: 60 * s, Ramp: 15 * s, ErrorsPerSecond: 200},
			{Kind: LinkDown, Interface: "ge1", At: 60 * s, Until: 100 * s},
		},
	}
}

var demoIfcs = []Interface{
	{Name: "uplink", Aliases: []string{"4"}, Speed: 10e9, Up: true},
	{Name: "ge1", Speed: 1e9, Up: true},
	{Name: "idle", Speed: 1e9, Up: false},
	{Name: "loopback", Up: true},
}

func bind(t *testing.T, sc *Scenario, ifcs []Interface) []*Plan {
	t.Helper()
	plans, err := sc.Bind(ifcs)
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	return plans
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

// TestIncreaseAtTimes checks counter increases against the closed-form
// integrals of the scripted rates.
func TestIncreaseAtTimes(t *testing.T) {
	plans := bind(t, demoLike(), demoIfcs)
	up, ge1 := plans[0], plans[1]
	baseUp := 0.2 * up.factor * 10e9 / 8 // octets/s outside the episode
	baseGe := 0.2 * ge1.factor * 1e9 / 8
	target := 0.98 * 10e9 / 8
	tests := []struct {
		name string
		p    *Plan
		c    Counter
		at   time.Duration
		want float64
	}{
		{"baseline before the episode", up, OutOctets, 20 * s, baseUp * 20},
		{"half way up the ramp", up, OutOctets, 25 * s, baseUp*25 + (target-baseUp)*5*0.5*0.5},
		{"end of the ramp", up, OutOctets, 30 * s, baseUp*30 + (target-baseUp)*10*0.5},
		{"at full strength", up, OutOctets, 80 * s, baseUp*20 + (baseUp+target)/2*10 + target*50},
		{"after the episode", up, OutOctets, 90 * s, baseUp*30 + (baseUp+target)/2*10 + target*50},
		{"the other direction is untouched", up, InOctets, 90 * s, baseUp * 90},
		{"unicast packets follow octets", up, OutUnicastPkts, 30 * s, (baseUp*30 + (target-baseUp)*10*0.5) / DefaultPacketSize},
		{"all packets equal unicast (no multicast at baseline)", up, OutPkts, 30 * s, (baseUp*30 + (target-baseUp)*10*0.5) / DefaultPacketSize},
		{"discards ramp with the congestion", up, OutDiscards, 30 * s, 1000 * 10 * 0.5},
		{"discards at full strength", up, OutDiscards, 90 * s, 1000*10*0.5 + 1000*50},
		{"no multicast at baseline", up, InMulticastPkts, 90 * s, 0},
		{"no errors on the congested link", up, InErrors, 90 * s, 0},
		{"errors climb before the fault", ge1, InErrors, 60 * s, 200 * 15 * 0.5},
		{"errors stop while down", ge1, InErrors, 100 * s, 200 * 15 * 0.5},
		{"errors gone after recovery", ge1, InErrors, 200 * s, 200 * 15 * 0.5},
		{"out errors untouched", ge1, OutErrors, 200 * s, 0},
		{"octets stop while down", ge1, InOctets, 100 * s, baseGe * 60},
		{"octets resume after recovery", ge1, InOctets, 110 * s, baseGe * 70},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Increase(tc.c, 125000, tc.at); !near(got, tc.want) {
				t.Fatalf("Increase(%v, %v) = %.3f, want %.3f", tc.c, tc.at, got, tc.want)
			}
		})
	}
	if plans[2] == nil || plans[2].Increase(InOctets, 125000, 100*s) != 0 {
		t.Fatalf("an interface recorded down must carry no baseline traffic")
	}
	if plans[3] == nil || plans[3].Increase(InOctets, 125000, 100*s) != 0 {
		t.Fatalf("an interface without a speed must carry no baseline traffic")
	}
}

func TestDown(t *testing.T) {
	ge1 := bind(t, demoLike(), demoIfcs)[1]
	for _, tc := range []struct {
		at   time.Duration
		down bool
	}{{0, false}, {59999 * time.Millisecond, false}, {60 * s, true}, {99 * s, true}, {100 * s, false}, {time.Hour, false}} {
		if got := ge1.Down(tc.at); got != tc.down {
			t.Errorf("Down(%v) = %v, want %v", tc.at, got, tc.down)
		}
	}
}

// TestMonotonicAndConsistent sweeps every counter of every plan, with and
// without a baseline and with a repeating timeline, and checks that no
// counter ever decreases and that Rate is the slope of Increase.
func TestMonotonicAndConsistent(t *testing.T) {
	noBase := demoLike()
	noBase.Baseline = nil
	repeating := demoLike()
	repeating.Repeat = 2 * time.Minute
	for name, sc := range map[string]*Scenario{"baseline": demoLike(), "no baseline": noBase, "repeat": repeating} {
		t.Run(name, func(t *testing.T) {
			for _, p := range bind(t, sc, demoIfcs) {
				if p == nil {
					continue
				}
				for c := InOctets; c <= Other; c++ {
					prev := 0.0
					for at := time.Duration(0); at <= 5*time.Minute; at += 37 * time.Millisecond {
						v := p.Increase(c, 1000, at)
						if v < prev {
							t.Fatalf("%s counter %d: %v at %v after %v", p.ifc.Name, c, v, at, prev)
						}
						prev = v
					}
					// Slope check away from the knots.
					for _, at := range []time.Duration{5 * s, 23 * s, 50 * s, 52 * s, 70 * s, 150 * s} {
						h := 10 * time.Millisecond
						slope := (p.Increase(c, 1000, at+h) - p.Increase(c, 1000, at-h)) / (2 * h).Seconds()
						if r := p.Rate(c, 1000, at); math.Abs(slope-r) > 1e-3*math.Max(1, r) {
							t.Fatalf("%s counter %d at %v: rate %v, slope of Increase %v", p.ifc.Name, c, at, r, slope)
						}
					}
				}
			}
		})
	}
}

func TestRepeat(t *testing.T) {
	sc := demoLike()
	sc.Repeat = 2 * time.Minute
	ge1 := bind(t, sc, demoIfcs)[1]
	one := ge1.Increase(InErrors, 0, 2*time.Minute)
	if !near(one, 200*15*0.5) {
		t.Fatalf("errors over one period = %v, want %v", one, 200*15*0.5)
	}
	for _, at := range []time.Duration{10 * s, 61 * s, 119 * s} {
		if a, b := ge1.Increase(InOctets, 0, at+6*time.Minute), 3*ge1.Increase(InOctets, 0, 2*time.Minute)+ge1.Increase(InOctets, 0, at); !near(a, b) {
			t.Fatalf("Increase(%v + 3 periods) = %v, want %v", at, a, b)
		}
		if ge1.Down(at) != ge1.Down(at+4*time.Minute) {
			t.Fatalf("Down(%v) differs from the same instant two periods later", at)
		}
	}
}

func TestBindErrors(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"unknown interface", Event{Kind: LinkDown, Interface: "nope", At: s}, `interface "nope" not found; the device has uplink, ge1, idle, loopback`},
		{"congestion without speed", Event{Kind: Congestion, Interface: "loopback", At: s}, "needs the interface's speed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&Scenario{Events: []Event{tc.ev}}).Bind(demoIfcs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Bind error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// An alias (ifIndex) names the interface too.
	plans := bind(t, &Scenario{Events: []Event{{Kind: LinkDown, Interface: "4", At: s}}}, demoIfcs)
	if plans[0] == nil || !plans[0].Down(2*s) || plans[1] != nil {
		t.Fatalf("event by alias not bound to uplink only: %v", plans)
	}
}

func TestParse(t *testing.T) {
	good := `
baseline: {utilization: 0.3}
repeat: 2m
events:
  - {kind: congestion, interface: to_bng-a, at: 20s, until: 80s, ramp: 10s}
  - {kind: errors, interface: ge1, at: 45s, until: 60s, ramp: 15s, errors_per_second: 200}
  - {kind: link-down, interface: ge1, at: 60s, until: 100s}
`
	sc, err := Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	c := sc.Events[0]
	if c.Direction != Out || c.Utilization != DefaultUtilization || c.DiscardsPerSecond != DefaultDiscardsPerSecond || sc.Baseline.PacketSize != DefaultPacketSize {
		t.Fatalf("defaults not applied: %+v, baseline %+v", c, sc.Baseline)
	}
	if sc.Events[1].Direction != In || sc.Events[2].Direction != Both || sc.Repeat != 2*time.Minute {
		t.Fatalf("parsed %+v", sc)
	}
	bad := []struct {
		name, yaml, want string
	}{
		{"unknown key", "events:\n  - {kind: link-down, interface: a, at: 1s, colour: red}\n", "field colour not found"},
		{"unknown kind", "events:\n  - {kind: meltdown, interface: a}\n", `events[0].kind: must be congestion, errors or link-down, got "meltdown"`},
		{"until before at", "events:\n  - {kind: link-down, interface: a, at: 10s, until: 5s}\n", "events[0].until: 5s must be after at 10s"},
		{"ramp too long", "events:\n  - {kind: errors, interface: a, at: 10s, until: 15s, ramp: 10s}\n", "events[0].ramp"},
		{"no interface", "events:\n  - {kind: link-down, at: 1s}\n", "events[0].interface: is required"},
		{"utilization above 1", "events:\n  - {kind: congestion, interface: a, utilization: 1.5}\n", "events[0].utilization: must be between 0 and 1"},
		{"outside repeat", "repeat: 1m\nevents:\n  - {kind: link-down, interface: a, at: 30s, until: 90s}\n", "must lie within repeat 1m0s"},
		{"overlapping congestion", "events:\n  - {kind: congestion, interface: a, at: 0s, until: 60s}\n  - {kind: congestion, interface: a, at: 30s, direction: in}\n", "two congestion episodes on a overlap"},
		{"rates on link-down", "events:\n  - {kind: link-down, interface: a, errors_per_second: 5}\n", "link-down takes no ramp"},
		{"bad baseline", "baseline: {utilization: 0.9}\n", "baseline.utilization"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestFasterAndString(t *testing.T) {
	sc := demoLike()
	sc.Repeat = 2 * time.Minute
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	f := sc.Faster(4)
	if e := f.Events[0]; e.At != 5*s || e.Until != 20*s || e.Ramp != 2500*time.Millisecond || f.Repeat != 30*s || e.Utilization != 0.98 {
		t.Fatalf("Faster(4) = %+v, repeat %v", e, f.Repeat)
	}
	if sc.Events[0].At != 20*s {
		t.Fatalf("Faster changed the original")
	}
	want := []string{
		"uplink: congestion 0:20–1:20, out traffic ramp over 10s to 98% of line rate with 1000 discards/s",
		"ge1: errors 0:45–1:00, in errors ramp over 15s to 200/s",
		"ge1: link-down 1:00–1:40",
	}
	for i, w := range want {
		if got := sc.Events[i].String(); got != w {
			t.Errorf("String() = %q, want %q", got, w)
		}
	}
	if got := f.Events[1].String(); got != "ge1: errors 0:11.2–0:15, in errors ramp over 3.75s to 200/s" {
		t.Errorf("fast String() = %q", got)
	}
}

// TestAt checks the ground truth the training-set labels come from: which
// events are in force and how strong, repetitions included.
func TestAt(t *testing.T) {
	sc := demoLike()
	sc.Repeat = 2 * time.Minute
	tests := []struct {
		iface string
		t     time.Duration
		want  map[Kind]float64 // kind → strength
	}{
		{"uplink", 19 * s, nil},
		{"uplink", 20 * s, nil}, // strength 0 at the very start of a ramp
		{"uplink", 25 * s, map[Kind]float64{Congestion: 0.5}},
		{"uplink", 30 * s, map[Kind]float64{Congestion: 1}},
		{"uplink", 79 * s, map[Kind]float64{Congestion: 1}},
		{"uplink", 80 * s, nil},
		{"uplink", 2*time.Minute + 25*s, map[Kind]float64{Congestion: 0.5}},
		{"4", 30 * s, nil}, // aliases are not resolved
		{"ge1", 50 * s, map[Kind]float64{Errors: 1.0 / 3}},
		{"ge1", 60 * s, map[Kind]float64{LinkDown: 1}},
		{"ge1", 6*time.Minute + 99*s, map[Kind]float64{LinkDown: 1}},
		{"idle", 30 * s, nil},
	}
	for _, tc := range tests {
		got := map[Kind]float64{}
		for _, a := range sc.At(tc.iface, tc.t) {
			got[a.Kind] = a.Strength
		}
		if len(got) != len(tc.want) {
			t.Errorf("At(%s, %v) = %v, want %v", tc.iface, tc.t, got, tc.want)
			continue
		}
		for k, v := range tc.want {
			if !near(got[k], v) {
				t.Errorf("At(%s, %v)[%s] = %v, want %v", tc.iface, tc.t, k, got[k], v)
			}
		}
	}
}
