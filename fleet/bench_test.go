package fleet

import (
	"fmt"
	"testing"

	"github.com/netfeat/netfeat/schema"
)

// TestSamplesCompact guards the wire size of raw samples (format version
// 2): polled interface counters and the rates derived from them take at
// most 4 bytes a sample in messages of 8192 (3.53 with zstd), 6 in
// messages of 1000 (5.78, over a quarter of it the stream's framing) and 3 when
// a message holds many polls of each series (2.66, a site of 2 devices ×
// 8 interfaces). Most of it is the rates' float values, which no lossless
// transform of one message shrinks.
func TestSamplesCompact(t *testing.T) {
	for _, tc := range []struct {
		devices, ifaces, n int
		max                float64
	}{{16, 24, 8192, 4}, {16, 24, 1000, 6}, {2, 8, 8192, 3}} {
		b := polledBatch(tc.devices, tc.ifaces, tc.n)
		data, _, err := EncodeSamples(nil, "paris", b, CompressionZstd)
		if err != nil {
			t.Fatal(err)
		}
		per := float64(len(data)) / float64(len(b))
		t.Logf("%d × %d interfaces: %d polled samples in %d bytes: %.2f bytes/sample", tc.devices, tc.ifaces, len(b), len(data), per)
		if per > tc.max {
			t.Errorf("%.2f bytes per polled sample in messages of %d, want at most %.0f", per, tc.n, tc.max)
		}
	}
}

// BenchmarkEncodeSamples: cost on the edge of one forwarded message of
// polled counters (3 runs on a shared 2-core machine, docs/fleet.md):
//
//	BenchmarkEncodeSamples/samples=1024-2   117-121 ns/sample   4.52 bytes/sample
//	BenchmarkEncodeSamples/samples=8192-2    97-103 ns/sample   3.51 bytes/sample
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

// BenchmarkDecodeSamples: cost on the hub of one forwarded message (3
// runs):
//
//	BenchmarkDecodeSamples/samples=1024-2   81-86 ns/sample
//	BenchmarkDecodeSamples/samples=8192-2   71-79 ns/sample
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
