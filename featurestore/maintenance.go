// Periodic work. maintainHot (sealing by age, retention) runs on the
// committer's tick under commitMu, so that chunks reach the writer in seal
// order; the maintenance goroutine syncs the WAL under the interval
// policy, expires chunk segments and collects Badger's value log.

package featurestore

import (
	"time"
)

// maintainHot seals the open chunk by age and applies retention. It runs
// on the committer goroutine, so chunks reach the writer in seal order.
func (s *Store) maintainHot(now time.Time) {
	if c := s.hot.sealOld(now, s.cfg.SealAge); c != nil { // carries the writer's reference
		s.m.chunksSealed.WithLabelValues("age").Inc()
		s.chunkCh <- c
	}
	budget, over := s.HotBudget(), dropMemory
	if budget < int64(s.cfg.MemoryBudget) {
		over = dropLimit
	}
	s.hot.retainFor(now.Add(-s.cfg.RetentionAge).UnixNano(), budget, over, func(c *chunk, r dropReason) {
		if r == dropLimit {
			s.hotShed.Add(c.bytes())
		}
		s.m.chunksDropped.WithLabelValues(string(r)).Inc()
		s.log.Debug("chunk dropped from hot tier", "reason", r, "rows", c.rows(), "max_ts", time.Unix(0, c.maxTS))
	})
	for _, t := range s.tables {
		t.retain(now.Add(-s.cfg.RetentionAge).UnixNano())
	}
}

// maintenance syncs the WAL under the interval policy, removes expired
// chunk segments, and reclaims Badger value log files.
func (s *Store) maintenance() {
	defer s.wg.Done()
	sync := s.cfg.FSyncInterval
	if s.cfg.FSync != FSyncInterval {
		sync = time.Hour
	}
	syncTick := time.NewTicker(sync)
	defer syncTick.Stop()
	gcTick := time.NewTicker(30 * time.Second)
	defer gcTick.Stop()
	for {
		select {
		case <-syncTick.C:
			if s.cfg.FSync == FSyncInterval {
				if err := s.wal.sync(); err != nil {
					s.log.Error("WAL fsync failed", "err", err)
				}
			}
		case now := <-gcTick.C:
			if err := s.expireChunkSegments(now); err != nil {
				s.log.Warn("expire chunk segments", "err", err)
			}
			for s.db.RunValueLogGC(0.5) == nil {
				select {
				case <-s.stopMaint:
					return
				default:
				}
			}
		case <-s.stopMaint:
			return
		}
	}
}
