package fleet

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/netfeat/netfeat/schema"
)

// interner is a test's series table: ids in order of first use, labels as
// the first sample of the series had them.
type interner struct {
	ids  map[[3]string]int32
	defs [][4]string
}

func newInterner() *interner { return &interner{ids: map[[3]string]int32{}} }

// intern returns batch as SeriesSamples.
func (t *interner) intern(batch []schema.Sample) []SeriesSample {
	out := make([]SeriesSample, len(batch))
	for i, s := range batch {
		k := [3]string{s.Device, s.Component, s.Metric}
		id, ok := t.ids[k]
		if !ok {
			id = int32(len(t.defs))
			t.ids[k] = id
			t.defs = append(t.defs, [4]string{s.Device, s.Component, s.Metric, s.Source})
		}
		out[i] = SeriesSample{TS: s.TS, IngestTS: s.IngestTS, Value: s.Value, Series: id}
	}
	return out
}

func (t *interner) labels(id int32) (string, string, string, string, error) {
	if int(id) >= len(t.defs) {
		return "", "", "", "", errors.New("no such series")
	}
	d := t.defs[id]
	return d[0], d[1], d[2], d[3], nil
}

// TestSeriesEncoderMatchesEncodeSamples: a message of interned samples is
// byte for byte the message of the same samples with their labels, over
// several messages of one encoder (whose per-message state must not leak
// into the next).
func TestSeriesEncoderMatchesEncodeSamples(t *testing.T) {
	odd := []schema.Sample{
		{TS: 5, IngestTS: 9, Entity: schema.Entity{Device: "pe1"}, Metric: "device.cpu.util", Value: 0.25, Source: "a/snmp"},
		{TS: 5, IngestTS: 9, Entity: schema.Entity{Device: "pe1", Component: "pe1"}, Metric: "pe1", Value: math.NaN(), Source: "pe1"},
		{TS: -3, IngestTS: 1 << 62, Entity: schema.Entity{Device: "pe2", Component: "eth0"}, Metric: "device.cpu.util", Value: math.Inf(-1), Source: "a/snmp"},
		{TS: 7, IngestTS: 0, Entity: schema.Entity{Device: "pe1"}, Metric: "device.cpu.util", Value: math.Copysign(0, -1), Source: "a/snmp"},
		{TS: 7, IngestTS: 0, Entity: schema.Entity{Device: "pe1"}, Metric: "device.cpu.util", Value: 1e300, Source: "a/snmp"},
	}
	for _, tc := range []struct {
		name     string
		messages [][]schema.Sample
		comp     Compression
	}{
		{"polled", [][]schema.Sample{polledSamples(8192), polledSamples(1000)[500:]}, CompressionZstd},
		{"lz4", [][]schema.Sample{polledSamples(3000)}, CompressionLZ4},
		{"small site", [][]schema.Sample{polledBatch(2, 8, 4096), polledBatch(2, 8, 4096)}, CompressionZstd},
		{"test samples", [][]schema.Sample{testSamples(0, 50), testSamples(1, 50), testSamples(2, 7)}, CompressionZstd},
		{"labels that repeat across columns, odd values", [][]schema.Sample{odd, odd[2:], odd}, CompressionZstd},
		{"one sample", [][]schema.Sample{odd[:1]}, CompressionZstd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newInterner()
			enc := NewSeriesEncoder(in.labels)
			for m, batch := range tc.messages {
				want, wantID, err := EncodeSamples(nil, "paris", batch, tc.comp)
				if err != nil {
					t.Fatal(err)
				}
				got, gotID, err := enc.Encode([]byte("prefix"), "paris", in.intern(batch), tc.comp)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got[len("prefix"):], want) || gotID != wantID || string(got[:6]) != "prefix" {
					t.Fatalf("message %d: %d bytes, id %s; EncodeSamples: %d bytes, id %s", m, len(got)-6, gotID, len(want), wantID)
				}
			}
		})
	}
}

// TestSeriesEncoderUnknownSeries: a series whose labels cannot be had is
// an error naming it, and the encoder still encodes the next message.
func TestSeriesEncoderUnknownSeries(t *testing.T) {
	in := newInterner()
	enc := NewSeriesEncoder(in.labels)
	batch := in.intern(testSamples(0, 10))
	for _, bad := range []int32{-1, 99} {
		b := append(append([]SeriesSample(nil), batch...), SeriesSample{Series: bad})
		if _, _, err := enc.Encode(nil, "paris", b, CompressionZstd); err == nil || !bytes.Contains([]byte(err.Error()), []byte(fmt.Sprint(bad))) {
			t.Errorf("series %d: err %v, want one naming it", bad, err)
		}
	}
	want, _, _ := EncodeSamples(nil, "paris", testSamples(0, 10), CompressionZstd)
	got, _, err := enc.Encode(nil, "paris", batch, CompressionZstd)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("after the errors: %d bytes, %v; want the %d of EncodeSamples", len(got), err, len(want))
	}
}

// TestSeriesEncoderSelection: the forwarding modes select the same
// samples of interned series as of labelled ones.
func TestSeriesEncoderSelection(t *testing.T) {
	batch := polledSamples(4000)
	for _, sf := range []SampleConfig{
		{Mode: SamplesSampled, Every: 3},
		{Mode: SamplesOff, Devices: map[string]SampleMode{batch[0].Device: SamplesAll}},
		{Mode: SamplesAll, Devices: map[string]SampleMode{batch[0].Device: SamplesOff}},
		{Mode: SamplesSampled, Every: 10, Devices: map[string]SampleMode{batch[0].Device: SamplesAll}},
	} {
		e := &Edge{cfg: EdgeConfig{SampleForwarding: sf}}
		in := newInterner()
		enc := NewSeriesEncoder(in.labels)
		ss := in.intern(batch)
		n := 0
		for i := range batch {
			info, err := enc.info(ss[i].Series)
			if err != nil {
				t.Fatal(err)
			}
			got, want := enc.selected(&sf, info, ss[i].TS), e.forward(&batch[i])
			if got != want {
				t.Fatalf("%+v: sample %d (%s %s): selected %v, forward %v", sf, i, batch[i].Entity, batch[i].Metric, got, want)
			}
			if got {
				n++
			}
		}
		if n == 0 || n == len(batch) {
			t.Errorf("%+v: %d of %d selected: the case selects nothing or everything", sf, n, len(batch))
		}
	}
}

// BenchmarkEncodeSeriesSamples: BenchmarkEncodeSamples' messages from
// interned series, as an edge forwards its store's samples.
func BenchmarkEncodeSeriesSamples(b *testing.B) {
	for _, n := range []int{1024, 8192} {
		b.Run(fmt.Sprintf("samples=%d", n), func(b *testing.B) {
			in := newInterner()
			s := in.intern(polledSamples(n))
			enc := NewSeriesEncoder(in.labels)
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				buf, _, _ = enc.Encode(buf[:0], "paris", s, CompressionZstd)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sample")
			b.ReportMetric(float64(len(buf))/float64(n), "bytes/sample")
		})
	}
}
