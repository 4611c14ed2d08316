// Recovery: what Start first loads from Badger, the WAL segments and the
// chunk log (series, chunks, the WAL tail), and what it then replays through
// the window engine (recent samples, the views' marks). Everything here runs on the
// goroutine that calls Start, before the store's goroutines exist,
// so it owns every field it touches.

package featurestore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// recover loads everything persisted. It runs before any goroutine starts.
func (s *Store) recover(ctx context.Context) error {
	var damaged [][]byte
	var placeholders []int32
	fail := func(kind string, key []byte, err error) error {
		if s.cfg.Recovery == RecoveryQuarantine {
			s.log.Error("quarantining damaged store entry", "kind", kind, "key", keyString(key), "err", err)
			s.m.damaged.WithLabelValues(kind).Inc()
			damaged = append(damaged, append([]byte(nil), key...))
			return nil
		}
		return fmt.Errorf("%s: %w: %w", keyString(key), err, ErrDamaged)
	}
	if err := s.checkFormat(); err != nil {
		return err
	}
	var metas []chunkMeta
	locs := map[chunkMeta]chunkLoc{}
	err := s.db.View(func(txn *badger.Txn) error {
		// Series: ids are dense from 0.
		if err := iteratePrefix(txn, []byte{prefixSeries}, true, func(k, v []byte) error {
			if len(k) != 5 {
				return fail("series", k, fmt.Errorf("key of %d bytes", len(k)))
			}
			id := int32(uint32(k[1])<<24 | uint32(k[2])<<16 | uint32(k[3])<<8 | uint32(k[4]))
			d, err := decodeSeriesDef(v)
			if err != nil {
				if err := fail("series", k, err); err != nil {
					return err
				}
				// Keep ids dense: the samples of this series stay readable
				// under a placeholder name, persisted in place of the entry.
				d = placeholderSeries(id)
				placeholders = append(placeholders, id)
			}
			if err := s.series.restore(id, d); err != nil {
				return fail("series", k, err)
			}
			return nil
		}); err != nil {
			return err
		}

		// Chunks: plan from the keys (their values say where each chunk
		// is in the chunk log).
		if err := iteratePrefix(txn, []byte{prefixChunk}, true, func(k, v []byte) error {
			m, err := parseChunkKey(k)
			if err != nil {
				return fail("chunk", k, err)
			}
			l, err := decodeChunkLoc(v)
			if err != nil {
				return fail("chunk", k, err)
			}
			metas = append(metas, m)
			locs[m] = l
			return nil
		}); err != nil {
			return err
		}
		for _, m := range metas {
			s.seq = max(s.seq, m.lastSeq)
		}
		if it, err := txn.Get(keyChunked); err == nil {
			v, err := it.ValueCopy(nil)
			if err != nil || len(v) != 8 {
				return fmt.Errorf("read last chunked WAL sequence: %w", ErrDamaged)
			}
			s.seq = max(s.seq, bytesToSeq(v))
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("read last chunked WAL sequence: %w: %w", err, ErrDamaged)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(metas, func(i, j int) bool { return metas[i].firstSeq < metas[j].firstSeq })
	s.persistedSeq.Store(s.seq)
	persisted := s.seq

	// WAL: series defined since Badger last had them, and the batches after
	// the last persisted chunk.
	damage, err := s.scanWAL(persisted, func(_ uint64, e walEntry) error {
		switch e.kind {
		case walKindSeries:
			return s.series.restoreWAL(e.sid, e.def)
		case walKindBatch:
			s.seq = max(s.seq, e.seq)
			if e.seq <= persisted {
				return nil // covered by a chunk
			}
			if err := s.checkSeriesRecs(e.recs); err != nil {
				return fmt.Errorf("batch %d: %w", e.seq, err)
			}
			s.replayWAL = append(s.replayWAL, &pending{recs: e.recs, seq: e.seq})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(damage) > 0 {
		if s.cfg.Recovery != RecoveryQuarantine {
			return fmt.Errorf("%w: %w", damage[0], ErrDamaged)
		}
		if err := s.quarantineWAL(damage); err != nil {
			return err
		}
	}
	sort.Slice(s.replayWAL, func(i, j int) bool { return s.replayWAL[i].seq < s.replayWAL[j].seq })
	for _, id := range s.wal.ids() {
		s.seq = max(s.seq, id)
	}

	// Load the newest chunks within retention and budget.
	cutoff := time.Now().Add(-s.cfg.RetentionAge).UnixNano()
	budget := int64(s.cfg.MemoryBudget) - int64(s.cfg.SealRows)*bytesPerRow
	var want []chunkMeta
	var used int64
	for i := len(metas) - 1; i >= 0; i-- {
		m := metas[i]
		if m.maxTS < cutoff || used+int64(m.rows)*bytesPerRow > budget {
			break
		}
		used += int64(m.rows) * bytesPerRow
		want = append(want, m)
	}
	load, err := s.loadChunks(ctx, want, locs, fail)
	if err != nil {
		return err
	}
	for i := len(load) - 1; i >= 0; i-- {
		s.hot.load(load[i])
	}
	s.replayFrom = load

	for _, p := range s.replayWAL {
		for _, c := range s.hot.append(p.recs, p.seq, time.Now()) {
			err := s.persistChunks([]*chunk{c}) // synchronous: no goroutines yet
			c.release()
			if err != nil {
				return fmt.Errorf("persist recovered chunk: %w", err)
			}
		}
	}
	if err := s.quarantine(damaged); err != nil {
		return err
	}
	for _, id := range placeholders {
		d := placeholderSeries(id)
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(seriesKeyBytes(id), encodeSeriesDef(nil, d)) }); err != nil {
			return fmt.Errorf("write placeholder for damaged series %d: %w", id, err)
		}
		s.log.Error("damaged series definition replaced by a placeholder", "series", id, "device", d.device)
	}
	if err := s.trimWAL(); err != nil {
		return err
	}
	if err := s.expireChunkSegments(time.Now()); err != nil {
		s.log.Warn("expire chunk segments", "err", err)
	}
	return s.loadOnline()
}

// checkFormat refuses a store of another format than formatVersion, and
// writes formatVersion into a new store.
func (s *Store) checkFormat() error {
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(keyFormat)
		if err != nil {
			return err
		}
		v, err = it.ValueCopy(nil)
		return err
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(keyFormat, []byte(formatVersion)) }); err != nil {
			return fmt.Errorf("write store format: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("read store format: %w: %w", err, ErrDamaged)
	case string(v) != formatVersion:
		return fmt.Errorf("store format %q: this binary reads %q", v, formatVersion)
	}
	return nil
}

// placeholderSeries names a series whose definition was damaged.
func placeholderSeries(id int32) seriesDef {
	return seriesDef{seriesKey: seriesKey{device: fmt.Sprintf("damaged-series-%d", id), metric: "unknown"}}
}

// loadChunks reads the chunks of metas (newest first) from the chunk log
// and decodes them on every core. Damaged ones go through fail; a nil
// result for a damaged chunk is left out.
func (s *Store) loadChunks(ctx context.Context, metas []chunkMeta, locs map[chunkMeta]chunkLoc, fail func(string, []byte, error) error) ([]*chunk, error) {
	type job struct {
		i int
		v []byte
	}
	out := make([]*chunk, len(metas))
	errs := make([]error, len(metas))
	jobs := make(chan job, 4)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				c, err := decodeChunk(j.v, metas[j.i])
				if err == nil {
					if err = s.checkSeries(c.sid); err != nil {
						c.release()
						c = nil
					}
				}
				out[j.i], errs[j.i] = c, err
			}
		})
	}
	var readErr error
	for i, m := range metas {
		if readErr = ctx.Err(); readErr != nil {
			break
		}
		v, err := s.readChunkBytes(locs[m])
		if err != nil {
			errs[i] = err
			continue
		}
		jobs <- job{i, v}
	}
	close(jobs)
	wg.Wait()
	if readErr != nil {
		for _, c := range out {
			if c != nil {
				c.release()
			}
		}
		return nil, readErr
	}
	load := make([]*chunk, 0, len(metas))
	for i, m := range metas {
		if errs[i] != nil {
			if err := fail("chunk", chunkKey(m), errs[i]); err != nil {
				for _, c := range out {
					if c != nil {
						c.release()
					}
				}
				return nil, err
			}
			continue
		}
		load = append(load, out[i])
	}
	return load, nil
}

