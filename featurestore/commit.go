// The write path: Append, the group commit to the WAL, and the hand-off of
// committed batches to the hot tier and the window engine. Whoever holds
// commitMu (the committer goroutine, or an appender leading its own
// commit) owns the WAL sequence, walBuf and the hot tier's write side.
// Whoever holds winMu (that same committer, inline, or the window loop)
// owns the window engine and the rows emitted but not yet settled.

package featurestore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// Append accepts a batch of samples: it returns once the batch is in the
// WAL under the fsync policy. Samples without a device or metric are
// counted as rejected and skipped. Append blocks while the commit queue is
// full and returns ctx.Err() if ctx ends first; once queued, the batch is
// committed even if ctx ends, so a nil error always means accepted.
func (s *Store) Append(ctx context.Context, batch []schema.Sample) error {
	if len(batch) == 0 {
		return nil
	}
	p := s.pool.Get().(*pending)
	for i := range batch {
		if x := &batch[i]; x.Device == "" || x.Metric == "" {
			batch = s.rejectBad(batch)
			break
		}
	}
	p.recs = slices.Grow(p.recs[:0], len(batch))[:len(batch)]
	for i := range batch {
		x := &batch[i]
		p.recs[i] = rec{ts: x.TS, ingest: x.IngestTS, value: x.Value}
	}
	refused := false
	s.series.internBatch(batch, p.recs, func(i int, r admitResult) {
		s.noteAdmit(&batch[i], r)
		refused = refused || p.recs[i].sid < 0
	})
	s.appendMu.RLock()
	if !s.running {
		s.appendMu.RUnlock()
		s.pool.Put(p)
		return ErrNotRunning
	}
	// Duplicates are judged only once the store runs, so that a batch
	// refused before Start is not remembered as stored. (A batch whose
	// context ends before it is queued is: its retry loses the samples
	// that repeat a series' newest.)
	if dups := s.series.dedup(p.recs); dups > 0 || refused {
		s.m.duplicates.Add(float64(dups))
		p.recs = slices.DeleteFunc(p.recs, func(r rec) bool { return r.sid < 0 })
	}
	if len(p.recs) == 0 {
		s.appendMu.RUnlock()
		s.pool.Put(p)
		return nil
	}
	p.enc = encodeWALBatch(p.enc[:0], p.recs)
	p.refs.Store(2)
	if s.cfg.FSync != FSyncBatch && len(s.commitCh) == 0 && s.commitMu.TryLock() {
		// No one is committing: lead. (FSyncBatch waits for a group to
		// form; that is the committer's job.)
		s.leadGroup = s.gather(append(s.leadGroup[:0], p), int64(len(p.enc)), nil)
		s.apply(s.leadGroup)
		clear(s.leadGroup)
		s.commitMu.Unlock()
		s.appendMu.RUnlock()
		err := <-p.done
		if err == nil && s.tap != nil {
			s.tapped(p)
		}
		s.release(p)
		return err
	}
	select {
	case s.commitCh <- p:
	case <-ctx.Done():
		s.appendMu.RUnlock()
		s.pool.Put(p)
		return ctx.Err()
	}
	s.appendMu.RUnlock()
	err := <-p.done
	if err == nil && s.tap != nil {
		s.tapped(p)
	}
	s.release(p)
	return err
}

// noteAdmit counts and logs a sample whose labels the series table did not
// take as they were.
func (s *Store) noteAdmit(x *schema.Sample, r admitResult) {
	reason := "invalid_utf8"
	switch r {
	case admitTooLong:
		reason = "name_too_long"
	case admitLimit:
		reason = "series_limit"
	}
	dev := s.guard.label(x.Device)
	if r == admitReplaced {
		s.m.replaced.WithLabelValues(dev).Inc()
	} else {
		s.m.rejected.WithLabelValues(dev, reason).Inc()
	}
	if s.guard.shouldLog(dev, reason) {
		s.log.Warn("sample labels not stored as sent", "reason", reason, "device", dev,
			"component", clip(x.Component), "metric", clip(x.Metric), "series", s.series.len(), "max_series", s.cfg.MaxSeries)
	}
}

// rejectBad returns a copy of batch without the samples that lack a device
// or metric, counting and logging each.
func (s *Store) rejectBad(batch []schema.Sample) []schema.Sample {
	good := make([]schema.Sample, 0, len(batch))
	for _, x := range batch {
		if x.Device == "" || x.Metric == "" {
			dev := s.guard.label(x.Device)
			s.m.rejected.WithLabelValues(dev, "missing_label").Inc()
			if s.guard.shouldLog(dev, "missing_label") {
				s.log.Warn("sample rejected: empty device or metric", "device", dev, "component", clip(x.Component), "metric", clip(x.Metric))
			}
			continue
		}
		good = append(good, x)
	}
	return good
}

func (s *Store) release(p *pending) {
	if p.refs.Add(-1) == 0 {
		s.pool.Put(p)
	}
}

// committer owns the WAL sequence and the hot tier's write side: it group
// commits queued batches, then applies them in sequence order.
func (s *Store) committer() {
	defer s.wg.Done()
	defer close(s.chunkCh)
	defer close(s.winCh)
	tick := time.NewTicker(min(s.cfg.SealAge/2, time.Second))
	defer tick.Stop()
	group := make([]*pending, 0, 256)
	for {
		var p *pending
		select {
		case q, ok := <-s.commitCh:
			if !ok {
				return
			}
			p = q
		case now := <-tick.C:
			s.commitMu.Lock()
			s.maintainHot(now)
			s.commitMu.Unlock()
			continue
		}
		s.commitMu.Lock()
		var t *time.Timer
		var delay <-chan time.Time
		if s.cfg.FSync == FSyncBatch && s.cfg.GroupCommitDelay > 0 {
			t = time.NewTimer(s.cfg.GroupCommitDelay)
			delay = t.C
		}
		group = s.gather(append(group[:0], p), int64(len(p.enc)), delay)
		if t != nil {
			t.Stop()
		}
		s.apply(group)
		clear(group)
		s.commitMu.Unlock()
	}
}

