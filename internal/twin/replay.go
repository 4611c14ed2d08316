package twin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/backtest"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/schema"
	"github.com/netfeat/netfeat/service"
)

// ReplayOptions configure a replay of recorded windows (a `netfeat
// export`, backtest.ReadExport) into a sandboxed inference runtime.
type ReplayOptions struct {
	// Config's inference section (sandboxed: no latency budgets) scores
	// the rows.
	Config *service.Config
	// DataDir is the sandbox directory of the runtime (registry, outbox).
	DataDir string
	// Rows are the windows, in window-end order.
	Rows []*schema.FeatureRow
	// Episodes are the labels, From and To the span they cover.
	Episodes []backtest.Episode
	From, To time.Time
	// OnDecision receives every live decision, as in Options.
	OnDecision func(d *schema.Decision)
	Log        *slog.Logger
}

// Replay hands the rows to the configured models and rules, as the store
// hands closed windows, waits for their decisions and stops the runtime.
// It has no NATS connection: decisions stay in the sandbox's outbox.
func Replay(ctx context.Context, o ReplayOptions) (*Result, error) {
	if o.Config == nil || o.DataDir == "" {
		return nil, errors.New("twin: replay needs a configuration and a sandbox directory")
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := Sandbox(o.Config, o.DataDir).Inference
	slots := map[string]int64{} // view → rules and models deciding on it
	for _, r := range cfg.Rules {
		slots[r.View]++
	}
	for _, m := range cfg.Models {
		slots[m.View]++
	}
	var want int64
	for _, r := range o.Rows {
		want += slots[r.View]
	}
	reg := prometheus.NewRegistry()
	rt, err := inference.New(cfg, nil, filepath.Join(o.DataDir, "inference"), reg, log)
	if err != nil {
		return nil, fmt.Errorf("twin: replay: %w", err)
	}
	var decided atomic.Int64
	rt.SetDecisionHandler(func(d *schema.Decision) {
		decided.Add(1)
		if o.OnDecision != nil {
			o.OnDecision(d)
		}
	})
	if err := rt.Start(ctx); err != nil {
		return nil, fmt.Errorf("twin: replay: %w", err)
	}
	wall0 := time.Now()
	// Keep at most half a queue in flight, so no row is dropped.
	limit := int64(max(1, cfg.QueueSize/2))
	var fed int64
	for _, r := range o.Rows {
		n := slots[r.View]
		if n == 0 {
			continue
		}
		for fed-decided.Load() > limit*n {
			if err := ctx.Err(); err != nil {
				_ = rt.Stop(context.WithoutCancel(ctx))
				return nil, err
			}
			time.Sleep(100 * time.Microsecond)
		}
		rt.HandleRow(r)
		fed += n
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := rt.Stop(stopCtx); err != nil {
		return nil, fmt.Errorf("twin: replay: stop inference: %w", err)
	}
	res := &Result{Start: o.From, End: o.To, Wall: time.Since(wall0), Decisions: decided.Load(), Episodes: o.Episodes,
		Reads: len(o.Rows), RowsDropped: counterSum(reg, "netfeat_inference_rows_dropped_total")}
	if res.Wall > 0 {
		res.Speed = o.To.Sub(o.From).Seconds() / res.Wall.Seconds()
	}
	if res.Decisions < want && res.RowsDropped == 0 {
		log.Warn("twin: replay: fewer decisions than rows times models", "decisions", res.Decisions, "want", want)
	}
	return res, nil
}
