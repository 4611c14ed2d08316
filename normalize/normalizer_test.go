package normalize

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/netfeat/netfeat/schema"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const sec = int64(time.Second)

func newTest(t *testing.T, cfg Config) (*Normalizer, *collector, *prometheus.Registry) {
	t.Helper()
	c := &collector{}
	reg := prometheus.NewRegistry()
	n, err := New(cfg, c, reg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n, c, reg
}

func snmpObs(oid string, kind schema.ValueKind, v any) schema.Observation {
	o := schema.Observation{Device: "r1", Protocol: schema.ProtocolSNMP, Path: oid, Kind: kind}
	setVal(&o, v)
	return o
}

func gnmiObs(origin, path string, kind schema.ValueKind, v any, ts int64) schema.Observation {
	o := schema.Observation{Device: "g1", Protocol: schema.ProtocolGNMI, Origin: origin, Path: path, Kind: kind, DeviceTime: ts, RecvTime: ts}
	setVal(&o, v)
	return o
}

func setVal(o *schema.Observation, v any) {
	switch x := v.(type) {
	case uint64:
		o.Uint = x
	case int:
		o.Int = int64(x)
	case float64:
		o.Float = x
	case string:
		o.Str = x
	}
}

// poll stamps a batch with a receive time and observes it.
func poll(t *testing.T, n *Normalizer, c *collector, at int64, batch ...schema.Observation) []schema.Sample {
	t.Helper()
	for i := range batch {
		batch[i].RecvTime = at
	}
	c.samples = nil
	if err := n.Observe(context.Background(), batch); err != nil {
		t.Fatalf("Observe: %v", err)
	}
	return c.samples
}

func find(samples []schema.Sample, comp, metric string) (float64, bool) {
	for _, s := range samples {
		if s.Component == comp && s.Metric == metric {
			return s.Value, true
		}
	}
	return 0, false
}

const (
	oidIfName       = "1.3.6.1.2.1.31.1.1.1.1.1"
	oidIfHighSpeed  = "1.3.6.1.2.1.31.1.1.1.15.1"
	oidIfInOctets   = "1.3.6.1.2.1.2.2.1.10.1"
	oidIfHCInOctets = "1.3.6.1.2.1.31.1.1.1.6.1"
	oidIfOperStatus = "1.3.6.1.2.1.2.2.1.8.1"
)

func TestCounterRatesWrapAndReset(t *testing.T) {
	tests := []struct {
		name       string
		kind       schema.ValueKind
		oid        string
		first      uint64
		up1, up2   uint64
		second     uint64
		wantBPS    float64 // NaN: no rate expected
		wantDisc   float64
		wantWraps  float64
		speedMbits uint64
	}{
		{"steady 64-bit", schema.KindCounter64, oidIfHCInOctets, 1000, 100, 1100, 11000, 8000, 0, 0, 1000},
		{"32-bit wrap", schema.KindCounter32, oidIfInOctets, 1<<32 - 296, 100, 1100, 704, 800, 0, 1, 1000},
		{"32-bit drop beyond half range is a reset", schema.KindCounter32, oidIfInOctets, 1_000_000_000, 100, 1100, 5, math.NaN(), 1, 0, 0},
		{"32-bit wrap implying more than twice the speed is a reset", schema.KindCounter32, oidIfInOctets, 1<<32 - 1000, 100, 1100, 1_000_000_000, math.NaN(), 1, 0, 1},
		{"64-bit drop is a reset", schema.KindCounter64, oidIfHCInOctets, 1e12, 100, 1100, 5, math.NaN(), 1, 0, 1000},
		{"sysUpTime going back is a reset", schema.KindCounter64, oidIfHCInOctets, 1000, 5000, 100, 900000, math.NaN(), 1, 0, 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, c, reg := newTest(t, Config{})
			batch := func(up, v uint64) []schema.Observation {
				return []schema.Observation{
					snmpObs(oidSysUpTime, schema.KindTimeTicks, up),
					snmpObs(tc.oid, tc.kind, v),
					snmpObs(oidIfName, schema.KindString, "ge-0/0/1"),
					snmpObs(oidIfHighSpeed, schema.KindGauge, tc.speedMbits),
				}
			}
			s1 := poll(t, n, c, 100*sec, batch(tc.up1, tc.first)...)
			if _, ok := find(s1, "ge-0/0/1", "interface.in.bps"); ok {
				t.Fatalf("first sample yielded a rate")
			}
			if v, _ := find(s1, "ge-0/0/1", "interface.in.octets"); v != float64(tc.first) {
				t.Fatalf("octets = %v, want %v (component from ifName in the same poll)", v, tc.first)
			}
			s2 := poll(t, n, c, 110*sec, batch(tc.up2, tc.second)...)
			bps, ok := find(s2, "ge-0/0/1", "interface.in.bps")
			if math.IsNaN(tc.wantBPS) {
				if ok {
					t.Fatalf("got rate %v across a reset", bps)
				}
			} else {
				if !ok || math.Abs(bps-tc.wantBPS) > 1e-9 {
					t.Fatalf("bps = %v (present %v), want %v", bps, ok, tc.wantBPS)
				}
				if tc.speedMbits > 0 {
					u, ok := find(s2, "ge-0/0/1", "interface.in.utilization")
					if want := tc.wantBPS / (float64(tc.speedMbits) * 1e6); !ok || math.Abs(u-want) > 1e-15 {
						t.Fatalf("utilization = %v, want %v", u, want)
					}
				}
			}
			if got := testutil.ToFloat64(n.met.discontinuities.WithLabelValues("r1")); got != tc.wantDisc {
				t.Fatalf("discontinuities = %v, want %v", got, tc.wantDisc)
			}
			if got := testutil.ToFloat64(n.met.wraps.WithLabelValues("r1")); got != tc.wantWraps {
				t.Fatalf("wraps = %v, want %v", got, tc.wantWraps)
			}
			// After a reset the next sample rates again from the new baseline.
			s3 := poll(t, n, c, 120*sec, batch(tc.up2+1000, tc.second+10000)...)
			if v, ok := find(s3, "ge-0/0/1", "interface.in.bps"); !ok || v != 8000 {
				t.Fatalf("third poll bps = %v (present %v), want 8000", v, ok)
			}
			_ = reg
		})
	}
}

