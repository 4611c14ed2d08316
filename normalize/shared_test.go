package normalize

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/netfeat/netfeat/schema"
)

// ifPoll is one SNMP poll of device: sysUpTime, then ifName and
// ifHCInOctets of each ifIndex, the counter at base+k*step for poll k.
func ifPoll(device string, ifIndexes []int, k int, step uint64) []schema.Observation {
	b := []schema.Observation{{Device: device, Protocol: schema.ProtocolSNMP, Path: oidSysUpTime, Kind: schema.KindTimeTicks, Uint: uint64(100 + 1000*k)}}
	for _, i := range ifIndexes {
		b = append(b,
			schema.Observation{Device: device, Protocol: schema.ProtocolSNMP, Path: fmt.Sprintf("1.3.6.1.2.1.31.1.1.1.1.%d", i), Kind: schema.KindString, Str: fmt.Sprintf("if%d", i)},
			schema.Observation{Device: device, Protocol: schema.ProtocolSNMP, Path: fmt.Sprintf("1.3.6.1.2.1.31.1.1.1.6.%d", i), Kind: schema.KindCounter64, Uint: 1e6 + uint64(k)*step},
			// An OID no profile maps: counted per device.
			schema.Observation{Device: device, Protocol: schema.ProtocolSNMP, Path: fmt.Sprintf("1.3.6.1.4.1.99999.1.%d", i), Kind: schema.KindGauge, Uint: 1})
	}
	for j := range b {
		b[j].RecvTime = int64(k+1) * 10 * sec
	}
	return b
}

// TestSharedOIDEntries: the devices of one profile resolve each OID once,
// in the profile's oidCache, and keep only their bindings; each device's
// rates, names and unmapped counts stay its own, across a reset of the
// shared cache too.
func TestSharedOIDEntries(t *testing.T) {
	tests := []struct {
		name       string
		ifIndexes  map[string][]int // per device
		wantShared int              // entries in the profile's oidCache
		resetAfter int              // empty the shared cache after this poll (0: never)
		concurrent bool
	}{
		{"same OIDs", map[string][]int{"r1": {1, 2}, "r2": {1, 2}, "r3": {1, 2}}, 1 + 2*3, 0, false},
		{"different ifIndexes", map[string][]int{"r1": {1, 2}, "r2": {3, 4, 5}}, 1 + 5*3, 0, false},
		{"shared cache reset between polls", map[string][]int{"r1": {1, 2}, "r2": {1, 2}}, 1 + 2*3, 2, false},
		{"devices observed concurrently", map[string][]int{"r1": {1, 2}, "r2": {1, 2}, "r3": {2, 3}, "r4": {4}}, 1 + 4*3, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, c, _ := newTest(t, Config{})
			devs := make([]string, 0, len(tc.ifIndexes))
			step := map[string]uint64{}
			for d := range tc.ifIndexes {
				devs = append(devs, d)
				step[d] = uint64(1000 * (len(devs)))
			}
			const polls = 4
			for k := range polls {
				c.samples = nil
				if tc.concurrent {
					var wg sync.WaitGroup
					for _, d := range devs {
						wg.Go(func() {
							if err := n.Observe(context.Background(), ifPoll(d, tc.ifIndexes[d], k, step[d])); err != nil {
								t.Errorf("Observe %s: %v", d, err)
							}
						})
					}
					wg.Wait()
				} else {
					for _, d := range devs {
						if err := n.Observe(context.Background(), ifPoll(d, tc.ifIndexes[d], k, step[d])); err != nil {
							t.Fatalf("Observe %s: %v", d, err)
						}
					}
				}
				if k > 0 {
					for _, d := range devs {
						for _, i := range tc.ifIndexes[d] {
							want := float64(step[d]) * 8 / 10
							got, ok := findDev(c.samples, d, fmt.Sprintf("if%d", i), "interface.in.bps")
							if !ok || got != want {
								t.Fatalf("poll %d: %s if%d in.bps = %v (found %v), want %v", k, d, i, got, ok, want)
							}
						}
					}
				}
				if tc.resetAfter != 0 && k+1 == tc.resetAfter {
					oc := n.device(devs[0]).prof.oids
					oc.mu.Lock()
					oc.reset()
					oc.mu.Unlock()
				}
			}
			oc := n.device(devs[0]).prof.oids
			for _, d := range devs {
				dev := n.device(d)
				if dev.prof.oids != oc {
					t.Fatalf("%s: profile %s, not the others' %s", d, dev.prof.name, n.device(devs[0]).prof.name)
				}
				if len(dev.paths)+len(dev.cache) != 0 {
					t.Fatalf("%s holds %d private entries, want 0", d, len(dev.paths)+len(dev.cache))
				}
				// One binding per counter: names and unmapped OIDs take none.
				if got, want := len(dev.binds), len(tc.ifIndexes[d])+1; got != want {
					t.Fatalf("%s: %d bindings, want %d (its own counters and sysUpTime only)", d, got, want)
				}
				if got := len(dev.local); got != len(dev.binds) {
					t.Fatalf("%s: %d local entries for %d bindings", d, got, len(dev.binds))
				}
			}
			if len(oc.entries) != tc.wantShared {
				t.Fatalf("shared entries %d, want %d", len(oc.entries), tc.wantShared)
			}
			unmapped := map[string]uint64{}
			for _, u := range n.Unmapped() {
				if u.Reason == ReasonNoMapping {
					unmapped[u.Device] += u.Count
				}
			}
			for _, d := range devs {
				if want := uint64(polls * len(tc.ifIndexes[d])); unmapped[d] != want {
					t.Fatalf("%s: %d unmapped counted, want %d", d, unmapped[d], want)
				}
			}
		})
	}
}

