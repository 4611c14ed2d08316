package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

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
// forwards it to the hub: the row of the `actions` table at the moment the
// state changed. Its JSON field names are those of inference.ActionState.
type Action struct {
	// SchemaVersion is ActionSchemaVersion.
	SchemaVersion int `json:"schema_version"`
	// Model and ModelVersion identify the model or rule.
	Model        string `json:"model"`
	ModelVersion string `json:"model_version"`
	// Fingerprint identifies the (model, entity) pair.
	Fingerprint string `json:"fingerprint"`
	// Entity is what the action is about.
	Entity schema.Entity `json:"entity"`
	// View is the feature view (empty for an event rule).
	View string `json:"view,omitempty"`
	// Trigger is schema.TriggerWindow, TriggerEvent or TriggerTimer.
	Trigger string `json:"trigger"`
	// State is the new state (schema.StatePending, ...); Since when it
	// began.
	State string    `json:"state"`
	Since time.Time `json:"since"`
	// Action is what automation is asked to do.
	Action string `json:"action"`
	// Score and Reason are those of the decision that moved the state.
	Score  float64 `json:"score"`
	Reason string  `json:"reason"`
	// LastDecision is the time of that decision.
	LastDecision time.Time `json:"last_decision"`
	// Flapping is true while the action changes state too often.
	Flapping bool `json:"flapping,omitempty"`
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
	return Action{
		SchemaVersion: ActionSchemaVersion, Model: d.Model, ModelVersion: d.ModelVersion,
		Fingerprint: d.Fingerprint, Entity: d.Entity, View: d.View, Trigger: d.Trigger,
		State: d.State, Since: d.Since, Action: d.Action, Score: score, Reason: d.Reason,
		LastDecision: d.Time, Flapping: d.Flapping,
	}, true
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
// per schema.Sample.
var SamplesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "ts", Type: schema.TimestampType},
	{Name: "ingest_ts", Type: schema.TimestampType},
	{Name: "device", Type: arrow.BinaryTypes.String},
	{Name: "component", Type: arrow.BinaryTypes.String},
	{Name: "metric", Type: arrow.BinaryTypes.String},
	{Name: "value", Type: arrow.PrimitiveTypes.Float64},
	{Name: "source", Type: arrow.BinaryTypes.String},
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
	b := array.NewRecordBuilder(memory.DefaultAllocator, SamplesSchema)
	defer b.Release()
	ts := b.Field(0).(*array.TimestampBuilder)
	its := b.Field(1).(*array.TimestampBuilder)
	dev := b.Field(2).(*array.StringBuilder)
	cmpt := b.Field(3).(*array.StringBuilder)
	met := b.Field(4).(*array.StringBuilder)
	val := b.Field(5).(*array.Float64Builder)
	src := b.Field(6).(*array.StringBuilder)
	b.Reserve(len(batch))
	var id identity
	id.b = make([]byte, 0, 64*len(batch))
	for i := range batch {
		s := &batch[i]
		ts.UnsafeAppend(arrow.Timestamp(s.TS))
		its.UnsafeAppend(arrow.Timestamp(s.IngestTS))
		dev.Append(s.Device)
		cmpt.Append(s.Component)
		met.Append(s.Metric)
		val.UnsafeAppend(s.Value)
		src.Append(s.Source)
		id.str(s.Device).str(s.Component).str(s.Metric).i64(s.TS).i64(int64(math.Float64bits(s.Value)))
	}
	rec := b.NewRecordBatch()
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
	r, err := ipc.NewReader(bytes.NewReader(data), ipc.WithAllocator(memory.DefaultAllocator))
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
		dev := rec.Column(2).(*array.String)
		comp := rec.Column(3).(*array.String)
		met := rec.Column(4).(*array.String)
		val := rec.Column(5).(*array.Float64)
		src := rec.Column(6).(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			dst = append(dst, schema.Sample{
				TS: int64(ts.Value(i)), IngestTS: int64(its.Value(i)),
				Entity: schema.Entity{Device: dev.Value(i), Component: comp.Value(i)},
				Metric: met.Value(i), Value: val.Value(i), Source: src.Value(i),
			})
		}
	}
	if err := r.Err(); err != nil {
		return dst, fmt.Errorf("%w: samples: %v", ErrCorrupt, err)
	}
	return dst, nil
}
