package bench

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Recorder collects latency observations and answers percentiles over all
// of them. It keeps every value (8 bytes each), so percentiles are exact
// (nearest rank) rather than bucketed; a bench run records at most a few
// million values. A zero Recorder is ready to use and safe for concurrent
// use.
type Recorder struct {
	mu     sync.Mutex
	vals   []int64 // nanoseconds
	sorted bool
}

// Record adds one observation. Negative durations (clock steps) are kept
// as they are, so that they show in the minimum rather than vanish.
func (r *Recorder) Record(d time.Duration) {
	r.mu.Lock()
	r.vals = append(r.vals, int64(d))
	r.sorted = false
	r.mu.Unlock()
}

// Count returns the number of observations.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.vals)
}

// Quantile returns the nearest-rank q-quantile (0 < q ≤ 1): the smallest
// observation with at least q of all observations at or below it. It
// returns 0 when nothing was recorded.
func (r *Recorder) Quantile(q float64) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Duration(r.quantileLocked(q))
}

func (r *Recorder) quantileLocked(q float64) int64 {
	n := len(r.vals)
	if n == 0 {
		return 0
	}
	if !r.sorted {
		slices.Sort(r.vals)
		r.sorted = true
	}
	i := int(math.Ceil(q*float64(n))) - 1
	i = max(0, min(i, n-1))
	return r.vals[i]
}

// Summary returns the count, mean and the percentiles a report prints.
func (r *Recorder) Summary() LatencySummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := LatencySummary{Count: len(r.vals)}
	if s.Count == 0 {
		return s
	}
	var sum float64
	for _, v := range r.vals {
		sum += float64(v)
	}
	us := func(ns int64) float64 { return float64(ns) / 1e3 }
	s.MeanUS = sum / float64(s.Count) / 1e3
	s.P50US = us(r.quantileLocked(0.50))
	s.P90US = us(r.quantileLocked(0.90))
	s.P99US = us(r.quantileLocked(0.99))
	s.P999US = us(r.quantileLocked(0.999))
	s.MinUS = us(r.vals[0])
	s.MaxUS = us(r.vals[len(r.vals)-1])
	return s
}

// LatencySummary is a latency distribution in microseconds.
type LatencySummary struct {
	Count  int     `json:"count"`
	MeanUS float64 `json:"mean_us"`
	MinUS  float64 `json:"min_us"`
	P50US  float64 `json:"p50_us"`
	P90US  float64 `json:"p90_us"`
	P99US  float64 `json:"p99_us"`
	P999US float64 `json:"p999_us"`
	MaxUS  float64 `json:"max_us"`
}
