package fleet

import (
	"fmt"
	"testing"

	"github.com/netfeat/netfeat/schema"
)

// TestSamplesCompact guards the wire size of raw samples (format version
// 2): polled interface counters and the rates derived from them, in
// messages of 8192 and 1000 samples, take at most 4 and 6 bytes a sample
// (3.70 and 5.80 with zstd). Most of it is the rates' float values, which
// no lossless transform shrinks; at 1000 samples a third is the stream's
// fixed framing (schema and record batch metadata, about 1.2 KB).
func TestSamplesCompact(t *testing.T) {
	for _, tc := range []struct {
		n   int
		max float64
	}{{8192, 4}, {1000, 6}} {
		b := polledSamples(tc.n)
		data, _, err := EncodeSamples(nil, "paris", b, CompressionZstd)
		if err != nil {
			t.Fatal(err)
		}
		per := float64(len(data)) / float64(len(b))
		t.Logf("%d polled samples in %d bytes: %.2f bytes/sample", len(b), len(data), per)
		if per > tc.max {
			t.Errorf("%.2f bytes per polled sample in messages of %d, want at most %.0f", per, tc.n, tc.max)
		}
	}
}

// BenchmarkEncodeSamples: cost on the edge of one forwarded message.
//
//	BenchmarkEncodeSamples/samples=8192-2   707 ns/sample   5.33 bytes/sample   543 allocs/op
func BenchmarkEncodeSamples(b *testing.B) {
	for _, n := range []int{1024, 8192} {
		b.Run(fmt.Sprintf("samples=%d", n), func(b *testing.B) {
			s := polledSamples(n)
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
			data, _, _ := EncodeSamples(nil, "paris", polledSamples(n), CompressionZstd)
			var out []schema.Sample
			b.ReportAllocs()
			for b.Loop() {
				out, _ = DecodeSamples(out[:0], data)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sample")
		})
	}
}
