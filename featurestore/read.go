// The read side: Arrow snapshots of the hot tier, the view tables and the
// online view, and History over the chunk log and Badger. Everything here
// runs on the caller's goroutine and takes references or locks; no store
// goroutine waits for a reader.

package featurestore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/dgraph-io/badger/v4"

	"github.com/netfeat/netfeat/schema"
)

// TableSamples is the History table name of raw samples; every view name is
// a History table too.
const TableSamples = "samples"

// SnapshotSamples returns the hot tier as record batches of
// schema.SamplesSchema: every sealed chunk and the rows of the open chunk
// appended so far. Nothing is copied: the batches share the store's
// memory, which is never modified, so the snapshot stays consistent while
// appends continue. The caller releases each batch, and must not use it
// afterwards: the hot tier lives outside the Go heap, and a chunk that
// retention dropped is unmapped when its last batch is released.
func (s *Store) SnapshotSamples() []arrow.RecordBatch {
	chunks := s.hot.snapshot()
	d := s.series.dictionaries()
	out := make([]arrow.RecordBatch, 0, len(chunks))
	for _, c := range chunks {
		out = append(out, samplesRecord(c, d))
	}
	return out
}

// SnapshotView returns the view's recently closed rows (within
// retention_age) as record batches of schema.FeatureViewSchema(view). The
// caller releases each batch.
func (s *Store) SnapshotView(view string) ([]arrow.RecordBatch, error) {
	i, ok := s.viewIx[view]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownView, view)
	}
	return s.tables[i].snapshot(), nil
}

// SnapshotLatest returns the online view (one row per entity, its latest
// closed window, sorted by device and component) as one record batch of
// schema.FeatureViewSchema(view). The batch is cached until the next window
// close, so repeated queries share it. The caller releases it.
func (s *Store) SnapshotLatest(view string) ([]arrow.RecordBatch, error) {
	i, ok := s.viewIx[view]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownView, view)
	}
	o := s.online[i]
	o.snapMu.Lock()
	defer o.snapMu.Unlock()
	o.mu.RLock()
	if o.snap != nil && o.snapVer == o.ver {
		o.mu.RUnlock()
		o.snap.Retain()
		return []arrow.RecordBatch{o.snap}, nil
	}
	ver := o.ver
	rows := make([]*schema.FeatureRow, 0, len(o.rows))
	for _, r := range o.rows {
		rows = append(rows, r)
	}
	o.mu.RUnlock()
	sort.Slice(rows, func(a, b int) bool {
		if rows[a].Device != rows[b].Device {
			return rows[a].Device < rows[b].Device
		}
		return rows[a].Component < rows[b].Component
	})
	rec := rowsRecord(s.tables[i].schema, rows)
	if o.snap != nil {
		o.snap.Release()
	}
	o.snap, o.snapVer = rec, ver
	rec.Retain()
	return []arrow.RecordBatch{rec}, nil
}

// SnapshotSeries returns one record batch of schema.SeriesSchema: every
// series known, with first/last time, last value and sample count over
// what this process appended or recovered into the hot tier.
func (s *Store) SnapshotSeries() []arrow.RecordBatch {
	n := s.series.len()
	stats := s.hot.seriesStats()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema.SeriesSchema)
	defer b.Release()
	b.Reserve(n)
	for id := range n {
		d := s.series.def(int32(id))
		var st seriesStat
		if id < len(stats) {
			st = stats[id]
		}
		b.Field(0).(*array.StringBuilder).Append(d.device)
		b.Field(1).(*array.StringBuilder).Append(d.component)
		b.Field(2).(*array.StringBuilder).Append(d.metric)
		b.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(st.firstTS))
		b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(st.lastTS))
		b.Field(5).(*array.Float64Builder).Append(st.lastValue)
		b.Field(6).(*array.Int64Builder).Append(st.samples)
	}
	return []arrow.RecordBatch{b.NewRecordBatch()}
}

// History reads a table from Badger for event times in [from, to) (Unix
// ns): TableSamples from the persisted chunks and the WAL entries not yet
// in a chunk, or a view name for its persisted rows (by window end). Data
// is loaded one chunk at a time as the reader advances. The caller
// releases the reader.
func (s *Store) History(ctx context.Context, table string, from, to int64) (array.RecordReader, error) {
	if table == TableSamples {
		return s.sampleHistory(ctx, from, to)
	}
	i, ok := s.viewIx[table]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownView, table)
	}
	return s.viewHistory(ctx, i, from, to)
}

