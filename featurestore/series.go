// The series table: ids for (device, component, metric, source), their
// definitions and each series' last sample (for de-duplication). Appending
// goroutines intern under its write lock; readers and the committer's
// de-duplication use its read lock, the last samples atomically.

package featurestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/netfeat/netfeat/schema"
)

// seriesKey identifies a series: one metric of one entity.
type seriesKey struct {
	device, component, metric string
}

// seriesDef is what the store knows of a series; it is persisted under
// keySeries once and never changes.
type seriesDef struct {
	seriesKey
	source string
}

// seriesTable interns series into dense int32 ids. Ids are assigned in
// order and never reused, so the hot tier stores one int32 per row and the
// label columns are dictionaries indexed by it.
type seriesTable struct {
	mu sync.RWMutex
	// ids indexes the series by a hash of their key (16 bytes a slot
	// where the three strings took 56); a key whose hash another series
	// already has goes to coll. lookup checks the key against defs.
	seed      maphash.Seed
	ids       map[uint64]int32
	coll      map[seriesKey]int32
	defs      []seriesDef
	last      []lastSample // per id, accessed atomically under mu's read lock
	max       int          // most series admit accepts; 0 means no limit
	walled    int          // defs[:walled] are durable: in the WAL or in Badger
	persisted int          // defs[:persisted] are in Badger (so WAL segments may go)

	dicts atomic.Pointer[seriesDicts]

	// mids[id] numbers defs[id]'s metric among the distinct metric names
	// (metricNames), so that a walk grouping series by metric compares
	// integers instead of hashing a string per series (EachLatest).
	mids        []int32
	metricIx    map[string]int32
	metricNames []string
}

// seriesDicts are the label dictionaries for series ids [0, n).
type seriesDicts struct {
	n                         int
	device, component, metric arrow.ArrayData
}

// newSeriesTable returns an empty table admitting at most maxSeries series (0:
// no limit).
func newSeriesTable(maxSeries int) *seriesTable {
	return &seriesTable{seed: maphash.MakeSeed(), ids: make(map[uint64]int32), metricIx: map[string]int32{}, max: maxSeries}
}

// appendDef adds the definition of the next id; the caller holds the
// write lock.
func (t *seriesTable) appendDef(d seriesDef) {
	mid, ok := t.metricIx[d.metric]
	if !ok {
		mid = int32(len(t.metricNames))
		t.metricIx[d.metric] = mid
		t.metricNames = append(t.metricNames, d.metric)
	}
	t.defs = append(t.defs, d)
	t.last = append(t.last, lastSample{ts: math.MinInt64})
	t.mids = append(t.mids, mid)
}

// hash is the ids key of a series key.
func (t *seriesTable) hash(k seriesKey) uint64 {
	var h maphash.Hash
	h.SetSeed(t.seed)
	h.WriteString(k.device)
	h.WriteByte(0)
	h.WriteString(k.component)
	h.WriteByte(0)
	h.WriteString(k.metric)
	return h.Sum64()
}

// lookup returns the id of k; the caller holds mu.
func (t *seriesTable) lookup(k seriesKey) (int32, bool) {
	if id, ok := t.ids[t.hash(k)]; ok && t.defs[id].seriesKey == k {
		return id, true
	}
	id, ok := t.coll[k]
	return id, ok
}

// index records id as k's; the caller holds mu for writing and k has no
// id yet.
func (t *seriesTable) index(k seriesKey, id int32) {
	h := t.hash(k)
	if _, taken := t.ids[h]; !taken {
		t.ids[h] = id
		return
	}
	if t.coll == nil {
		t.coll = make(map[seriesKey]int32)
	}
	t.coll[k] = id
}