func TestFallbackOnlyWhenPrimaryAbsent(t *testing.T) {
	n, c, _ := newTest(t, Config{})
	s := poll(t, n, c, sec,
		snmpObs(oidIfInOctets, schema.KindCounter32, uint64(5)),
		snmpObs(oidIfHCInOctets, schema.KindCounter64, uint64(1<<40)),
		snmpObs(oidIfName, schema.KindString, "eth0"))
	count := 0
	for _, x := range s {
		if x.Metric == "interface.in.octets" {
			count++
			if x.Value != 1<<40 {
				t.Fatalf("in.octets from the 32-bit fallback: %v", x.Value)
			}
		}
	}
	if count != 1 {
		t.Fatalf("%d in.octets samples, want 1", count)
	}
	// A poll without the 64-bit counter: the series keeps to its source,
	// so the next 64-bit value still gives a rate; the 32-bit value is
	// shadowed, not mixed in.
	s = poll(t, n, c, 2*sec, snmpObs(oidIfInOctets, schema.KindCounter32, uint64(7)), snmpObs(oidIfName, schema.KindString, "eth0"))
	if v, ok := find(s, "eth0", "interface.in.octets"); ok {
		t.Fatalf("fallback while the primary fed the series %v ago: in.octets = %v, want none", sec, v)
	}
	if got := testutil.ToFloat64(n.met.shadowed.WithLabelValues("r1")); got != 1 {
		t.Fatalf("shadowed = %v, want 1", got)
	}
	// Once the primary has been silent for sourceHold, the fallback feeds it.
	s = poll(t, n, c, sec+int64(sourceHold), snmpObs(oidIfInOctets, schema.KindCounter32, uint64(9)), snmpObs(oidIfName, schema.KindString, "eth0"))
	if v, ok := find(s, "eth0", "interface.in.octets"); !ok || v != 9 {
		t.Fatalf("fallback alone after sourceHold: in.octets = %v (present %v), want 9", v, ok)
	}
}