func (s *Store) sampleHistory(ctx context.Context, from, to int64) (array.RecordReader, error) {
	var metas []chunkMeta
	locs := map[chunkMeta]chunkLoc{}
	var tail []rec
	// No WAL segment is removed while the chunk keys and the WAL tail are
	// read, and the batches a chunk covers are told from its key, so a
	// chunk written concurrently is never counted twice or missed.
	s.wal.removeMu.RLock()
	err := s.db.View(func(txn *badger.Txn) error {
		var persisted uint64
		if it, err := txn.Get(keyChunked); err == nil {
			if v, err := it.ValueCopy(nil); err == nil && len(v) == 8 {
				persisted = bytesToSeq(v)
			}
		}
		if err := iteratePrefix(txn, []byte{prefixChunk}, true, func(k, v []byte) error {
			m, err := parseChunkKey(k)
			if err != nil {
				return fmt.Errorf("%s: %w: %w", keyString(k), err, ErrDamaged)
			}
			persisted = max(persisted, m.lastSeq)
			if m.maxTS >= from && m.minTS < to {
				l, err := decodeChunkLoc(v)
				if err != nil {
					return fmt.Errorf("%s: %w: %w", keyString(k), err, ErrDamaged)
				}
				metas = append(metas, m)
				locs[m] = l
			}
			return nil
		}); err != nil {
			return err
		}
		for _, id := range s.wal.ids() {
			b, err := s.wal.read(id)
			if err != nil {
				return fmt.Errorf("wal segment %016x: %w", id, err)
			}
			recs, _, _ := scanRecords(b, walMagic, plausibleWAL)
			for _, r := range recs {
				if r.body[0] != walKindBatch {
					continue
				}
				e, err := decodeWALRecord(r.body, persisted)
				if err != nil {
					return fmt.Errorf("wal segment %016x at byte %d: %w: %w", id, r.off, err, ErrDamaged)
				}
				for _, x := range e.recs {
					if x.ts >= from && x.ts < to {
						tail = append(tail, x)
					}
				}
			}
		}
		return nil
	})
	s.wal.removeMu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("history samples: %w", err)
	}
	sort.Slice(metas, func(i, j int) bool { return metas[i].firstSeq < metas[j].firstSeq })
	r := &lazyReader{schema: schema.SamplesSchema}
	r.refs.Store(1)
	dicts := s.series.dictionaries
	for _, m := range metas {
		r.next = append(r.next, func() (arrow.RecordBatch, error) {
			v, err := s.readChunkBytes(locs[m])
			if errors.Is(err, errSegmentMissing) {
				return filterRecord(&chunk{}, from, to, dicts()), nil // expired since the scan
			}
			if err != nil {
				return nil, fmt.Errorf("history %s: %w: %w", keyString(chunkKey(m)), err, ErrDamaged)
			}
			c, err := decodeChunk(v, m)
			if err != nil {
				return nil, fmt.Errorf("history %s: %w: %w", keyString(chunkKey(m)), err, ErrDamaged)
			}
			return filterRecord(c, from, to, dicts()), nil
		})
	}
	if len(tail) > 0 {
		r.next = append(r.next, func() (arrow.RecordBatch, error) {
			c := &chunk{ts: make([]int64, len(tail)), sid: make([]int32, len(tail)), val: make([]float64, len(tail))}
			for i, x := range tail {
				c.ts[i], c.sid[i], c.val[i] = x.ts, x.sid, x.value
			}
			return samplesRecord(*c, dicts()), nil
		})
	}
	r.ctx = ctx
	return r, nil
}

// filterRecord keeps the rows of c with ts in [from, to). It takes over
// the caller's reference to c's memory.
func filterRecord(c *chunk, from, to int64, d *seriesDicts) arrow.RecordBatch {
	if from == math.MinInt64 && to == math.MaxInt64 {
		return samplesRecord(*c, d)
	}
	ts, sid, val := make([]int64, 0, len(c.ts)), make([]int32, 0, len(c.ts)), make([]float64, 0, len(c.ts))
	for i, t := range c.ts {
		if t >= from && t < to {
			ts, sid, val = append(ts, t), append(sid, c.sid[i]), append(val, c.val[i])
		}
	}
	c.release()
	return samplesRecord(chunk{ts: ts, sid: sid, val: val}, d)
}

func (s *Store) viewHistory(ctx context.Context, i int, from, to int64) (array.RecordReader, error) {
	v := s.views[i]
	names := s.win.views[i].names
	prefix := viewPrefix(prefixRow, v.Name)
	var rows []*schema.FeatureRow
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		seek := append(append([]byte(nil), prefix...), byte(uint64(from)>>56), byte(uint64(from)>>48),
			byte(uint64(from)>>40), byte(uint64(from)>>32), byte(uint64(from)>>24), byte(uint64(from)>>16),
			byte(uint64(from)>>8), byte(uint64(from)))
		if from < 0 {
			seek = prefix
		}
		for it.Seek(seek); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			item := it.Item()
			val, err := item.ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("row %q: %w: %w", item.Key(), err, ErrDamaged)
			}
			r, err := decodeRow(val, v.Name, names)
			if err != nil {
				return fmt.Errorf("row %q: %w: %w", item.Key(), err, ErrDamaged)
			}
			if r.WindowEnd >= to {
				break
			}
			if r.WindowEnd >= from {
				rows = append(rows, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", v.Name, err)
	}
	r := &lazyReader{schema: s.tables[i].schema, ctx: ctx}
	r.refs.Store(1)
	for len(rows) > 0 {
		n := min(len(rows), viewSealRows)
		part := rows[:n]
		rows = rows[n:]
		r.next = append(r.next, func() (arrow.RecordBatch, error) { return rowsRecord(r.schema, part), nil })
	}
	return r, nil
}

// lazyReader is an array.RecordReader that builds each batch when asked.
type lazyReader struct {
	schema *arrow.Schema
	ctx    context.Context
	next   []func() (arrow.RecordBatch, error)
	cur    arrow.RecordBatch
	err    error
	refs   atomic.Int64
}

// Retain adds a reference.
func (r *lazyReader) Retain() { r.refs.Add(1) }

// Release drops a reference and the current batch with the last one.
func (r *lazyReader) Release() {
	if r.refs.Add(-1) == 0 && r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
}

// Schema is the table's schema.
func (r *lazyReader) Schema() *arrow.Schema { return r.schema }

// Next builds the next batch; false at the end or on an error.
func (r *lazyReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.err != nil || len(r.next) == 0 {
		return false
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return false
	}
	f := r.next[0]
	r.next = r.next[1:]
	r.cur, r.err = f()
	return r.err == nil
}

// RecordBatch is the current batch, valid until the next call to Next.
func (r *lazyReader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record returns the current batch.
//
// Deprecated: use RecordBatch.
func (r *lazyReader) Record() arrow.RecordBatch { return r.cur }

// Err is the error that ended the iteration, if any.
func (r *lazyReader) Err() error { return r.err }
