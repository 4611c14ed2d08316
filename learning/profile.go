package learning

import (
	"fmt"
	"math"
	"slices"
)

// Profile is the reference distribution of a model version's training
// features: per feature, the inner edges of its quantile bins and the
// share of training rows in each bin. Drift compares the share of recent
// windows in the same bins with it (PSI).
type Profile struct {
	// Bins is the number of quantile bins asked for; a feature with many
	// equal values has fewer (its equal edges are merged).
	Bins     int              `json:"bins"`
	Features []FeatureProfile `json:"features"`
}

// FeatureProfile is one feature's bins: bin 0 holds values ≤ Edges[0],
// bin i values in (Edges[i−1], Edges[i]], the last bin values >
// Edges[len−1]. Expected[i] is the share of training rows in bin i.
type FeatureProfile struct {
	Name     string    `json:"name"`
	Edges    []float64 `json:"edges"`
	Expected []float64 `json:"expected"`
}

// profileSample bounds how many values per feature are sorted to find the
// quantile edges; the expected shares are counted over every row.
const profileSample = 100_000

// NewProfile computes the reference profile of ds with the given number of
// quantile bins (at least 2).
func NewProfile(ds *Dataset, bins int) *Profile {
	bins = max(bins, 2)
	d, n := len(ds.Names), ds.Len()
	p := &Profile{Bins: bins, Features: make([]FeatureProfile, d)}
	stride := max(1, n/profileSample)
	vals := make([]float64, 0, min(n, profileSample+1))
	for j := range d {
		vals = vals[:0]
		for i := 0; i < n; i += stride {
			vals = append(vals, ds.X[i*d+j])
		}
		slices.Sort(vals)
		var edges []float64
		for q := 1; q < bins; q++ {
			e := vals[min(len(vals)-1, q*len(vals)/bins)]
			if len(edges) == 0 || e > edges[len(edges)-1] {
				edges = append(edges, e)
			}
		}
		// A top edge equal to the maximum leaves the last bin empty for
		// the training set; drop it.
		if k := len(edges); k > 0 && edges[k-1] >= vals[len(vals)-1] {
			edges = edges[:k-1]
		}
		p.Features[j] = FeatureProfile{Name: ds.Names[j], Edges: edges, Expected: make([]float64, len(edges)+1)}
	}
	// The shares, counted over every row in one row-major pass.
	counts := make([][]int, d)
	for j := range d {
		counts[j] = make([]int, len(p.Features[j].Expected))
	}
	for i := range n {
		for j, v := range ds.X[i*d : i*d+d] {
			counts[j][p.Features[j].Bin(v)]++
		}
	}
	for j := range d {
		for b, c := range counts[j] {
			p.Features[j].Expected[b] = float64(c) / float64(n)
		}
	}
	return p
}

// Bin returns the bin of value v.
func (f *FeatureProfile) Bin(v float64) int {
	// The number of edges < v; profiles have few edges, so a scan beats a
	// binary search.
	b := 0
	for b < len(f.Edges) && f.Edges[b] < v {
		b++
	}
	return b
}

// maxEdges bounds a feature's bin edges in a profile.
const maxEdges = 1024

// PSIEpsilon replaces an empty bin's share in PSI, so that the logarithm
// stays finite.
const PSIEpsilon = 1e-4

// PSI returns the population stability index of the observed bin counts
// (out of n values) against the expected shares: Σ (a − e)·ln(a / e), with
// shares below PSIEpsilon raised to it. It is 0 for identical
// distributions; 0.1–0.2 is commonly read as a moderate shift and above
// 0.2 as a significant one.
func PSI(expected []float64, counts []int, n int) float64 {
	if n == 0 {
		return 0
	}
	psi := 0.0
	for b, e := range expected {
		a := float64(counts[b]) / float64(n)
		a, e = math.Max(a, PSIEpsilon), math.Max(e, PSIEpsilon)
		psi += (a - e) * math.Log(a/e)
	}
	return psi
}

// Check verifies that the profile covers exactly the given features, in
// order, with sorted edges and shares that sum to 1.
func (p *Profile) Check(features []string) error {
	if len(p.Features) != len(features) {
		return fmt.Errorf("profile has %d features, the model %d", len(p.Features), len(features))
	}
	for j, f := range p.Features {
		if f.Name != features[j] {
			return fmt.Errorf("profile feature %d is %q, the model's %q", j, f.Name, features[j])
		}
		if len(f.Edges) > maxEdges {
			return fmt.Errorf("profile of %s: %d edges, at most %d", f.Name, len(f.Edges), maxEdges)
		}
		if len(f.Expected) != len(f.Edges)+1 {
			return fmt.Errorf("profile of %s: %d edges need %d shares, got %d", f.Name, len(f.Edges), len(f.Edges)+1, len(f.Expected))
		}
		for i, e := range f.Edges {
			if math.IsNaN(e) || math.IsInf(e, 0) || (i > 0 && e <= f.Edges[i-1]) {
				return fmt.Errorf("profile of %s: edges must be finite and increasing, got %v", f.Name, f.Edges)
			}
		}
		sum := 0.0
		for _, s := range f.Expected {
			if math.IsNaN(s) || s < 0 || s > 1 {
				return fmt.Errorf("profile of %s: share %v", f.Name, s)
			}
			sum += s
		}
		if math.Abs(sum-1) > 1e-6 {
			return fmt.Errorf("profile of %s: shares sum to %v, want 1", f.Name, sum)
		}
	}
	return nil
}
