package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/netfeat/netfeat/internal/twin"
	"github.com/netfeat/netfeat/service"
)

// newTwinGate builds the retraining loop's twin backtest gate of cfg's
// learning.gate.twin: each candidate and the live version run side by side
// on a sandboxed twin of cfg's pipeline, fed by the demo's devices following
// the scenarios of the section's directory (the built-in recordings). The
// scenarios are parsed here, so a bad one stops serve (and config check)
// before it starts.
func newTwinGate(cfg *service.Config, models twin.Models, log *slog.Logger) (*twin.Gate, error) {
	t := cfg.Learning.Gate.Twin
	if t == nil {
		return nil, fmt.Errorf("learning.gate.twin is not set")
	}
	if _, err := demoScenarios(t.Scenarios, 1); err != nil {
		return nil, fmt.Errorf("learning.gate.twin.scenarios: %w", err)
	}
	dir := t.Scenarios
	devices := func(start time.Time) ([]twin.Device, error) {
		scs, err := demoScenarios(dir, 1)
		if err != nil {
			return nil, err
		}
		out := make([]twin.Device, 0, len(scs))
		for _, ds := range scs {
			td, err := demoTwinDevice(cfg, ds, "", start, log)
			if err != nil {
				return nil, err
			}
			out = append(out, td)
		}
		return out, nil
	}
	g := cfg.Learning.Gate
	return &twin.Gate{Config: cfg, Models: models, Devices: devices, Source: "the demo's devices, scenarios " + dir,
		Twin: *t, Metric: g.Metric, MinGain: g.MinGain, MinValue: g.MinValue, Log: log}, nil
}
