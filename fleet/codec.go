package fleet

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/internal/jsonenc"
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
	return appendWindowDoc(make([]byte, 0, windowSizeHint(row)), row)
}

// appendWindowDoc appends the JSON document of row to dst.
func appendWindowDoc(dst []byte, row *schema.FeatureRow) ([]byte, error) {
	if len(row.Names) != len(row.Values) {
		return dst, fmt.Errorf("fleet: window %s %s: %d names, %d values", row.View, row.Entity, len(row.Names), len(row.Values))
	}
	return appendWindow(dst, row), nil
}

// windowSizeHint is about the length of row's document.
func windowSizeHint(row *schema.FeatureRow) int {
	n := 256 + len(row.View) + len(row.Device) + len(row.Component) + 24*len(row.Values)
	for _, s := range row.Names {
		n += len(s) + 3
	}
	return n
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
	return appendDecisionDoc(make([]byte, 0, decisionSizeHint(d)), d)
}

// decisionSizeHint is about the length of d's document.
func decisionSizeHint(d *schema.Decision) int {
	n := 640 + len(d.ID) + len(d.View) + len(d.Model) + len(d.Reason) + len(d.Fallback)
	for k := range d.Features {
		n += len(k) + 28
	}
	for _, s := range d.MissingFeatures {
		n += len(s) + 3
	}
	return n
}

// appendDecisionDoc appends the JSON document of d to dst.
func appendDecisionDoc(dst []byte, d *schema.Decision) ([]byte, error) {
	b, err := jsonenc.Decision(dst, d)
	if err != nil {
		return dst, fmt.Errorf("fleet: decision %s: %w", d.ID, err)
	}
	return b, nil
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

// EncodeAction returns the JSON document of a, with schema_version
// ActionSchemaVersion and a non-finite score written as 0.
func EncodeAction(a *Action) ([]byte, error) {
	return appendActionDoc(make([]byte, 0, 384+len(a.Model)+len(a.View)+len(a.Reason)), a)
}

// appendActionDoc appends the JSON document of a to dst.
func appendActionDoc(dst []byte, a *Action) ([]byte, error) {
	b, err := appendAction(dst, a)
	if err != nil {
		return dst, fmt.Errorf("fleet: action %s %s: %w", a.Model, a.Entity, err)
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

// SamplesFormatVersion is the version of the samples wire format, carried
// in SamplesSchema's metadata under SamplesVersionKey. Version 1 was
// unversioned: the columns of schema.Sample with dictionary-encoded labels.
const SamplesFormatVersion = 2

// SamplesVersionKey is the schema metadata key of SamplesFormatVersion.
const SamplesVersionKey = "netfeat.samples.version"

// SamplesSchema is the Arrow schema of a forwarded samples batch
// (docs/fleet.md, "Samples wire format"): one row per schema.Sample, its columns
// transformed so that the compressor finds what repeats.
//
//   - ts: the sample's ts minus the previous row's (the first row: minus
//     0), in wrapping int64 arithmetic, zigzag-encoded (0, -1, 1, -2... as
//     0, 1, 2, 3...). A poll's samples share a time: mostly 0.
//   - ingest_ts: the same for ingest_ts.
//   - device, component, metric, source: the index of the label in the
//     batch's string table, the concatenation of the strings lists.
//   - kind: 0 when the value is an integer of (-2^63, 2^63) other than -0
//     (a counter, a state, a zero rate), else 1.
//   - value: not in row order but grouped, rows of kind 0 first, each kind
//     by metric index, in row order within a group: a kind 0 value is the
//     zigzag of the integer minus the previous value of the same (device,
//     component, metric) in the batch when that one was of kind 0 (else
//     minus 0); a kind 1 value is the IEEE 754 bits XOR those of the
//     series' previous value (else 0). The groups put counters of one
//     metric, whose high bytes agree, next to each other, and keep the
//     floats' random mantissas away from the integers.
//   - strings: the labels first used at this row, in column order.
//
// Labels were dictionary-encoded columns in version 1: each dictionary is an
// IPC message of its own (about 200 bytes of metadata) and the schema
// message describes every dictionary; one list column of new labels holds
// the same strings in one buffer.
var SamplesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "ts", Type: arrow.PrimitiveTypes.Int64},
	{Name: "ingest_ts", Type: arrow.PrimitiveTypes.Int64},
	{Name: "device", Type: arrow.PrimitiveTypes.Uint32},
	{Name: "component", Type: arrow.PrimitiveTypes.Uint32},
	{Name: "metric", Type: arrow.PrimitiveTypes.Uint32},
	{Name: "source", Type: arrow.PrimitiveTypes.Uint32},
	{Name: "kind", Type: arrow.PrimitiveTypes.Uint8},
	{Name: "value", Type: arrow.PrimitiveTypes.Uint64},
	{Name: "strings", Type: arrow.ListOf(arrow.BinaryTypes.String)},
}, func() *arrow.Metadata {
	m := arrow.NewMetadata([]string{SamplesVersionKey}, []string{strconv.Itoa(SamplesFormatVersion)})
	return &m
}())

