// The online view (the latest row per entity, in memory and in Badger) and
// the view tables of recently closed rows. The row writer goroutine owns
// their persistence: it writes closed rows, the latest rows and the views'
// marks to Badger in batches. The in-memory maps are set by whoever runs
// the window engine (under winMu) and read by any goroutine under their
// own locks.

package featurestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/dgraph-io/badger/v4"

	"github.com/netfeat/netfeat/schema"
)

// onlineView is the latest feature row per entity of one view.
type onlineView struct {
	mu   sync.RWMutex
	rows map[schema.Entity]*schema.FeatureRow // read-only rows
	ver  uint64                               // bumped by every set
	// entities is len(rows), read without mu: it sizes the row writer's
	// queue (settle).
	entities atomic.Int64

	// snap caches the whole view as one record batch for SQL: rebuilt by
	// SnapshotLatest only when ver moved since, so queries between window
	// closes do not sort and copy every entity's row again.
	snapMu  sync.Mutex
	snap    arrow.RecordBatch
	snapVer uint64
}

func newOnlineView() *onlineView { return &onlineView{rows: map[schema.Entity]*schema.FeatureRow{}} }

func (o *onlineView) set(r *schema.FeatureRow) {
	o.mu.Lock()
	if old, ok := o.rows[r.Entity]; !ok || old.WindowEnd <= r.WindowEnd {
		if !ok {
			o.entities.Add(1)
		}
		o.rows[r.Entity] = r
		o.ver++
	}
	o.mu.Unlock()
}

// Latest returns a copy of the latest closed feature row of the entity in
// the view, and false when there is none (or the view is unknown).
func (s *Store) Latest(view string, e schema.Entity) (*schema.FeatureRow, bool) {
	i, ok := s.viewIx[view]
	if !ok {
		return nil, false
	}
	o := s.online[i]
	o.mu.RLock()
	r, ok := o.rows[e]
	o.mu.RUnlock()
	if !ok {
		return nil, false
	}
	c := *r
	c.Values = slices.Clone(r.Values)
	return &c, true
}

// viewTable keeps the recently closed rows of one view for SQL, as sealed
// record batches plus an open list of rows.
type viewTable struct {
	schema *arrow.Schema
	mu     sync.Mutex
	sealed []viewBatch
	open   []*schema.FeatureRow
}

type viewBatch struct {
	rec    arrow.RecordBatch
	maxEnd int64
}

const viewSealRows = 4096

func newViewTable(v schema.FeatureView) *viewTable {
	return &viewTable{schema: schema.FeatureViewSchema(v)}
}

func (t *viewTable) add(r *schema.FeatureRow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.open = append(t.open, r)
	if len(t.open) >= viewSealRows {
		t.sealed = append(t.sealed, viewBatch{rec: rowsRecord(t.schema, t.open), maxEnd: maxEnd(t.open)})
		t.open = nil
	}
}

func maxEnd(rows []*schema.FeatureRow) int64 {
	m := int64(math.MinInt64)
	for _, r := range rows {
		m = max(m, r.WindowEnd)
	}
	return m
}

// retain releases sealed batches whose newest window ended before cutoff.
func (t *viewTable) retain(cutoff int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keep := t.sealed[:0]
	for _, b := range t.sealed {
		if b.maxEnd < cutoff {
			b.rec.Release()
			continue
		}
		keep = append(keep, b)
	}
	clear(t.sealed[len(keep):])
	t.sealed = keep
}

func (t *viewTable) snapshot() []arrow.RecordBatch {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]arrow.RecordBatch, 0, len(t.sealed)+1)
	for _, b := range t.sealed {
		b.rec.Retain()
		out = append(out, b.rec)
	}
	if len(t.open) > 0 {
		out = append(out, rowsRecord(t.schema, t.open))
	}
	return out
}

// rowsRecord builds a record batch of a view's schema from rows.
func rowsRecord(sc *arrow.Schema, rows []*schema.FeatureRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	b.Reserve(len(rows))
	ws := b.Field(0).(*array.TimestampBuilder)
	we := b.Field(1).(*array.TimestampBuilder)
	dev := b.Field(2).(*array.StringBuilder)
	comp := b.Field(3).(*array.StringBuilder)
	for _, r := range rows {
		ws.Append(arrow.Timestamp(r.WindowStart))
		we.Append(arrow.Timestamp(r.WindowEnd))
		dev.Append(r.Device)
		comp.Append(r.Component)
		for i, v := range r.Values {
			fb := b.Field(4 + i).(*array.Float64Builder)
			if math.IsNaN(v) {
				fb.AppendNull()
			} else {
				fb.Append(v)
			}
		}
	}
	return b.NewRecordBatch()
}