// One WAL write holds at most this much.
const maxGroupBytes, maxGroupCount = 8 << 20, 4096

// gather adds queued batches to group, whose WAL records take size
// bytes, up to one WAL write (none under FSyncAlways: each batch is synced
// on its own): until delay fires it waits for more (the FSyncBatch group
// commit delay; nil waits not at all), then takes what is already queued.
// The caller holds commitMu.
func (s *Store) gather(group []*pending, size int64, delay <-chan time.Time) []*pending {
	if s.cfg.FSync == FSyncAlways {
		return group
	}
	for size < maxGroupBytes && len(group) < maxGroupCount {
		var (
			q  *pending
			ok bool
		)
		if delay != nil {
			select {
			case q, ok = <-s.commitCh:
			case <-delay:
				delay = nil
				continue
			}
		} else {
			select {
			case q, ok = <-s.commitCh:
			default:
				return group
			}
		}
		if !ok {
			return group
		}
		group = append(group, q)
		size += int64(len(q.enc))
	}
	return group
}

// apply writes group to the WAL, runs it through the window engine and
// into the hot tier, and answers each batch's appender on its done
// channel. The caller holds commitMu.
func (s *Store) apply(group []*pending) {
	err := s.commitGroup(group)
	if err != nil {
		for _, q := range group {
			s.release(q) // the window engine's reference
			q.done <- err
		}
		return
	}
	now := time.Now()
	for _, q := range group {
		q.accepted = now.UnixNano()
	}
	// Windows first: their subscribers are the latency-critical path;
	// the hot tier's append (which may fault in fresh pages) and the
	// appenders' wake-ups come after.
	s.toWindows(group)
	for _, q := range group {
		for _, c := range s.hot.append(q.recs, q.seq, now) {
			s.m.chunksSealed.WithLabelValues("rows").Inc()
			s.chunkCh <- c
		}
		s.m.appended.Add(float64(len(q.recs)))
		q.done <- nil
	}
}

// toWindows hands committed batches to the state events and the window
// engine, in WAL order (also without views: the events need it):
// at once on the committer when the window goroutine has nothing queued,
// else through its queue. Either way a window closes only on samples
// already accepted (written to the WAL under the fsync policy), so a row
// never rests on samples a process crash could lose or that Append
// refused.
func (s *Store) toWindows(group []*pending) {
	if s.winBusy.Load() == 0 {
		// Every batch queued before has been processed: the engine is free
		// and this group is next in WAL order.
		s.winMu.Lock()
		for _, q := range group {
			s.curAccepted = q.accepted
			s.stateEvents(q.recs)
			s.win.process(q.recs, time.Now())
		}
		s.settle()
		s.winMu.Unlock()
		for _, q := range group {
			s.release(q)
		}
		return
	}
	for _, q := range group {
		s.winBusy.Add(1)
		s.winCh <- q
	}
}

// commitGroup writes the group's WAL records (and those of any new
// series) with one write to the WAL segment, fdatasynced unless the policy
// is interval.
func (s *Store) commitGroup(group []*pending) error {
	start := time.Now()
	first, defs := s.series.unwalled()
	buf := s.walBuf[:0]
	for i, d := range defs {
		buf = appendWALSeries(buf, int32(first+i), d)
	}
	seq := s.seq
	for _, p := range group {
		seq++
		p.seq = seq
		buf = appendWALBatch(buf, seq, p.enc)
	}
	if cap(buf) <= 1<<20 {
		s.walBuf = buf // a rare big group's buffer is not kept
	}
	if _, _, err := s.wal.append(s.seq+1, buf, s.cfg.FSync != FSyncInterval); err != nil {
		return s.walFailed(fmt.Errorf("wal: write %d batches: %w", len(group), err))
	}
	s.seq = seq
	s.series.markWalled(first + len(defs))
	s.m.walCommits.Inc()
	s.m.walBatches.Add(float64(len(group)))
	s.m.walBytes.Add(float64(len(buf)))
	s.m.walCommitTime.Observe(time.Since(start).Seconds())
	return nil
}

func (s *Store) walFailed(err error) error {
	s.m.walErrors.Inc()
	s.log.Error("WAL commit failed; batches not accepted", "err", err)
	return err
}

// windowLoop runs the window engine over the committed batches the
// committer queues while it is busy (see toWindows) and sweeps idle
// entities.
func (s *Store) windowLoop() {
	defer s.wg.Done()
	defer close(s.rowCh)
	idle := time.Second
	for _, v := range s.views {
		if v.IdleTimeout > 0 {
			idle = min(idle, max(v.IdleTimeout/4, 10*time.Millisecond))
		}
	}
	tick := time.NewTicker(idle)
	defer tick.Stop()
	for {
		select {
		case p, ok := <-s.winCh:
			if !ok {
				return
			}
			s.winMu.Lock()
			s.curAccepted = p.accepted
			s.stateEvents(p.recs)
			s.win.process(p.recs, time.Now())
			s.settle()
			s.winMu.Unlock()
			s.release(p)
			s.winBusy.Add(-1)
		case now := <-tick.C:
			s.winMu.Lock()
			s.curAccepted = 0
			s.win.sweepIdle(now)
			s.settle()
			s.winMu.Unlock()
		}
	}
}
