// The hot tier's budget under a process memory limit. The service's memory
// governor (service/memory.go) lowers the budget when the process is over
// its memory_limit and raises it back when there is room; the hot tier
// then sheds its oldest sealed chunks first, as it does over
// memory_budget. Shed chunks stay in Badger until chunk_ttl.

package featurestore

import (
	"math"
	"time"
)

// LimitHot sets the hot tier's effective budget to budget bytes (at most
// the configured memory_budget; budget <= 0 or above it restores
// memory_budget) and at once drops the oldest sealed chunks over it. It
// returns the bytes it dropped. Safe for concurrent use.
func (s *Store) LimitHot(budget int64) (shed int64) {
	full := int64(s.cfg.MemoryBudget)
	if budget <= 0 || budget > full {
		budget = full
	}
	s.hotLimit.Store(budget)
	s.hot.retainFor(math.MinInt64, budget, dropLimit, func(c *chunk, r dropReason) {
		shed += c.bytes()
		s.hotShed.Add(c.bytes())
		s.m.chunksDropped.WithLabelValues(string(r)).Inc()
		s.log.Debug("chunk dropped from hot tier", "reason", r, "rows", c.rows(), "max_ts", time.Unix(0, c.maxTS))
	})
	return shed
}

// HotBudget is the hot tier's effective budget: memory_budget, or less
// while LimitHot holds it lower.
func (s *Store) HotBudget() int64 {
	if b := s.hotLimit.Load(); b > 0 && b < int64(s.cfg.MemoryBudget) {
		return b
	}
	return int64(s.cfg.MemoryBudget)
}

// HotShed is the bytes of sample data dropped from the hot tier while
// LimitHot held its budget under memory_budget (by LimitHot and by the
// retention passes after it).
func (s *Store) HotShed() int64 { return s.hotShed.Load() }

// HotUsage returns the samples and bytes of sample data in the hot tier.
func (s *Store) HotUsage() (samples, bytes int64) {
	return s.hot.usage()
}
