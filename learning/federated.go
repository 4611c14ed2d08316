package learning

import (
	"context"
	"errors"
	"fmt"
	"math"
)

// FeatureTransform maps one raw feature into the feature space that every
// edge of a federated model shares: z = (f(x) − Center) / Scale, where f
// is log1p(max(x, 0)) when Log1p is set and the identity otherwise. The
// transform is fixed by configuration, the same on every edge, so that a
// weight means the same on every edge and the hub's average of the edges'
// weights means something; a per-edge standardisation (each edge's own
// mean and deviation, as Train does) would give each edge's weights
// another unit.
type FeatureTransform struct {
	// Name is the raw feature's name (a view's feature, e.g.
	// interface_out_discards_ps__max_1m).
	Name string `yaml:"name" json:"name"`
	// Log1p compresses a heavy-tailed, non-negative feature (a rate of
	// errors or drops per second): f(x) = log(1 + max(x, 0)).
	Log1p bool `yaml:"log1p,omitempty" json:"log1p,omitempty"`
	// Center is subtracted after f.
	Center float64 `yaml:"center,omitempty" json:"center,omitempty"`
	// Scale divides after Center is subtracted; it must be positive.
	Scale float64 `yaml:"scale" json:"scale"`
}

// FeatureSpace is the ordered list of transforms of a federated model's
// features. A missing raw value (NaN: the window had no data for it) maps
// to 0, the transformed Center, so that it adds nothing to the margin.
type FeatureSpace []FeatureTransform

// Validate checks that the space has at least one feature, distinct
// non-empty names, and finite centers and positive finite scales.
func (s FeatureSpace) Validate() error {
	if len(s) == 0 {
		return errors.New("feature space: no features")
	}
	seen := make(map[string]bool, len(s))
	for i, t := range s {
		switch {
		case t.Name == "" || seen[t.Name]:
			return fmt.Errorf("feature space: feature %d: name %q empty or given twice", i+1, t.Name)
		case math.IsNaN(t.Center) || math.IsInf(t.Center, 0):
			return fmt.Errorf("feature space: %s: center %v is not finite", t.Name, t.Center)
		case !(t.Scale > 0) || math.IsInf(t.Scale, 0):
			return fmt.Errorf("feature space: %s: scale %v must be a positive finite number", t.Name, t.Scale)
		}
		seen[t.Name] = true
	}
	return nil
}

// Names returns the raw features' names, in order.
func (s FeatureSpace) Names() []string {
	out := make([]string, len(s))
	for i, t := range s {
		out[i] = t.Name
	}
	return out
}

// Apply appends the transformed features of raw (one value per feature of
// s, in order) to dst and returns it. NaN maps to 0; ±Inf is refused.
func (s FeatureSpace) Apply(dst, raw []float64) ([]float64, error) {
	if len(raw) != len(s) {
		return dst, fmt.Errorf("feature space: %d values for %d features", len(raw), len(s))
	}
	for i, t := range s {
		x := raw[i]
		switch {
		case math.IsNaN(x):
			dst = append(dst, 0)
			continue
		case math.IsInf(x, 0):
			return dst, fmt.Errorf("feature space: %s is %v", t.Name, x)
		}
		if t.Log1p {
			x = math.Log1p(math.Max(x, 0))
		}
		dst = append(dst, (x-t.Center)/t.Scale)
	}
	return dst, nil
}

// FederatedOptions configure a FederatedTrainer's local training.
type FederatedOptions struct {
	// Epochs is the number of full-batch gradient steps per round; default
	// 50.
	Epochs int `yaml:"epochs" json:"epochs"`
	// LearningRate is the step size; default 0.5.
	LearningRate float64 `yaml:"learning_rate" json:"learning_rate"`
	// L2 is λ in (1/N)·Σ cᵢ·loglossᵢ + (λ/2)·‖w‖² (cᵢ: PositiveWeight
	// for a row labelled 1, else 1; the bias is not penalised); default
	// 1e-3.
	L2 float64 `yaml:"l2" json:"l2"`
	// PositiveWeight is how many times a row labelled 1 counts in the
	// loss; default 1. Incidents are rare (a few windows in a thousand),
	// and at weight 1 their share of the gradient is too small for a few
	// rounds to learn them. Give every edge the same value: the edges
	// then minimise one objective, the weighted loss over all their rows.
	PositiveWeight float64 `yaml:"positive_weight" json:"positive_weight"`
}

func (o FederatedOptions) withDefaults() FederatedOptions {
	if o.Epochs == 0 {
		o.Epochs = 50
	}
	if o.LearningRate == 0 {
		o.LearningRate = 0.5
	}
	if o.L2 == 0 {
		o.L2 = 1e-3
	}
	if o.PositiveWeight == 0 {
		o.PositiveWeight = 1
	}
	return o
}

// FederatedTrainer is an edge's trainer of a federated logistic regression
// (it implements federated.Trainer): from the global weights it takes
// Epochs full-batch gradient steps of the L2-regularised log loss (rows
// labelled 1 weighted by PositiveWeight) over the edge's own rows and
// returns the local weights minus the global ones, with its number of
// rows. The rows never leave it. Weights are one per feature, in the
// Dataset's order, then the bias (dimension d+1).
//
// Unlike Train, it accepts a set with one class only: an edge that never
// saw an incident still has something to teach (what normal looks like),
// and still takes part.
type FederatedTrainer struct {
	ds  *Dataset
	opt FederatedOptions
}