// samplesSchemaV1 is the schema of format version 1, recognised only to
// refuse it with a clear error.
var samplesSchemaV1 = arrow.NewSchema([]arrow.Field{
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

// seriesKey names a series of a batch by its label indices.
type seriesKey struct{ device, component, metric uint32 }

// seriesLast holds the last value bits of each series of a batch: an
// open-addressing table without pointers, sized for the batch (a Go map
// took a third of the decoding time).
type seriesLast struct {
	keys []seriesKey
	vals []uint64
	used []bool
	mask uint64
}

// reset empties the table, growing it for n series when it is too small.
func (t *seriesLast) reset(n int) {
	if len(t.keys) < 2*n {
		*t = *newSeriesLast(n)
		return
	}
	clear(t.used)
}

func newSeriesLast(n int) *seriesLast {
	size := 8
	for size < 2*n {
		size <<= 1
	}
	return &seriesLast{keys: make([]seriesKey, size), vals: make([]uint64, size), used: make([]bool, size), mask: uint64(size - 1)}
}

// slot returns where the last value of k is kept and whether k has one;
// a new k gets a slot holding 0.
func (t *seriesLast) slot(k seriesKey) (v *uint64, has bool) {
	h := (uint64(k.device)*0x9e3779b97f4a7c15 ^ uint64(k.component)*0xc2b2ae3d27d4eb4f ^ uint64(k.metric)*0x165667b19e3779f9) >> 17
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		if !t.used[i] {
			t.keys[i], t.used[i], t.vals[i] = k, true, 0
			return &t.vals[i], false
		}
		if t.keys[i] == k {
			return &t.vals[i], true
		}
	}
}

// Value kinds of the samples format.
const (
	kindInt   = 0
	kindFloat = 1
)

// intValue reports whether v is stored as an integer (kindInt).
func intValue(v float64) bool {
	return v == math.Trunc(v) && math.Abs(v) < 1<<63 && (v != 0 || !math.Signbit(v))
}

// valueWord returns the kind and the stored word of value bits after the
// series' previous value bits prev (has: there is one).
func valueWord(bits, prev uint64, has bool) (uint8, uint64) {
	v := math.Float64frombits(bits)
	if !intValue(v) {
		return kindFloat, bits ^ prev
	}
	var p int64
	if pv := math.Float64frombits(prev); has && intValue(pv) {
		p = int64(pv)
	}
	return kindInt, uint64(zigzag(int64(v) - p))
}

// wordValue inverts valueWord.
func wordValue(kind uint8, w, prev uint64, has bool) uint64 {
	if kind == kindFloat {
		return w ^ prev
	}
	var p int64
	if pv := math.Float64frombits(prev); has && intValue(pv) {
		p = int64(pv)
	}
	return math.Float64bits(float64(unzigzag(int64(w)) + p))
}

// valueOrder returns, for each row, the position of its value in the
// value column: rows grouped by kind then metric index (< nmetric), in row
// order within a group (a counting sort).
func valueOrder(kinds []uint8, metrics []uint32, nmetric int) []int32 {
	start := make([]int32, 2*nmetric+1)
	for i, k := range kinds {
		start[int(k)*nmetric+int(metrics[i])+1]++
	}
	for j := 1; j < len(start); j++ {
		start[j] += start[j-1]
	}
	pos := make([]int32, len(kinds))
	for i, k := range kinds {
		g := int(k)*nmetric + int(metrics[i])
		pos[i] = start[g]
		start[g]++
	}
	return pos
}

// EncodeSamples appends batch to dst as one Arrow IPC stream (schema and
// one record batch of SamplesSchema), compressed, and returns it with the
// message id of the batch: site and the SHA-256 of the message. Encoding
// is deterministic, so the same batch (samples, their ingest times and
// order, compression) encoded again gets the same id: a retry is stored
// once. The rows keep the order of batch.
func EncodeSamples(dst []byte, site string, batch []schema.Sample, comp Compression) ([]byte, string, error) {
	mem := memory.DefaultAllocator
	n := len(batch)
	sc := getEncodeScratch(n)
	defer encodeScratchPool.Put(sc)
	ts, its, words, kinds := sc.ts, sc.its, sc.words, sc.kinds
	labels := sc.labels
	index := sc.index
	// The strings column: one list per row of the labels first used at
	// that row, built as its offsets (a scratch slice, no per-row
	// builder call) over one string array of every label in order.
	strB := array.NewStringBuilder(mem)
	defer strB.Release()
	listOff := sc.listOff
	last := sc.last
	// Rows come in runs of one device and source (a poll): the last string
	// of each column and its index spare most of the map lookups.
	var lastStr [4]string
	var lastIdx [4]uint32
	var prevTS, prevIngest int64
	for i := range batch {
		s := &batch[i]
		ts[i], prevTS = zigzag(s.TS-prevTS), s.TS
		its[i], prevIngest = zigzag(s.IngestTS-prevIngest), s.IngestTS
		listOff[i] = int32(len(index))
		for c, str := range [4]string{s.Device, s.Component, s.Metric, s.Source} {
			if i > 0 && str == lastStr[c] {
				labels[c][i] = lastIdx[c]
				continue
			}
			// A small direct-mapped cache in front of the map: metrics
			// change every row but come from a short list (the catalog's
			// strings, so == mostly compares one pointer).
			slot := &sc.recent[c][recentSlot(str)]
			j, ok := slot.idx, slot.ok && slot.str == str
			if !ok {
				if j, ok = index[str]; !ok {
					j = uint32(len(index))
					index[str] = j
					strB.Append(str)
				}
				*slot = recentString{str: str, idx: j, ok: true}
			}
			labels[c][i], lastStr[c], lastIdx[c] = j, str, j
		}
		bits := math.Float64bits(s.Value)
		k := seriesKey{labels[0][i], labels[1][i], labels[2][i]}
		prev, has := last.slot(k)
		kinds[i], words[i] = valueWord(bits, *prev, has)
		*prev = bits
	}
	return sc.finish(dst, site, n, strB, len(index), comp)
}

// finish writes the message of the n rows sc holds: their columns filled
// in, strB holding the nstrings labels of the strings column in order.
func (sc *encodeScratch) finish(dst []byte, site string, n int, strB *array.StringBuilder, nstrings int, comp Compression) ([]byte, string, error) {
	vals := sc.vals
	for i, p := range valueOrder(sc.kinds, sc.labels[2], nstrings) {
		vals[p] = sc.words[i]
	}
	// The primitive columns are the scratch slices themselves (no copy):
	// the record is written out before they go back to the pool.
	cols := make([]arrow.Array, 0, SamplesSchema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	cols = append(cols, primitive(arrow.PrimitiveTypes.Int64, n, arrow.Int64Traits.CastToBytes(sc.ts)),
		primitive(arrow.PrimitiveTypes.Int64, n, arrow.Int64Traits.CastToBytes(sc.its)))
	for _, v := range sc.labels {
		cols = append(cols, primitive(arrow.PrimitiveTypes.Uint32, n, arrow.Uint32Traits.CastToBytes(v)))
	}
	cols = append(cols, primitive(arrow.PrimitiveTypes.Uint8, n, sc.kinds),
		primitive(arrow.PrimitiveTypes.Uint64, n, arrow.Uint64Traits.CastToBytes(vals)))
	sc.listOff[n] = int32(nstrings)
	strs := strB.NewArray()
	defer strs.Release()
	listData := array.NewData(SamplesSchema.Field(SamplesSchema.NumFields()-1).Type, n,
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(sc.listOff))}, []arrow.ArrayData{strs.Data()}, 0, 0)
	cols = append(cols, array.MakeFromData(listData))
	listData.Release()
	rec := array.NewRecordBatch(SamplesSchema, cols, int64(n))
	defer rec.Release()
	// zstd compresses the whole stream at once with the package's shared
	// encoder (fastest level): arrow-go's body compression makes a zstd
	// encoder per message and compresses each buffer alone, which cost
	// more than everything else the edge does to forward a sample. LZ4 is
	// arrow's body compression.
	opts := []ipc.Option{ipc.WithSchema(SamplesSchema), ipc.WithAllocator(memory.DefaultAllocator)}
	var buf *bytes.Buffer
	if comp == CompressionLZ4 {
		opts = append(opts, ipc.WithLZ4())
		buf = bytes.NewBuffer(dst)
	} else {
		buf = bytes.NewBuffer(sc.ipc[:0])
		defer func() { sc.ipc = buf.Bytes()[:0] }()
	}
	w := ipc.NewWriter(buf, opts...)
	if err := w.Write(rec); err != nil {
		return dst, "", fmt.Errorf("fleet: encode %d samples: %w", n, err)
	}
	if err := w.Close(); err != nil {
		return dst, "", fmt.Errorf("fleet: encode %d samples: %w", n, err)
	}
	out := buf.Bytes()
	if comp != CompressionLZ4 {
		enc, _, err := zstdCodec()
		if err != nil {
			return dst, "", fmt.Errorf("fleet: zstd: %w", err)
		}
		out = enc.EncodeAll(out, dst)
	}
	sum := sha256.Sum256(out[len(dst):])
	return out, msgID(site, KindSamples, sum[:]), nil
}

