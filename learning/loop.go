package learning

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Registry is what the loop needs of the model registry (the service
// adapts inference.Runtime to it).
type Registry interface {
	// Features returns the features model's live version reads, in order.
	Features(model string) ([]string, error)
	// Upload stores a model file as a new version and returns its name.
	Upload(ctx context.Context, model string, file []byte) (string, error)
	// Shadow makes version score beside the live one.
	Shadow(ctx context.Context, model, version string) error
	// Promote makes version live.
	Promote(ctx context.Context, model, version string) error
	// Live returns the live version ("" for none).
	Live(ctx context.Context, model string) (string, error)
	// Scorer returns a scorer of a stored version over names.
	Scorer(ctx context.Context, model, version string, names []string) (Scorer, error)
	// Threshold returns the score at or above which model acts.
	Threshold(model string) (float64, error)
}

// Source gives the labelled windows a model is trained on, in time order
// (the most recent last, so that the held-out part is the newest): the
// runtime's windows labelled by operator feedback, or a twin's ground
// truth.
type Source interface {
	Labelled(ctx context.Context, model string, names []string) (*Dataset, error)
}

// Triggers of a retraining (the trigger label of
// netfeat_learning_runs_total).
const (
	TriggerSchedule = "schedule"
	TriggerDrift    = "drift"
	TriggerManual   = "manual"
)

// Results of a retraining (the result label of
// netfeat_learning_runs_total).
const (
	ResultPromoted = "promoted"  // trained, passed the gate, promoted
	ResultShadow   = "shadow"    // trained and shadowed; the gate passed but auto_promote is off
	ResultGate     = "gate"      // trained and shadowed; the gate refused promotion
	ResultTooFew   = "too_few"   // fewer labelled windows than min_samples
	ResultBadInput = "bad_input" // the training set was refused (netfeat_learning_rejected_total says why)
	ResultError    = "error"     // the registry or the source failed
)

// Run is the outcome of one retraining.
type Run struct {
	Model    string    `json:"model"`
	Trigger  string    `json:"trigger"`
	Result   string    `json:"result"`
	Version  string    `json:"version,omitempty"`
	Rows     int       `json:"rows"`
	Verdict  *Verdict  `json:"verdict,omitempty"`
	Err      string    `json:"error,omitempty"`
	Started  time.Time `json:"started"`
	Duration string    `json:"duration"`
}

// Loop retrains models: on a schedule, when their inputs drift, or when
// asked (Retrain). Each run reads the labelled windows, holds out the most
// recent share, trains a logistic model on the rest, uploads it as a new
// version, shadows it, asks the gate, and promotes it when the gate passes
// and auto_promote is on. Runs of one loop are serialised.
type Loop struct {
	cfg  Config
	reg  Registry
	src  Source
	gate Gate
	log  *slog.Logger

	drift chan string
	runMu sync.Mutex // serialises runs; guards last
	last  map[string]time.Time
	mu    sync.Mutex // guards runs
	runs  []Run

	runsTotal *prometheus.CounterVec // model, trigger, result
	rejected  *prometheus.CounterVec // reason
	seconds   prometheus.Histogram
}

// NewLoop builds a loop over models. gate nil means HoldoutGate from
// cfg.Gate. pr may be nil: the metrics are then not registered.
func NewLoop(cfg Config, models []string, reg Registry, src Source, gate Gate, pr prometheus.Registerer, log *slog.Logger) (*Loop, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("learning config: %w", err)
	}
	if gate == nil {
		gate = cfg.Gate.Holdout()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Loop{
		cfg: cfg, reg: reg, src: src, gate: gate, log: log, drift: make(chan string, 64), last: map[string]time.Time{},
		runsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "netfeat", Subsystem: "learning", Name: "runs_total",
			Help: "Retraining runs, by model, trigger (schedule, drift, manual) and result (promoted, shadow, gate, too_few, bad_input, error)."},
			[]string{"model", "trigger", "result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "netfeat", Subsystem: "learning", Name: "rejected_total",
			Help: "Training sets refused, by reason (non_finite, feature_count, one_class, label, too_few, names)."}, []string{"reason"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "netfeat", Subsystem: "learning", Name: "train_seconds",
			Help: "Time to train one candidate.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
	}
	if len(models) == 0 {
		return nil, errors.New("learning: no model to retrain (learning.models, or a model of kind logistic)")
	}
	l.cfg.Models = models
	if pr != nil {
		for _, c := range []prometheus.Collector{l.runsTotal, l.rejected, l.seconds} {
			if err := pr.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

// SetGate replaces the gate candidates are judged by (the service adds
// the twin backtest gate once it is built). It waits for a run in
// progress to finish.
func (l *Loop) SetGate(g Gate) {
	l.runMu.Lock()
	defer l.runMu.Unlock()
	l.gate = g
}

// Drifted tells the loop that a feature of model's live version started
// drifting; with on_drift it retrains the model (at most once per
// min_interval). It never blocks.
func (l *Loop) Drifted(model string) {
	if !l.cfg.OnDrift {
		return
	}
	select {
	case l.drift <- model:
	default:
	}
}

// Run runs the loop until ctx is done.
func (l *Loop) Run(ctx context.Context) {
	var tick <-chan time.Time
	if l.cfg.Schedule > 0 {
		t := time.NewTicker(l.cfg.Schedule)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			for _, m := range l.cfg.Models {
				l.Retrain(ctx, m, TriggerSchedule)
			}
		case m := <-l.drift:
			if l.watches(m) {
				l.Retrain(ctx, m, TriggerDrift)
			}
		}
	}
}

func (l *Loop) watches(model string) bool {
	for _, m := range l.cfg.Models {
		if m == model {
			return true
		}
	}
	return false
}

// Runs returns the last runs (at most 100), oldest first.
func (l *Loop) Runs() []Run {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Run(nil), l.runs...)
}

// Retrain runs one retraining of model now and returns its outcome. A
// drift-triggered run within min_interval of the model's last run is
// skipped (the zero Run).
func (l *Loop) Retrain(ctx context.Context, model, trigger string) Run {
	l.runMu.Lock()
	defer l.runMu.Unlock()
	if trigger == TriggerDrift && time.Since(l.last[model]) < l.cfg.MinInterval {
		return Run{}
	}
	start := time.Now()
	l.last[model] = start
	run := Run{Model: model, Trigger: trigger, Started: start.UTC()}
	err := l.retrain(ctx, &run)
	if err != nil {
		run.Err = err.Error()
		if run.Result == "" {
			run.Result = ResultError
		}
		l.log.Warn("retraining did not produce a candidate", "model", model, "trigger", trigger, "result", run.Result, "err", err)
	} else {
		l.log.Info("retrained", "model", model, "trigger", trigger, "result", run.Result, "version", run.Version,
			"rows", run.Rows, "verdict", run.Verdict.Reason)
	}
	run.Duration = time.Since(start).Round(time.Millisecond).String()
	l.runsTotal.WithLabelValues(model, trigger, run.Result).Inc()
	l.mu.Lock()
	l.runs = append(l.runs, run)
	if len(l.runs) > 100 {
		l.runs = l.runs[len(l.runs)-100:]
	}
	l.mu.Unlock()
	return run
}

func (l *Loop) retrain(ctx context.Context, run *Run) error {
	model := run.Model
	names, err := l.reg.Features(model)
	if err != nil {
		return err
	}
	ds, err := l.src.Labelled(ctx, model, names)
	if err != nil {
		if r := Reason(err); r != "" {
			l.rejected.WithLabelValues(r).Inc()
			run.Result = ResultBadInput
		}
		return fmt.Errorf("labelled windows of %s: %w", model, err)
	}
	run.Rows = ds.Len()
	if ds.Len() < l.cfg.MinSamples {
		run.Result = ResultTooFew
		return fmt.Errorf("%d labelled windows, learning.min_samples is %d", ds.Len(), l.cfg.MinSamples)
	}
	train, hold := ds.Split(l.cfg.Holdout)
	t0 := time.Now()
	m, err := Train(&train, Options{L2: l.cfg.L2, Source: "retrained (" + run.Trigger + ")"})
	l.seconds.Observe(time.Since(t0).Seconds())
	if err != nil {
		if r := Reason(err); r != "" {
			l.rejected.WithLabelValues(r).Inc()
			run.Result = ResultBadInput
		}
		return err
	}
	file, err := m.Marshal()
	if err != nil {
		return err
	}
	if run.Version, err = l.reg.Upload(ctx, model, file); err != nil {
		return err
	}
	if err := l.reg.Shadow(ctx, model, run.Version); err != nil {
		return err
	}
	c := Candidate{Model: model, Version: run.Version, Holdout: &hold}
	if c.Threshold, err = l.reg.Threshold(model); err != nil {
		return err
	}
	if c.Score, err = l.reg.Scorer(ctx, model, run.Version, names); err != nil {
		return err
	}
	if c.Live, err = l.reg.Live(ctx, model); err != nil {
		return err
	}
	if c.Live != "" {
		if c.LiveScore, err = l.reg.Scorer(ctx, model, c.Live, names); err != nil {
			c.LiveScore = func([]float64) (float64, error) { return 0, err }
		}
	}
	v, err := l.gate.Evaluate(ctx, c)
	if err != nil {
		return fmt.Errorf("gate: %w", err)
	}
	run.Verdict = &v
	switch {
	case !v.Pass:
		run.Result = ResultGate
	case !l.cfg.AutoPromote:
		run.Result = ResultShadow
	default:
		if err := l.reg.Promote(ctx, model, run.Version); err != nil {
			return err
		}
		run.Result = ResultPromoted
	}
	return nil
}
