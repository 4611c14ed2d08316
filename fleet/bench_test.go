package fleet

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/netfeat/netfeat/schema"
)

// pollSamples returns n samples as a site's collectors produce them: 20
// devices × 16 interfaces × 6 metrics per 10 s poll, with byte counters
// that grow, error counters at zero, a constant status and a noisy rate.
func pollSamples(n int) []schema.Sample {
	r := rand.New(rand.NewSource(1))
	metrics := []string{"interface.in.octets", "interface.out.octets", "interface.in.errors",
		"interface.out.discards", "interface.oper_status", "interface.in.bps"}
	out := make([]schema.Sample, 0, n)
	for poll := 0; len(out) < n; poll++ {
		ts := t0.UnixNano() + int64(poll)*10e9
		for d := 0; d < 20 && len(out) < n; d++ {
			for c := 0; c < 16 && len(out) < n; c++ {
				for m, met := range metrics {
					v := 0.0
					switch m {
					case 0, 1:
						v = float64(1e12 + (d*16+c)*1e9 + poll*125000000 + r.Intn(1000000))
					case 4:
						v = 1
					case 5:
						v = float64(r.Intn(1e9))
					}
					out = append(out, schema.Sample{
						TS: ts + int64(r.Intn(1000)), IngestTS: ts + 5e6,
						Entity: schema.Entity{Device: fmt.Sprintf("pe%02d.paris", d), Component: fmt.Sprintf("HundredGigE0/0/0/%d", c)},
						Metric: met, Value: v, Source: "cisco-iosxr/gnmi",
					})
				}
			}
		}
	}
	return out[:n]
}

// TestSamplesCompact guards the wire size of raw samples: dictionary-encoded
// labels and zstd make a polled sample about 5.3 bytes (plain string
// columns cost 4 bytes per label in offsets alone: about 21).
func TestSamplesCompact(t *testing.T) {
	b := pollSamples(8192)
	data, _, err := EncodeSamples(nil, "paris", b, CompressionZstd)
	if err != nil {
		t.Fatal(err)
	}
	per := float64(len(data)) / float64(len(b))
	t.Logf("%d polled samples in %d bytes: %.2f bytes/sample", len(b), len(data), per)
	if per > 7 {
		t.Fatalf("%.2f bytes per polled sample, want at most 7", per)
	}
}

// BenchmarkEncodeSamples: cost on the edge of one forwarded message.
//
//	BenchmarkEncodeSamples/samples=8192-2   707 ns/sample   5.33 bytes/sample   543 allocs/op
func BenchmarkEncodeSamples(b *testing.B) {
	for _, n := range []int{1024, 8192} {
		b.Run(fmt.Sprintf("samples=%d", n), func(b *testing.B) {
			s := pollSamples(n)
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				buf, _, _ = EncodeSamples(buf[:0], "paris", s, CompressionZstd)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sample")
			b.ReportMetric(float64(len(buf))/float64(n), "bytes/sample")
		})
	}
}

// BenchmarkDecodeSamples: cost on the hub of one forwarded message.
//
//	BenchmarkDecodeSamples/samples=8192-2   194 ns/sample
func BenchmarkDecodeSamples(b *testing.B) {
	for _, n := range []int{1024, 8192} {
		b.Run(fmt.Sprintf("samples=%d", n), func(b *testing.B) {
			data, _, _ := EncodeSamples(nil, "paris", pollSamples(n), CompressionZstd)
			var out []schema.Sample
			b.ReportAllocs()
			for b.Loop() {
				out, _ = DecodeSamples(out[:0], data)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sample")
		})
	}
}
