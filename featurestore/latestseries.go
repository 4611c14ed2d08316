// Walks of the newest value of every series and of the online view, for
// exposition formats that stream them (the service's /metrics/devices).
// They run on the caller's goroutine: the series table's read lock is held
// only while a chunk is copied, never while the caller's function runs,
// and the online view's read lock only while its row pointers are copied.

package featurestore

import (
	"math"
	"sync/atomic"

	"github.com/netfeat/netfeat/schema"
)

// LatestSample is the newest sample the store accepted for one series.
type LatestSample struct {
	Device, Component, Metric string
	// TS is the sample's event time (Unix ns); Value its value.
	TS    int64
	Value float64
}

// latestChunk is how many series EachLatest copies under one read lock.
const latestChunk = 1024

// EachLatest hands fn the newest sample of every series whose metric rank
// places (rank(metric) ≥ 0), grouped by rank in increasing order and, within
// a rank, in the order the series were first seen. fn gets chunks of at most
// 1024 samples; a chunk holds one rank only, so a caller writing one metric
// family per rank sees each family contiguously. The chunk is reused: fn
// must not keep it. Series that have no sample in this process's memory
// (known from Badger only, with every chunk dropped) are skipped. The first
// error fn returns stops the walk and is returned.
//
// The time and the value of a series are two atomic words, so a sample
// appended while the walk copies it may be seen with its predecessor's
// value. Memory: one int32 per series for the grouping, plus the chunk.
// Grouping costs no hashing per series: the series table numbers the
// distinct metric names.
func (s *Store) EachLatest(rank func(metric string) int, fn func([]LatestSample) error) error {
	t := s.series
	t.mu.RLock()
	n := len(t.defs)
	defs, mids := t.defs[:n:n], t.mids[:n:n] // entries below n never change
	names := t.metricNames[:len(t.metricNames):len(t.metricNames)]
	t.mu.RUnlock()

	// Group the ids by rank (a counting sort): the rank of each distinct
	// metric is asked once.
	rankOfMid := make([]int32, len(names))
	counts := []int{}
	for i, m := range names {
		r := rank(m)
		rankOfMid[i] = int32(max(r, -1))
		if r >= len(counts) {
			counts = append(counts, make([]int, r+1-len(counts))...)
		}
	}
	for _, mid := range mids {
		if r := rankOfMid[mid]; r >= 0 {
			counts[r]++
		}
	}
	starts := make([]int, len(counts)+1)
	for r, c := range counts {
		starts[r+1] = starts[r] + c
	}
	ids := make([]int32, starts[len(counts)])
	next := append([]int(nil), starts[:len(counts)]...)
	for i, mid := range mids {
		if r := rankOfMid[mid]; r >= 0 {
			ids[next[r]] = int32(i)
			next[r]++
		}
	}

	chunk := make([]LatestSample, 0, latestChunk)
	for r := range counts {
		for i := starts[r]; i < starts[r+1]; i += latestChunk {
			part := ids[i:min(i+latestChunk, starts[r+1])]
			chunk = chunk[:0]
			t.mu.RLock()
			for _, id := range part {
				l := &t.last[id]
				ts := atomic.LoadInt64(&l.ts)
				if ts == math.MinInt64 {
					continue
				}
				d := &defs[id]
				chunk = append(chunk, LatestSample{Device: d.device, Component: d.component, Metric: d.metric,
					TS: ts, Value: math.Float64frombits(atomic.LoadUint64(&l.v))})
			}
			t.mu.RUnlock()
			if len(chunk) == 0 {
				continue
			}
			if err := fn(chunk); err != nil {
				return err
			}
		}
	}
	return nil
}

// LatestRows returns the latest closed row of every entity of the view
// (the online view, as latest_<view> serves it), unordered, and false when
// the view is unknown. The rows are the store's own and read-only: the
// caller must not modify them. The slice is the caller's.
func (s *Store) LatestRows(view string) ([]*schema.FeatureRow, bool) {
	i, ok := s.viewIx[view]
	if !ok {
		return nil, false
	}
	o := s.online[i]
	o.mu.RLock()
	rows := make([]*schema.FeatureRow, 0, len(o.rows))
	for _, r := range o.rows {
		rows = append(rows, r)
	}
	o.mu.RUnlock()
	return rows, true
}

// Views returns the store's feature views, in configuration order. The
// slice is shared: the caller must not modify it.
func (s *Store) Views() []schema.FeatureView { return s.views }