// TestOneSourcePerSeries feeds one interface's octets from two primary
// gNMI sources in separate notifications, as IOS-XR does with OpenConfig
// in-octets and native generic-counters bytes-received: the series keeps
// to the first, whose rates continue, and the other is shadowed, neither
// mixed into the counter nor counted as a reset.
func TestOneSourcePerSeries(t *testing.T) {
	n, c, _ := newTest(t, Config{})
	const (
		oc     = "interfaces/interface[name=Gi0]/state/counters/in-octets"
		native = "infra-statistics/interfaces/interface[interface-name=Gi0]/latest/generic-counters/bytes-received"
		ocO    = "openconfig-interfaces"
		natO   = "Cisco-IOS-XR-infra-statsd-oper"
	)
	// The first batch also holds a native leaf of another interface, so the
	// device's profile (cisco-iosxr, by origin) is chosen from the start; a
	// later change of profile rebases every series once.
	other := gnmiObs(natO, "infra-statistics/interfaces/interface[interface-name=Gi1]/latest/generic-counters/bytes-received", schema.KindCounter64, uint64(77), sec)
	steps := []struct {
		at       int64
		obs      schema.Observation
		octets   float64 // in.octets sample wanted, 0 for none
		bps      float64 // in.bps sample wanted, 0 for none
		shadowed float64
	}{
		{sec, gnmiObs(ocO, oc, schema.KindCounter64, uint64(1000), sec), 1000, 0, 0},
		{sec + sec/2, gnmiObs(natO, native, schema.KindCounter64, uint64(5000), sec+sec/2), 0, 0, 1},
		{2 * sec, gnmiObs(ocO, oc, schema.KindCounter64, uint64(2000), 2*sec), 2000, 8000, 1},
		{2*sec + sec/2, gnmiObs(natO, native, schema.KindCounter64, uint64(6000), 2*sec+sec/2), 0, 0, 2},
		{3 * sec, gnmiObs(ocO, oc, schema.KindCounter64, uint64(3000), 3*sec), 3000, 8000, 2},
	}
	for i, st := range steps {
		batch := []schema.Observation{st.obs}
		if i == 0 {
			batch = append(batch, other)
		}
		s := poll(t, n, c, st.at, batch...)
		if v, ok := find(s, "Gi0", "interface.in.octets"); ok != (st.octets != 0) || v != st.octets {
			t.Fatalf("step %d: in.octets = %v (present %v), want %v", i, v, ok, st.octets)
		}
		if v, ok := find(s, "Gi0", "interface.in.bps"); ok != (st.bps != 0) || v != st.bps {
			t.Fatalf("step %d: in.bps = %v (present %v), want %v", i, v, ok, st.bps)
		}
		if got := testutil.ToFloat64(n.met.shadowed.WithLabelValues("g1")); got != st.shadowed {
			t.Fatalf("step %d: shadowed = %v, want %v", i, got, st.shadowed)
		}
	}
	if got := testutil.ToFloat64(n.met.discontinuities.WithLabelValues("g1")); got != 0 {
		t.Fatalf("discontinuities = %v, want 0", got)
	}
}

func TestTrapBecomesStateSample(t *testing.T) {
	n, c, _ := newTest(t, Config{})
	poll(t, n, c, sec, snmpObs(oidIfName, schema.KindString, "1/1/1"), snmpObs(oidIfOperStatus, schema.KindInteger, 1))
	trap := []schema.Observation{
		snmpObs(oidSysUpTime, schema.KindTimeTicks, uint64(500)),
		snmpObs("1.3.6.1.6.3.1.1.4.1.0", schema.KindOID, "1.3.6.1.6.3.1.1.5.3"),
		snmpObs("1.3.6.1.2.1.2.2.1.1.1", schema.KindInteger, 1),
		snmpObs("1.3.6.1.2.1.2.2.1.7.1", schema.KindInteger, 1),
		snmpObs(oidIfOperStatus, schema.KindInteger, 2),
	}
	for i := range trap {
		trap[i].Protocol = schema.ProtocolTrap
	}
	s := poll(t, n, c, 2*sec, trap...)
	if v, ok := find(s, "1/1/1", "interface.oper_status"); !ok || v != 2 {
		t.Fatalf("oper_status after linkDown = %v (present %v), want 2; samples %+v", v, ok, s)
	}
	for _, x := range s {
		if x.Source != "generic/trap" {
			t.Fatalf("source %q, want generic/trap", x.Source)
		}
	}
	if u := n.Unmapped(); len(u) != 0 {
		t.Fatalf("trap varbinds counted as unmapped: %+v", u)
	}
}

