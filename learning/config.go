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

// GateConfig configures the promotion gate: the held-out gate
// (HoldoutGate) and, with Twin, a backtest on the digital twin beside it.
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
	// Twin, when set, also backtests each candidate beside the live
	// version on a digital twin run; the candidate must pass both gates
	// (AllGates{HoldoutGate, twin}). The same Metric, MinGain and MinValue
	// apply to the backtest's result.
	Twin *TwinGateConfig `yaml:"twin"`
}

// TwinGateConfig configures the twin backtest gate (internal/twin.Gate,
// built by netfeat serve): a sandboxed twin run of the demo's devices
// following the scenarios in Scenarios, scored against their incidents.
type TwinGateConfig struct {
	// Scenarios is a directory with a scenario per demo device
	// (nokia-7210.yaml, ericsson-ml.yaml, cisco-xr1.yaml), as netfeat
	// twin --scenarios reads. Required.
	Scenarios string `yaml:"scenarios"`
	// Duration is the run's virtual time; default 10m.
	Duration time.Duration `yaml:"duration"`
	// Speed is the most times faster than real time the run goes; 0 (the
	// default): as fast as the pipeline takes it.
	Speed float64 `yaml:"speed"`
	// Interval is the virtual time between two reads of a device; default
	// 5s.
	Interval time.Duration `yaml:"interval"`
	// Grace: an action up to this long after an incident ended still
	// detects it; default 1m.
	Grace time.Duration `yaml:"grace"`
	// Kinds are the incident kinds the model is meant to detect
	// (backtest.Options.Kinds); empty: every kind.
	Kinds []string `yaml:"kinds"`
}

// Defaults returns t with its unset durations at their defaults.
func (t TwinGateConfig) Defaults() TwinGateConfig {
	if t.Duration == 0 {
		t.Duration = 10 * time.Minute
	}
	if t.Interval == 0 {
		t.Interval = 5 * time.Second
	}
	if t.Grace == 0 {
		t.Grace = time.Minute
	}
	return t
}

// Holdout returns the held-out gate the section configures.
func (g GateConfig) Holdout() HoldoutGate {
	return HoldoutGate{Metric: g.Metric, MinGain: g.MinGain, MinValue: g.MinValue}
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
	if t := c.Gate.Twin; t != nil {
		errs = append(errs, t.validate()...)
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

// validate checks the twin gate's section, with fields relative to
// `learning`.
func (t *TwinGateConfig) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, schema.Errorf("gate.twin."+field, format, args...))
	}
	d := t.Defaults()
	if t.Scenarios == "" {
		bad("scenarios", "required: a directory with the demo devices' scenarios (nokia-7210.yaml, ericsson-ml.yaml, cisco-xr1.yaml)")
	}
	if d.Duration < time.Minute || d.Duration > 24*time.Hour {
		bad("duration", "must be 1m–24h of virtual time, got %v", t.Duration)
	}
	if math.IsNaN(t.Speed) || math.IsInf(t.Speed, 0) || t.Speed < 0 {
		bad("speed", "must be 0 (as fast as possible) or a positive number, got %v", t.Speed)
	}
	if d.Interval < time.Second || d.Interval > d.Duration {
		bad("interval", "must be 1s–duration (%v), got %v", d.Duration, t.Interval)
	}
	if t.Grace < 0 {
		bad("grace", "must not be negative, got %v", t.Grace)
	}
	for i, k := range t.Kinds {
		if k == "" {
			bad(fmt.Sprintf("kinds[%d]", i), "must not be empty")
		}
	}
	return errs
}