// emit receives every window the engine closes, on whichever goroutine
// runs the engine (see Store.toWindows; or in Start's replay). Subscribers
// get the row at once: they are the latency-critical path, and a hop
// closes one row per entity, so every row waits for the ones before it.
// The store's own bookkeeping (online view, view table, row writer,
// counters) waits until the batch is through the engine: settle.
func (s *Store) emit(ve *viewEngine, row *schema.FeatureRow, reason closeReason, suppressed bool) {
	if suppressed {
		return // delivered before the restart; the online view already has it
	}
	row.ClosedAt = time.Now().UnixNano()
	kept := *row
	kept.Values = slices.Clone(row.Values)
	// Each subscriber gets its own row; the store keeps kept.
	subs := *s.subs.Load()
	for j, h := range subs {
		r := row
		if j < len(subs)-1 {
			c := *row
			c.Values = slices.Clone(row.Values)
			r = &c
		}
		if j == 0 && reason != closeIdle && s.curAccepted != 0 {
			d := time.Since(time.Unix(0, s.curAccepted))
			s.m.closeLatency.Observe(d.Seconds())
			if s.closeHook != nil {
				s.closeHook(d)
			}
		}
		h(r)
	}
	s.emitted = append(s.emitted, rowWrite{view: ve.index, row: &kept, reason: reason})
}

// settle does the bookkeeping of the rows emitted since the last call:
// the online view, the view table, the counters, and one hand-off of all
// of them to the row writer (whose queue holds at most rowQueueLimit rows;
// rows beyond are counted as unpersisted).
func (s *Store) settle() {
	if len(s.emitted) == 0 {
		return
	}
	rows := s.emitted
	s.emitted = nil
	for _, w := range rows {
		if w.row == nil {
			continue // a mark
		}
		s.online[w.view].set(w.row)
		s.tables[w.view].add(w.row)
		s.m.closed[w.view][closeIndex(w.reason)].Inc()
	}
	if s.rowsQueued.Add(int64(len(rows))) <= s.rowQueueLimit() {
		select {
		case s.rowCh <- rows:
			return
		default:
		}
	}
	s.rowsQueued.Add(-int64(len(rows)))
	for _, w := range rows {
		if w.row != nil {
			s.m.unpersisted[w.view].Inc()
		}
	}
}

// markClosed queues the view's new mark for the row writer, behind the
// rows closed before it: every entity has closed (and delivered) every
// window ending at or before end.
func (s *Store) markClosed(ve *viewEngine, end int64) {
	s.emitted = append(s.emitted, rowWrite{view: ve.index, mark: end})
}

// rowBatchDelay is how long the row writer collects closed rows before it
// writes them to Badger: one write (and one wake-up of Badger's writer)
// per delay instead of one per batch that closed windows, off the
// moments windows close.
const rowBatchDelay = 25 * time.Millisecond

// maxQueuedRows bounds the closed rows waiting for the row writer.
const maxQueuedRows = 65536

// rowQueueLimit is how many closed rows may wait for the row writer:
// maxQueuedRows, or twice the views' entities when that is more, so that
// the burst of one hop's closes of every entity (250,000 interfaces of
// 5,000 routers) is persisted rather than dropped while Badger writes the
// previous one. The queue's memory stays proportional to the online
// view's, which holds a row per entity already.
func (s *Store) rowQueueLimit() int64 {
	var n int64
	for _, o := range s.online {
		n += o.entities.Load()
	}
	return max(maxQueuedRows, 2*n)
}

// rowWrite is one closed row, or a new mark of the view, for the row
// writer.
type rowWrite struct {
	view   int                // index in Store.views
	row    *schema.FeatureRow // nil for a mark
	reason closeReason
	mark   int64 // with row nil: every window ending at or before it is closed
}

