package learning

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"
)

// Format is the "format" value of a logistic model file.
const Format = "netfeat-logistic"

// FormatVersion is the version of the logistic model file format.
const FormatVersion = 1

// Logistic is an L2-regularised logistic regression over standardised
// features: score = 1 / (1 + exp(−(Intercept + Σ Weights[j]·(f_j(x[j]) −
// Mean[j]) / Scale[j]))), where f_j is feature j's transform (Transforms;
// the identity when there are none). Its JSON form is the model file of
// the inference kind `logistic`.
type Logistic struct {
	Format   string   `json:"format"`
	Version  int      `json:"format_version"`
	Features []string `json:"features"`
	// Transforms, when present, holds one transform per feature, applied
	// before Mean and Scale: TransformNone ("") or TransformLog1p
	// (log(1 + max(x, 0))). A federated model's fixed feature space
	// (FeatureSpace) needs them; files without them (written before they
	// existed, and by Train) take every feature as it is.
	Transforms []string  `json:"transforms,omitempty"`
	Mean       []float64 `json:"mean"`
	Scale      []float64 `json:"scale"`
	Weights    []float64 `json:"weights"`
	Intercept  float64   `json:"intercept"`
	// L2 is the penalty the model was trained with (Options.L2).
	L2 float64 `json:"l2"`
	// Trained describes the training run.
	Trained TrainInfo `json:"trained"`
	// Profile is the reference distribution of the training features,
	// which drift is measured against; nil when not computed.
	Profile *Profile `json:"profile,omitempty"`
}

// Feature transforms of Logistic.Transforms.
const (
	// TransformNone takes the feature as it is.
	TransformNone = ""
	// TransformLog1p takes log(1 + max(x, 0)) of the feature.
	TransformLog1p = "log1p"
)

// TrainInfo describes how a Logistic model was trained.
type TrainInfo struct {
	Rows       int       `json:"rows"`
	Positives  int       `json:"positives"`
	Iterations int       `json:"iterations"`
	Loss       float64   `json:"loss"` // the regularised mean log loss at the optimum
	Created    time.Time `json:"created"`
	Source     string    `json:"source,omitempty"`
}

// Options configure Train.
type Options struct {
	// L2 is λ in the objective (1/N)·Σ logloss + (λ/2)·‖w‖² over
	// standardised features (the intercept is not penalised). Default
	// 1e-4. scikit-learn's C is 1/(N·λ).
	L2 float64
	// MaxIter bounds the Newton iterations; default 50.
	MaxIter int
	// Tol stops the iterations once half the Newton decrement (the
	// expected decrease of the objective) is below it; default 1e-20.
	Tol float64
	// Workers is how many goroutines share each pass over the data;
	// default GOMAXPROCS.
	Workers int
	// ProfileBins is the number of quantile bins of the reference
	// profile; default 10, negative: no profile.
	ProfileBins int
	// MinRows is the smallest training set accepted; default 10.
	MinRows int
	// Source is recorded in the model's TrainInfo.
	Source string
}