// intern returns the id of the series, assigning one when it is new.
func (t *seriesTable) intern(device, component, metric, source string) int32 {
	k := seriesKey{device, component, metric}
	t.mu.RLock()
	id, ok := t.lookup(k)
	t.mu.RUnlock()
	if ok {
		return id
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if id, ok := t.lookup(k); ok {
		return id
	}
	id = int32(len(t.defs))
	t.index(k, id)
	t.appendDef(seriesDef{seriesKey: k, source: source})
	return id
}

// admitResult is what admit did with a sample's labels.
type admitResult uint8

const (
	admitOK       admitResult = iota
	admitReplaced             // invalid UTF-8 replaced with U+FFFD; admitted
	admitTooLong              // a label longer than MaxNameBytes; refused
	admitLimit                // a new series beyond max; refused
)

// admit is intern for Append's input, which may come from anywhere: a
// label longer than MaxNameBytes is refused, invalid UTF-8 is replaced
// with U+FFFD (every string in the store is valid UTF-8, so that DuckDB
// can compare and join on it), and a new series beyond max is refused.
// It returns -1 for a refused sample.
func (t *seriesTable) admit(device, component, metric, source string) (int32, admitResult) {
	if len(device) > MaxNameBytes || len(component) > MaxNameBytes || len(metric) > MaxNameBytes || len(source) > MaxNameBytes {
		return -1, admitTooLong
	}
	res := admitOK
	for _, p := range [...]*string{&device, &component, &metric, &source} {
		if !utf8.ValidString(*p) {
			*p = strings.ToValidUTF8(*p, "\uFFFD")
			res = admitReplaced
		}
	}
	k := seriesKey{device, component, metric}
	t.mu.RLock()
	id, ok := t.lookup(k)
	full := t.max > 0 && len(t.defs) >= t.max
	t.mu.RUnlock()
	if ok {
		return id, res
	}
	if full {
		return -1, admitLimit
	}
	return t.intern(device, component, metric, source), res
}

// lastSample is the newest event time of a series and its value's bits.
type lastSample struct {
	ts int64
	v  uint64
}

// dedup sets the sid of every record that repeats its series' newest
// sample (same event time, same value) to -1 and returns how many it
// marked. A gNMI re-subscribe sends the current values again with their
// original timestamps. Another value at the newest time is kept (a state
// may change twice within a timestamp's resolution) and becomes the
// newest value; older samples are left to the window engine's lateness
// rules. Concurrent appenders of one series may, rarely, both keep a
// duplicate: the time and the value are two atomic words.
func (t *seriesTable) dedup(recs []rec) int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for i := range recs {
		r := &recs[i]
		if r.sid < 0 || int(r.sid) >= len(t.last) {
			continue
		}
		l := &t.last[r.sid]
		bits := math.Float64bits(r.value)
		for {
			old := atomic.LoadInt64(&l.ts)
			if r.ts < old {
				break
			}
			if r.ts == old {
				if atomic.LoadUint64(&l.v) == bits {
					r.sid = -1
					n++
				} else {
					atomic.StoreUint64(&l.v, bits)
				}
				break
			}
			if atomic.CompareAndSwapInt64(&l.ts, old, r.ts) {
				atomic.StoreUint64(&l.v, bits)
				break
			}
		}
	}
	return n
}

// restoreLast sets each series' newest sample from the hot tier after
// recovery, so that a re-subscribe right after a restart is recognised.
func (t *seriesTable) restoreLast(stats []seriesStat) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for sid, st := range stats {
		if st.samples > 0 && sid < len(t.last) {
			t.last[sid] = lastSample{ts: st.lastTS, v: math.Float64bits(st.lastValue)}
		}
	}
}

// internBatch sets recs[i].sid for every sample of batch, taking the read
// lock once for the batch and the write lock only for new series. A
// sample that admit refuses gets sid -1; note receives every sample whose
// labels admit did not accept as they were.
func (t *seriesTable) internBatch(batch []schema.Sample, recs []rec, note func(i int, r admitResult)) {
	var miss []int
	t.mu.RLock()
	var prev *schema.Sample
	var prevID int32
	for i := range batch {
		x := &batch[i]
		if prev != nil && x.Device == prev.Device && x.Component == prev.Component && x.Metric == prev.Metric {
			recs[i].sid = prevID
			continue
		}
		id, ok := t.lookup(seriesKey{x.Device, x.Component, x.Metric})
		if !ok {
			miss = append(miss, i)
			prev = nil
			continue
		}
		recs[i].sid, prev, prevID = id, x, id
	}
	t.mu.RUnlock()
	for _, i := range miss {
		x := &batch[i]
		id, res := t.admit(x.Device, x.Component, x.Metric, x.Source)
		recs[i].sid = id
		if res != admitOK {
			note(i, res)
		}
	}
}