func TestBadInputIsCountedNotFatal(t *testing.T) {
	tests := []struct {
		name   string
		obs    schema.Observation
		reason string
	}{
		{"NaN", gnmiObs("openconfig-platform", "components/component[name=cpu0]/cpu/utilization/state/instant", schema.KindFloat, math.NaN(), sec), ReasonBadValue},
		{"Inf", gnmiObs("openconfig-platform", "components/component[name=cpu0]/cpu/utilization/state/instant", schema.KindFloat, math.Inf(1), sec), ReasonBadValue},
		{"noSuchInstance", snmpObs(oidIfHCInOctets, schema.KindNoSuchInstance, nil), ReasonException},
		{"noSuchObject", snmpObs("1.3.6.1.4.1.2021.11.11.0", schema.KindNoSuchObject, nil), ReasonException},
		{"negative counter", snmpObs(oidIfHCInOctets, schema.KindInteger, -5), ReasonBadValue},
		{"absurd string", snmpObs(oidIfHighSpeed, schema.KindString, strings.Repeat("9", 100000)), ReasonBadValue},
		{"wrong type", snmpObs(oidIfHCInOctets, schema.KindOID, "1.3.6"), ReasonBadType},
		{"unknown enum name", gnmiObs("openconfig-interfaces", "interfaces/interface[name=e1]/state/oper-status", schema.KindEnum, "BANANA", sec), ReasonUnknownEnum},
		{"unknown enum number", snmpObs(oidIfOperStatus, schema.KindInteger, 99), ReasonUnknownEnum},
		{"unmapped OID", snmpObs("1.3.6.1.4.1.99999.1.2.3", schema.KindInteger, 1), ReasonNoMapping},
		{"unmapped path", gnmiObs("openconfig-bgp", "network-instances/network-instance[name=default]/protocols", schema.KindString, "x", sec), ReasonNoMapping},
		{"bad path", gnmiObs("openconfig-interfaces", "interfaces/interface[name=e1/state", schema.KindString, "x", sec), ReasonBadPath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, c, reg := newTest(t, Config{})
			s := poll(t, n, c, sec, tc.obs)
			if len(s) != 0 {
				t.Fatalf("bad input produced samples: %+v", s)
			}
			u := n.Unmapped()
			if len(u) != 1 || u[0].Reason != tc.reason || u[0].Count != 1 {
				t.Fatalf("Unmapped() = %+v, want one with reason %s", u, tc.reason)
			}
			if got := testutil.ToFloat64(n.met.unmapped.WithLabelValues(u[0].Device, u[0].Path, tc.reason)); got != 1 {
				t.Fatalf("unmapped_total{%s,%s,%s} = %v, want 1", u[0].Device, u[0].Path, tc.reason, got)
			}
			if _, err := reg.Gather(); err != nil {
				t.Fatalf("gather: %v", err)
			}
		})
	}
}

func TestGNMIDiscontinuityLeaf(t *testing.T) {
	n, c, reg := newTest(t, Config{})
	const p = "interfaces/interface[name=Gi0/0/0/0]/state/counters/"
	step := func(ts int64, octets uint64, clear uint64) []schema.Sample {
		return poll(t, n, c, ts,
			gnmiObs("openconfig-interfaces", p+"in-octets", schema.KindCounter64, octets, ts),
			gnmiObs("openconfig-interfaces", p+"last-clear", schema.KindCounter64, clear, ts))
	}
	step(10*sec, 1000, 1)
	s := step(20*sec, 3000, 1)
	if v, ok := find(s, "Gi0/0/0/0", "interface.in.bps"); !ok || v != 1600 {
		t.Fatalf("bps = %v (present %v), want 1600", v, ok)
	}
	// Cleared and grown past the old value: only last-clear tells.
	s = step(30*sec, 9000, 2)
	if v, ok := find(s, "Gi0/0/0/0", "interface.in.bps"); ok {
		t.Fatalf("rate %v across a last-clear change", v)
	}
	if got := testutil.ToFloat64(n.met.discontinuities.WithLabelValues("g1")); got != 1 {
		t.Fatalf("discontinuities = %v, want 1", got)
	}
	if p, _ := n.DeviceProfile("g1"); p != "openconfig" {
		t.Fatalf("profile %q, want openconfig", p)
	}
	_ = reg
}