func (o Options) withDefaults() Options {
	if o.L2 == 0 {
		o.L2 = 1e-4
	}
	if o.MaxIter == 0 {
		o.MaxIter = 50
	}
	if o.Tol == 0 {
		o.Tol = 1e-20
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.ProfileBins == 0 {
		o.ProfileBins = 10
	}
	if o.MinRows == 0 {
		o.MinRows = 10
	}
	return o
}

// Train fits a Logistic model to ds by Newton's method (iteratively
// reweighted least squares) with a backtracking line search: each
// iteration is one pass over the rows that accumulates the objective, its
// gradient and its Hessian ((d+1)² entries for d features), then a
// Cholesky solve. The objective is strictly convex (λ > 0), so the optimum
// is unique and a few iterations reach it to machine precision. ds is
// validated first (Dataset.Validate); a refused set returns an
// *InputError.
func Train(ds *Dataset, opt Options) (*Logistic, error) {
	opt = opt.withDefaults()
	if opt.L2 < 0 || math.IsNaN(opt.L2) || math.IsInf(opt.L2, 0) {
		return nil, fmt.Errorf("l2 %v: must be a positive number", opt.L2)
	}
	if err := ds.Validate(opt.MinRows); err != nil {
		return nil, err
	}
	d, n := len(ds.Names), ds.Len()
	m := &Logistic{
		Format: Format, Version: FormatVersion, Features: append([]string(nil), ds.Names...),
		Mean: make([]float64, d), Scale: make([]float64, d), Weights: make([]float64, d), L2: opt.L2,
	}
	standardise(ds, m.Mean, m.Scale)
	pos := 0
	for _, y := range ds.Y {
		pos += int(y)
	}
	p0 := float64(pos) / float64(n)
	m.Intercept = math.Log(p0 / (1 - p0))

	tr := &trainer{ds: ds, mean: m.Mean, scale: m.Scale, l2: opt.L2, workers: min(opt.Workers, max(1, n/4096))}
	k := d + 1
	// theta = [intercept, weights...]
	theta := make([]float64, k)
	theta[0] = m.Intercept
	cur := tr.pass(theta)
	next := make([]float64, k)
	step := make([]float64, k)
	it := 0
	for ; it < opt.MaxIter; it++ {
		if err := solve(cur.h, cur.g, step, k); err != nil {
			return nil, fmt.Errorf("logistic: iteration %d: %w", it+1, err)
		}
		dec := 0.0 // g·H⁻¹g, the Newton decrement squared
		for i := range k {
			dec += cur.g[i] * step[i]
		}
		if dec/2 < opt.Tol {
			break
		}
		t := 1.0
		var cand passResult
		for ls := 0; ; ls++ {
			for i := range k {
				next[i] = theta[i] - t*step[i]
			}
			cand = tr.pass(next)
			// Close to the optimum (a small decrement) the full step is
			// taken: Newton converges quadratically there, and the change
			// of the objective is down at its rounding error.
			if dec < 1e-8 || cand.loss <= cur.loss-1e-4*t*dec || ls == 40 {
				break
			}
			t /= 2
		}
		if dec >= 1e-8 && cand.loss > cur.loss {
			break // no decrease even with a tiny step: at the optimum to rounding
		}
		copy(theta, next)
		cur = cand
	}
	m.Intercept = theta[0]
	copy(m.Weights, theta[1:])
	m.Trained = TrainInfo{Rows: n, Positives: pos, Iterations: it, Loss: cur.loss, Created: time.Now().UTC(), Source: opt.Source}
	if opt.ProfileBins > 0 {
		m.Profile = NewProfile(ds, opt.ProfileBins)
	}
	return m, nil
}

// standardise computes each feature's mean and standard deviation (1 for
// a constant feature) in one pass (Welford).
func standardise(ds *Dataset, mean, scale []float64) {
	d := len(ds.Names)
	m2 := make([]float64, d)
	for i := range ds.Len() {
		x := ds.Row(i)
		inv := 1 / float64(i+1)
		for j, v := range x {
			delta := v - mean[j]
			mean[j] += delta * inv
			m2[j] += delta * (v - mean[j])
		}
	}
	for j := range d {
		sd := math.Sqrt(m2[j] / float64(ds.Len()))
		if sd < 1e-12*math.Max(1, math.Abs(mean[j])) {
			sd = 1 // constant: its standardised value is 0
		}
		scale[j] = sd
	}
}

type trainer struct {
	ds          *Dataset
	mean, scale []float64
	l2          float64
	workers     int
}

// passResult is the objective, gradient and Hessian (row-major k×k, upper
// triangle filled then mirrored) at one point.
type passResult struct {
	loss float64
	g, h []float64
}

// pass evaluates the objective at theta over all rows, on tr.workers
// goroutines, each over a contiguous chunk; the chunks are summed in
// order, so the result depends only on the worker count.
func (tr *trainer) pass(theta []float64) passResult {
	n := tr.ds.Len()
	k := len(theta)
	parts := make([]passResult, tr.workers)
	var wg sync.WaitGroup
	for w := range tr.workers {
		lo, hi := w*n/tr.workers, (w+1)*n/tr.workers
		parts[w] = passResult{g: make([]float64, k), h: make([]float64, k*k)}
		if tr.workers == 1 {
			tr.chunk(theta, lo, hi, &parts[w])
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr.chunk(theta, lo, hi, &parts[w])
		}()
	}
	wg.Wait()
	out := parts[0]
	for _, p := range parts[1:] {
		out.loss += p.loss
		for i := range out.g {
			out.g[i] += p.g[i]
		}
		for i := range out.h {
			out.h[i] += p.h[i]
		}
	}
	inv := 1 / float64(n)
	out.loss *= inv
	for i := range out.g {
		out.g[i] *= inv
	}
	for i := range out.h {
		out.h[i] *= inv
	}
	for i := 1; i < k; i++ {
		out.loss += tr.l2 / 2 * theta[i] * theta[i]
		out.g[i] += tr.l2 * theta[i]
		out.h[i*k+i] += tr.l2
	}
	for a := range k {
		for b := a + 1; b < k; b++ {
			out.h[b*k+a] = out.h[a*k+b]
		}
	}
	return out
}

// batchRows is how many rows chunk standardises at a time, column by
// column, so that the Hessian's entries are dot products of short
// contiguous columns summed in registers rather than a read-modify-write
// of the Hessian per row.
const batchRows = 256

// chunk accumulates rows [lo, hi) into res (sums, not yet means).
func (tr *trainer) chunk(theta []float64, lo, hi int, res *passResult) {
	k := len(theta)
	d := k - 1
	// cols[0] is the intercept's column of ones; cols[j+1] feature j,
	// standardised.
	cols := make([][]float64, k)
	for j := range cols {
		cols[j] = make([]float64, batchRows)
	}
	for i := range cols[0] {
		cols[0][i] = 1
	}
	z := make([]float64, batchRows)
	wt := make([]float64, batchRows) // p(1−p)
	rs := make([]float64, batchRows) // p − y
	wa := make([]float64, batchRows) // wt · column a
	inv := make([]float64, d)
	for j := range d {
		inv[j] = 1 / tr.scale[j]
	}
	mean := tr.mean
	X, Y := tr.ds.X, tr.ds.Y
	g, h := res.g, res.h
	loss := 0.0
	for b0 := lo; b0 < hi; b0 += batchRows {
		m := min(batchRows, hi-b0)
		for j := range d {
			c := cols[j+1][:m]
			mj, ij := mean[j], inv[j]
			for i := range c {
				c[i] = (X[(b0+i)*d+j] - mj) * ij
			}
		}
		zz := z[:m]
		for i := range zz {
			zz[i] = theta[0]
		}
		for j := 1; j < k; j++ {
			t := theta[j]
			c := cols[j][:m]
			for i, v := range c {
				zz[i] += t * v
			}
		}
		for i, zi := range zz {
			y := Y[b0+i]
			// log(1 + e^z) − y·z, and p = σ(z), without overflow.
			var p float64
			if zi > 0 {
				e := math.Exp(-zi)
				loss += zi + math.Log1p(e) - y*zi
				p = 1 / (1 + e)
			} else {
				e := math.Exp(zi)
				loss += math.Log1p(e) - y*zi
				p = e / (1 + e)
			}
			rs[i] = p - y
			wt[i] = p * (1 - p)
		}
		r, w := rs[:m], wt[:m]
		for a := range k {
			ca := cols[a][:m]
			var ga float64
			wa := wa[:m]
			for i, v := range ca {
				ga += r[i] * v
				wa[i] = w[i] * v
			}
			g[a] += ga
			row := h[a*k : a*k+k : a*k+k]
			for b := a; b < k; b++ {
				row[b] += dot(wa, cols[b][:m])
			}
		}
	}
	res.loss = loss
}

// dot returns Σ x[i]·y[i] (len(y) ≥ len(x)) with four accumulators, so
// that the additions do not wait on each other.
func dot(x, y []float64) float64 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// solve solves H·x = g for the symmetric positive definite H (k×k,
// row-major) by Cholesky decomposition.
func solve(h, g, x []float64, k int) error {
	l := make([]float64, k*k)
	for i := range k {
		for j := 0; j <= i; j++ {
			sum := h[i*k+j]
			for p := range j {
				sum -= l[i*k+p] * l[j*k+p]
			}
			if i == j {
				if sum <= 0 || math.IsNaN(sum) {
					// A saturated fit can leave the intercept's curvature at
					// rounding level: a tiny ridge keeps the step finite.
					sum = 1e-12
				}
				l[i*k+i] = math.Sqrt(sum)
			} else {
				l[i*k+j] = sum / l[j*k+j]
			}
		}
	}
	y := make([]float64, k)
	for i := range k {
		sum := g[i]
		for p := range i {
			sum -= l[i*k+p] * y[p]
		}
		y[i] = sum / l[i*k+i]
	}
	for i := k - 1; i >= 0; i-- {
		sum := y[i]
		for p := i + 1; p < k; p++ {
			sum -= l[p*k+i] * x[p]
		}
		x[i] = sum / l[i*k+i]
	}
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("the Newton step is not finite")
		}
	}
	return nil
}

