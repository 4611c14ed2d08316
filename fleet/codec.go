package fleet

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/schema"
)

// WindowSchemaVersion is the version of the window JSON document.
const WindowSchemaVersion = 1

// ActionSchemaVersion is the version of the action JSON document.
const ActionSchemaVersion = 1

// ErrCorrupt is wrapped by every decoding error: the message is not what
// its stream carries.
var ErrCorrupt = errors.New("fleet: corrupt message")

// Action is one transition of a (model or rule, entity) action, as an edge
// forwards it to the hub: the row of the `actions` table (the runtime's
// inference.ActionState) at the moment the state changed, with the
// message's schema version. Score and Reason are those of the decision
// that moved the state, LastDecision its time; LastPublished is not set.
type Action struct {
	// SchemaVersion is ActionSchemaVersion.
	SchemaVersion int `json:"schema_version"`
	inference.ActionState
}

// ActionFromDecision returns the action transition a decision made; ok is
// false when the decision moved no state (d.Transition is false).
func ActionFromDecision(d *schema.Decision) (a Action, ok bool) {
	if !d.Transition {
		return Action{}, false
	}
	score := d.Score
	if math.IsNaN(score) || math.IsInf(score, 0) {
		score = 0
	}
	return Action{SchemaVersion: ActionSchemaVersion, ActionState: inference.ActionState{
		Model: d.Model, ModelVersion: d.ModelVersion,
		Fingerprint: d.Fingerprint, Entity: d.Entity, View: d.View, Trigger: d.Trigger,
		State: d.State, Since: d.Since, Action: d.Action, Score: score, Reason: d.Reason,
		LastDecision: d.Time, Flapping: d.Flapping,
	}}, true
}

// jsonFloat is a float64 that JSON-encodes NaN and ±Inf as null and decodes
// null as NaN.
type jsonFloat float64

// MarshalJSON implements json.Marshaler.
func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = jsonFloat(math.NaN())
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*f = jsonFloat(v)
	return nil
}

// windowDoc is the JSON document of a closed window.
type windowDoc struct {
	SchemaVersion   int         `json:"schema_version"`
	View            string      `json:"view"`
	Device          string      `json:"device"`
	Component       string      `json:"component,omitempty"`
	WindowStart     int64       `json:"window_start"`
	WindowEnd       int64       `json:"window_end"`
	Names           []string    `json:"names"`
	Values          []jsonFloat `json:"values"`
	LastIngestTS    int64       `json:"last_ingest_ts"`
	ClosedAt        int64       `json:"closed_at"`
	CloseReason     string      `json:"close_reason,omitempty"`
	TriggerIngestTS int64       `json:"trigger_ingest_ts,omitempty"`
}

// EncodeWindow returns the JSON document of row (docs/fleet.md).
func EncodeWindow(row *schema.FeatureRow) ([]byte, error) {
	if len(row.Names) != len(row.Values) {
		return nil, fmt.Errorf("fleet: window %s %s: %d names, %d values", row.View, row.Entity, len(row.Names), len(row.Values))
	}
	vals := make([]jsonFloat, len(row.Values))
	for i, v := range row.Values {
		vals[i] = jsonFloat(v)
	}
	return json.Marshal(windowDoc{
		SchemaVersion: WindowSchemaVersion, View: row.View, Device: row.Device, Component: row.Component,
		WindowStart: row.WindowStart, WindowEnd: row.WindowEnd, Names: row.Names, Values: vals,
		LastIngestTS: row.LastIngestTS, ClosedAt: row.ClosedAt, CloseReason: row.CloseReason,
		TriggerIngestTS: row.TriggerIngestTS,
	})
}