func findDev(samples []schema.Sample, device, comp, metric string) (float64, bool) {
	for _, s := range samples {
		if s.Device == device && s.Component == comp && s.Metric == metric {
			return s.Value, true
		}
	}
	return 0, false
}

// TestSharedCacheShare: a device answering endless OIDs adds at most its
// share to its profile's cache and resolves the rest without keeping
// them, so the cache its neighbours use is neither filled nor emptied,
// and every value of it is still counted.
func TestSharedCacheShare(t *testing.T) {
	n, c, _ := newTest(t, Config{})
	quiet := func(k int) {
		t.Helper()
		if err := n.Observe(context.Background(), ifPoll("quiet", []int{1, 2}, k, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	quiet(0)
	oc := n.device("quiet").prof.oids
	gen := oc.gen.Load()

	const batch = 10000
	total := maxCacheEntries + 3*batch
	for start := 0; start < total; start += batch {
		b := make([]schema.Observation, 0, batch+1)
		b = append(b, schema.Observation{Device: "noisy", Protocol: schema.ProtocolSNMP, Path: oidSysUpTime, Kind: schema.KindTimeTicks, Uint: 100, RecvTime: sec})
		for i := start; i < start+batch; i++ {
			b = append(b, schema.Observation{Device: "noisy", Protocol: schema.ProtocolSNMP, Path: fmt.Sprintf("1.3.6.1.4.1.99999.2.%d", i),
				Kind: schema.KindGauge, Uint: 1, RecvTime: sec})
		}
		if err := n.Observe(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if n.device("noisy").prof.oids != oc {
		t.Fatalf("noisy is not on quiet's profile")
	}
	if got := oc.gen.Load(); got != gen {
		t.Fatalf("the shared cache was emptied %d times by one device", got-gen)
	}
	if got, max := len(oc.entries), maxCacheEntries+1+2*3; got > max {
		t.Fatalf("shared entries %d, want at most noisy's share and quiet's (%d)", got, max)
	}
	var counted uint64
	for _, u := range n.Unmapped() {
		if u.Device == "noisy" && u.Reason == ReasonNoMapping {
			counted += u.Count
		}
	}
	if counted != uint64(total) {
		t.Fatalf("noisy's unmapped values counted %d, want %d", counted, total)
	}
	c.samples = nil
	quiet(1)
	if v, ok := findDev(c.samples, "quiet", "if1", "interface.in.bps"); !ok || v != 800 {
		t.Fatalf("quiet's rate after the flood: %v (found %v), want 800", v, ok)
	}
}
