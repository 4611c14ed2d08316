package learning

import (
	"context"
	"fmt"
	"strings"

	"github.com/netfeat/netfeat/backtest"
)

// Scorer scores one feature vector (the values of the candidate's
// features, in order) with one model version.
type Scorer func(x []float64) (float64, error)

// Candidate is a newly trained version to judge against the live one.
type Candidate struct {
	Model   string
	Version string
	// Live is the live version's name ("" when the model has none).
	Live string
	// Holdout are labelled windows the candidate was not trained on, the
	// most recent ones.
	Holdout *Dataset
	// Score scores with the candidate, LiveScore with the live version
	// (nil when there is none).
	Score, LiveScore Scorer
	// Threshold is the score at or above which the model acts.
	Threshold float64
}

// Verdict is a gate's answer.
type Verdict struct {
	Pass bool `json:"pass"`
	// Reason says why, with the figures compared.
	Reason    string   `json:"reason"`
	Candidate *Metrics `json:"candidate,omitempty"`
	Live      *Metrics `json:"live,omitempty"`
	// Backtest are the results of a twin backtest (the candidate's first,
	// then the live version's when there is one), and BacktestRun what
	// they were measured on.
	Backtest    []backtest.Result `json:"backtest,omitempty"`
	BacktestRun string            `json:"backtest_run,omitempty"`
}

// Gate decides whether a candidate version may replace the live one. The
// retraining loop calls it after the candidate is stored and shadowed;
// HoldoutGate compares the two on held-out labelled windows; the twin
// backtest gate (internal/twin.Gate) scores both on a digital twin run,
// as `netfeat backtest` does. Several gates are chained with AllGates.
type Gate interface {
	Evaluate(ctx context.Context, c Candidate) (Verdict, error)
}

// Metrics are a binary classifier's counts and scores at a threshold.
type Metrics struct {
	TP, FP, FN, TN int
	Precision      float64 `json:"precision"`
	Recall         float64 `json:"recall"`
	F1             float64 `json:"f1"`
}

// Get returns the metric named by MetricF1, MetricPrecision or
// MetricRecall.
func (m *Metrics) Get(name string) float64 {
	switch name {
	case MetricPrecision:
		return m.Precision
	case MetricRecall:
		return m.Recall
	}
	return m.F1
}

// Evaluate scores every row of ds with score and counts its decisions at
// threshold (score ≥ threshold is positive) against the labels. An empty
// class leaves its ratios at 0.
func Evaluate(ds *Dataset, score Scorer, threshold float64) (*Metrics, error) {
	m := &Metrics{}
	for i := range ds.Len() {
		s, err := score(ds.Row(i))
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", i+1, err)
		}
		switch pos := s >= threshold; {
		case pos && ds.Y[i] == 1:
			m.TP++
		case pos:
			m.FP++
		case ds.Y[i] == 1:
			m.FN++
		default:
			m.TN++
		}
	}
	if m.TP+m.FP > 0 {
		m.Precision = float64(m.TP) / float64(m.TP+m.FP)
	}
	if m.TP+m.FN > 0 {
		m.Recall = float64(m.TP) / float64(m.TP+m.FN)
	}
	if m.Precision+m.Recall > 0 {
		m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
	}
	return m, nil
}

// HoldoutGate passes a candidate whose metric on the held-out windows is
// at least MinValue and exceeds the live version's by at least MinGain. A
// live version that cannot score the windows (another feature set, a
// detector) counts as 0.
type HoldoutGate struct {
	Metric   string
	MinGain  float64
	MinValue float64
}

// Evaluate implements Gate.
func (g HoldoutGate) Evaluate(_ context.Context, c Candidate) (Verdict, error) {
	metric := g.Metric
	if metric == "" {
		metric = MetricF1
	}
	if c.Holdout == nil || c.Holdout.Len() == 0 {
		return Verdict{Reason: "no held-out windows to judge the candidate on"}, nil
	}
	cm, err := Evaluate(c.Holdout, c.Score, c.Threshold)
	if err != nil {
		return Verdict{}, fmt.Errorf("score the candidate %s: %w", c.Version, err)
	}
	v := Verdict{Candidate: cm}
	live, liveNote := 0.0, "no live version"
	if c.LiveScore != nil {
		lm, err := Evaluate(c.Holdout, c.LiveScore, c.Threshold)
		if err != nil {
			liveNote = fmt.Sprintf("live %s cannot score the held-out windows (%v)", c.Live, err)
		} else {
			v.Live, live, liveNote = lm, lm.Get(metric), fmt.Sprintf("live %s %s %.4f", c.Live, metric, lm.Get(metric))
		}
	}
	got := cm.Get(metric)
	v.Pass = got >= g.MinValue && got >= live+g.MinGain
	v.Reason = fmt.Sprintf("candidate %s %s %.4f on %d held-out windows, %s; need ≥ %.4f and ≥ live + %.4f",
		c.Version, metric, got, c.Holdout.Len(), liveNote, g.MinValue, g.MinGain)
	return v, nil
}

// AllGates passes a candidate only when every gate does, asking them in
// order and stopping at the first that does not pass (or fails). The
// verdict joins the reasons of the gates asked, in order, and keeps the
// figures of the first gate that gave each (held-out metrics, backtest
// results).
type AllGates []Gate

// Evaluate implements Gate.
func (gs AllGates) Evaluate(ctx context.Context, c Candidate) (Verdict, error) {
	if len(gs) == 0 {
		return Verdict{Pass: true, Reason: "no gate"}, nil
	}
	out := Verdict{Pass: true}
	var reasons []string
	for _, g := range gs {
		v, err := g.Evaluate(ctx, c)
		if err != nil {
			return out, err
		}
		reasons = append(reasons, v.Reason)
		out.Reason = strings.Join(reasons, "; ")
		if out.Candidate == nil {
			out.Candidate, out.Live = v.Candidate, v.Live
		}
		if out.Backtest == nil {
			out.Backtest, out.BacktestRun = v.Backtest, v.BacktestRun
		}
		if !v.Pass {
			out.Pass = false
			return out, nil
		}
	}
	return out, nil
}
