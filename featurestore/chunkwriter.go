// The chunk writer goroutine: it owns the chunk log's write side and
// chunkEnc, persists sealed chunks in seal order, records them in Badger,
// and then removes the WAL segments they cover. Recovery calls the same
// functions before the goroutine starts.

package featurestore

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// trimWAL removes the WAL segments whose every batch is in a persisted
// chunk. The chunk keys that cover them are synced first (Badger does not
// sync on its own under any fsync policy), so that a power loss can never
// leave a batch in neither place.
func (s *Store) trimWAL() error {
	persisted := s.persistedSeq.Load()
	ids := s.wal.ids()
	var del []uint64
	// Every batch in segment i has a sequence number below segment i+1's
	// id; the newest segment is never removed.
	for i := 0; i+1 < len(ids) && ids[i+1]-1 <= persisted; i++ {
		del = append(del, ids[i])
	}
	if len(del) == 0 {
		return nil
	}
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("sync badger before removing wal segments: %w", err)
	}
	if err := s.wal.remove(del); err != nil {
		return fmt.Errorf("remove wal segments: %w", err)
	}
	return nil
}

// expireChunkSegments removes chunk segments written longer than chunk_ttl
// ago: every chunk key pointing into them has expired (a key's TTL starts
// when the chunk is written, before the file's last write).
func (s *Store) expireChunkSegments(now time.Time) error {
	if s.cfg.ChunkTTL <= 0 {
		return nil
	}
	cur, _, hasCur := s.chunks.current()
	var del []uint64
	for _, id := range s.chunks.ids() {
		if hasCur && id == cur {
			continue
		}
		st, err := os.Stat(s.chunks.path(id))
		if err != nil {
			continue
		}
		if now.Sub(st.ModTime()) > s.cfg.ChunkTTL {
			del = append(del, id)
		}
	}
	return s.chunks.remove(del)
}

// chunkWriter persists sealed chunks in seal order, a few at a time, then
// removes the WAL segments they cover. A failed write is retried: a later
// chunk must never be persisted before an earlier one, or recovery would
// skip WAL batches.
func (s *Store) chunkWriter() {
	defer s.wg.Done()
	batch := make([]*chunk, 0, 16)
	for c := range s.chunkCh {
		batch = append(batch[:0], c)
	more:
		for len(batch) < cap(batch) {
			select {
			case c, ok := <-s.chunkCh:
				if !ok {
					break more
				}
				batch = append(batch, c)
			default:
				break more
			}
		}
		err := s.persistChunks(batch)
		for _, c := range batch {
			c.release()
		}
		if err != nil {
			// Their samples stay in the WAL and recovery replays them; a
			// later chunk must not be persisted ahead of them, so stop until
			// restart.
			s.log.Error("giving up on chunk writes until restart; the WAL keeps growing", "err", err)
			for c := range s.chunkCh {
				c.release()
			}
			return
		}
		if err := s.trimWAL(); err != nil {
			s.log.Warn("WAL segments covered by chunks not removed yet", "err", err)
		}
	}
}

// persistChunks writes cs (in seal order), retrying a few times with
// backoff.
func (s *Store) persistChunks(cs []*chunk) error {
	var err error
	for attempt := range 5 {
		if err = s.writeChunks(cs); err == nil {
			s.m.chunkPersist.WithLabelValues("ok").Add(float64(len(cs)))
			return nil
		}
		s.m.chunkPersist.WithLabelValues("error").Inc()
		s.log.Error("chunk write failed; its samples stay in the WAL", "first_seq", cs[0].firstSeq,
			"last_seq", cs[len(cs)-1].lastSeq, "err", err)
		time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
	}
	return err
}

// writeChunks appends the chunks to the chunk log and fdatasyncs it, then
// records them in Badger (key: metadata; value: location), with the
// series definitions Badger does not have yet and the last WAL sequence
// number now covered. A chunk is in Badger only once its bytes are on
// stable storage.
func (s *Store) writeChunks(cs []*chunk) error {
	type written struct {
		m   chunkMeta
		loc chunkLoc
	}
	out := make([]written, 0, len(cs))
	for _, c := range cs {
		buf, err := s.chunkEnc.record(c)
		if err != nil {
			return err
		}
		seg, off, err := s.chunks.append(c.firstSeq, buf, false)
		if err != nil {
			return fmt.Errorf("write chunk: %w", err)
		}
		m := chunkMeta{firstSeq: c.firstSeq, lastSeq: c.lastSeq, minTS: c.minTS, maxTS: c.maxTS, rows: uint32(c.rows())}
		out = append(out, written{m, chunkLoc{seg: seg, off: off, n: uint32(len(buf))}})
	}
	if err := s.chunks.sync(); err != nil {
		return fmt.Errorf("write chunk: %w", err)
	}
	// Series first (a write batch: there may be more than one transaction
	// holds), then the chunks that use them.
	first, defs := s.series.unpersisted()
	if len(defs) > 0 {
		wb := s.db.NewWriteBatch()
		for i, d := range defs {
			if err := wb.Set(seriesKeyBytes(int32(first+i)), encodeSeriesDef(nil, d)); err != nil {
				wb.Cancel()
				return fmt.Errorf("record series in badger: %w", err)
			}
		}
		if err := wb.Flush(); err != nil {
			return fmt.Errorf("record series in badger: %w", err)
		}
		s.series.markPersisted(first + len(defs))
	}
	last := cs[len(cs)-1].lastSeq
	err := s.db.Update(func(txn *badger.Txn) error {
		for _, w := range out {
			e := badger.NewEntry(chunkKey(w.m), encodeChunkLoc(w.loc))
			if s.cfg.ChunkTTL > 0 {
				e = e.WithTTL(s.cfg.ChunkTTL)
			}
			if err := txn.SetEntry(e); err != nil {
				return err
			}
		}
		return txn.Set(keyChunked, binary.BigEndian.AppendUint64(nil, last))
	})
	if err != nil {
		return fmt.Errorf("record chunks in badger: %w", err)
	}
	s.persistedSeq.Store(last)
	return nil
}