// restore adds a persisted definition with a known id during recovery.
func (t *seriesTable) restore(id int32, d seriesDef) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if int(id) != len(t.defs) {
		return fmt.Errorf("series %d found after %d series: ids must be dense", id, len(t.defs))
	}
	t.index(d.seriesKey, id)
	t.appendDef(d)
	t.persisted = len(t.defs)
	t.walled = len(t.defs)
	return nil
}

// restoreWAL adds a definition found in the WAL during recovery: the next
// id, or one already known with the same definition.
func (t *seriesTable) restoreWAL(id int32, d seriesDef) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case int(id) < len(t.defs):
		if t.defs[id].seriesKey != d.seriesKey {
			return fmt.Errorf("series %d is %v in the WAL but %v in Badger", id, d.seriesKey, t.defs[id].seriesKey)
		}
		return nil
	case int(id) > len(t.defs):
		return fmt.Errorf("series %d defined in the WAL after %d series: ids must be dense", id, len(t.defs))
	}
	t.index(d.seriesKey, id)
	t.appendDef(d)
	t.walled = len(t.defs)
	return nil
}

// unwalled returns the definitions not yet written to the WAL and the
// count to pass to markWalled once they are.
func (t *seriesTable) unwalled() (first int, defs []seriesDef) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.walled, t.defs[t.walled:len(t.defs):len(t.defs)]
}

func (t *seriesTable) markWalled(n int) {
	t.mu.Lock()
	t.walled = max(t.walled, n)
	t.mu.Unlock()
}

// unpersisted returns the definitions not yet in Badger and the count to
// pass to markPersisted once they are written.
func (t *seriesTable) unpersisted() (first int, defs []seriesDef) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.persisted, t.defs[t.persisted:len(t.defs):len(t.defs)]
}

func (t *seriesTable) markPersisted(n int) {
	t.mu.Lock()
	t.persisted = max(t.persisted, n)
	t.mu.Unlock()
}

func (t *seriesTable) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.defs)
}

func (t *seriesTable) def(id int32) seriesDef {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.defs[id]
}

// dictionaries returns label dictionaries covering at least every id
// assigned so far; they are rebuilt only when series were added.
func (t *seriesTable) dictionaries() *seriesDicts {
	n := t.len()
	if d := t.dicts.Load(); d != nil && d.n >= n {
		return d
	}
	t.mu.RLock()
	defs := t.defs[:len(t.defs):len(t.defs)]
	t.mu.RUnlock()
	build := func(get func(seriesDef) string) arrow.ArrayData {
		b := array.NewStringBuilder(memory.DefaultAllocator)
		defer b.Release()
		b.Reserve(len(defs))
		for _, d := range defs {
			b.Append(get(d))
		}
		a := b.NewStringArray()
		data := a.Data()
		data.Retain()
		a.Release()
		return data
	}
	d := &seriesDicts{
		n:         len(defs),
		device:    build(func(d seriesDef) string { return d.device }),
		component: build(func(d seriesDef) string { return d.component }),
		metric:    build(func(d seriesDef) string { return d.metric }),
	}
	t.dicts.Store(d)
	return d
}

// encodeSeriesDef appends the persisted form of d: four uvarint-length
// prefixed strings (device, component, metric, source).
func encodeSeriesDef(dst []byte, d seriesDef) []byte {
	for _, s := range [...]string{d.device, d.component, d.metric, d.source} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	return dst
}

var errTruncated = errors.New("truncated value")

func decodeSeriesDef(b []byte) (seriesDef, error) {
	var f [4]string
	for i := range f {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return seriesDef{}, errTruncated
		}
		f[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	if len(b) != 0 {
		return seriesDef{}, fmt.Errorf("%d trailing bytes", len(b))
	}
	return seriesDef{seriesKey: seriesKey{f[0], f[1], f[2]}, source: f[3]}, nil
}
