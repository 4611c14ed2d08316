package learning

import (
	"fmt"
	"math"
	"time"
)

// Baseline is the trained starting point of the online detectors (kinds
// ewma and seasonal): per feature, the mean and variance of its normal
// values, overall and, for a seasonal detector, per slot of the period.
// A detector version whose spec carries a baseline scores an entity's
// first window against it instead of waiting for warmup values.
type Baseline struct {
	Features []FeatureBaseline `json:"features"`
}

// FeatureBaseline is one feature's baseline.
type FeatureBaseline struct {
	Name string  `json:"name"`
	Mean float64 `json:"mean"`
	Var  float64 `json:"var"`
	// Slots are the per-slot statistics of a seasonal baseline (nil for
	// ewma): slot i covers [i·period/len, (i+1)·period/len) of the period.
	Slots []SlotBaseline `json:"slots,omitempty"`
}

// SlotBaseline is one seasonal slot's statistics; N = 0 leaves the slot to
// learn online.
type SlotBaseline struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	Var  float64 `json:"var"`
}

// FitBaseline computes the baseline of ds's features. With slots > 0 and
// the rows' times (Unix ns, one per row) it also computes per-slot
// statistics over period. Labels are ignored: pass the normal rows.
func FitBaseline(ds *Dataset, times []int64, period time.Duration, slots int) (*Baseline, error) {
	d, n := len(ds.Names), ds.Len()
	if d == 0 || len(ds.X) != n*d {
		return nil, inputErr(ReasonFeatureCount, "%d values for %d rows of %d features", len(ds.X), n, d)
	}
	if n < 2 {
		return nil, inputErr(ReasonTooFew, "%d rows, need at least 2", n)
	}
	if slots > 0 && (len(times) != n || period <= 0 || period/time.Duration(slots) <= 0) {
		return nil, fmt.Errorf("seasonal baseline: %d times for %d rows, period %v, %d slots", len(times), n, period, slots)
	}
	b := &Baseline{Features: make([]FeatureBaseline, d)}
	for j := range d {
		fb := FeatureBaseline{Name: ds.Names[j]}
		var cnt []int
		var mean, m2 []float64
		if slots > 0 {
			cnt, mean, m2 = make([]int, slots), make([]float64, slots), make([]float64, slots)
		}
		var gm, gm2 float64
		for i := range n {
			v := ds.X[i*d+j]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, inputErr(ReasonNonFinite, "row %d: feature %s is %v", i+1, ds.Names[j], v)
			}
			delta := v - gm
			gm += delta / float64(i+1)
			gm2 += delta * (v - gm)
			if slots > 0 {
				phase := times[i] % int64(period)
				if phase < 0 {
					phase += int64(period)
				}
				s := min(int(phase/(int64(period)/int64(slots))), slots-1)
				cnt[s]++
				dl := v - mean[s]
				mean[s] += dl / float64(cnt[s])
				m2[s] += dl * (v - mean[s])
			}
		}
		fb.Mean, fb.Var = gm, gm2/float64(n)
		for s := range cnt {
			sb := SlotBaseline{N: cnt[s], Mean: mean[s]}
			if cnt[s] > 0 {
				sb.Var = m2[s] / float64(cnt[s])
			}
			fb.Slots = append(fb.Slots, sb)
		}
		b.Features[j] = fb
	}
	return b, nil
}

// Check verifies the baseline against the detector's features: the same
// names in order, finite statistics, non-negative variances.
func (b *Baseline) Check(features []string) error {
	if len(b.Features) != len(features) {
		return fmt.Errorf("baseline has %d features, the detector %d", len(b.Features), len(features))
	}
	ok := func(m, v float64) bool {
		return !math.IsNaN(m) && !math.IsInf(m, 0) && !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0
	}
	for j, f := range b.Features {
		if f.Name != features[j] {
			return fmt.Errorf("baseline feature %d is %q, the detector's %q", j, f.Name, features[j])
		}
		if !ok(f.Mean, f.Var) {
			return fmt.Errorf("baseline of %s: mean %v, var %v", f.Name, f.Mean, f.Var)
		}
		for s, sb := range f.Slots {
			if sb.N < 0 || !ok(sb.Mean, sb.Var) {
				return fmt.Errorf("baseline of %s, slot %d: %+v", f.Name, s, sb)
			}
		}
	}
	return nil
}