func TestGNMIProfileUpgradeAndCombos(t *testing.T) {
	n, c, _ := newTest(t, Config{})
	poll(t, n, c, sec, gnmiObs("openconfig-interfaces", "interfaces/interface[name=Hu0/0/0/0]/state/oper-status", schema.KindEnum, "UP", sec))
	const gc = "infra-statistics/interfaces/interface[interface-name=Hu0/0/0/0]/latest/generic-counters/"
	s := poll(t, n, c, 2*sec,
		gnmiObs("Cisco-IOS-XR-infra-statsd-oper", gc+"packets-received", schema.KindCounter64, uint64(100), 2*sec),
		gnmiObs("Cisco-IOS-XR-infra-statsd-oper", gc+"multicast-packets-received", schema.KindCounter64, uint64(7), 2*sec),
		gnmiObs("Cisco-IOS-XR-infra-statsd-oper", gc+"broadcast-packets-received", schema.KindCounter64, uint64(3), 2*sec))
	if p, _ := n.DeviceProfile("g1"); p != "cisco-iosxr" {
		t.Fatalf("profile %q, want cisco-iosxr after a native IOS-XR path", p)
	}
	if v, ok := find(s, "Hu0/0/0/0", "interface.in.unicast_pkts"); !ok || v != 90 {
		t.Fatalf("unicast = %v (present %v), want 100-7-3 = 90", v, ok)
	}
	if v, ok := find(s, "Hu0/0/0/0", "interface.in.multicast_pkts"); !ok || v != 7 {
		t.Fatalf("multicast = %v, want 7", v)
	}
	// A combo missing a part is counted, not guessed.
	poll(t, n, c, 3*sec, gnmiObs("Cisco-IOS-XR-infra-statsd-oper", gc+"packets-received", schema.KindCounter64, uint64(200), 3*sec))
	found := false
	for _, u := range n.Unmapped() {
		if u.Reason == ReasonIncomplete {
			found = true
		}
	}
	if !found {
		t.Fatalf("incomplete combo not counted: %+v", n.Unmapped())
	}
}