// encodeScratch is what EncodeSamples needs per call, kept for the next
// call: the edge encodes a message of thousands of samples many times a
// second, and fresh slices for each were most of its forwarding garbage.
type encodeScratch struct {
	ts, its     []int64
	labels      [4][]uint32
	words, vals []uint64
	kinds       []uint8
	last        *seriesLast
	index       map[string]uint32
	recent      [4][64]recentString
	listOff     []int32
	ipc         []byte
}

// recentString is a slot of EncodeSamples' cache of label indexes.
type recentString struct {
	str string
	idx uint32
	ok  bool
}

// recentSlot picks a string's slot in the cache from its length and
// three of its bytes.
func recentSlot(s string) int {
	n := len(s)
	if n == 0 {
		return 0
	}
	return int(uint(n)^uint(s[0])<<1^uint(s[n-1])<<2^uint(s[n/2])<<3) & 63
}

var encodeScratchPool sync.Pool

// getEncodeScratch returns scratch sized for n samples, zeroed where it
// must be.
func getEncodeScratch(n int) *encodeScratch {
	sc, _ := encodeScratchPool.Get().(*encodeScratch)
	if sc == nil || cap(sc.ts) < n {
		sc = &encodeScratch{
			ts: make([]int64, n), its: make([]int64, n), words: make([]uint64, n), vals: make([]uint64, n),
			kinds: make([]uint8, n), index: map[string]uint32{}, last: newSeriesLast(n),
			ipc: make([]byte, 0, 48*n+4096), listOff: make([]int32, n+1),
		}
		for c := range sc.labels {
			sc.labels[c] = make([]uint32, n)
		}
		return sc
	}
	sc.ts, sc.its, sc.words, sc.vals, sc.kinds = sc.ts[:n], sc.its[:n], sc.words[:n], sc.vals[:n], sc.kinds[:n]
	sc.listOff = sc.listOff[:n+1]
	for c := range sc.labels {
		sc.labels[c] = sc.labels[c][:n]
	}
	clear(sc.index)
	sc.recent = [4][64]recentString{}
	sc.last.reset(n)
	return sc
}