// Validate checks the options after their defaults: positive epochs, a
// positive finite learning rate and positive weight, a non-negative finite
// L2 penalty.
func (o FederatedOptions) Validate() error {
	o = o.withDefaults()
	switch {
	case o.Epochs < 0:
		return fmt.Errorf("federated trainer: epochs %d: must be positive", o.Epochs)
	case !(o.LearningRate > 0) || math.IsInf(o.LearningRate, 0):
		return fmt.Errorf("federated trainer: learning rate %v: must be a positive finite number", o.LearningRate)
	case !(o.L2 >= 0) || math.IsInf(o.L2, 0):
		return fmt.Errorf("federated trainer: l2 %v: must be a non-negative finite number", o.L2)
	case !(o.PositiveWeight > 0) || math.IsInf(o.PositiveWeight, 0):
		return fmt.Errorf("federated trainer: positive weight %v: must be a positive finite number", o.PositiveWeight)
	}
	return nil
}

// NewFederatedTrainer checks ds (names, shape, finite values, labels 0 or
// 1, at least one row; both classes are not required) and opt, and returns
// a trainer over ds. ds must already be in the shared feature space
// (FeatureSpace.Apply); the trainer keeps it and must be its only writer.
func NewFederatedTrainer(ds *Dataset, opt FederatedOptions) (*FederatedTrainer, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	opt = opt.withDefaults()
	err := ds.Validate(1)
	if err != nil && Reason(err) != ReasonOneClass {
		return nil, fmt.Errorf("federated trainer: %w", err)
	}
	return &FederatedTrainer{ds: ds, opt: opt}, nil
}

// Dim returns the number of weights the trainer expects: one per feature
// and the bias.
func (t *FederatedTrainer) Dim() int { return len(t.ds.Names) + 1 }

// Train runs the local gradient steps from global and returns the update
// (local − global) and the number of rows. It stops with ctx's error when
// ctx ends.
func (t *FederatedTrainer) Train(ctx context.Context, global []float64) ([]float64, int, error) {
	d := len(t.ds.Names)
	if len(global) != d+1 {
		return nil, 0, fmt.Errorf("federated trainer: %d global weights, want %d (%d features and the bias)", len(global), d+1, d)
	}
	for j, v := range global {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, 0, fmt.Errorf("federated trainer: global weight %d is %v", j, v)
		}
	}
	n := t.ds.Len()
	w := append([]float64(nil), global...)
	g := make([]float64, d+1)
	for range t.opt.Epochs {
		if err := ctx.Err(); err != nil {
			return nil, 0, fmt.Errorf("federated trainer: %w", err)
		}
		clear(g)
		for i := range n {
			x := t.ds.Row(i)
			e := Sigmoid(Margin(w, x)) - t.ds.Y[i]
			if t.ds.Y[i] == 1 {
				e *= t.opt.PositiveWeight
			}
			for j, v := range x {
				g[j] += e * v
			}
			g[d] += e
		}
		for j := range w {
			step := g[j] / float64(n)
			if j < d {
				step += t.opt.L2 * w[j]
			}
			w[j] -= t.opt.LearningRate * step
		}
	}
	for j := range w {
		w[j] -= global[j]
	}
	return w, n, nil
}

// Margin returns the linear score of x under weights w (one per feature,
// then the bias): Σ w[j]·x[j] + w[d].
func Margin(w, x []float64) float64 {
	d := len(w) - 1
	s := w[d]
	for j := range d {
		s += w[j] * x[j]
	}
	return s
}

// Sigmoid is the logistic function 1 / (1 + e^−z).
func Sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// WeightsScorer returns a Scorer of rows in the shared feature space under
// federated weights w (one per feature, then the bias): the probability
// of the positive class. It refuses rows of another length.
func WeightsScorer(w []float64) Scorer {
	w = append([]float64(nil), w...)
	return func(x []float64) (float64, error) {
		if len(x) != len(w)-1 {
			return 0, fmt.Errorf("%d features, want %d", len(x), len(w)-1)
		}
		return Sigmoid(Margin(w, x)), nil
	}
}

// FederatedModel returns the logistic model file of federated weights w
// (one per feature of s, then the bias): each feature's transform, center
// and scale become its Transforms, Mean and Scale entries, so that
// Predict on raw values equals Sigmoid(Margin(w, s.Apply(raw))) wherever
// the raw values are finite (a missing value is the runtime's to handle:
// a window without data for a required feature gets no decision). info
// describes where the weights come from; l2 is the penalty they were
// trained with.
func FederatedModel(s FeatureSpace, w []float64, l2 float64, info TrainInfo) (*Logistic, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("federated model: %w", err)
	}
	d := len(s)
	if len(w) != d+1 {
		return nil, fmt.Errorf("federated model: %d weights, want %d (%d features and the bias)", len(w), d+1, d)
	}
	for j, v := range w {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("federated model: weight %d is %v", j, v)
		}
	}
	m := &Logistic{
		Format: Format, Version: FormatVersion, Features: s.Names(),
		Mean: make([]float64, d), Scale: make([]float64, d), Weights: append([]float64(nil), w[:d]...),
		Intercept: w[d], L2: l2, Trained: info,
	}
	log1p := false
	for j, t := range s {
		m.Mean[j], m.Scale[j] = t.Center, t.Scale
		log1p = log1p || t.Log1p
	}
	if log1p {
		m.Transforms = make([]string, d)
		for j, t := range s {
			if t.Log1p {
				m.Transforms[j] = TransformLog1p
			}
		}
	}
	return m, nil
}