// DecodeWindow parses a window document.
func DecodeWindow(data []byte) (*schema.FeatureRow, error) {
	var d windowDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%w: window: %v", ErrCorrupt, err)
	}
	switch {
	case d.SchemaVersion != WindowSchemaVersion:
		return nil, fmt.Errorf("%w: window schema_version %d, want %d", ErrCorrupt, d.SchemaVersion, WindowSchemaVersion)
	case d.View == "" || d.Device == "":
		return nil, fmt.Errorf("%w: window without view or device", ErrCorrupt)
	case len(d.Names) != len(d.Values):
		return nil, fmt.Errorf("%w: window with %d names and %d values", ErrCorrupt, len(d.Names), len(d.Values))
	case d.WindowEnd < d.WindowStart:
		return nil, fmt.Errorf("%w: window ends before it starts", ErrCorrupt)
	}
	vals := make([]float64, len(d.Values))
	for i, v := range d.Values {
		vals[i] = float64(v)
	}
	return &schema.FeatureRow{
		View: d.View, Entity: schema.Entity{Device: d.Device, Component: d.Component},
		WindowStart: d.WindowStart, WindowEnd: d.WindowEnd, Names: d.Names, Values: vals,
		LastIngestTS: d.LastIngestTS, ClosedAt: d.ClosedAt, CloseReason: d.CloseReason,
		TriggerIngestTS: d.TriggerIngestTS,
	}, nil
}

// EncodeDecision returns the JSON document of d (schema.Decision, schema
// version 1). JSON has no NaN: non-finite features are left out and a
// non-finite score is written as 0, as inference publishes them.
func EncodeDecision(d *schema.Decision) ([]byte, error) {
	c := *d
	if math.IsNaN(c.Score) || math.IsInf(c.Score, 0) {
		c.Score = 0
	}
	if d.Features != nil {
		c.Features = make(map[string]float64, len(d.Features))
		for k, v := range d.Features {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				c.Features[k] = v
			}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("fleet: decision %s: %w", d.ID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// DecodeDecision parses a decision document of schema version 1.
func DecodeDecision(data []byte) (*schema.Decision, error) {
	var d schema.Decision
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%w: decision: %v", ErrCorrupt, err)
	}
	if d.SchemaVersion != schema.DecisionSchemaVersion {
		return nil, fmt.Errorf("%w: decision schema_version %d, want %d", ErrCorrupt, d.SchemaVersion, schema.DecisionSchemaVersion)
	}
	if d.ID == "" || d.Entity.Device == "" {
		return nil, fmt.Errorf("%w: decision without id or device", ErrCorrupt)
	}
	return &d, nil
}

// EncodeAction returns the JSON document of a.
func EncodeAction(a *Action) ([]byte, error) {
	c := *a
	c.SchemaVersion = ActionSchemaVersion
	if math.IsNaN(c.Score) || math.IsInf(c.Score, 0) {
		c.Score = 0
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("fleet: action %s %s: %w", a.Model, a.Entity, err)
	}
	return b, nil
}

// DecodeAction parses an action document.
func DecodeAction(data []byte) (*Action, error) {
	var a Action
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("%w: action: %v", ErrCorrupt, err)
	}
	if a.SchemaVersion != ActionSchemaVersion {
		return nil, fmt.Errorf("%w: action schema_version %d, want %d", ErrCorrupt, a.SchemaVersion, ActionSchemaVersion)
	}
	if a.Model == "" || a.Entity.Device == "" || a.State == "" {
		return nil, fmt.Errorf("%w: action without model, device or state", ErrCorrupt)
	}
	return &a, nil
}

// SamplesSchema is the Arrow schema of a forwarded samples batch: one row
// per schema.Sample. The label columns are dictionary-encoded: the
// offsets of a plain string column are increasing integers that no
// compressor shrinks (4 bytes per row and column), while dictionary
// indices repeat and compress to a fraction of a byte.
var SamplesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "ts", Type: schema.TimestampType},
	{Name: "ingest_ts", Type: schema.TimestampType},
	{Name: "device", Type: schema.DictStringType},
	{Name: "component", Type: schema.DictStringType},
	{Name: "metric", Type: schema.DictStringType},
	{Name: "value", Type: arrow.PrimitiveTypes.Float64},
	{Name: "source", Type: schema.DictStringType},
}, nil)

// Compression names how sample batches are compressed.
type Compression string

// Compressions of sample batches (Arrow IPC body compression).
const (
	CompressionZstd Compression = "zstd"
	CompressionLZ4  Compression = "lz4"
)

