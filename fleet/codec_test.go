package fleet

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/netfeat/netfeat/schema"
)

func TestWindowRoundTrip(t *testing.T) {
	row := testWindow(3)
	data, err := EncodeWindow(row)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeWindow(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.View != row.View || got.Entity != row.Entity || got.WindowStart != row.WindowStart || got.WindowEnd != row.WindowEnd ||
		got.CloseReason != row.CloseReason || len(got.Values) != 2 || got.Values[0] != 3 || !math.IsNaN(got.Values[1]) ||
		got.Names[1] != "b__max_1m" {
		t.Fatalf("round trip: %+v, want %+v", got, row)
	}
	for _, bad := range []string{
		`{`, `{"schema_version":2,"view":"v","device":"d"}`, `{"schema_version":1,"device":"d"}`,
		`{"schema_version":1,"view":"v","device":"d","names":["a"],"values":[]}`,
		`{"schema_version":1,"view":"v","device":"d","window_start":2,"window_end":1}`,
	} {
		if _, err := DecodeWindow([]byte(bad)); err == nil {
			t.Errorf("DecodeWindow(%s) accepted", bad)
		}
	}
}

func TestDecisionRoundTrip(t *testing.T) {
	d := testDecision(4)
	d.Score = math.NaN()
	data, err := EncodeDecision(d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeDecision(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != d.ID || got.Score != 0 || got.Features["a"] != 1 || len(got.Features) != 1 || !got.Window.End.Equal(d.Window.End) {
		t.Fatalf("round trip: %+v", got)
	}
	if _, err := DecodeDecision([]byte(`{"schema_version":2,"id":"x","entity":{"device":"d"}}`)); err == nil {
		t.Error("decision of schema version 2 accepted")
	}
}

func TestActionFromDecision(t *testing.T) {
	d := testDecision(1)
	if _, ok := ActionFromDecision(d); ok {
		t.Fatal("a decision without transition made an action")
	}
	d.Transition, d.State, d.Action = true, schema.StateFiring, "reroute"
	a, ok := ActionFromDecision(d)
	if !ok || a.State != schema.StateFiring || a.Action != "reroute" || a.Fingerprint != d.Fingerprint {
		t.Fatalf("action %+v", a)
	}
	data, err := EncodeAction(&a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAction(data)
	if err != nil || got.State != a.State || !got.Since.Equal(a.Since) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

// sameSample reports whether a and b are the same sample bit for bit (NaN
// payloads and the sign of zero included).
func sameSample(a, b *schema.Sample) bool {
	return a.TS == b.TS && a.IngestTS == b.IngestTS && a.Entity == b.Entity && a.Metric == b.Metric &&
		a.Source == b.Source && math.Float64bits(a.Value) == math.Float64bits(b.Value)
}

// edgeSamples returns samples at the limits of every field: NaN payloads,
// ±Inf, -0, counters near 2^64 and 2^63, times at both ends of int64 and
// ingest times before ts, labels empty or shared between columns, in no
// order, with repeated series.
func edgeSamples() []schema.Sample {
	nan2 := math.Float64frombits(0x7ff8_0000_dead_beef)
	vals := []float64{math.NaN(), nan2, math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0,
		float64(math.MaxUint64), math.Nextafter(float64(math.MaxUint64), 0), 1 << 63, -(1 << 63), 1<<53 + 2,
		math.MaxFloat64, math.SmallestNonzeroFloat64, -1.5, 12345678901234, 0.1}
	times := []int64{math.MaxInt64, math.MinInt64, 0, -1, t0.UnixNano(), 1, math.MaxInt64 - 1, t0.UnixNano() - 86400e9}
	labels := []string{"", "pe1", "eth0", "interface.in.octets", "ünïcode/gnmi", "pe1"}
	var out []schema.Sample
	for i, v := range vals {
		for j := 0; j < 3; j++ {
			k := i*3 + j
			out = append(out, schema.Sample{
				TS: times[k%len(times)], IngestTS: times[(k*5+3)%len(times)],
				Entity: schema.Entity{Device: labels[k%len(labels)], Component: labels[(k/2)%len(labels)]},
				Metric: labels[(k/3)%len(labels)], Value: v, Source: labels[(k+4)%len(labels)],
			})
		}
	}
	return out
}

func TestSamplesRoundTrip(t *testing.T) {
	edge := edgeSamples()
	rev := slices.Clone(edge)
	slices.Reverse(rev)
	for _, tc := range []struct {
		name  string
		batch []schema.Sample
	}{
		{"polled 8192", polledSamples(8192)},
		{"polled 1000", polledSamples(1000)},
		{"sequence", testSamples(2, 5000)},
		{"limits", edge},
		{"limits reversed", rev},
		{"one row", edge[:1]},
		{"one NaN", edge[1:2]},
		{"empty", nil},
	} {
		for _, comp := range []Compression{CompressionZstd, CompressionLZ4} {
			data, id, err := EncodeSamples(nil, "paris", tc.batch, comp)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, comp, err)
			}
			got, err := DecodeSamples(nil, data)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, comp, err)
			}
			if len(got) != len(tc.batch) {
				t.Fatalf("%s %s: %d samples back, want %d", tc.name, comp, len(got), len(tc.batch))
			}
			for i := range got {
				if !sameSample(&got[i], &tc.batch[i]) {
					t.Fatalf("%s %s: sample %d: %+v, want %+v", tc.name, comp, i, got[i], tc.batch[i])
				}
			}
			// Decoding appends.
			pre := []schema.Sample{{Metric: "kept"}}
			if got, err := DecodeSamples(pre, data); err != nil || len(got) != len(tc.batch)+1 || got[0].Metric != "kept" {
				t.Fatalf("%s %s: append to a slice: %d samples, %v", tc.name, comp, len(got), err)
			}
			if len(tc.batch) < 2 {
				continue
			}
			_, id2, _ := EncodeSamples(nil, "paris", tc.batch, comp)
			_, id3, _ := EncodeSamples(nil, "paris", tc.batch[1:], comp)
			_, id4, _ := EncodeSamples(nil, "lyon", tc.batch, comp)
			if id != id2 || id == id3 || id == id4 || !strings.HasPrefix(id, "paris/samples/") {
				t.Fatalf("%s: ids: %s %s %s %s", tc.name, id, id2, id3, id4)
			}
			t.Logf("%s %s: %d samples in %d bytes (%.2f bytes/sample)", tc.name, comp, len(tc.batch), len(data), float64(len(data))/float64(len(tc.batch)))
		}
	}
	for _, bad := range [][]byte{nil, []byte("garbage"), []byte("ARROW1\x00\x00\xff\xff\xff\xff")} {
		if _, err := DecodeSamples(nil, bad); err == nil {
			t.Errorf("DecodeSamples(%q) accepted", bad)
		}
	}
}

// TestSampleIDStable: a message id hashes the samples, not the encoding:
// it is the SHA-256 of each sample's entity, metric, time and value bits,
// as format version 1 computed it, so a retry by an upgraded edge carries
// the id of the first attempt.
func TestSampleIDStable(t *testing.T) {
	batch := edgeSamples()
	data, got, err := EncodeSamples([]byte("prefix"), "paris", batch, CompressionZstd)
	if err != nil {
		t.Fatal(err)
	}
	// The recipe: the SHA-256 of the message (not of what dst held).
	sum := sha256.Sum256(data[len("prefix"):])
	if want := msgID("paris", KindSamples, sum[:]); got != want {
		t.Fatalf("id %s, want %s", got, want)
	}
	// Encoded again, after other batches through the pooled scratch: the
	// same bytes, the same id.
	for range 3 {
		if _, _, err := EncodeSamples(nil, "paris", testSamples(7, 3000), CompressionZstd); err != nil {
			t.Fatal(err)
		}
		again, id, _ := EncodeSamples(nil, "paris", batch, CompressionZstd)
		if id != got || !bytes.Equal(again, data[len("prefix"):]) {
			t.Fatalf("encoded again: id %s, want %s; same bytes %v", id, got, bytes.Equal(again, data[len("prefix"):]))
		}
	}
	for name, change := range map[string]func(b []schema.Sample){
		"value":     func(b []schema.Sample) { b[40].Value = b[40].Value*2 + 1 },
		"time":      func(b []schema.Sample) { b[40].TS++ },
		"ingest":    func(b []schema.Sample) { b[40].IngestTS++ },
		"component": func(b []schema.Sample) { b[40].Component += "x" },
	} {
		b := slices.Clone(batch)
		change(b)
		if _, id, _ := EncodeSamples(nil, "paris", b, CompressionZstd); id == got {
			t.Errorf("a different %s, the same id", name)
		}
	}
}

// TestSamplesVersion: a stream of another format version is refused with
// an error that names the version.
func TestSamplesVersion(t *testing.T) {
	stream := func(s *arrow.Schema) []byte {
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, ipc.WithSchema(s), ipc.WithZstd())
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	if got := SamplesSchema.Metadata().Values(); !slices.Equal(got, []string{"2"}) || SamplesFormatVersion != 2 {
		t.Fatalf("schema metadata %v", SamplesSchema.Metadata())
	}
	v3 := arrow.NewSchema(SamplesSchema.Fields(), func() *arrow.Metadata {
		m := arrow.NewMetadata([]string{SamplesVersionKey}, []string{"3"})
		return &m
	}())
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"version 1", stream(samplesSchemaV1), "format version 1"},
		{"version 3", stream(v3), "another format version than 2"},
		{"no samples", stream(arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int8}}, nil)), "not a samples stream"},
	} {
		_, err := DecodeSamples(nil, tc.data)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrCorrupt saying %q", tc.name, err, tc.want)
		}
	}
}

