package featurestore

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/netfeat/netfeat/schema"
)

// bytesPerRow is the hot-tier cost of one sample: ts (8) + series id (4) +
// value (8). Labels live once per series in the series table.
const bytesPerRow = 20

// chunk is a run of hot-tier rows in column form. A sealed chunk never
// changes; the open chunk only grows, and rows below its published length
// never change either, so readers share both without copying.
type chunk struct {
	ts  []int64
	sid []int32
	val []float64

	minTS, maxTS      int64
	firstSeq, lastSeq uint64 // WAL batch sequence numbers the chunk covers
}

func (c *chunk) rows() int    { return len(c.ts) }
func (c *chunk) bytes() int64 { return int64(cap(c.ts))*8 + int64(cap(c.sid))*4 + int64(cap(c.val))*8 }

// openChunk is the chunk being appended to. Its buffers are allocated at
// full capacity once; the writer fills rows and then publishes the count,
// so a reader that loads n may read rows [0, n) without a lock.
type openChunk struct {
	ts  []int64
	sid []int32
	val []float64
	n   atomic.Int64 // rows visible to readers

	// Writer-only fields.
	w                 int
	minTS, maxTS      int64
	firstSeq, lastSeq uint64
	created           time.Time // wall time of the first row
}

func (o *openChunk) bytes() int64 { return int64(len(o.ts)) * bytesPerRow }

// hotView is what readers load: the sealed chunks in time order and the
// open chunk. It is replaced, never modified.
type hotView struct {
	sealed []*chunk
	open   *openChunk
}

// seriesStat is the per-series summary behind the `series` table.
type seriesStat struct {
	firstTS, lastTS int64
	lastValue       float64
	samples         int64
}

// hotTier is the in-memory Arrow-ready sample store. One goroutine (the
// committer) appends; the maintenance loop seals by age and retains; any
// goroutine reads through view without blocking them.
type hotTier struct {
	sealRows int

	mu          sync.Mutex // serialises writers
	open        *openChunk
	sealedBytes int64
	stats       []seriesStat

	view atomic.Pointer[hotView]
}

func newHotTier(sealRows int) *hotTier {
	h := &hotTier{sealRows: sealRows}
	h.view.Store(&hotView{})
	return h
}

// append adds one WAL batch (sequence seq) and returns the chunks sealed
// because they filled up. Chunks are sealed only at batch boundaries, so
// each one covers a whole range of WAL batches.
func (h *hotTier) append(recs []rec, seq uint64, now time.Time) (sealed []*chunk) {
	if len(recs) == 0 {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open != nil && h.open.w+len(recs) > len(h.open.ts) {
		sealed = append(sealed, h.sealLocked())
	}
	o := h.open
	if o == nil {
		c := max(h.sealRows, len(recs))
		o = &openChunk{
			ts: make([]int64, c), sid: make([]int32, c), val: make([]float64, c),
			minTS: math.MaxInt64, maxTS: math.MinInt64, firstSeq: seq, created: now,
		}
		h.open = o
		h.publishLocked(h.view.Load().sealed)
	}
	ts, sid, val := o.ts[o.w:o.w+len(recs)], o.sid[o.w:o.w+len(recs)], o.val[o.w:o.w+len(recs)]
	for i := range recs {
		r := &recs[i]
		ts[i], sid[i], val[i] = r.ts, r.sid, r.value
		o.minTS = min(o.minTS, r.ts)
		o.maxTS = max(o.maxTS, r.ts)
		h.statLocked(r)
	}
	o.w += len(recs)
	o.lastSeq = seq
	o.n.Store(int64(o.w))
	if o.w >= h.sealRows {
		sealed = append(sealed, h.sealLocked())
	}
	return sealed
}

func (h *hotTier) statLocked(r *rec) {
	if int(r.sid) >= len(h.stats) {
		h.stats = append(h.stats, make([]seriesStat, int(r.sid)+1-len(h.stats))...)
	}
	s := &h.stats[r.sid]
	if s.samples == 0 || r.ts < s.firstTS {
		s.firstTS = r.ts
	}
	if s.samples == 0 || r.ts >= s.lastTS {
		s.lastTS, s.lastValue = r.ts, r.value
	}
	s.samples++
}

// sealOld seals the open chunk when it is older than age.
func (h *hotTier) sealOld(now time.Time, age time.Duration) *chunk {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open == nil || h.open.w == 0 || now.Sub(h.open.created) < age {
		return nil
	}
	return h.sealLocked()
}

// sealLocked turns the open chunk into a sealed one. A chunk sealed early
// (by age) is copied to its exact size so that it does not pin the
// capacity of a full chunk.
func (h *hotTier) sealLocked() *chunk {
	o := h.open
	h.open = nil
	n := o.w
	c := &chunk{ts: o.ts[:n:n], sid: o.sid[:n:n], val: o.val[:n:n],
		minTS: o.minTS, maxTS: o.maxTS, firstSeq: o.firstSeq, lastSeq: o.lastSeq}
	if n < len(o.ts)/2 {
		c.ts, c.sid, c.val = slices.Clone(c.ts), slices.Clone(c.sid), slices.Clone(c.val)
	}
	h.insertLocked(c)
	return c
}

// insertLocked adds a sealed chunk in time order (by first timestamp;
// usually at the end) and publishes the new view.
func (h *hotTier) insertLocked(c *chunk) {
	old := h.view.Load().sealed
	i := len(old)
	for i > 0 && old[i-1].minTS > c.minTS {
		i--
	}
	next := make([]*chunk, 0, len(old)+1)
	next = append(append(append(next, old[:i]...), c), old[i:]...)
	h.sealedBytes += c.bytes()
	h.publishLocked(next)
}

// load adds a recovered chunk.
func (h *hotTier) load(c *chunk) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range c.ts {
		h.statLocked(&rec{ts: c.ts[i], sid: c.sid[i], value: c.val[i]})
	}
	h.insertLocked(c)
}