// EncodeSamples appends batch to dst as one Arrow IPC stream (schema and
// one record batch of SamplesSchema) with compressed buffers, and returns
// it with the message id of the batch: site and the SHA-256 of the
// samples' identity (entity, metric, time, value), so the same samples
// encoded again get the same id.
func EncodeSamples(dst []byte, site string, batch []schema.Sample, comp Compression) ([]byte, string, error) {
	mem := memory.DefaultAllocator
	n := len(batch)
	ts := make([]arrow.Timestamp, n)
	its := make([]arrow.Timestamp, n)
	vals := make([]float64, n)
	var dev, cmpt, met, src dictColumnBuilder
	var id identity
	id.b = make([]byte, 0, 64*n)
	for i := range batch {
		s := &batch[i]
		ts[i], its[i], vals[i] = arrow.Timestamp(s.TS), arrow.Timestamp(s.IngestTS), s.Value
		dev.add(s.Device)
		cmpt.add(s.Component)
		met.add(s.Metric)
		src.add(s.Source)
		id.str(s.Device).str(s.Component).str(s.Metric).i64(s.TS).i64(int64(math.Float64bits(s.Value)))
	}
	tsB := array.NewTimestampBuilder(mem, schema.TimestampType)
	defer tsB.Release()
	tsB.AppendValues(ts, nil)
	tsA := tsB.NewArray()
	tsB.AppendValues(its, nil)
	itsA := tsB.NewArray()
	valB := array.NewFloat64Builder(mem)
	defer valB.Release()
	valB.AppendValues(vals, nil)
	valA := valB.NewArray()
	cols := []arrow.Array{tsA, itsA, dev.array(mem), cmpt.array(mem), met.array(mem), valA, src.array(mem)}
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	rec := array.NewRecordBatch(SamplesSchema, cols, int64(n))
	defer rec.Release()
	opts := []ipc.Option{ipc.WithSchema(SamplesSchema), ipc.WithAllocator(memory.DefaultAllocator)}
	switch comp {
	case CompressionLZ4:
		opts = append(opts, ipc.WithLZ4())
	default:
		opts = append(opts, ipc.WithZstd())
	}
	buf := bytes.NewBuffer(dst)
	w := ipc.NewWriter(buf, opts...)
	if err := w.Write(rec); err != nil {
		return dst, "", fmt.Errorf("fleet: encode %d samples: %w", len(batch), err)
	}
	if err := w.Close(); err != nil {
		return dst, "", fmt.Errorf("fleet: encode %d samples: %w", len(batch), err)
	}
	return buf.Bytes(), msgID(site, KindSamples, id.sum()), nil
}

// DecodeSamples parses an Arrow IPC stream of SamplesSchema record batches
// and appends its rows to dst.
func DecodeSamples(dst []schema.Sample, data []byte) (out []schema.Sample, err error) {
	// The IPC reader trusts its input more than a network peer deserves:
	// a malformed body can index out of range. Such a panic is a corrupt
	// message, not a crash of the hub.
	defer func() {
		if r := recover(); r != nil {
			out, err = dst, fmt.Errorf("%w: samples: %v", ErrCorrupt, r)
		}
	}()
	// A corrupt length must not make the reader allocate more than the
	// message holds (metadata, compressed body) or a plausible decoded
	// batch (decompressed buffers): such a message is corrupt. The size
	// limits are set on the message reader because ipc.NewReader (arrow-go
	// v18.8.0) does not pass them on to the one it makes.
	// Nor may a corrupt schema message reach the reader: arrow-go sizes
	// slices from its counts before any check. The schema is fixed, so its
	// message must be byte for byte the one EncodeSamples writes.
	if !bytes.HasPrefix(data, samplesSchemaMessage) {
		return dst, fmt.Errorf("%w: samples: not a %d-column samples stream", ErrCorrupt, SamplesSchema.NumFields())
	}
	opts := []ipc.Option{ipc.WithAllocator(&boundedAllocator{max: maxDecodedBytes}),
		ipc.WithMetadataSizeLimit(int64(len(data))), ipc.WithBodySizeLimit(int64(len(data)))}
	r, err := ipc.NewReaderFromMessageReader(ipc.NewMessageReader(bytes.NewReader(data), opts...), opts...)
	if err != nil {
		return dst, fmt.Errorf("%w: samples: %v", ErrCorrupt, err)
	}
	defer r.Release()
	if !r.Schema().Equal(SamplesSchema) {
		return dst, fmt.Errorf("%w: samples schema %s", ErrCorrupt, r.Schema())
	}
	for r.Next() {
		rec := r.RecordBatch()
		ts := rec.Column(0).(*array.Timestamp)
		its := rec.Column(1).(*array.Timestamp)
		dev := dictColumn(rec.Column(2))
		comp := dictColumn(rec.Column(3))
		met := dictColumn(rec.Column(4))
		val := rec.Column(5).(*array.Float64)
		src := dictColumn(rec.Column(6))
		for i := 0; i < int(rec.NumRows()); i++ {
			dst = append(dst, schema.Sample{
				TS: int64(ts.Value(i)), IngestTS: int64(its.Value(i)),
				Entity: schema.Entity{Device: dev(i), Component: comp(i)},
				Metric: met(i), Value: val.Value(i), Source: src(i),
			})
		}
	}
	if err := r.Err(); err != nil {
		return dst, fmt.Errorf("%w: samples: %v", ErrCorrupt, err)
	}
	return dst, nil
}