func (s *Store) checkSeries(sids []int32) error {
	n := int32(s.series.len())
	for _, id := range sids {
		if id < 0 || id >= n {
			return fmt.Errorf("series id %d unknown (%d series persisted)", id, n)
		}
	}
	return nil
}

func (s *Store) checkSeriesRecs(recs []rec) error {
	n := int32(s.series.len())
	for i := range recs {
		if recs[i].sid < 0 || recs[i].sid >= n {
			return fmt.Errorf("series id %d unknown (%d series persisted)", recs[i].sid, n)
		}
	}
	return nil
}

// quarantine moves damaged entries under prefixQuarantine, keeping their
// bytes for inspection.
func (s *Store) quarantine(keys [][]byte) error {
	for _, k := range keys {
		err := s.db.Update(func(txn *badger.Txn) error {
			var v []byte
			if item, err := txn.Get(k); err == nil {
				v, _ = item.ValueCopy(nil) // unreadable values are quarantined empty
			}
			if err := txn.Set(append([]byte{prefixQuarantine}, k...), v); err != nil {
				return err
			}
			return txn.Delete(k)
		})
		if err != nil {
			return fmt.Errorf("quarantine %q: %w", k, err)
		}
	}
	return nil
}

func iteratePrefix(txn *badger.Txn, prefix []byte, values bool, fn func(k, v []byte) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = values
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		var v []byte
		if values {
			var err error
			if v, err = item.ValueCopy(nil); err != nil {
				if err := fn(item.KeyCopy(nil), nil); err != nil {
					return fmt.Errorf("read %q: %w", item.Key(), err)
				}
				continue
			}
		}
		if err := fn(item.Key(), v); err != nil {
			return err
		}
	}
	return nil
}