// TestTrapUptimeIsNoReset: a trap whose sysUpTime is lower than the last
// poll's (a notification originator's own clock, or a forged trap) does
// not reset the device's counters; the next poll's rates are kept.
func TestTrapUptimeIsNoReset(t *testing.T) {
	n, c, _ := newTest(t, Config{})
	batch := func(up, v uint64) []schema.Observation {
		return []schema.Observation{snmpObs(oidSysUpTime, schema.KindTimeTicks, up), snmpObs(oidIfName, schema.KindString, "x"), snmpObs(oidIfHCInOctets, schema.KindCounter64, v)}
	}
	poll(t, n, c, 10*sec, batch(100_000, 1000)...)
	trap := []schema.Observation{
		snmpObs(oidSysUpTime, schema.KindTimeTicks, uint64(10)),
		snmpObs("1.3.6.1.6.3.1.1.4.1.0", schema.KindOID, "1.3.6.1.6.3.1.1.5.3"),
		snmpObs(oidIfOperStatus, schema.KindInteger, 2),
	}
	for i := range trap {
		trap[i].Protocol = schema.ProtocolTrap
	}
	poll(t, n, c, 15*sec, trap...)
	s := poll(t, n, c, 20*sec, batch(101_000, 2000)...)
	if v, ok := find(s, "x", "interface.in.bps"); !ok || v != 800 {
		t.Fatalf("bps after a trap with a low sysUpTime = %v (present %v), want 800", v, ok)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	n, c, _ := newTest(t, Config{})
	batch := func(up, v uint64) []schema.Observation {
		return []schema.Observation{snmpObs(oidSysUpTime, schema.KindTimeTicks, up), snmpObs(oidIfName, schema.KindString, "x"), snmpObs(oidIfHCInOctets, schema.KindCounter64, v)}
	}
	poll(t, n, c, 10*sec, batch(100, 1000)...)
	state, err := n.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	n2, c2, _ := newTest(t, Config{})
	if err := n2.UnmarshalState(state); err != nil {
		t.Fatal(err)
	}
	s := poll(t, n2, c2, 20*sec, batch(1100, 2000)...)
	if v, ok := find(s, "x", "interface.in.bps"); !ok || v != 800 {
		t.Fatalf("bps after restore = %v (present %v), want 800", v, ok)
	}
	// A reboot while we were down is still caught by sysUpTime.
	n3, c3, _ := newTest(t, Config{})
	if err := n3.UnmarshalState(state); err != nil {
		t.Fatal(err)
	}
	s = poll(t, n3, c3, 20*sec, batch(50, 2000)...)
	if v, ok := find(s, "x", "interface.in.bps"); ok {
		t.Fatalf("rate %v across a reboot during downtime", v)
	}
	if err := n3.UnmarshalState([]byte(`{"version":99}`)); err == nil {
		t.Fatalf("UnmarshalState accepted an unknown version")
	}
}

func TestSNMPPlan(t *testing.T) {
	n, _, _ := newTest(t, Config{Inventory: map[string]DeviceInfo{"inv": {Profile: "nokia-sros"}}})
	n.SetTargetProfiles(map[string]string{"forced": "nokia-sros", "inv": "generic"})
	tests := []struct {
		device, oid, descr, profile, scalar, column string
	}{
		// The profile a target or the inventory forces, not the matched one
		// (the inventory's wins), so that the poller walks what it maps.
		{"forced", "1.3.6.1.4.1.8072.3.2.10", "Linux box", "nokia-sros", "1.3.6.1.4.1.6527.3.1.2.1.1.1.0", "1.3.6.1.4.1.6527.3.1.2.2.4.2.1.6"},
		{"inv", "1.3.6.1.4.1.8072.3.2.10", "Linux box", "nokia-sros", "1.3.6.1.4.1.6527.3.1.2.1.1.1.0", "1.3.6.1.4.1.6527.3.1.2.2.4.2.1.6"},
		{"r1", "1.3.6.1.4.1.6527.1.3.17", "TiMOS-C-23.10.R3", "nokia-sros", "1.3.6.1.4.1.6527.3.1.2.1.1.1.0", "1.3.6.1.4.1.6527.3.1.2.2.4.2.1.6"},
		{"r1", ".1.3.6.1.4.1.193.223.2.1", "MINI-LINK 6352", "ericsson-minilink", "1.3.6.1.4.1.2021.11.11.0", "1.3.6.1.4.1.193.223.2.7.1.1.1"},
		{"r1", "1.3.6.1.4.1.637.61.1", "", "nokia-isam", "1.3.6.1.2.1.1.3.0", "1.3.6.1.4.1.637.61.1.9.29.1.1.4"},
		{"r1", "1.3.6.1.4.1.9.1.1018", "Cisco IOS XR Software (Cisco ASR9K Series)", "cisco-iosxr", "1.3.6.1.2.1.1.3.0", "1.3.6.1.4.1.9.9.221.1.1.1.1.20"},
		{"r1", "1.3.6.1.4.1.8072.3.2.10", "Linux box", "generic", "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.31.1.1.1.6"},
	}
	for _, tc := range tests {
		p, scalars, cols := n.SNMPPlan(tc.device, tc.oid, tc.descr)
		if p != tc.profile {
			t.Fatalf("SNMPPlan(%s) profile %q, want %q", tc.oid, p, tc.profile)
		}
		if !contains(scalars, tc.scalar) || !contains(cols, tc.column) || !contains(cols, "1.3.6.1.2.1.31.1.1.1.1") {
			t.Fatalf("SNMPPlan(%s): scalars %v columns %v lack %s / %s / ifName", tc.oid, scalars, cols, tc.scalar, tc.column)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

const acmeProfile = `name: acme
description: ACME routers (test)
extends: [generic]
priority: 100
match:
  sys_object_id: [1.3.6.1.4.1.99999]
snmp:
  metrics:
    - {object: ACME-MIB::acmeCpu, oid: 1.3.6.1.4.1.99999.1.1, scalar: true, metric: system.cpu.utilization, scale: SCALE}
`

func TestProfilesDirAddsVendorAndReloads(t *testing.T) {
	dir := t.TempDir()
	write := func(scale string) {
		if err := os.WriteFile(filepath.Join(dir, "acme.yaml"), []byte(strings.Replace(acmeProfile, "SCALE", scale, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("0.01")
	n, c, _ := newTest(t, Config{ProfilesDir: dir, ReloadInterval: 20 * time.Millisecond})
	batch := func() []schema.Observation {
		return []schema.Observation{
			snmpObs(oidSysObjectID, schema.KindOID, "1.3.6.1.4.1.99999.5"),
			snmpObs("1.3.6.1.4.1.99999.1.1.0", schema.KindGauge, uint64(40)),
		}
	}
	s := poll(t, n, c, sec, batch()...)
	if v, ok := find(s, "", "system.cpu.utilization"); !ok || v != 0.4 || s[len(s)-1].Source != "acme/snmp" {
		t.Fatalf("acme cpu = %v (present %v), samples %+v", v, ok, s)
	}
	// Reload on change, by the watcher.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := n.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}()
	time.Sleep(30 * time.Millisecond) // distinct mtime
	write("0.001")
	deadline := time.Now().Add(3 * time.Second)
	for {
		s = poll(t, n, c, 2*sec, batch()...)
		if v, _ := find(s, "", "system.cpu.utilization"); v == 0.04 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("profile change not picked up; last samples %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A broken file is refused and the previous profiles stay.
	if err := os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("name: broken\nsnmp: {metrics: [{oid: x, metric: nope}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Reload(); !errors.Is(err, ErrProfile) {
		t.Fatalf("Reload with a broken profile: %v, want ErrProfile", err)
	}
	s = poll(t, n, c, 3*sec, batch()...)
	if v, _ := find(s, "", "system.cpu.utilization"); v != 0.04 {
		t.Fatalf("after failed reload cpu = %v, want 0.04 from the kept profiles", v)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		fields []string
	}{
		{"ok", Config{Inventory: map[string]DeviceInfo{"r1": {Site: "ams1", Role: "pe", Profile: "nokia-sros"}}}, nil},
		{"unknown profile", Config{Inventory: map[string]DeviceInfo{"r1": {Profile: "nope"}}}, []string{"inventory.r1.profile"}},
		{"negative interval", Config{ReloadInterval: -time.Second}, []string{"reload_interval"}},
		{"missing dir", Config{ProfilesDir: "/nonexistent/profiles"}, []string{"profiles_dir"}},
		{"limits", Config{MaxClockSkew: 2 * time.Hour, MaxSampleAge: -time.Second, ClockSkewAction: "ignore",
			MaxSeriesPerDevice: -1, MaxNameLength: 5000},
			[]string{"max_clock_skew", "max_sample_age", "clock_skew_action", "max_series_per_device", "max_name_length"}},
		{"limits at their maxima", Config{MaxClockSkew: MaxMaxClockSkew, MaxSampleAge: MaxMaxSampleAge, ClockSkewAction: ClockDrop,
			MaxSeriesPerDevice: MaxMaxSeriesPerDevice, MaxNameLength: MaxMaxNameLength}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var got []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var fe *schema.FieldError
					if !errors.As(e, &fe) {
						t.Fatalf("not a FieldError: %v", e)
					}
					got = append(got, fe.Field)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("Validate fields %v, want %v (err %v)", got, tc.fields, err)
			}
		})
	}
}

func TestInventoryForcesProfile(t *testing.T) {
	n, c, _ := newTest(t, Config{Inventory: map[string]DeviceInfo{"r1": {Profile: "nokia-sros", Site: "ams1"}}})
	s := poll(t, n, c, sec, snmpObs("1.3.6.1.4.1.6527.3.1.2.1.1.1.0", schema.KindGauge, uint64(12)))
	if v, ok := find(s, "", "system.cpu.utilization"); !ok || v != 0.12 {
		t.Fatalf("cpu = %v (present %v)", v, ok)
	}
	if info, ok := n.Inventory("r1"); !ok || info.Site != "ams1" {
		t.Fatalf("Inventory(r1) = %+v, %v", info, ok)
	}
}

// TestTargetForcesProfile: a target's own profile forces the device's
// profile as the inventory's does, the inventory winning, and a device
// whose target stops forcing one falls back to matching (here the
// default SNMP profile, which does not map the Nokia CPU OID).
func TestTargetForcesProfile(t *testing.T) {
	n, c, _ := newTest(t, Config{Inventory: map[string]DeviceInfo{"r2": {Profile: "openconfig"}}})
	cpu := snmpObs("1.3.6.1.4.1.6527.3.1.2.1.1.1.0", schema.KindGauge, uint64(12))
	steps := []struct {
		name     string
		forced   map[string]string
		device   string
		wantProf string
		wantCPU  bool
	}{
		{"forced by its target", map[string]string{"r1": "nokia-sros"}, "r1", "nokia-sros", true},
		{"the inventory wins", map[string]string{"r2": "nokia-sros"}, "r2", "openconfig", false},
		{"no longer forced", nil, "r1", DefaultSNMPProfile, false},
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			n.SetTargetProfiles(st.forced)
			o := cpu
			o.Device = st.device
			c.samples = nil
			s := poll(t, n, c, int64(i+1)*sec, o)
			if _, ok := find(s, "", "system.cpu.utilization"); ok != st.wantCPU {
				t.Errorf("cpu sample present %v, want %v", ok, st.wantCPU)
			}
			if p, _ := n.DeviceProfile(st.device); p != st.wantProf {
				t.Errorf("profile %q, want %q", p, st.wantProf)
			}
		})
	}
}

func TestProfileValidation(t *testing.T) {
	tests := []struct {
		name, yaml, field string
	}{
		{"rate metric", "name: x\nsnmp: {metrics: [{object: o, oid: 1.2, metric: interface.in.bps}]}", "snmp.metrics[0].metric"},
		{"not in catalog", "name: x\ngnmi: [{path: a/b, metric: foo.bar}]", "gnmi[0].metric"},
		{"bad oid", "name: x\nsnmp: {metrics: [{object: o, oid: 1..2, metric: system.uptime}]}", "snmp.metrics[0].oid"},
		{"no citation", "name: x\nsnmp: {metrics: [{oid: 1.2, metric: system.uptime}]}", "snmp.metrics[0].object"},
		{"bad template", "name: x\nsnmp: {metrics: [{object: o, oid: 1.2, metric: system.uptime, component: '{what}'}]}", "snmp.metrics[0].component"},
		{"bad enum", "name: x\ngnmi: [{path: a/b, metric: interface.oper_status, enum: colours}]", "gnmi[0].enum"},
		{"bad name", "name: X Y", "name"},
		{"counter_bits width", "name: x\ngnmi: [{path: a/b, metric: interface.in.octets, counter_bits: 16}]", "gnmi[0].counter_bits"},
		{"counter_bits on a gauge", "name: x\ngnmi: [{path: a/b, metric: interface.speed, counter_bits: 32}]", "gnmi[0].counter_bits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseProfile([]byte(tc.yaml))
			var fe *schema.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("parseProfile error %v, want field %s", err, tc.field)
			}
		})
	}
	if _, err := parseProfile([]byte("name: x\nunknown_key: 1")); err == nil {
		t.Fatalf("unknown key accepted")
	}
}

// TestGoldenInvariants checks properties every golden file must have:
// catalog metrics only, one value per series per instant, finite values.
func TestGoldenInvariants(t *testing.T) {
	for _, path := range recordings(t) {
		samples, n := normalizeRecording(t, path)
		seen := map[string]bool{}
		for _, s := range samples {
			if _, ok := schema.LookupMetric(s.Metric); !ok {
				t.Fatalf("%s: metric %q not in catalog", path, s.Metric)
			}
			k := s.Device + "|" + s.Component + "|" + s.Metric + "|" + time.Unix(0, s.TS).String()
			if seen[k] {
				t.Fatalf("%s: two samples for %s", path, k)
			}
			seen[k] = true
			if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
				t.Fatalf("%s: non-finite %+v", path, s)
			}
		}
		if len(n.Unmapped()) == 0 && strings.HasSuffix(path, ".snmprec") {
			t.Fatalf("%s: a full walk with nothing unmapped is implausible", path)
		}
	}
}
