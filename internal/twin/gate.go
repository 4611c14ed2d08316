package twin

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/netfeat/netfeat/backtest"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/learning"
	"github.com/netfeat/netfeat/schema"
	"github.com/netfeat/netfeat/service"
)

// AgainstSuffix names the second slot of a model in a backtest: the
// version the candidate is compared with runs in a copy of the model's
// slot named <model>-against, so both score the same windows, each with
// an action lifecycle of its own.
const AgainstSuffix = "-against"

// Models is what the twin gate needs of the live model registry: the
// versions' files, and a place to keep their backtest results beside them
// (as netfeat backtest records them). *inference.Runtime implements it.
type Models interface {
	VersionArtifact(ctx context.Context, model, version string) (inference.VersionInfo, []byte, error)
	RecordBacktest(ctx context.Context, model, version string, bt inference.Backtest) (inference.VersionInfo, error)
}

// Gate is the retraining loop's twin backtest gate (learning.Gate): it runs
// the candidate and the live version side by side on a sandboxed twin run
// of the service's own views, normalizer and inference configuration, as
// netfeat backtest does, scores both against the scenarios' incidents,
// records each result with its version in the registry, and passes the
// candidate when its Metric is at least MinValue and at least the live
// version's plus MinGain. A run without labels, or one that dropped
// windows, refuses the candidate and says why.
type Gate struct {
	// Config is the service's configuration; the run uses a sandboxed copy
	// (Sandbox) with only the judged model's two slots.
	Config *service.Config
	// Models is the live registry the versions are read from and their
	// results recorded in.
	Models Models
	// Devices builds the run's simulated devices, started at the virtual
	// instant start; Source says what they are, for the record.
	Devices func(start time.Time) ([]Device, error)
	Source  string
	// Twin is the run: duration, speed, interval, grace, kinds (its
	// defaults applied).
	Twin learning.TwinGateConfig
	// Metric (learning.MetricF1 when empty), MinGain and MinValue are the
	// learning.gate rules, applied to the backtest results.
	Metric   string
	MinGain  float64
	MinValue float64
	// TempDir is where each run's sandbox directory is made (and removed
	// after); "" is the system's temporary directory.
	TempDir string
	// Log receives the gate's own messages; the sandboxed service's are
	// discarded. nil discards both.
	Log *slog.Logger
}

// Evaluate implements learning.Gate.
func (g *Gate) Evaluate(ctx context.Context, c learning.Candidate) (learning.Verdict, error) {
	if g.Config == nil || g.Models == nil || g.Devices == nil {
		return learning.Verdict{}, errors.New("twin gate: needs a configuration, the registry and the devices")
	}
	t := g.Twin.Defaults()
	metric := cmp.Or(g.Metric, learning.MetricF1)
	log := g.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp(g.TempDir, "netfeat-twingate-")
	if err != nil {
		return learning.Verdict{}, fmt.Errorf("twin gate: sandbox directory: %w", err)
	}
	defer os.RemoveAll(dir)
	cfg, names, err := g.place(ctx, dir, c)
	if err != nil {
		return learning.Verdict{}, err
	}
	start := Begin(time.Now(), t.Duration)
	devices, err := g.Devices(start)
	if err != nil {
		return learning.Verdict{}, fmt.Errorf("twin gate: devices: %w", err)
	}
	var (
		mu      sync.Mutex
		firings []backtest.Firing
	)
	onDecision := func(d *schema.Decision) {
		v, ok := names[d.Model]
		if !ok || !d.Transition || d.State != schema.StateFiring {
			return
		}
		mu.Lock()
		firings = append(firings, backtest.Firing{Model: v.Model, Version: v.Version, Device: d.Entity.Device,
			Component: d.Entity.Component, Time: d.Since, Action: d.Action})
		mu.Unlock()
	}
	res, err := Run(ctx, Options{Config: cfg, DataDir: filepath.Join(dir, "data"), Devices: devices, Start: start,
		Duration: t.Duration, Interval: t.Interval, Speed: t.Speed, OnDecision: onDecision})
	if err != nil {
		return learning.Verdict{}, fmt.Errorf("twin gate: %w", err)
	}
	log.Info("twin gate: run done", "model", c.Model, "candidate", c.Version, "live", c.Live,
		"virtual", t.Duration, "wall", res.Wall.Round(time.Millisecond), "decisions", res.Decisions, "episodes", len(res.Episodes))
	versions := []backtest.Version{{Model: c.Model, Version: c.Version}}
	if c.Live != "" {
		versions = append(versions, backtest.Version{Model: c.Model, Version: c.Live})
	}
	mu.Lock()
	fs := firings
	mu.Unlock()
	results, err := backtest.Score(res.Episodes, fs, versions, backtest.Options{Grace: t.Grace, Kinds: t.Kinds, From: res.Start, To: res.End})
	if errors.Is(err, backtest.ErrNoLabels) {
		return learning.Verdict{Reason: fmt.Sprintf("twin backtest: %v: the scenarios in %s script no incident in %v, so precision and recall mean nothing",
			err, t.Scenarios, t.Duration)}, nil
	}
	if err != nil {
		return learning.Verdict{}, fmt.Errorf("twin gate: %w", err)
	}
	run := fmt.Sprintf("twin gate: %s; %s of virtual time from %s; %d episodes", g.source(t), t.Duration,
		res.Start.UTC().Format(time.RFC3339), len(res.Episodes))
	if len(t.Kinds) > 0 {
		run += "; kinds " + strings.Join(t.Kinds, ",")
	}
	v := learning.Verdict{Backtest: results, BacktestRun: run}
	if res.RowsDropped > 0 {
		// An incomplete run says nothing reliable about either version.
		v.Reason = fmt.Sprintf("twin backtest: inference dropped %d closed windows (its queues were full): lower learning.gate.twin.speed", res.RowsDropped)
		return v, nil
	}
	if err := g.record(ctx, run, versions, results); err != nil {
		return learning.Verdict{}, err
	}
	got, err := results[0].Metric(metric)
	if err != nil {
		return learning.Verdict{}, fmt.Errorf("twin gate: %w", err)
	}
	live, liveNote := 0.0, "no live version"
	if len(results) > 1 {
		live, _ = results[1].Metric(metric)
		liveNote = fmt.Sprintf("live %s %s %.4f", c.Live, metric, live)
	}
	v.Pass = got >= g.MinValue && got >= live+g.MinGain
	v.Reason = fmt.Sprintf("twin backtest: candidate %s %s %.4f on %d incident episodes (%s of virtual time in %s), %s; need ≥ %.4f and ≥ live + %.4f",
		c.Version, metric, got, results[0].Episodes, t.Duration, res.Wall.Round(time.Millisecond), liveNote, g.MinValue, g.MinGain)
	return v, nil
}

