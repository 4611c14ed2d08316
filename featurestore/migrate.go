package featurestore

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// migrateV1 moves a format-1 store's WAL frames and chunks out of Badger
// into the segment files of format 2. It can be interrupted at any point
// and run again:
//
//  1. every chunk whose key still holds the Arrow IPC stream is appended to
//     the chunk log, synced, and its key's value replaced by the location
//     (same key, same expiry);
//  2. the WAL frames after the last chunk are written to a fresh WAL
//     segment (any segment a previous attempt left is removed first),
//     synced;
//  3. the format key says 2 (synced); from then on format-1 WAL keys are
//     ignored, and they are deleted last.
func (s *Store) migrateV1() error {
	s.log.Info("migrating the store from format 1 (WAL and chunks in Badger) to format 2 (segment files)", "dir", s.dir)
	type old struct {
		key, val  []byte
		expiresAt uint64
	}
	var chunks []old
	var persisted uint64
	err := s.db.View(func(txn *badger.Txn) error {
		if it, err := txn.Get(keyChunked); err == nil {
			if v, err := it.ValueCopy(nil); err == nil && len(v) == 8 {
				persisted = bytesToSeq(v)
			}
		}
		return iteratePrefix(txn, []byte{prefixChunk}, false, func(k, _ []byte) error {
			if m, err := parseChunkKey(k); err == nil {
				persisted = max(persisted, m.lastSeq)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}

	// 1. Chunks, a few at a time (each value is up to a few MB).
	var keys [][]byte
	err = s.db.View(func(txn *badger.Txn) error {
		return iteratePrefix(txn, []byte{prefixChunk}, false, func(k, _ []byte) error {
			keys = append(keys, append([]byte(nil), k...))
			return nil
		})
	})
	if err != nil {
		return err
	}
	for len(keys) > 0 {
		n := min(len(keys), 64)
		part := keys[:n]
		keys = keys[n:]
		chunks = chunks[:0]
		err := s.db.View(func(txn *badger.Txn) error {
			for _, k := range part {
				item, err := txn.Get(k)
				if err != nil {
					return err
				}
				v, err := item.ValueCopy(nil)
				if err != nil {
					// Left as it is: recovery reports (or quarantines) it.
					s.log.Error("format-1 chunk unreadable; left for recovery to report", "key", keyString(k), "err", err)
					continue
				}
				if len(v) == chunkLocLen && v[0] == chunkLocTag {
					continue // moved by an earlier attempt
				}
				chunks = append(chunks, old{k, v, item.ExpiresAt()})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read format-1 chunks: %w", err)
		}
		if len(chunks) == 0 {
			continue
		}
		locs := make([]chunkLoc, len(chunks))
		var buf []byte
		for i, c := range chunks {
			m, _ := parseChunkKey(c.key)
			buf = appendChunkRecord(buf[:0], c.val)
			seg, off, err := s.chunks.append(m.firstSeq, buf, false)
			if err != nil {
				return err
			}
			locs[i] = chunkLoc{seg: seg, off: off, n: uint32(len(buf))}
		}
		if err := s.chunks.sync(); err != nil {
			return err
		}
		wb := s.db.NewWriteBatch()
		for i, c := range chunks {
			e := badger.NewEntry(c.key, encodeChunkLoc(locs[i]))
			e.ExpiresAt = c.expiresAt
			if err := wb.SetEntry(e); err != nil {
				wb.Cancel()
				return err
			}
		}
		if err := wb.Flush(); err != nil {
			return fmt.Errorf("record migrated chunks: %w", err)
		}
	}

	// 2. The WAL tail, as one fresh segment.
	if err := s.wal.remove(s.wal.ids()); err != nil {
		return err
	}
	var buf []byte
	first := uint64(0)
	var walKeys [][]byte
	err = s.db.View(func(txn *badger.Txn) error {
		return iteratePrefix(txn, []byte{prefixWAL}, true, func(k, v []byte) error {
			walKeys = append(walKeys, append([]byte(nil), k...))
			if len(k) != 9 {
				return nil // recovery of format 1 would have refused it; keep nothing
			}
			seq := bytesToSeq(k[1:])
			if seq <= persisted {
				return nil
			}
			if v == nil {
				return fmt.Errorf("format-1 %s unreadable: %w", keyString(k), ErrDamaged)
			}
			if first == 0 {
				first = seq
			}
			buf = appendWALBatch(buf, seq, v)
			return nil
		})
	})
	if err != nil {
		return err
	}
	if len(buf) > 0 {
		// Frames are copied as they are: a damaged one is reported by the
		// recovery that follows, with its segment and offset.
		if _, _, err := s.wal.append(first, buf, true); err != nil {
			return err
		}
		if err := s.wal.close(); err != nil {
			return err
		}
	}

	// 3. Format 2 from here on; then the old WAL keys go.
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(keyFormat, []byte(formatVersion)) }); err != nil {
		return fmt.Errorf("write store format: %w", err)
	}
	if err := s.db.Sync(); err != nil {
		return err
	}
	if err := s.deleteKeys(walKeys); err != nil {
		s.log.Warn("format-1 WAL keys left in Badger (ignored from now on)", "err", err)
	}
	s.log.Info("store migrated to format 2", "dir", s.dir, "wal_batches_moved", len(walKeys))
	return nil
}