// encodeRow is the persisted form of a feature row (docs/format/badger-keys.md):
// entity, window start and end, last ingest, closed-at, count, values.
func encodeRow(dst []byte, r *schema.FeatureRow) []byte {
	dst = appendEntity(dst, r.Entity)
	for _, v := range [...]int64{r.WindowStart, r.WindowEnd, r.LastIngestTS, r.ClosedAt} {
		dst = binary.BigEndian.AppendUint64(dst, uint64(v))
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Values)))
	for _, v := range r.Values {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
	}
	return dst
}

func readString(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return "", nil, errTruncated
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

func decodeRow(b []byte, view string, names []string) (*schema.FeatureRow, error) {
	r := &schema.FeatureRow{View: view, Names: names}
	var err error
	if r.Device, b, err = readString(b); err != nil {
		return nil, err
	}
	if r.Component, b, err = readString(b); err != nil {
		return nil, err
	}
	if len(b) < 32 {
		return nil, errTruncated
	}
	r.WindowStart = int64(binary.BigEndian.Uint64(b))
	r.WindowEnd = int64(binary.BigEndian.Uint64(b[8:]))
	r.LastIngestTS = int64(binary.BigEndian.Uint64(b[16:]))
	r.ClosedAt = int64(binary.BigEndian.Uint64(b[24:]))
	b = b[32:]
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) != n*8 {
		return nil, errTruncated
	}
	if int(n) != len(names) {
		return nil, fmt.Errorf("row has %d values, view has %d features (view definition changed?)", n, len(names))
	}
	b = b[k:]
	r.Values = make([]float64, n)
	for i := range r.Values {
		r.Values[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return r, nil
}

// rowWriter persists closed rows, the online view and the watermark marks
// in batches.
func (s *Store) rowWriter() {
	defer s.wg.Done()
	batch := make([]rowWrite, 0, 1024)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for rows := range s.rowCh {
		batch = append(batch[:0], rows...)
		t.Reset(rowBatchDelay)
	more:
		for len(batch) < cap(batch) {
			select {
			case rows, ok := <-s.rowCh:
				if !ok {
					break more
				}
				batch = append(batch, rows...)
			case <-t.C:
				break more
			}
		}
		t.Stop()
		if err := s.writeRows(batch); err != nil {
			s.log.Error("persist feature rows", "rows", len(batch), "err", err)
			for _, w := range batch {
				if w.row != nil {
					s.m.unpersisted[w.view].Inc()
				}
			}
		}
		s.rowsQueued.Add(-int64(len(batch)))
	}
}

func (s *Store) writeRows(batch []rowWrite) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	marks := map[string]int64{}
	for _, w := range batch {
		view := s.views[w.view].Name
		if w.row == nil {
			marks[view] = max(marks[view], w.mark)
			continue
		}
		v := encodeRow(nil, w.row)
		e := badger.NewEntry(rowKey(view, w.row.WindowEnd, w.row.Entity), v)
		if s.cfg.ChunkTTL > 0 {
			e = e.WithTTL(s.cfg.ChunkTTL)
		}
		if err := wb.SetEntry(e); err != nil {
			return err
		}
		if err := wb.Set(latestKey(view, w.row.Entity), v); err != nil {
			return err
		}
	}
	for view, end := range marks {
		if err := wb.Set(markKey(view), binary.BigEndian.AppendUint64(nil, uint64(end))); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// loadOnline restores the online view from Badger.
func (s *Store) loadOnline() error {
	return s.db.View(func(txn *badger.Txn) error {
		for i, v := range s.views {
			names := s.win.views[i].names
			err := iteratePrefix(txn, viewPrefix(prefixLatest, v.Name), true, func(k, val []byte) error {
				r, err := decodeRow(val, v.Name, names)
				if err != nil {
					if errors.Is(err, errTruncated) {
						err = fmt.Errorf("%w: %w", err, ErrDamaged)
					}
					s.m.damaged.WithLabelValues("online").Inc()
					s.log.Warn("skipping unreadable online-view row; the next window close replaces it", "key", fmt.Sprintf("%q", k), "err", err)
					return nil
				}
				s.online[i].set(r)
				return nil
			})
			if err != nil {
				return fmt.Errorf("load online view %s: %w", v.Name, err)
			}
		}
		return nil
	})
}
