package normalize

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/schema"
)

// resetModel is one gNMI interface model with a counter-clear marker.
type resetModel struct {
	name, origin, prefix string // prefix: the interface's path up to and including the counters container
	in, out, marker      string // leaf names
	markerKind           schema.ValueKind
	marker1, marker2     any // marker values before and after a clear
	marker3              any // after a second clear
	comp                 string
}

// resetModels are the models whose profiles map a discontinuity leaf: the
// OpenConfig counters/last-clear (timeticks64, ns), IOS-XR generic-counters
// last-discontinuity-time (uint32 seconds) and IOS-XE statistics
// discontinuity-time (yang:date-and-time).
var resetModels = []resetModel{
	{"openconfig", "openconfig-interfaces", "interfaces/interface[name=Gi0/0/0/0]/state/counters/",
		"in-octets", "out-octets", "last-clear", schema.KindCounter64,
		uint64(1_700_000_000_000_000_000), uint64(1_700_000_100_000_000_000), uint64(1_700_000_200_000_000_000), "Gi0/0/0/0"},
	{"iosxr", "Cisco-IOS-XR-infra-statsd-oper", "infra-statistics/interfaces/interface[interface-name=Hu0/0/0/0]/latest/generic-counters/",
		"bytes-received", "bytes-sent", "last-discontinuity-time", schema.KindCounter64,
		uint64(1_700_000_000), uint64(1_700_000_100), uint64(1_700_000_200), "Hu0/0/0/0"},
	{"iosxe", "Cisco-IOS-XE-interfaces-oper", "interfaces/interface[name=GigabitEthernet1]/statistics/",
		"in-octets", "out-octets-64", "discontinuity-time", schema.KindString,
		"2024-01-01T00:00:00+00:00", "2024-01-01T00:01:40+00:00", "2024-01-01T00:03:20+00:00", "GigabitEthernet1"},
}

// Octets per 10 s step: in-octets advance 1000 (800 bit/s), out-octets 2000
// (1600 bit/s), before and after a clear alike, so that every rate the
// normalizer emits must be exactly one of those two; anything else is a
// spike or a rate across a reset.
const (
	inStep, outStep = 1000, 2000
	inBPS, outBPS   = 800, 1600
	preBase         = 1_000_000_000_000
)

// rv is one leaf value in a reset scenario.
type rv struct {
	leaf string // "in", "out", "mark"
	v    any    // counter value (uint64) or marker generation (1, 2, 3)
}

// note is one notification: a timestamp and its leaves, in order.
type note struct {
	ts   int64
	vals []rv
}

// Counter values: pre(k) before the first clear, post(k) k steps after it,
// post2(k) after the second.
func pre(k int) uint64   { return preBase + uint64(k)*inStep }
func preO(k int) uint64  { return 2*preBase + uint64(k)*outStep }
func post(k int) uint64  { return uint64(k) * inStep }
func postO(k int) uint64 { return uint64(k) * outStep }

func in(v uint64) rv  { return rv{"in", v} }
func out(v uint64) rv { return rv{"out", v} }
func mark(g int) rv   { return rv{"mark", g} }