func (h *hotTier) publishLocked(sealed []*chunk) {
	h.view.Store(&hotView{sealed: sealed, open: h.open})
}

// dropReason says why a chunk left the hot tier.
type dropReason string

const (
	dropAge    dropReason = "age"
	dropMemory dropReason = "memory"
)

// retain drops sealed chunks whose newest sample is older than cutoff, then
// the oldest chunks while the tier is over budget. It reports each drop.
func (h *hotTier) retain(cutoff int64, budget int64, dropped func(*chunk, dropReason)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.view.Load().sealed
	keep := make([]*chunk, 0, len(old))
	for _, c := range old {
		if c.maxTS < cutoff {
			h.sealedBytes -= c.bytes()
			dropped(c, dropAge)
			continue
		}
		keep = append(keep, c)
	}
	openBytes := int64(0)
	if h.open != nil {
		openBytes = h.open.bytes()
	}
	for len(keep) > 0 && h.sealedBytes+openBytes > budget {
		h.sealedBytes -= keep[0].bytes()
		dropped(keep[0], dropMemory)
		keep = keep[1:]
	}
	if len(keep) != len(old) {
		h.publishLocked(slices.Clip(keep))
	}
}

// usage returns the rows and bytes held.
func (h *hotTier) usage() (rows int64, bytes int64) {
	v := h.view.Load()
	for _, c := range v.sealed {
		rows += int64(c.rows())
		bytes += c.bytes()
	}
	if v.open != nil {
		rows += v.open.n.Load()
		bytes += v.open.bytes()
	}
	return rows, bytes
}

// snapshot returns the row ranges visible now: every sealed chunk and the
// published prefix of the open chunk.
func (h *hotTier) snapshot() []chunk {
	v := h.view.Load()
	out := make([]chunk, 0, len(v.sealed)+1)
	for _, c := range v.sealed {
		out = append(out, *c)
	}
	if v.open != nil {
		if n := int(v.open.n.Load()); n > 0 {
			o := v.open
			out = append(out, chunk{ts: o.ts[:n:n], sid: o.sid[:n:n], val: o.val[:n:n]})
		}
	}
	return out
}

func (h *hotTier) seriesStats() []seriesStat {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.stats)
}

// samplesRecord wraps rows as a record batch of schema.SamplesSchema
// without copying: ts and value are the chunk's own memory, and the three
// label columns are dictionaries that share the series-id column as their
// index buffer.
func samplesRecord(ts []int64, sid []int32, val []float64, d *seriesDicts) arrow.RecordBatch {
	n := len(ts)
	tsData := array.NewData(schema.TimestampType, n,
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Int64Traits.CastToBytes(ts))}, nil, 0, 0)
	valData := array.NewData(arrow.PrimitiveTypes.Float64, n,
		[]*memory.Buffer{nil, memory.NewBufferBytes(arrow.Float64Traits.CastToBytes(val))}, nil, 0, 0)
	idx := memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(sid))
	dict := func(values arrow.ArrayData) arrow.Array {
		data := array.NewDataWithDictionary(schema.DictStringType, n, []*memory.Buffer{nil, idx}, 0, 0, values.(*array.Data))
		defer data.Release()
		return array.NewDictionaryData(data)
	}
	cols := []arrow.Array{
		array.MakeFromData(tsData), dict(d.device), dict(d.component), dict(d.metric), array.MakeFromData(valData),
	}
	tsData.Release()
	valData.Release()
	rec := array.NewRecordBatch(schema.SamplesSchema, cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}
