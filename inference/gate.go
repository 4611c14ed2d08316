package inference

// Backtest results kept with a version, and the promotion gate that
// compares them (netfeat backtest, netfeat models promote; docs/learning.md
// "Twin and backtest").

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/netfeat/netfeat/backtest"
)

// ErrGateRefused: the promotion gate refused a version whose backtest is
// worse than the live version's on the gate metric.
var ErrGateRefused = errors.New("promotion gate refused")

// Backtest is a version's backtest result as the registry keeps it with the
// version (VersionInfo.Backtest): the metrics the promotion gate compares
// and what they were measured on.
type Backtest struct {
	// Metrics are precision, recall, f1 and false_actions_per_hour
	// (backtest.Metrics).
	Metrics map[string]float64 `json:"metrics"`
	// Run says what the versions were scored on: the twin run or replayed
	// export, its virtual span and labels; versions backtested together
	// share it.
	Run string `json:"run"`
	// Against is the version it was scored beside, if any.
	Against string `json:"against,omitempty"`
	// Result is the full result (backtest.Result), for reading.
	Result json.RawMessage `json:"result,omitempty"`
	// Recorded is when the result was stored.
	Recorded time.Time `json:"recorded"`
}

// Gate is the promotion gate of one promote request.
type Gate struct {
	// Metric is the backtest metric to compare (backtest.Metrics); empty
	// in an HTTP request means the runtime's configured metric
	// (SetGateMetric), and in a call of PromoteGated disables the gate.
	Metric string `json:"gate_metric,omitempty"`
	// Force promotes even when the gate refuses (logged and counted).
	Force bool `json:"force,omitempty"`
}

// RecordBacktest stores a backtest result with a stored version, replacing
// an earlier one. It changes nothing of what scores.
func (r *Runtime) RecordBacktest(ctx context.Context, model, version string, bt Backtest) (VersionInfo, error) {
	if err := ctx.Err(); err != nil {
		return VersionInfo{}, err
	}
	if _, err := r.modelSlot(model); err != nil {
		return VersionInfo{}, err
	}
	for _, m := range backtest.Metrics {
		if _, ok := bt.Metrics[m]; !ok {
			return VersionInfo{}, badRequest{fmt.Errorf("backtest of %s %s: metric %s missing", model, version, m)}
		}
	}
	if bt.Recorded.IsZero() {
		bt.Recorded = time.Now().UTC()
	}
	r.regM.Lock()
	defer r.regM.Unlock()
	vi, err := r.reg.version(model, version)
	if err != nil {
		return VersionInfo{}, err
	}
	vi.Backtest = &bt
	b, err := json.Marshal(vi)
	if err != nil {
		return VersionInfo{}, err
	}
	if err := r.reg.db.Update(func(txn *badger.Txn) error { return txn.Set(versionKey(model, version), b) }); err != nil {
		return VersionInfo{}, fmt.Errorf("record the backtest of %s %s: %w", model, version, err)
	}
	r.log.Info("backtest recorded", "model", model, "version", version, "run", bt.Run, "metrics", bt.Metrics)
	return vi, nil
}

// gateCheck applies the gate to promoting candidate over live: it refuses
// (ErrGateRefused) when both have a backtest and the candidate's is worse
// on the gate metric, unless the gate is forced (then it logs a warning and
// counts it). Without a backtest on either side there is nothing to
// compare and the promotion goes ahead.
func (r *Runtime) gateCheck(model string, g Gate, candidate, live VersionInfo) error {
	if g.Metric == "" || candidate.Version == live.Version || live.Version == "" {
		return nil
	}
	if candidate.Backtest == nil || live.Backtest == nil {
		r.log.Info("promotion gate: nothing to compare", "model", model, "candidate", candidate.Version,
			"live", live.Version, "candidate_backtested", candidate.Backtest != nil, "live_backtested", live.Backtest != nil)
		return nil
	}
	cv, cok := candidate.Backtest.Metrics[g.Metric]
	lv, lok := live.Backtest.Metrics[g.Metric]
	if !cok || !lok {
		return badRequest{fmt.Errorf("gate metric %q: not in the stored backtests (they have %v)", g.Metric, backtest.Metrics)}
	}
	worse, err := backtest.Worse(g.Metric, cv, lv)
	if err != nil {
		return badRequest{err}
	}
	if !worse {
		return nil
	}
	why := fmt.Sprintf("%s %s: backtest %s %.4g is worse than live %s's %.4g", model, candidate.Version, g.Metric, cv, live.Version, lv)
	if g.Force {
		r.m.gateForced.WithLabelValues(model).Inc()
		r.log.Warn("promotion gate overridden with force", "model", model, "candidate", candidate.Version, "live", live.Version,
			"metric", g.Metric, "candidate_value", cv, "live_value", lv)
		return nil
	}
	r.m.gateRefused.WithLabelValues(model).Inc()
	return fmt.Errorf("%s: %w (--force promotes anyway)", why, ErrGateRefused)
}

// SetGateMetric sets the metric the promotion gate compares when a promote
// request over HTTP names none: the service's learning.gate.metric. Empty
// (the default) leaves such requests ungated. Set it before Start.
func (r *Runtime) SetGateMetric(metric string) { r.gateMetric = metric }