// Margin returns the model's log-odds for x (len(x) = len(Features)).
func (m *Logistic) Margin(x []float64) float64 {
	z := m.Intercept
	for j, v := range x {
		if m.Transforms != nil && m.Transforms[j] == TransformLog1p {
			v = math.Log1p(math.Max(v, 0))
		}
		z += m.Weights[j] * (v - m.Mean[j]) / m.Scale[j]
	}
	return z
}

// Predict returns the probability of the positive class for x.
func (m *Logistic) Predict(x []float64) float64 {
	z := m.Margin(x)
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// NumFeature returns the number of features the model reads.
func (m *Logistic) NumFeature() int { return len(m.Features) }

// FeatureNames returns the names of the features in input order.
func (m *Logistic) FeatureNames() []string { return m.Features }

// Marshal returns the model file: indented JSON.
func (m *Logistic) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encode logistic model: %w", err)
	}
	return append(b, '\n'), nil
}

// LoadLogistic reads a logistic model file and checks it: the format and
// its version, one mean, scale and weight per feature, finite numbers,
// positive scales, transforms (if any) one per feature and known, and a
// profile (if any) that names the same features.
func LoadLogistic(b []byte) (*Logistic, error) {
	var m Logistic
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode logistic model: %w", err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("logistic model: format %q, want %q", m.Format, Format)
	}
	if m.Version != FormatVersion {
		return nil, fmt.Errorf("logistic model: format_version %d, want %d", m.Version, FormatVersion)
	}
	d := len(m.Features)
	if d == 0 {
		return nil, errors.New("logistic model: no features")
	}
	if len(m.Mean) != d || len(m.Scale) != d || len(m.Weights) != d {
		return nil, fmt.Errorf("logistic model: %d features but %d means, %d scales, %d weights", d, len(m.Mean), len(m.Scale), len(m.Weights))
	}
	if m.Transforms != nil {
		if len(m.Transforms) != d {
			return nil, fmt.Errorf("logistic model: %d features but %d transforms", d, len(m.Transforms))
		}
		for j, t := range m.Transforms {
			if t != TransformNone && t != TransformLog1p {
				return nil, fmt.Errorf("logistic model: feature %s: transform %q, want %q or none", m.Features[j], t, TransformLog1p)
			}
		}
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !finite(m.Intercept) {
		return nil, fmt.Errorf("logistic model: intercept %v", m.Intercept)
	}
	for j := range d {
		if !finite(m.Mean[j]) || !finite(m.Weights[j]) || !finite(m.Scale[j]) || m.Scale[j] <= 0 {
			return nil, fmt.Errorf("logistic model: feature %s: mean %v, scale %v, weight %v: want finite numbers and a positive scale",
				m.Features[j], m.Mean[j], m.Scale[j], m.Weights[j])
		}
	}
	if m.Profile != nil {
		if err := m.Profile.Check(m.Features); err != nil {
			return nil, fmt.Errorf("logistic model: %w", err)
		}
	}
	return &m, nil
}