func TestCounterResetCountedOnce(t *testing.T) {
	// steady: two notifications of normal counting with marker generation 1.
	steady := []note{
		{10 * sec, []rv{mark(1), in(pre(1)), out(preO(1))}},
		{20 * sec, []rv{mark(1), in(pre(2)), out(preO(2))}},
	}
	tests := []struct {
		name string
		// batches after steady; each inner slice of notes is one Observe.
		batches  [][]note
		wantDisc float64
		// wantRateAt: timestamps (s) at which in-octets must yield a rate.
		wantRateAt []int64
	}{
		{"marker before counters in the same notification", [][]note{
			{{30 * sec, []rv{mark(2), in(post(1)), out(postO(1))}}},
			{{40 * sec, []rv{mark(2), in(post(2)), out(postO(2))}}},
		}, 1, []int64{40}},
		{"marker after counters in the same notification", [][]note{
			{{30 * sec, []rv{in(post(1)), out(postO(1)), mark(2)}}},
			{{40 * sec, []rv{in(post(2)), out(postO(2)), mark(2)}}},
		}, 1, []int64{40}},
		{"marker in an earlier notification", [][]note{
			{{25 * sec, []rv{mark(2)}}},
			{{30 * sec, []rv{in(post(1)), out(postO(1))}}},
			{{40 * sec, []rv{mark(2), in(post(2)), out(postO(2))}}},
		}, 1, []int64{40}},
		{"marker in an earlier notification of the same batch", [][]note{
			{{25 * sec, []rv{mark(2)}}, {30 * sec, []rv{in(post(1)), out(postO(1))}}},
			{{40 * sec, []rv{mark(2), in(post(2)), out(postO(2))}}},
		}, 1, []int64{40}},
		{"marker with stale counters, counters drop in the next notification", [][]note{
			{{30 * sec, []rv{mark(2), in(pre(3)), out(preO(3))}}},
			{{40 * sec, []rv{mark(2), in(post(1)), out(postO(1))}}},
			{{50 * sec, []rv{mark(2), in(post(2)), out(postO(2))}}},
		}, 1, []int64{50}},
		{"stale counters, then marker and dropped counters, in one batch", [][]note{
			{{30 * sec, []rv{in(pre(3)), out(preO(3))}}, {40 * sec, []rv{mark(2), in(post(1)), out(postO(1))}}},
			{{50 * sec, []rv{mark(2), in(post(2)), out(postO(2))}}},
		}, 1, []int64{50}},
		{"marker in a later notification", [][]note{
			{{30 * sec, []rv{in(post(1)), out(postO(1))}}},
			{{35 * sec, []rv{mark(2)}}},
			{{40 * sec, []rv{mark(2), in(post(2)), out(postO(2))}}},
		}, 1, []int64{40}},
		{"marker in a later notification of the same batch", [][]note{
			{{30 * sec, []rv{in(post(1)), out(postO(1))}}, {35 * sec, []rv{mark(2)}}},
			{{40 * sec, []rv{mark(2), in(post(2)), out(postO(2))}}},
		}, 1, []int64{40}},
		{"counters drop with the old marker, marker changes in the next notification", [][]note{
			{{30 * sec, []rv{mark(1), in(post(1)), out(postO(1))}}},
			{{40 * sec, []rv{mark(2), in(post(2)), out(postO(2))}}},
			{{50 * sec, []rv{mark(2), in(post(3)), out(postO(3))}}},
		}, 1, []int64{40, 50}},
		{"in-octets and out-octets drop in different notifications, marker later", [][]note{
			{{30 * sec, []rv{in(post(1))}}},
			{{31 * sec, []rv{out(postO(1) + 200)}}},
			{{35 * sec, []rv{mark(2)}}},
			{{40 * sec, []rv{mark(2), in(post(2)), out(postO(2))}}},
		}, 1, []int64{40}},
		{"counters dropping without marker", [][]note{
			{{30 * sec, []rv{in(post(1)), out(postO(1))}}},
			{{40 * sec, []rv{in(post(2)), out(postO(2))}}},
		}, 1, []int64{40}},
		{"counters dropping without marker, in then out", [][]note{
			{{30 * sec, []rv{in(post(1))}}},
			{{31 * sec, []rv{out(postO(1) + 200)}}},
			{{40 * sec, []rv{in(post(2)), out(postO(2))}}},
		}, 1, []int64{40}},
		{"marker changing without drop", [][]note{
			// Cleared and counted past the old value: only the marker tells.
			{{30 * sec, []rv{mark(2), in(pre(3) + 5*inStep), out(preO(3) + 5*outStep)}}},
			{{40 * sec, []rv{mark(2), in(pre(4) + 5*inStep), out(preO(4) + 5*outStep)}}},
		}, 1, []int64{40}},
		{"two clears, each with its marker", [][]note{
			{{30 * sec, []rv{mark(2), in(post(1)), out(postO(1))}}},
			{{40 * sec, []rv{mark(2), in(post(2)), out(postO(2))}}},
			{{50 * sec, []rv{mark(3), in(post(1)), out(postO(1))}}},
			{{60 * sec, []rv{mark(3), in(post(2)), out(postO(2))}}},
		}, 2, []int64{40, 60}},
		{"a drop the marker does not confirm, then a clear", [][]note{
			{{30 * sec, []rv{mark(1), in(post(1)), out(postO(1))}}},
			{{40 * sec, []rv{mark(1), in(post(2)), out(postO(2))}}},
			{{50 * sec, []rv{mark(2), in(post(1)), out(postO(1))}}},
			{{60 * sec, []rv{mark(2), in(post(2)), out(postO(2))}}},
		}, 2, []int64{40, 60}},
		{"a drop, then a second drop of the same counter", [][]note{
			{{30 * sec, []rv{in(post(1)), out(postO(1))}}},
			{{40 * sec, []rv{in(post(2)), out(postO(2))}}},
			{{50 * sec, []rv{in(post(1)), out(postO(1))}}},
			{{60 * sec, []rv{in(post(2)), out(postO(2))}}},
		}, 2, []int64{40, 60}},
		{"a marker-confirmed drop, later an unmarked drop", [][]note{
			{{30 * sec, []rv{in(post(1)), out(postO(1))}}},
			{{35 * sec, []rv{mark(2)}}},
			{{40 * sec, []rv{in(post(2)), out(postO(2))}}},
			{{50 * sec, []rv{in(post(1)), out(postO(1))}}},
			{{60 * sec, []rv{in(post(2)), out(postO(2))}}},
		}, 2, []int64{40, 60}},
	}
	for _, model := range resetModels {
		for _, tc := range tests {
			t.Run(model.name+"/"+tc.name, func(t *testing.T) {
				n, c, _ := newTest(t, Config{})
				obs := func(ts int64, v rv) schema.Observation {
					switch v.leaf {
					case "in":
						return gnmiObs(model.origin, model.prefix+model.in, schema.KindCounter64, v.v, ts)
					case "out":
						return gnmiObs(model.origin, model.prefix+model.out, schema.KindCounter64, v.v, ts)
					}
					m := [...]any{nil, model.marker1, model.marker2, model.marker3}[v.v.(int)]
					return gnmiObs(model.origin, model.prefix+model.marker, model.markerKind, m, ts)
				}
				rateAt := map[int64]bool{}
				observe := func(notes []note) {
					t.Helper()
					var b []schema.Observation
					for _, nt := range notes {
						for _, v := range nt.vals {
							b = append(b, obs(nt.ts, v))
						}
					}
					c.samples = nil
					if err := n.Observe(context.Background(), b); err != nil {
						t.Fatalf("Observe: %v", err)
					}
					for _, s := range c.samples {
						want := map[string]float64{"interface.in.bps": inBPS, "interface.out.bps": outBPS}[s.Metric]
						if want == 0 {
							continue
						}
						if s.Component != model.comp {
							t.Fatalf("component %q, want %q", s.Component, model.comp)
						}
						if math.Abs(s.Value-want) > 1e-9 {
							t.Fatalf("%s = %v at %ds, want %v: a spike or a rate across a reset", s.Metric, s.Value, s.TS/sec, want)
						}
						if s.Metric == "interface.in.bps" {
							rateAt[s.TS/sec] = true
						}
					}
				}
				for _, nt := range steady {
					observe([]note{nt})
				}
				if !rateAt[20] {
					t.Fatalf("no rate in steady state")
				}
				wantProf := "cisco-" + model.name
				if model.name == "openconfig" {
					wantProf = "openconfig"
				}
				if p, _ := n.DeviceProfile("g1"); p != wantProf {
					t.Fatalf("profile %q for the %s model", p, model.name)
				}
				for _, b := range tc.batches {
					observe(b)
				}
				if got := testutil.ToFloat64(n.met.discontinuities.WithLabelValues("g1")); got != tc.wantDisc {
					t.Fatalf("discontinuities = %v, want %v", got, tc.wantDisc)
				}
				if got := testutil.ToFloat64(n.met.wraps.WithLabelValues("g1")); got != 0 {
					t.Fatalf("wraps = %v, want 0", got)
				}
				for _, at := range tc.wantRateAt {
					if !rateAt[at] {
						t.Fatalf("no in.bps at %ds after the reset (rates at %v)", at, keys(rateAt))
					}
				}
				if u := n.Unmapped(); len(u) != 0 {
					t.Fatalf("unmapped: %+v", u)
				}
			})
		}
	}
}