func (g *Gate) source(t learning.TwinGateConfig) string {
	if g.Source != "" {
		return g.Source
	}
	return "scenarios " + t.Scenarios
}

// place writes the candidate's and the live version's files into the
// sandbox dir and returns the run's configuration: the service's, with the
// model's slot running the candidate, a copy of it named
// <model>-against running the live version, and no other model (rules,
// which fallbacks name, stay). names maps each slot to the version it
// stands for.
func (g *Gate) place(ctx context.Context, dir string, c learning.Candidate) (*service.Config, map[string]backtest.Version, error) {
	cfg := *g.Config
	ms := g.Config.Inference.Models
	idx := -1
	for i, m := range ms {
		if m.Name == c.Model {
			idx = i
		}
		if m.Name == c.Model+AgainstSuffix {
			return nil, nil, fmt.Errorf("twin gate: inference.models has a model named %q, the slot the live version of %s would run in", m.Name, c.Model)
		}
	}
	if idx < 0 {
		return nil, nil, fmt.Errorf("twin gate: %q is not a model in inference.models", c.Model)
	}
	if err := os.MkdirAll(filepath.Join(dir, "versions"), 0o755); err != nil {
		return nil, nil, fmt.Errorf("twin gate: sandbox: %w", err)
	}
	versions := []string{c.Version}
	if c.Live != "" {
		versions = append(versions, c.Live)
	}
	names := map[string]backtest.Version{}
	cfg.Inference.Models = nil
	for i, ver := range versions {
		_, file, err := g.Models.VersionArtifact(ctx, c.Model, ver)
		if err != nil {
			return nil, nil, fmt.Errorf("twin gate: read %s@%s from the registry: %w", c.Model, ver, err)
		}
		mc := ms[idx]
		mc.File = filepath.Join(dir, "versions", fmt.Sprintf("%s-%d%s", c.Model, i, cmp.Or(filepath.Ext(mc.File), ".json")))
		if err := os.WriteFile(mc.File, file, 0o644); err != nil {
			return nil, nil, fmt.Errorf("twin gate: sandbox: %w", err)
		}
		if i > 0 {
			mc.Name += AgainstSuffix
		}
		cfg.Inference.Models = append(cfg.Inference.Models, mc)
		names[mc.Name] = backtest.Version{Model: c.Model, Version: ver}
	}
	return &cfg, names, nil
}

// record stores each version's result with it in the registry, as netfeat
// backtest does.
func (g *Gate) record(ctx context.Context, run string, versions []backtest.Version, results []backtest.Result) error {
	for i, v := range versions {
		b, err := json.Marshal(results[i])
		if err != nil {
			return fmt.Errorf("twin gate: %w", err)
		}
		bt := inference.Backtest{Run: run, Result: b, Metrics: map[string]float64{}}
		for _, m := range backtest.Metrics {
			bt.Metrics[m], _ = results[i].Metric(m)
		}
		if len(versions) == 2 {
			bt.Against = versions[1-i].Model + "@" + versions[1-i].Version
		}
		if _, err := g.Models.RecordBacktest(ctx, v.Model, v.Version, bt); err != nil {
			return fmt.Errorf("twin gate: record the backtest of %s@%s: %w", v.Model, v.Version, err)
		}
	}
	return nil
}
