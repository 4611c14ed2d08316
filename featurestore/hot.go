// The hot tier: recent samples in columnar chunks, ready for Arrow. One
// goroutine appends at a time (whoever holds commitMu: the committer, or an
// appender leading its own group commit) and the maintenance loop seals by
// age and drops by retention, both under hotTier.mu; readers on any
// goroutine load the published hotView without blocking them. Sealed
// chunks are reference-counted: the chunk writer and snapshots hold
// references until they release them.

package featurestore

import (
	"math"
	"os"
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
	// mem holds the columns (see region); nil for chunks on the Go heap
	// (History reads, tests).
	mem *region

	minTS, maxTS      int64
	firstSeq, lastSeq uint64 // WAL batch sequence numbers the chunk covers
}

func (c *chunk) rows() int { return len(c.ts) }

// bytes is the memory the chunk occupies. For a mapped region that is the
// pages its rows touched: a chunk sealed at a batch boundary short of its
// capacity leaves the end of each column's pages untouched, and untouched
// pages of an anonymous mapping take no memory.
func (c *chunk) bytes() int64 {
	if c.mem != nil && c.mem.mapped {
		n := int64(len(c.ts))
		return pageRound(8*n) + pageRound(8*n) + pageRound(4*n)
	}
	if c.mem != nil {
		return c.mem.size()
	}
	return int64(cap(c.ts))*8 + int64(cap(c.sid))*4 + int64(cap(c.val))*8
}

var pageSize = int64(os.Getpagesize())

func pageRound(n int64) int64 { return (n + pageSize - 1) / pageSize * pageSize }

// release drops the caller's reference to the chunk's memory.
func (c *chunk) release() {
	if c.mem != nil {
		c.mem.release()
	}
}

// newColumns allocates a region for n rows and lays the three columns out
// in it: ts, then value (8-byte aligned), then series id.
func newColumns(n int) (*region, []int64, []int32, []float64) {
	return columnsIn(newRegion(max(n, 1)*bytesPerRow), n)
}

// columnsIn lays out n rows' columns in r.
func columnsIn(r *region, n int) (*region, []int64, []int32, []float64) {
	b := r.b
	ts := arrow.Int64Traits.CastFromBytes(b[: 8*n : 8*n])
	val := arrow.Float64Traits.CastFromBytes(b[8*n : 16*n : 16*n])
	sid := arrow.Int32Traits.CastFromBytes(b[16*n : 20*n : 20*n])
	return r, ts, sid, val
}

// openChunk is the chunk being appended to. Its buffers are allocated at
// full capacity once (a mapping: pages become resident as rows fill them);
// the writer fills rows and then publishes the count, so a reader that
// loads n may read rows [0, n) without a lock.
type openChunk struct {
	ts  []int64
	sid []int32
	val []float64
	mem *region
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
	spares   *regionPool // open chunks of sealRows rows

	mu          sync.Mutex // serialises writers
	open        *openChunk
	sealedBytes int64
	stats       []seriesStat

	view atomic.Pointer[hotView]
}

func newHotTier(sealRows int) *hotTier {
	h := &hotTier{sealRows: sealRows, spares: newRegionPool(sealRows * bytesPerRow)}
	h.view.Store(&hotView{})
	return h
}