func keys(m map[int64]bool) string {
	s := ""
	for k := range m {
		s += fmt.Sprint(k, " ")
	}
	return s
}

// TestCounterBitsFromModel checks counter_bits with the IOS-XE interfaces-oper
// octet counters: out-octets is a YANG uint32 that gNMI delivers without a
// width, out-octets-64 its uint64 successor.
func TestCounterBitsFromModel(t *testing.T) {
	const p = "interfaces/interface[name=GigabitEthernet1]/statistics/"
	const origin = "Cisco-IOS-XE-interfaces-oper"
	o32 := func(v uint64, ts int64) schema.Observation {
		return gnmiObs(origin, p+"out-octets", schema.KindCounter64, v, ts)
	}
	o64 := func(v uint64, ts int64) schema.Observation {
		return gnmiObs(origin, p+"out-octets-64", schema.KindCounter64, v, ts)
	}
	tests := []struct {
		name      string
		first     []schema.Observation
		second    []schema.Observation
		wantBPS   float64 // NaN: no rate
		wantOut   float64 // out.octets sample of the second batch
		wantWraps float64
		wantDisc  float64
		wantBad   uint64 // bad_value count
	}{
		{"uint32 wrap is bridged", []schema.Observation{o32(1<<32-1000, 10*sec)}, []schema.Observation{o32(1000, 20*sec)},
			1600, 1000, 1, 0, 0},
		{"uint32 drop beyond half the range is a reset", []schema.Observation{o32(1_000_000_000, 10*sec)}, []schema.Observation{o32(5, 20*sec)},
			math.NaN(), 5, 0, 1, 0},
		{"out-octets-64 wins over out-octets", []schema.Observation{o32(100, 10*sec), o64(1<<33, 10*sec)}, []schema.Observation{o32(2100, 20*sec), o64(1<<33+2000, 20*sec)},
			1600, 1<<33 + 2000, 0, 0, 0},
		{"a value beyond 32 bits is taken as the wider counter it is", []schema.Observation{o32(1<<32-1000, 10*sec)}, []schema.Observation{o32(1<<32+1000, 20*sec)},
			1600, 1<<32 + 1000, 0, 0, 0},
		{"and a drop from beyond 32 bits is a reset, not a 32-bit wrap", []schema.Observation{o32(1<<32+1000, 10*sec)}, []schema.Observation{o32(1000, 20*sec)},
			math.NaN(), 1000, 0, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, c, _ := newTest(t, Config{})
			poll(t, n, c, 10*sec, tc.first...)
			s := poll(t, n, c, 20*sec, tc.second...)
			bps, ok := find(s, "GigabitEthernet1", "interface.out.bps")
			if math.IsNaN(tc.wantBPS) == ok || ok && bps != tc.wantBPS {
				t.Fatalf("out.bps = %v (present %v), want %v", bps, ok, tc.wantBPS)
			}
			out, ok := find(s, "GigabitEthernet1", "interface.out.octets")
			if math.IsNaN(tc.wantOut) == ok || ok && out != tc.wantOut {
				t.Fatalf("out.octets = %v (present %v), want %v", out, ok, tc.wantOut)
			}
			if got := testutil.ToFloat64(n.met.wraps.WithLabelValues("g1")); got != tc.wantWraps {
				t.Fatalf("wraps = %v, want %v", got, tc.wantWraps)
			}
			if got := testutil.ToFloat64(n.met.discontinuities.WithLabelValues("g1")); got != tc.wantDisc {
				t.Fatalf("discontinuities = %v, want %v", got, tc.wantDisc)
			}
			var bad uint64
			for _, u := range n.Unmapped() {
				if u.Reason == ReasonBadValue {
					bad += u.Count
				}
			}
			if bad != tc.wantBad {
				t.Fatalf("bad_value = %d, want %d (%+v)", bad, tc.wantBad, n.Unmapped())
			}
		})
	}
}
