package normalize

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestModelDerivedPayloads checks the NX-OS and IOS-XE interface mappings
// against payloads written from the published models (no real capture of
// these counters under a compatible license was found; see
// testdata/README.md, model-derived/). Every leaf in them must map or be a
// deliberate ignore, and the values below were computed by hand from the
// payloads: two samples 10 s apart.
func TestModelDerivedPayloads(t *testing.T) {
	const t1 = 1700000010000000000
	type want struct {
		comp, metric string
		value        float64
	}
	tests := []struct {
		file, device, profile string
		want                  []want
		wantCount             map[string]int // metric → samples at t1 for the first want's component
		wraps                 float64
	}{
		{
			"iosxe-17.12_interfaces-oper.jsonl", "c8k-model", "cisco-iosxe",
			[]want{
				{"GigabitEthernet1", "interface.in.octets", 1_010_000_000},
				{"GigabitEthernet1", "interface.in.bps", 8_000_000},
				{"GigabitEthernet1", "interface.in.utilization", 0.008},
				// out-octets-64, not the uint32 out-octets (7,782,704 here).
				{"GigabitEthernet1", "interface.out.octets", 3<<32 + 4_294_000_000 + 8_750_000},
				{"GigabitEthernet1", "interface.out.bps", 7_000_000},
				{"GigabitEthernet1", "interface.in.errors", 5},
				{"GigabitEthernet1", "interface.in.discards", 8},
				{"GigabitEthernet1", "interface.in.unicast_pkts", 5_009_000},
				{"GigabitEthernet1", "interface.out.multicast_pkts", 1_010},
				{"GigabitEthernet1", "interface.speed", 1e9},
				{"GigabitEthernet1", "interface.oper_status", 1},
				{"GigabitEthernet1", "interface.admin_status", 1},
				{"GigabitEthernet2", "interface.oper_status", 2},
				{"GigabitEthernet2", "interface.admin_status", 2},
			},
			map[string]int{"interface.out.octets": 1, "interface.in.errors": 1, "interface.in.discards": 1},
			0,
		},
		{
			"iosxe-16.9_interfaces-oper.jsonl", "csr-model", "cisco-iosxe",
			[]want{
				// Only the uint32 out-octets: it wrapped between the samples.
				{"GigabitEthernet1", "interface.out.octets", (4_294_000_000 + 8_750_000) % (1 << 32)},
				{"GigabitEthernet1", "interface.out.bps", 7_000_000},
				{"GigabitEthernet1", "interface.out.utilization", 0.007},
				{"GigabitEthernet1", "interface.in.errors", 5},
				{"GigabitEthernet1", "interface.in.discards", 7},
			},
			map[string]int{"interface.out.octets": 1, "interface.out.bps": 1},
			1,
		},
		{
			"nxos_dme_rmon.json", "n9k-model", "cisco-nxos",
			[]want{
				{"eth1/1", "interface.in.octets", 2_025_000_000},
				{"eth1/1", "interface.in.bps", 20_000_000},
				{"eth1/1", "interface.out.bps", 10_000_000},
				{"eth1/1", "interface.in.unicast_pkts", 9_020_000},
				{"eth1/1", "interface.out.broadcast_pkts", 303},
				{"eth1/1", "interface.in.errors", 14},
				{"eth1/1", "interface.out.discards", 2},
				{"eth1/1", "interface.admin_status", 1},
			},
			map[string]int{"interface.in.octets": 1, "interface.out.broadcast_pkts": 1},
			0,
		},
		{
			"nxos_device-yang_rmon.jsonl", "n9k-yang-model", "cisco-nxos",
			[]want{
				{"eth1/1", "interface.in.octets", 2_025_000_000},
				{"eth1/1", "interface.in.bps", 20_000_000},
				{"eth1/1", "interface.out.bps", 10_000_000},
				{"eth1/1", "interface.in.errors", 14},
				{"eth1/1", "interface.out.discards", 2},
				{"eth1/1", "interface.admin_status", 1},
			},
			map[string]int{"interface.in.octets": 1, "interface.out.broadcast_pkts": 1},
			0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			samples, n := normalizeRecording(t, "../testdata/gnmi/model-derived/"+tc.file)
			if p, _ := n.DeviceProfile(tc.device); p != tc.profile {
				t.Fatalf("profile %q, want %s", p, tc.profile)
			}
			if u := n.Unmapped(); len(u) != 0 {
				t.Fatalf("leaves of the model left unmapped: %+v", u)
			}
			for _, w := range tc.want {
				found := false
				for _, s := range samples {
					if s.TS == t1 && s.Device == tc.device && s.Component == w.comp && s.Metric == w.metric {
						found = true
						if s.Value != w.value {
							t.Errorf("%s %s = %v, want %v", w.comp, w.metric, s.Value, w.value)
						}
					}
				}
				if !found {
					t.Errorf("no %s %s at t1", w.comp, w.metric)
				}
			}
			for metric, count := range tc.wantCount {
				got := 0
				for _, s := range samples {
					if s.TS == t1 && s.Component == tc.want[0].comp && s.Metric == metric {
						got++
					}
				}
				if got != count {
					t.Errorf("%d %s samples at t1, want %d", got, metric, count)
				}
			}
			if got := testutil.ToFloat64(n.met.wraps.WithLabelValues(tc.device)); got != tc.wraps {
				t.Errorf("wraps = %v, want %v", got, tc.wraps)
			}
			if got := testutil.ToFloat64(n.met.discontinuities.WithLabelValues(tc.device)); got != 0 {
				t.Errorf("discontinuities = %v, want 0", got)
			}
		})
	}
}
