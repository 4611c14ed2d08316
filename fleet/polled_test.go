package fleet

import (
	"fmt"
	"math"
	"math/rand"

	"github.com/netfeat/netfeat/schema"
)

// pollCounters are the IF-MIB (and OpenConfig) interface counters in the
// order a poll returns them, each with the scale of the rate the
// normalizer derives from it (catalog DerivedFrom) and whether that rate
// also gives a utilisation.
var pollCounters = []struct {
	metric, rate string
	scale        float64
	util         string
}{
	{"interface.in.octets", "interface.in.bps", 8, "interface.in.utilization"},
	{"interface.in.unicast_pkts", "interface.in.unicast_pps", 1, ""},
	{"interface.in.multicast_pkts", "interface.in.multicast_pps", 1, ""},
	{"interface.in.broadcast_pkts", "interface.in.broadcast_pps", 1, ""},
	{"interface.in.discards", "interface.in.discards_ps", 1, ""},
	{"interface.in.errors", "interface.in.errors_ps", 1, ""},
	{"interface.out.octets", "interface.out.bps", 8, "interface.out.utilization"},
	{"interface.out.unicast_pkts", "interface.out.unicast_pps", 1, ""},
	{"interface.out.multicast_pkts", "interface.out.multicast_pps", 1, ""},
	{"interface.out.broadcast_pkts", "interface.out.broadcast_pps", 1, ""},
	{"interface.out.discards", "interface.out.discards_ps", 1, ""},
	{"interface.out.errors", "interface.out.errors_ps", 1, ""},
}

// polledIface is the state of one simulated interface.
type polledIface struct {
	name     string
	speed    float64   // bits/s
	up       bool      // oper_status up; a down interface's counters stand still
	perSec   []float64 // mean increase per second of each pollCounters entry
	counters []uint64
}

// polledSite simulates the interface polls of a site's collectors: devices
// × interfaces polled every interval, with the mix of the IF-MIB walk of
// a real IOS-XR router (testdata/golden/snmp_iosxr.snmprec.jsonl): about
// 20% of interfaces idle, error and out-discard counters mostly zero,
// multicast and broadcast slow, octet counters near 2^47.
type polledSite struct {
	r        *rand.Rand
	devices  int
	ifaces   [][]polledIface
	interval int64
	round    int
	lastTS   []int64
}

func newPolledSite(seed int64, devices, ifaces int) *polledSite {
	r := rand.New(rand.NewSource(seed))
	s := &polledSite{r: r, devices: devices, interval: 10e9, lastTS: make([]int64, devices)}
	speeds := []float64{1e9, 10e9, 100e9}
	for d := 0; d < devices; d++ {
		var list []polledIface
		for i := 0; i < ifaces; i++ {
			p := polledIface{
				name:  fmt.Sprintf("HundredGigE0/%d/0/%d", i/16, i%16),
				speed: speeds[r.Intn(len(speeds))], up: r.Float64() >= 0.2,
				perSec: make([]float64, len(pollCounters)), counters: make([]uint64, len(pollCounters)),
			}
			if i%8 == 7 {
				p.name = fmt.Sprintf("Bundle-Ether%d", i/8)
			}
			for dir := 0; dir < 2; dir++ {
				o := dir * 6
				// A lifetime of traffic: octets near 2^47 on a busy port.
				life := math.Exp(r.Float64()*math.Log(1<<50/1<<30)) * (1 << 30)
				pkt := 300 + r.Float64()*1100
				p.counters[o] = uint64(life)
				p.counters[o+1] = uint64(life / pkt)
				if r.Float64() < 0.6 {
					p.counters[o+2] = uint64(life / pkt / 1e4)
				}
				if r.Float64() < 0.5 {
					p.counters[o+3] = uint64(life / pkt / 1e5)
				}
				if dir == 0 && r.Float64() < 0.3 {
					p.counters[o+4] = uint64(r.Intn(1e6))
				}
				if r.Float64() < 0.15 {
					p.counters[o+5] = uint64(r.Intn(1e4))
				}
				if !p.up {
					continue
				}
				util := math.Exp(r.Float64()*math.Log(0.6/0.001)) * 0.001
				p.perSec[o] = util * p.speed / 8
				p.perSec[o+1] = p.perSec[o] / pkt
				if p.counters[o+2] > 0 {
					p.perSec[o+2] = 0.1 + r.Float64()*50
				}
				if p.counters[o+3] > 0 {
					p.perSec[o+3] = 0.05 + r.Float64()*5
				}
				if p.counters[o+4] > 0 {
					p.perSec[o+4] = r.Float64() * 0.5
				}
				if p.counters[o+5] > 0 {
					p.perSec[o+5] = r.Float64() * 0.01
				}
			}
			list = append(list, p)
		}
		s.ifaces = append(s.ifaces, list)
		s.lastTS[d] = t0.UnixNano() + int64(d)*37e6 - s.interval
	}
	return s
}

// poll appends the samples of one poll round: per device, one poll time
// (ts, with the device's phase and jitter) and its receive time a few
// milliseconds later (ingest_ts), and per interface the states, the speed,
// every counter and the rates the normalizer derives from it, in the
// order the normalizer emits them.
func (s *polledSite) poll(out []schema.Sample) []schema.Sample {
	r := s.r
	for d := 0; d < s.devices; d++ {
		dev := fmt.Sprintf("pe%02d.paris", d)
		ts := t0.UnixNano() + int64(s.round)*s.interval + int64(d)*37e6 + r.Int63n(20e6)
		recv := ts + 1e6 + r.Int63n(30e6)
		dt := ts - s.lastTS[d]
		s.lastTS[d] = ts
		add := func(comp, metric string, v float64) {
			out = append(out, schema.Sample{TS: ts, IngestTS: recv, Entity: schema.Entity{Device: dev, Component: comp},
				Metric: metric, Value: v, Source: "cisco-iosxr/gnmi"})
		}
		for i := range s.ifaces[d] {
			p := &s.ifaces[d][i]
			st := 1.0
			if !p.up {
				st = 2
			}
			add(p.name, "interface.admin_status", 1)
			add(p.name, "interface.oper_status", st)
			add(p.name, "interface.speed", p.speed)
			for c, pc := range pollCounters {
				mean := p.perSec[c] * float64(dt) / 1e9
				var delta uint64
				switch {
				case mean == 0:
				case mean < 20: // rare events: Poisson
					for x := r.ExpFloat64(); x < mean; x += r.ExpFloat64() {
						delta++
					}
				default:
					delta = uint64(max(0, mean*(1+0.2*r.NormFloat64())))
				}
				p.counters[c] += delta
				add(p.name, pc.metric, float64(p.counters[c]))
				v := float64(delta) / (float64(dt) / 1e9) * pc.scale
				add(p.name, pc.rate, v)
				if pc.util != "" {
					add(p.name, pc.util, v/p.speed)
				}
			}
		}
	}
	s.round++
	return out
}

// polledSamples returns n samples of consecutive poll rounds of a site of
// 16 devices × 24 interfaces (29 samples per interface and poll: 11136 per
// round).
func polledSamples(n int) []schema.Sample { return polledBatch(16, 24, n) }

// polledBatch returns n samples of consecutive poll rounds of a site of
// devices × ifaces, starting at the first round (with rates: the site was
// polled before).
func polledBatch(devices, ifaces, n int) []schema.Sample {
	s := newPolledSite(1, devices, ifaces)
	out := make([]schema.Sample, 0, n+devices*ifaces*29)
	for len(out) < n {
		out = s.poll(out)
	}
	return out[:n]
}