// primitive returns a column of n values of a fixed-width type over b,
// without copying it.
func primitive(t arrow.DataType, n int, b []byte) arrow.Array {
	d := array.NewData(t, n, []*memory.Buffer{nil, memory.NewBufferBytes(b)}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

// DecodeSamples parses an Arrow IPC stream of SamplesSchema record batches
// (format version SamplesFormatVersion) and appends its rows to dst, in
// the order they were encoded. On error it returns dst as it was.
func DecodeSamples(dst []schema.Sample, data []byte) (out []schema.Sample, err error) {
	n0 := len(dst)
	// The IPC reader trusts its input more than a network peer deserves:
	// a malformed body can index out of range. Such a panic is a corrupt
	// message, not a crash of the hub.
	defer func() {
		if r := recover(); r != nil {
			out, err = dst[:n0], fmt.Errorf("%w: samples: %v", ErrCorrupt, r)
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
	// A zstd frame holds the whole stream (CompressionZstd); it may
	// decompress to at most maxBatchBytes.
	if bytes.HasPrefix(data, zstdMagic) {
		_, dec, err := zstdCodec()
		if err != nil {
			return dst, fmt.Errorf("fleet: zstd: %w", err)
		}
		if data, err = dec.DecodeAll(data, nil); err != nil {
			return dst, fmt.Errorf("%w: samples: zstd: %v", ErrCorrupt, err)
		}
	}
	if !bytes.HasPrefix(data, samplesSchemaMessage) {
		return dst, fmt.Errorf("%w: samples: %s", ErrCorrupt, samplesStreamKind(data))
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
		if dst, err = appendSamples(dst, r.RecordBatch()); err != nil {
			return dst[:n0], err
		}
	}
	if err := r.Err(); err != nil {
		return dst[:n0], fmt.Errorf("%w: samples: %v", ErrCorrupt, err)
	}
	return dst, nil
}

// appendSamples appends the rows of one record batch of SamplesSchema to
// dst; on error it returns dst as it was.
func appendSamples(dst []schema.Sample, rec arrow.RecordBatch) ([]schema.Sample, error) {
	n := int(rec.NumRows())
	for i, c := range rec.Columns() {
		if c.NullN() != 0 || c.Len() != n {
			return dst, fmt.Errorf("%w: samples: column %s has %d nulls and %d rows, want none and %d",
				ErrCorrupt, SamplesSchema.Field(i).Name, c.NullN(), c.Len(), n)
		}
	}
	if n == 0 {
		return dst, nil
	}
	ts := rec.Column(0).(*array.Int64).Int64Values()
	its := rec.Column(1).(*array.Int64).Int64Values()
	var labels [4][]uint32
	for c := range labels {
		labels[c] = rec.Column(2 + c).(*array.Uint32).Uint32Values()
	}
	kinds := rec.Column(6).(*array.Uint8).Uint8Values()
	vals := rec.Column(7).(*array.Uint64).Uint64Values()
	list := rec.Column(8).(*array.List)
	strs := list.ListValues().(*array.String)
	off := list.Offsets()
	if strs.NullN() != 0 || len(off) < n+1 || off[0] < 0 || int(off[n]) > strs.Len() || !slices.IsSorted(off[:n+1]) {
		return dst, fmt.Errorf("%w: samples: malformed string table", ErrCorrupt)
	}
	table := make([]string, off[n]-off[0])
	for j := range table {
		table[j] = strings.Clone(strs.Value(int(off[0]) + j))
	}
	for i := range n {
		for c := range labels {
			if j := labels[c][i]; int(j) >= len(table) {
				return dst, fmt.Errorf("%w: samples: row %d: %s %d of %d strings", ErrCorrupt, i, SamplesSchema.Field(2+c).Name, j, len(table))
			}
		}
		if kinds[i] > kindFloat {
			return dst, fmt.Errorf("%w: samples: row %d: value kind %d", ErrCorrupt, i, kinds[i])
		}
	}
	pos := valueOrder(kinds, labels[2], len(table))
	last := newSeriesLast(n)
	var t, ingest int64
	for i := range n {
		var l [4]string
		for c := range labels {
			l[c] = table[labels[c][i]]
		}
		t += unzigzag(ts[i])
		ingest += unzigzag(its[i])
		k := seriesKey{labels[0][i], labels[1][i], labels[2][i]}
		prev, has := last.slot(k)
		bits := wordValue(kinds[i], vals[pos[i]], *prev, has)
		*prev = bits
		dst = append(dst, schema.Sample{
			TS: t, IngestTS: ingest, Entity: schema.Entity{Device: l[0], Component: l[1]},
			Metric: l[2], Value: math.Float64frombits(bits), Source: l[3],
		})
	}
	return dst, nil
}

// zigzag maps a signed difference to an int64 whose high bytes are zero
// when the difference is small, whatever its sign: 0, -1, 1, -2... become
// 0, 1, 2, 3...
func zigzag(x int64) int64 { return x<<1 ^ x>>63 }

// unzigzag inverts zigzag.
func unzigzag(z int64) int64 { return int64(uint64(z)>>1) ^ -(z & 1) }

// samplesStreamKind says what a stream that does not start with the
// samples schema message is: another format version or not a samples
// stream at all.
func samplesStreamKind(data []byte) string {
	switch {
	case bytes.HasPrefix(data, samplesSchemaV1Message):
		return fmt.Sprintf("format version 1 (unversioned schema), this hub reads version %d", SamplesFormatVersion)
	case len(data) >= 8 && bytes.Contains(data[:min(len(data), 8+int(binary.LittleEndian.Uint32(data[4:8])))], []byte(SamplesVersionKey)):
		return fmt.Sprintf("another format version than %d (%s in the schema differs)", SamplesFormatVersion, SamplesVersionKey)
	default:
		return fmt.Sprintf("not a samples stream of format version %d", SamplesFormatVersion)
	}
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
var samplesSchemaMessage = schemaMessage(SamplesSchema)

// samplesSchemaV1Message is the schema message of format version 1.
var samplesSchemaV1Message = schemaMessage(samplesSchemaV1)

func schemaMessage(s *arrow.Schema) []byte {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(s), ipc.WithZstd())
	if err := w.Close(); err != nil {
		panic(err)
	}
	b := buf.Bytes()
	n := int(binary.LittleEndian.Uint32(b[4:8]))
	return bytes.Clone(b[:8+n])
}
