package learning

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// Gate metrics of GateConfig.Metric.
const (
	MetricF1        = "f1"
	MetricPrecision = "precision"
	MetricRecall    = "recall"
)

// Config is the `learning:` section of the configuration file.
type Config struct {
	// Enabled runs the retraining loop (Loop). Drift monitoring (Drift)
	// runs whether or not it is enabled.
	Enabled bool `yaml:"enabled"`
	// Schedule retrains every model in Models this often; 0: only on
	// drift.
	Schedule time.Duration `yaml:"schedule"`
	// OnDrift retrains a model when one of its live version's features
	// starts drifting.
	OnDrift bool `yaml:"on_drift"`
	// MinInterval is the shortest time between two retrainings of one
	// model, so that several features drifting at once train once;
	// default 10m.
	MinInterval time.Duration `yaml:"min_interval"`
	// AutoPromote promotes a candidate that passes the gate; without it
	// the candidate stays in shadow for an operator to promote.
	AutoPromote bool `yaml:"auto_promote"`
	// Models names the models to retrain (each of kind logistic); empty:
	// every configured logistic model.
	Models []string `yaml:"models"`
	// MinSamples is the smallest labelled set the loop trains on; default
	// 200.
	MinSamples int `yaml:"min_samples"`
	// Holdout is the share of the most recent labelled windows kept out
	// of training to judge the candidate against the live version;
	// default 0.2.
	Holdout float64 `yaml:"holdout"`
	// L2 is the logistic models' penalty (Options.L2); default 1e-4.
	L2 float64 `yaml:"l2"`
	// Gate decides whether a candidate may be promoted.
	Gate GateConfig `yaml:"gate"`
	// Drift configures the PSI monitor of versions with a training
	// profile.
	Drift DriftConfig `yaml:"drift"`
}

// GateConfig configures the held-out promotion gate (HoldoutGate).
type GateConfig struct {
	// Metric is f1 (default), precision or recall, at the model's
	// threshold.
	Metric string `yaml:"metric"`
	// MinGain is how much the candidate's metric must exceed the live
	// version's; default 0 (at least as good).
	MinGain float64 `yaml:"min_gain"`
	// MinValue is the lowest metric a candidate may be promoted with;
	// default 0.
	MinValue float64 `yaml:"min_value"`
}

// DriftConfig configures drift monitoring (inference.DriftConfig).
type DriftConfig struct {
	// Window is how many scored windows each version's PSI covers; 0
	// turns drift monitoring off. Default 1000.
	Window int `yaml:"window"`
	// Every is how many windows pass between two PSI evaluations once the
	// window is full; default window/10.
	Every int `yaml:"every"`
	// PSIThreshold: a feature whose PSI exceeds it drifts; default 0.2.
	PSIThreshold float64 `yaml:"psi_threshold"`
	// PSIClear: a drifting feature stops drifting below it; default
	// psi_threshold/2.
	PSIClear float64 `yaml:"psi_clear"`
}

// DefaultConfig returns the defaults for keys the file leaves out.
func DefaultConfig() Config {
	return Config{
		MinInterval: 10 * time.Minute, MinSamples: 200, Holdout: 0.2, L2: 1e-4,
		Gate:  GateConfig{Metric: MetricF1},
		Drift: DriftConfig{Window: 1000, PSIThreshold: 0.2},
	}
}

// Validate checks the section and returns every problem as
// *schema.FieldError values joined, with fields relative to `learning`.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, schema.Errorf(field, format, args...)) }
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if c.Schedule < 0 || (c.Schedule > 0 && c.Schedule < time.Minute) {
		bad("schedule", "must be 0 (only on drift) or at least 1m, got %v", c.Schedule)
	}
	if c.Enabled && c.Schedule == 0 && !c.OnDrift {
		bad("schedule", "the loop is enabled but neither a schedule nor on_drift would ever start it")
	}
	if c.MinInterval < 0 {
		bad("min_interval", "must not be negative, got %v", c.MinInterval)
	}
	if c.MinSamples < 10 || c.MinSamples > 100_000_000 {
		bad("min_samples", "must be 10–100000000, got %d", c.MinSamples)
	}
	if !(c.Holdout > 0 && c.Holdout < 1) {
		bad("holdout", "must be between 0 and 1 (exclusive), got %v", c.Holdout)
	}
	if !finite(c.L2) || c.L2 <= 0 {
		bad("l2", "must be a positive number, got %v", c.L2)
	}
	switch c.Gate.Metric {
	case MetricF1, MetricPrecision, MetricRecall:
	default:
		bad("gate.metric", "must be %s, %s or %s, got %q", MetricF1, MetricPrecision, MetricRecall, c.Gate.Metric)
	}
	if !finite(c.Gate.MinGain) || c.Gate.MinGain < -1 || c.Gate.MinGain > 1 {
		bad("gate.min_gain", "must be in [-1, 1], got %v", c.Gate.MinGain)
	}
	if !finite(c.Gate.MinValue) || c.Gate.MinValue < 0 || c.Gate.MinValue > 1 {
		bad("gate.min_value", "must be in [0, 1], got %v", c.Gate.MinValue)
	}
	seen := map[string]bool{}
	for i, m := range c.Models {
		if seen[m] {
			bad(fmt.Sprintf("models[%d]", i), "%q is listed twice", m)
		}
		seen[m] = true
	}
	d := c.Drift
	if d.Window < 0 || d.Window > 1_000_000 {
		bad("drift.window", "must be 0–1000000, got %d", d.Window)
	}
	if d.Every < 0 || (d.Window > 0 && d.Every > d.Window) {
		bad("drift.every", "must be 0–window (%d), got %d", d.Window, d.Every)
	}
	if !finite(d.PSIThreshold) || d.PSIThreshold <= 0 {
		bad("drift.psi_threshold", "must be a positive number, got %v", d.PSIThreshold)
	}
	if !finite(d.PSIClear) || d.PSIClear < 0 || d.PSIClear > d.PSIThreshold {
		bad("drift.psi_clear", "must be between 0 and psi_threshold (%v), got %v", d.PSIThreshold, d.PSIClear)
	}
	return errors.Join(errs...)
}
