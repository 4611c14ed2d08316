package bench

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestRecorderQuantiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals []time.Duration
		q    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", []time.Duration{7}, 0.999, 7},
		{"median of 1..100", seq(100), 0.5, 50},
		{"p99 of 1..100", seq(100), 0.99, 99},
		{"p999 of 1..100 is the max", seq(100), 0.999, 100},
		{"p100", seq(10), 1, 10},
		{"p999 of 1..10000", seq(10000), 0.999, 9990},
		{"tiny q gives the min", seq(10), 0.0001, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r Recorder
			// Insert in random order: the recorder must sort.
			for _, i := range rand.Perm(len(tc.vals)) {
				r.Record(tc.vals[i])
			}
			if got := r.Quantile(tc.q); got != tc.want {
				t.Fatalf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

func seq(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i + 1)
	}
	return out
}

func TestRecorderSummary(t *testing.T) {
	var r Recorder
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 250 {
				r.Record(time.Duration(g*250+i+1) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	s := r.Summary()
	want := LatencySummary{Count: 1000, MeanUS: 500.5, MinUS: 1, P50US: 500, P90US: 900, P99US: 990, P999US: 999, MaxUS: 1000}
	if s != want {
		t.Fatalf("Summary() = %+v\nwant        %+v", s, want)
	}
	// Recording after a summary re-sorts.
	r.Record(0)
	if got := r.Quantile(0.0001); got != 0 {
		t.Fatalf("min after a later Record = %v, want 0", got)
	}
}