// append adds one WAL batch (sequence seq) and returns the chunks sealed
// because they filled up. Chunks are sealed only at batch boundaries, so
// each one covers a whole range of WAL batches. Each returned chunk carries
// a reference for the caller (the chunk writer), who releases it.
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
		var mem *region
		var ts []int64
		var sid []int32
		var val []float64
		if len(recs) <= h.sealRows {
			mem, ts, sid, val = columnsIn(h.spares.get(), h.sealRows)
		} else {
			mem, ts, sid, val = newColumns(len(recs))
		}
		o = &openChunk{
			ts: ts, sid: sid, val: val, mem: mem,
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

// sealOld seals the open chunk when it is older than age. The chunk
// carries a reference for the caller.
func (h *hotTier) sealOld(now time.Time, age time.Duration) *chunk {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open == nil || h.open.w == 0 || now.Sub(h.open.created) < age {
		return nil
	}
	return h.sealLocked()
}

// sealLocked turns the open chunk into a sealed one, which takes over its
// memory. A chunk sealed early (by age) is copied to its exact size so
// that it does not pin the capacity of a full chunk; the open chunk's
// memory is then released (readers of its rows keep their references).
// The returned chunk carries one reference for the caller besides the
// tier's.
func (h *hotTier) sealLocked() *chunk {
	o := h.open
	h.open = nil
	n := o.w
	c := &chunk{ts: o.ts[:n:n], sid: o.sid[:n:n], val: o.val[:n:n], mem: o.mem,
		minTS: o.minTS, maxTS: o.maxTS, firstSeq: o.firstSeq, lastSeq: o.lastSeq}
	if n < len(o.ts)/2 {
		mem, ts, sid, val := newColumns(n)
		copy(ts, c.ts)
		copy(sid, c.sid)
		copy(val, c.val)
		o.mem.release()
		c.ts, c.sid, c.val, c.mem = ts, sid, val, mem
	}
	h.insertLocked(c)
	c.mem.retain()
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

// load adds a recovered chunk; the tier takes over the caller's reference.
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
	// dropLimit: the process was over its memory_limit and the hot tier's
	// budget was lowered under it (Store.LimitHot).
	dropLimit dropReason = "memory_limit"
)

// retain drops sealed chunks whose newest sample is older than cutoff, then
// the oldest chunks while the tier is over budget. It reports each drop.
func (h *hotTier) retain(cutoff int64, budget int64, dropped func(*chunk, dropReason)) {
	h.retainFor(cutoff, budget, dropMemory, dropped)
}

// retainFor is retain with the reason given to the budget's drops.
func (h *hotTier) retainFor(cutoff int64, budget int64, over dropReason, dropped func(*chunk, dropReason)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.view.Load().sealed
	keep := make([]*chunk, 0, len(old))
	var gone []*chunk
	for _, c := range old {
		if c.maxTS < cutoff {
			h.sealedBytes -= c.bytes()
			dropped(c, dropAge)
			gone = append(gone, c)
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
		dropped(keep[0], over)
		gone = append(gone, keep[0])
		keep = keep[1:]
	}
	if len(keep) != len(old) {
		h.publishLocked(slices.Clip(keep))
	}
	// After the new view is published: a reader that still found a gone
	// chunk in the old view either retained it first or skips it.
	for _, c := range gone {
		c.release()
	}
}

// close drops the tier's references to every chunk; memory still held by
// readers' batches is freed when they release them.
func (h *hotTier) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.view.Load().sealed
	if h.open != nil {
		h.open.mem.release()
		h.open = nil
	}
	h.sealedBytes = 0
	h.publishLocked(nil)
	for _, c := range old {
		c.release()
	}
	h.spares.close()
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
// published prefix of the open chunk, each holding a reference to its
// memory that the caller releases. A chunk that retention dropped between
// loading the view and retaining it is left out.
func (h *hotTier) snapshot() []chunk {
	v := h.view.Load()
	out := make([]chunk, 0, len(v.sealed)+1)
	for _, c := range v.sealed {
		if c.mem != nil && !c.mem.tryRetain() {
			continue
		}
		out = append(out, *c)
	}
	if o := v.open; o != nil {
		if n := int(o.n.Load()); n > 0 && o.mem.tryRetain() {
			out = append(out, chunk{ts: o.ts[:n:n], sid: o.sid[:n:n], val: o.val[:n:n], mem: o.mem})
		}
	}
	return out
}

func (h *hotTier) seriesStats() []seriesStat {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.stats)
}

// samplesRecord wraps the rows of c as a record batch of
// schema.SamplesSchema without copying: ts and value are the chunk's own
// memory, and the three label columns are dictionaries that share the
// series-id column as their index buffer. When c.mem is set, the caller's
// reference to it passes to the batch, whose Release returns it.
func samplesRecord(c chunk, d *seriesDicts) arrow.RecordBatch {
	n := len(c.ts)
	buf := func(b []byte) *memory.Buffer {
		if c.mem == nil {
			return memory.NewBufferBytes(b)
		}
		c.mem.retain()
		return c.mem.buffer(b)
	}
	tsBuf := buf(arrow.Int64Traits.CastToBytes(c.ts))
	valBuf := buf(arrow.Float64Traits.CastToBytes(c.val))
	idx := buf(arrow.Int32Traits.CastToBytes(c.sid))
	c.release() // the buffers hold their own references now
	defer tsBuf.Release()
	defer valBuf.Release()
	defer idx.Release()
	tsData := array.NewData(schema.TimestampType, n, []*memory.Buffer{nil, tsBuf}, nil, 0, 0)
	valData := array.NewData(arrow.PrimitiveTypes.Float64, n, []*memory.Buffer{nil, valBuf}, nil, 0, 0)
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
