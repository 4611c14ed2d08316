package normalize

import (
	"context"
	"fmt"
	"testing"

	"github.com/netfeat/netfeat/schema"
)

// discard is a SampleAppender that counts and drops.
type discard struct{ n int }

func (d *discard) Append(_ context.Context, b []schema.Sample) error { d.n += len(b); return nil }

// snmpPoll builds one device's poll: system scalars, then per interface
// ifName, status, speed and eight HC counters (mappings resolved after the
// first poll).
func snmpPoll(device string, ifaces int) []schema.Observation {
	var b []schema.Observation
	add := func(oid string, k schema.ValueKind, u uint64, s string) {
		b = append(b, schema.Observation{Device: device, Protocol: schema.ProtocolSNMP, Path: oid, Kind: k, Uint: u, Str: s})
	}
	add(oidSysUpTime, schema.KindTimeTicks, 100, "")
	for i := 1; i <= ifaces; i++ {
		add(fmt.Sprintf("1.3.6.1.2.1.31.1.1.1.1.%d", i), schema.KindString, 0, fmt.Sprintf("ge-0/0/%d", i))
		add(fmt.Sprintf("1.3.6.1.2.1.2.2.1.8.%d", i), schema.KindInteger, 0, "")
		b[len(b)-1].Int = 1
		add(fmt.Sprintf("1.3.6.1.2.1.31.1.1.1.15.%d", i), schema.KindGauge, 10000, "")
		for _, col := range []int{6, 7, 8, 9, 10, 11, 12, 13} {
			add(fmt.Sprintf("1.3.6.1.2.1.31.1.1.1.%d.%d", col, i), schema.KindCounter64, 1000, "")
		}
	}
	return b
}

func gnmiBatch(device string, ifaces int, lastClear bool) []schema.Observation {
	var b []schema.Observation
	for i := 0; i < ifaces; i++ {
		for _, leaf := range []string{"in-octets", "out-octets", "in-unicast-pkts", "out-unicast-pkts", "in-errors", "out-errors", "in-discards", "out-discards"} {
			b = append(b, schema.Observation{Device: device, Protocol: schema.ProtocolGNMI, Origin: "openconfig-interfaces",
				Path: fmt.Sprintf("interfaces/interface[name=HundredGigE0/0/0/%d]/state/counters/%s", i, leaf), Kind: schema.KindCounter64, Uint: 1000})
		}
		if lastClear {
			// The discontinuity leaf, unchanged from poll to poll
			// (KindGauge so that the benchmark's step leaves it alone).
			b = append(b, schema.Observation{Device: device, Protocol: schema.ProtocolGNMI, Origin: "openconfig-interfaces",
				Path: fmt.Sprintf("interfaces/interface[name=HundredGigE0/0/0/%d]/state/counters/last-clear", i), Kind: schema.KindGauge, Uint: 1_700_000_000_000_000_000})
		}
	}
	return b
}

// BenchmarkObserve measures steady-state normalization of resolved
// mappings: every poll advances counters and time, so each counter also
// yields its rates (and utilisation where the speed is known).
func BenchmarkObserve(b *testing.B) {
	for _, bc := range []struct {
		name  string
		batch []schema.Observation
	}{
		{"snmp/ifaces=50", snmpPoll("r1", 50)},
		{"gnmi/ifaces=50", gnmiBatch("g1", 50, false)},
		{"gnmi+last-clear/ifaces=50", gnmiBatch("g1", 50, true)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			out := &discard{}
			n, err := New(Config{}, out, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			batch := bc.batch
			ts := int64(1e18)
			step := func() {
				ts += 10 * sec
				for i := range batch {
					batch[i].RecvTime = ts
					batch[i].DeviceTime = 0
					if batch[i].Kind == schema.KindCounter64 {
						batch[i].Uint += 12345
					}
					if batch[i].Kind == schema.KindTimeTicks {
						batch[i].Uint += 1000
					}
				}
			}
			for range 2 { // resolve and baseline
				step()
				if err := n.Observe(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			out.n = 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				step()
				if err := n.Observe(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			obs := float64(b.N) * float64(len(batch))
			b.ReportMetric(obs/b.Elapsed().Seconds(), "obs/s")
			b.ReportMetric(float64(out.n)/float64(b.N), "samples/op")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/obs, "ns/obs")
		})
	}
}