// dictColumn returns the string at row i of a dictionary-encoded string
// column; the strings are shared per dictionary entry, not per row.
func dictColumn(a arrow.Array) func(i int) string {
	d := a.(*array.Dictionary)
	vals := d.Dictionary().(*array.String)
	strs := make([]string, vals.Len())
	for j := range strs {
		strs[j] = vals.Value(j)
	}
	return func(i int) string {
		if d.IsNull(i) {
			return ""
		}
		return strs[d.GetValueIndex(i)]
	}
}

// dictColumnBuilder builds a dictionary-encoded string column without
// converting each string to bytes (as array.BinaryDictionaryBuilder does).
type dictColumnBuilder struct {
	index map[string]int32
	vals  []string
	ids   []int32
}

func (d *dictColumnBuilder) add(s string) {
	i, ok := d.index[s]
	if !ok {
		if d.index == nil {
			d.index = map[string]int32{}
		}
		i = int32(len(d.vals))
		d.index[s] = i
		d.vals = append(d.vals, s)
	}
	d.ids = append(d.ids, i)
}

// array returns the column; the caller releases it.
func (d *dictColumnBuilder) array(mem memory.Allocator) arrow.Array {
	ib := array.NewInt32Builder(mem)
	defer ib.Release()
	ib.AppendValues(d.ids, nil)
	idx := ib.NewArray()
	defer idx.Release()
	sb := array.NewStringBuilder(mem)
	defer sb.Release()
	sb.AppendValues(d.vals, nil)
	dict := sb.NewArray()
	defer dict.Release()
	return array.NewDictionaryArray(schema.DictStringType, idx, dict)
}

// maxDecodedBytes bounds the memory one decoded samples message may take:
// a batch of 8192 samples decodes to well under 1 MiB.
const maxDecodedBytes = 64 << 20

// boundedAllocator is an Arrow allocator that panics (recovered by
// DecodeSamples as a corrupt message) when a decode allocates more than
// max bytes in all: a corrupt length in a compressed buffer must not
// exhaust the hub's memory. It is used by one goroutine.
type boundedAllocator struct {
	used, max int
}

func (a *boundedAllocator) Allocate(size int) []byte {
	a.grow(size)
	return memory.DefaultAllocator.Allocate(size)
}

func (a *boundedAllocator) Reallocate(size int, b []byte) []byte {
	a.grow(size - len(b))
	return memory.DefaultAllocator.Reallocate(size, b)
}

func (a *boundedAllocator) Free(b []byte) {
	a.used -= len(b)
	memory.DefaultAllocator.Free(b)
}

func (a *boundedAllocator) grow(n int) {
	if a.used+n > a.max {
		panic(fmt.Sprintf("decoding needs more than %d bytes", a.max))
	}
	a.used += n
}

// samplesSchemaMessage is the encoded schema message every samples stream
// starts with: continuation marker, metadata length, metadata (padded).
var samplesSchemaMessage = func() []byte {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(SamplesSchema), ipc.WithZstd())
	if err := w.Close(); err != nil {
		panic(err)
	}
	b := buf.Bytes()
	n := int(binary.LittleEndian.Uint32(b[4:8]))
	return bytes.Clone(b[:8+n])
}()