func bytesToSeq(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

// replayWindows feeds the recent hot-tier history through the window
// engine: enough event time to fill the longest window of every view.
func (s *Store) replayWindows(ctx context.Context) error {
	defer func() { s.replayFrom, s.replayWAL = nil, nil }()
	if len(s.views) == 0 {
		return nil
	}
	if err := s.loadMarks(); err != nil {
		return err
	}
	var span int64
	for _, v := range s.views {
		span = max(span, int64(v.MaxWindow()+v.AllowedLateness+v.Hop))
	}
	// Event times beyond the clock skew limit (a device clock in the
	// future) neither choose what is replayed nor move a watermark: one
	// such sample must not make the replay skip everyone else's history.
	now := time.Now()
	future := now.UnixNano() + int64(s.cfg.MaxClockSkew)
	newest := int64(math.MinInt64)
	for _, c := range s.replayFrom {
		for _, ts := range c.ts {
			if ts <= future {
				newest = max(newest, ts)
			}
		}
	}
	for _, p := range s.replayWAL {
		for _, r := range p.recs {
			if r.ts <= future && r.ts-r.ingest <= int64(s.cfg.MaxClockSkew) {
				newest = max(newest, r.ts)
			}
		}
	}
	chunks := append([]*chunk(nil), s.replayFrom...)
	sort.Slice(chunks, func(i, j int) bool { return chunks[i].firstSeq < chunks[j].firstSeq })
	var recs []rec
	for _, c := range chunks {
		if c.maxTS < newest-span || c.lastSeq > s.persistedSeq.Load() {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		recs = recs[:0]
		for i := range c.ts {
			// Chunks keep no ingest time: a sample from the future gets
			// the replay's, so that the window engine's guard sees it.
			ingest := c.ts[i]
			if ingest > future {
				ingest = now.UnixNano()
			}
			recs = append(recs, rec{ts: c.ts[i], ingest: ingest, value: c.val[i], sid: c.sid[i]})
		}
		s.win.process(recs, now)
		s.settle()
	}
	for _, p := range s.replayWAL {
		s.win.process(p.recs, now)
		s.settle()
	}
	return nil
}

func (s *Store) loadMarks() error {
	return s.db.View(func(txn *badger.Txn) error {
		for i, v := range s.views {
			item, err := txn.Get(markKey(v.Name))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read window mark of view %s: %w", v.Name, err)
			}
			b, err := item.ValueCopy(nil)
			if err != nil || len(b) != 8 {
				return fmt.Errorf("window mark of view %s: %w", v.Name, ErrDamaged)
			}
			mark := int64(bytesToSeq(b))
			if limit := time.Now().UnixNano() + int64(s.cfg.MaxClockSkew); mark > limit {
				// Written while a device clock in the future moved the
				// watermark (before the skew guard): honouring it would
				// suppress every window until that date. Windows may be
				// delivered again (at-least-once).
				s.log.Warn("window mark in the future ignored", "view", v.Name, "mark", time.Unix(0, mark).UTC())
				mark = 0
			}
			s.win.views[i].mark = mark
		}
		return nil
	})
}