func TestMessageIDs(t *testing.T) {
	a, b := testWindow(1), testWindow(1)
	b.Values = []float64{42, 43} // content, not identity
	if WindowID("paris", a) != WindowID("paris", b) {
		t.Error("a window's id depends on its values")
	}
	b.WindowEnd += int64(time.Second)
	if WindowID("paris", a) == WindowID("paris", b) || WindowID("paris", a) == WindowID("lyon", a) {
		t.Error("different windows share an id")
	}
	if DecisionID("paris", testDecision(1)) == DecisionID("paris", testDecision(2)) {
		t.Error("different decisions share an id")
	}
	if ActionID("paris", testAction(1)) == ActionID("paris", testAction(2)) {
		t.Error("different transitions share an id")
	}
	for _, id := range []string{WindowID("paris", a), DecisionID("paris", testDecision(1)), ActionID("paris", testAction(1))} {
		if len(id) > 64 || strings.ContainsAny(id, " \r\n") {
			t.Errorf("id %q", id)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultEdgeConfig("paris")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*EdgeConfig){
		"site with dot":   func(c *EdgeConfig) { c.Site = "par.is" },
		"site is the hub": func(c *EdgeConfig) { c.Site = "hub" },
		"no site":         func(c *EdgeConfig) { c.Site = "" },
		"discard":         func(c *EdgeConfig) { c.Samples.Discard = "oldest" },
		"negative":        func(c *EdgeConfig) { c.Windows.MaxBytes = -1 },
		"mode":            func(c *EdgeConfig) { c.SampleForwarding.Mode = "some" },
		"device mode":     func(c *EdgeConfig) { c.SampleForwarding.Devices = map[string]SampleMode{"pe1": "x"} },
		"compression":     func(c *EdgeConfig) { c.SampleForwarding.Compression = "gzip" },
		"warn ratio":      func(c *EdgeConfig) { c.WarnRatio = 1.5 },
	} {
		c := DefaultEdgeConfig("paris")
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := (&HubConfig{}).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (&HubConfig{Replicas: 7}).Validate(); err == nil {
		t.Error("hub replicas 7 accepted")
	}
}

func TestSampleSelection(t *testing.T) {
	e := &Edge{cfg: DefaultEdgeConfig("paris")}
	e.cfg.SampleForwarding = SampleConfig{Mode: SamplesSampled, Every: 10, Devices: map[string]SampleMode{"pe0": SamplesAll, "pe1": SamplesOff}}
	kept := map[string]int{}
	batch := testSamples(0, 40000)
	for i := range batch {
		first := e.forward(&batch[i])
		if first {
			kept[batch[i].Device]++
		}
		if again := e.forward(&batch[i]); again != first {
			t.Fatal("selection is not deterministic")
		}
	}
	if kept["pe0"] != 10000 || kept["pe1"] != 0 {
		t.Errorf("per-device modes: kept %v", kept)
	}
	for _, d := range []string{"pe2", "pe3"} {
		if kept[d] < 800 || kept[d] > 1200 {
			t.Errorf("sampled 1 in 10 of 10000 samples of %s: kept %d", d, kept[d])
		}
	}
}

// TestDecodeSamplesDamaged: a samples message damaged anywhere decodes to
// an error or to rows, never to a panic or an allocation beyond the
// message's plausible size.
func TestDecodeSamplesDamaged(t *testing.T) {
	data, _, err := EncodeSamples(nil, "paris", testSamples(0, 100), CompressionZstd)
	if err != nil {
		t.Fatal(err)
	}
	// Every byte of the schema and the first record's metadata, then a
	// spread over the body (every byte: 2.5 s, 17 s with -race).
	for pos := 0; pos < len(data); pos += max(1, (pos-len(samplesSchemaMessage)-400)/8) {
		for _, v := range []byte{0xff, 0x7f} {
			bad := slices.Clone(data)
			bad[pos] = v
			if _, err := DecodeSamples(nil, bad); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d = %#x: error %v does not wrap ErrCorrupt", pos, v, err)
			}
		}
	}
	if _, err := DecodeSamples(nil, data[:len(data)/2]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated message: %v, want ErrCorrupt", err)
	}
}

// FuzzDecodeSamples: whatever a hub stream holds, decoding returns rows or
// an error wrapping ErrCorrupt, within bounded memory.
func FuzzDecodeSamples(f *testing.F) {
	for _, n := range []int{1, 100} {
		data, _, err := EncodeSamples(nil, "paris", testSamples(0, n), CompressionZstd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		lz, _, _ := EncodeSamples(nil, "paris", testSamples(0, n), CompressionLZ4)
		f.Add(lz)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := DecodeSamples(nil, data); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
	})
}

// TestDecodeSamplesInvalid: a well-formed Arrow stream of SamplesSchema
// whose contents break the format is corrupt, not a panic or wrong rows.
func TestDecodeSamplesInvalid(t *testing.T) {
	encode := func(kind uint8, device uint32, nullValue bool) []byte {
		mem := memory.DefaultAllocator
		b := array.NewRecordBuilder(mem, SamplesSchema)
		defer b.Release()
		b.Field(0).(*array.Int64Builder).Append(0)
		b.Field(1).(*array.Int64Builder).Append(0)
		b.Field(2).(*array.Uint32Builder).Append(device)
		for c := 3; c <= 5; c++ {
			b.Field(c).(*array.Uint32Builder).Append(0)
		}
		b.Field(6).(*array.Uint8Builder).Append(kind)
		if nullValue {
			b.Field(7).(*array.Uint64Builder).AppendNull()
		} else {
			b.Field(7).(*array.Uint64Builder).Append(0)
		}
		lb := b.Field(8).(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.StringBuilder).Append("pe1")
		rec := b.NewRecordBatch()
		defer rec.Release()
		var buf bytes.Buffer
		w := ipc.NewWriter(&buf, ipc.WithSchema(SamplesSchema), ipc.WithZstd())
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	if got, err := DecodeSamples(nil, encode(kindInt, 0, false)); err != nil || len(got) != 1 || got[0].Device != "pe1" || got[0].Metric != "pe1" {
		t.Fatalf("valid hand-made stream: %+v, %v", got, err)
	}
	for _, tc := range []struct {
		name      string
		data      []byte
		wantError string
	}{
		{"kind 2", encode(2, 0, false), "value kind 2"},
		{"device beyond the table", encode(kindInt, 1, false), "device 1 of 1 strings"},
		{"null value", encode(kindInt, 0, true), "column value has 1 nulls"},
	} {
		got, err := DecodeSamples([]schema.Sample{{}}, tc.data)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.wantError) || len(got) != 1 {
			t.Errorf("%s: %d samples, %v; want only dst back and ErrCorrupt saying %q", tc.name, len(got), err, tc.wantError)
		}
	}
}
