// Package anomaly provides online anomaly detectors that keep learning one
// series at a time: an EWMA z-score, a robust median/MAD score over a
// sliding window, and a seasonal baseline that keeps an EWMA per slot of a
// period (hour of day, for example).
//
// Each detector's Observe returns the anomaly score of the new value
// against what the detector had learned before it, then learns the value.
// The score is a z-like number of standard deviations; it is NaN until the
// detector has seen Warmup values (per slot, for the seasonal baseline).
// NaN inputs are ignored and score NaN. A detector holds the state of one
// series and is not safe for concurrent use.
package anomaly

import (
	"math"
	"slices"
	"time"
)

// EWMA scores a value by its distance from an exponentially weighted mean,
// in exponentially weighted standard deviations.
type EWMA struct {
	alpha  float64
	warmup int
	n      int
	mean   float64
	vari   float64
}

// NewEWMA returns an EWMA detector with smoothing factor alpha (0 < α ≤ 1)
// that scores after warmup values.
func NewEWMA(alpha float64, warmup int) *EWMA { return &EWMA{alpha: alpha, warmup: warmup} }

// Observe scores v, then learns it.
func (d *EWMA) Observe(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return math.NaN()
	}
	score := math.NaN()
	if d.n >= d.warmup && d.n > 0 {
		score = zscore(v, d.mean, d.vari)
	}
	ewmaUpdate(&d.mean, &d.vari, d.n, d.alpha, v)
	d.n++
	return score
}

// Mean returns the current smoothed mean.
func (d *EWMA) Mean() float64 { return d.mean }

// ewmaUpdate updates an exponentially weighted mean and variance (West's
// incremental form); the first value initialises the mean.
func ewmaUpdate(mean, vari *float64, n int, alpha, v float64) {
	if n == 0 {
		*mean, *vari = v, 0
		return
	}
	diff := v - *mean
	incr := alpha * diff
	*mean += incr
	*vari = (1 - alpha) * (*vari + diff*incr)
}

// zscore divides the distance from the mean by the standard deviation; a
// zero deviation gives 0 for an equal value and +Inf otherwise, capped to a
// large finite number so scores stay valid JSON.
func zscore(v, mean, vari float64) float64 {
	d := math.Abs(v - mean)
	sd := math.Sqrt(vari)
	if sd < 1e-12*math.Max(1, math.Abs(mean)) {
		if d < 1e-12*math.Max(1, math.Abs(mean)) {
			return 0
		}
		return MaxScore
	}
	return math.Min(d/sd, MaxScore)
}

// MaxScore caps scores, so that a value off a constant series is a large
// finite number rather than +Inf.
const MaxScore = 1e6

// MAD scores a value by its distance from the median of the last Window
// values, in units of the scaled median absolute deviation (1.4826 × MAD,
// which estimates σ for normal data). It resists the outliers it detects.
type MAD struct {
	warmup int
	ring   []float64
	next   int
	full   bool
	sorted []float64
}

// NewMAD returns a median/MAD detector over the last window values that
// scores after warmup values (at most window).
func NewMAD(window, warmup int) *MAD {
	return &MAD{warmup: min(warmup, window), ring: make([]float64, window), sorted: make([]float64, 0, window)}
}

// Observe scores v, then learns it.
func (d *MAD) Observe(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return math.NaN()
	}
	n := d.next
	if d.full {
		n = len(d.ring)
	}
	score := math.NaN()
	if n >= d.warmup && n > 0 {
		d.sorted = append(d.sorted[:0], d.ring[:n]...)
		slices.Sort(d.sorted)
		med := median(d.sorted)
		for i, x := range d.sorted {
			d.sorted[i] = math.Abs(x - med)
		}
		slices.Sort(d.sorted)
		mad := 1.4826 * median(d.sorted)
		score = zscore(v, med, mad*mad)
	}
	d.ring[d.next] = v
	d.next++
	if d.next == len(d.ring) {
		d.next, d.full = 0, true
	}
	return score
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// Seasonal scores a value against the EWMA mean and deviation of its slot
// of a period: with Period 24h and 24 slots, a value at 14:20 is compared
// with what was learned at 14:00–15:00 on earlier days.
type Seasonal struct {
	alpha  float64
	warmup int
	period int64
	slot   int64
	n      []int
	mean   []float64
	vari   []float64
}

// NewSeasonal returns a seasonal baseline over period split into slots
// equal slots, with EWMA smoothing factor alpha per slot, that scores a
// slot after it has seen warmup values.
func NewSeasonal(period time.Duration, slots int, alpha float64, warmup int) *Seasonal {
	return &Seasonal{
		alpha: alpha, warmup: warmup, period: int64(period), slot: int64(period) / int64(slots),
		n: make([]int, slots), mean: make([]float64, slots), vari: make([]float64, slots),
	}
}

// Observe scores v observed at t, then learns it.
func (d *Seasonal) Observe(t time.Time, v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return math.NaN()
	}
	phase := t.UnixNano() % d.period
	if phase < 0 {
		phase += d.period
	}
	s := min(int(phase/d.slot), len(d.n)-1)
	score := math.NaN()
	if d.n[s] >= d.warmup && d.n[s] > 0 {
		score = zscore(v, d.mean[s], d.vari[s])
	}
	ewmaUpdate(&d.mean[s], &d.vari[s], d.n[s], d.alpha, v)
	d.n[s]++
	return score
}

// Seed starts the detector from a trained baseline: the mean and variance
// of the series' normal values, as if it had already seen warmup values,
// so that it scores from the first value.
func (d *EWMA) Seed(mean, vari float64) {
	d.mean, d.vari, d.n = mean, vari, max(d.warmup, 1)
}

// Seed starts slot s from a trained baseline, as EWMA.Seed does; a slot
// outside the detector's slots is ignored.
func (d *Seasonal) Seed(s int, mean, vari float64) {
	if s < 0 || s >= len(d.n) {
		return
	}
	d.mean[s], d.vari[s], d.n[s] = mean, vari, max(d.warmup, 1)
}
