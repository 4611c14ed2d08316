package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/backtest"
	"github.com/netfeat/netfeat/examples"
	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
	"github.com/netfeat/netfeat/internal/sim/scenario"
	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/internal/twin"
	"github.com/netfeat/netfeat/models"
	"github.com/netfeat/netfeat/recording"
	"github.com/netfeat/netfeat/schema"
	"github.com/netfeat/netfeat/service"
)

func init() { extraCommands = append(extraCommands, newTwinCmd) }

// twinFlags are the flags of a twin run, shared by netfeat twin and
// netfeat backtest --twin.
type twinFlags struct {
	scenarios  string
	recordings string
	interfaces int
	duration   time.Duration
	speed      float64
	interval   time.Duration
	out        string
	grace      time.Duration
	kinds      []string
	jsonOut    bool
}

func (f *twinFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.scenarios, "scenarios", "", "directory with a scenario per demo device (nokia-7210.yaml, ericsson-ml.yaml, cisco-xr1.yaml) instead of the built-in ones")
	fl.StringVar(&f.recordings, "recordings", "", "directory holding the SNMP recordings timos.snmprec and ericsson-ml.snmprec (default: the built-in copies)")
	fl.IntVar(&f.interfaces, "interfaces", 0, "instead of the demo's devices, synthetic SNMP routers with this many interfaces in all, 100 a router (a steady load; a congestion on synth-1's 1/1/1 at 0:20–1:35, every 3 minutes)")
	fl.DurationVar(&f.duration, "duration", 3*time.Minute, "virtual time to run (the demo's scenarios repeat every 3m)")
	fl.Float64Var(&f.speed, "speed", 20, "run at most this many times faster than real time (0: as fast as the pipeline takes it)")
	fl.DurationVar(&f.interval, "interval", 5*time.Second, "virtual time between two reads of a device (its poll or sample interval)")
	fl.StringVar(&f.out, "out", "", "keep the sandbox data directory here (a new or empty directory; default: a temporary one removed at exit)")
	fl.DurationVar(&f.grace, "grace", time.Minute, "an action up to this long after an incident ended still detects it")
	fl.StringArrayVar(&f.kinds, "kind", nil, "incident kind the models are meant to detect (congestion, hot, errors, link-down; repeatable; default: every kind)")
	fl.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
}

func (f *twinFlags) check() error {
	switch {
	case f.duration <= 0:
		return fmt.Errorf("--duration must be positive, got %v", f.duration)
	case f.speed < 0:
		return fmt.Errorf("--speed must not be negative, got %v", f.speed)
	case f.interval <= 0:
		return fmt.Errorf("--interval must be positive, got %v", f.interval)
	case f.interfaces < 0:
		return fmt.Errorf("--interfaces must not be negative, got %d", f.interfaces)
	case f.interfaces > 0 && f.scenarios != "":
		return errors.New("--interfaces and --scenarios exclude each other")
	}
	return nil
}

// sandboxDir returns the run's data directory: --out (created; refused
// when it holds anything, so a twin never writes into a production data
// directory) or a temporary one, and the function that cleans it up.
func (f *twinFlags) sandboxDir() (string, func(), error) {
	if f.out == "" {
		dir, err := os.MkdirTemp("", "netfeat-twin-")
		if err != nil {
			return "", nil, fmt.Errorf("sandbox data directory: %w", err)
		}
		return dir, func() { os.RemoveAll(dir) }, nil
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return "", nil, fmt.Errorf("--out: %w", err)
	}
	ents, err := os.ReadDir(f.out)
	if err != nil {
		return "", nil, fmt.Errorf("--out: %w", err)
	}
	if len(ents) > 0 {
		return "", nil, fmt.Errorf("--out %s is not empty: a twin writes only into a new or empty directory", f.out)
	}
	return f.out, func() {}, nil
}

// twinSetup is what a twin run is built from.
type twinSetup struct {
	cfg     *service.Config
	devices []twin.Device
	source  string // what the run replays, for the report and the registry
}

// twinConfig returns the twin's configuration, examples/demo.yaml with the
// embedded congestion model written into dataDir, without devices.
func twinConfig(dataDir string) (*twinSetup, error) {
	data, err := fs.ReadFile(examples.Demo, "demo.yaml")
	if err != nil {
		return nil, fmt.Errorf("embedded configuration: %w", err)
	}
	cfg, err := service.ParseConfig("examples/demo.yaml", data)
	if err != nil {
		return nil, err
	}
	for i := range cfg.Inference.Models {
		if cfg.Inference.Models[i].File != demoModelFile {
			continue
		}
		path := filepath.Join(dataDir, demoModelFile)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("write the model: %w", err)
		}
		if err := os.WriteFile(path, models.Congestion, 0o644); err != nil {
			return nil, fmt.Errorf("write the model: %w", err)
		}
		cfg.Inference.Models[i].File = path
	}
	return &twinSetup{cfg: cfg}, nil
}

// newTwinSetup builds the pipeline's configuration (examples/demo.yaml with
// the embedded congestion model written into dataDir) and the simulated
// devices, started at the virtual instant start.
func newTwinSetup(f *twinFlags, dataDir string, start time.Time, log *slog.Logger) (*twinSetup, error) {
	s, err := twinConfig(dataDir)
	if err != nil {
		return nil, err
	}
	cfg := s.cfg
	if f.interfaces > 0 {
		devs, err := syntheticDevices(f.interfaces, start)
		if err != nil {
			return nil, err
		}
		s.devices = devs
		s.source = fmt.Sprintf("twin: %d synthetic routers, %d interfaces", len(devs), f.interfaces)
		return s, nil
	}
	scenarios, err := demoScenarios(f.scenarios, 1)
	if err != nil {
		return nil, err
	}
	for _, ds := range scenarios {
		td, err := demoTwinDevice(cfg, ds, f.recordings, start, log)
		if err != nil {
			return nil, err
		}
		s.devices = append(s.devices, td)
	}
	s.source = "twin: the demo's devices, built-in scenarios"
	if f.scenarios != "" {
		s.source = "twin: the demo's devices, scenarios " + f.scenarios
	}
	return s, nil
}

// demoTwinDevice builds the twin device of one of the demo's devices,
// following ds's scenario from the virtual instant start: an SNMP agent on
// the device's recording (from the directory recordings, or the built-in
// copy), or the gNMI target, sampled under cfg's subscriptions of it.
func demoTwinDevice(cfg *service.Config, ds demoScenario, recordings string, start time.Time, log *slog.Logger) (twin.Device, error) {
	td := twin.Device{Name: ds.device.target, Scenario: ds.sc}
	if ds.device.recording != "" {
		mib, err := demoMIB(recordings, ds.device.recording)
		if err != nil {
			return td, err
		}
		if td.SNMP, err = snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: ds.device.target, Community: "public", Scenario: ds.sc, Start: start}); err != nil {
			return td, err
		}
		return td, nil
	}
	var err error
	if td.GNMI, err = gnmitarget.New(gnmitarget.Options{Listen: "127.0.0.1:0", Name: ds.device.target, Platform: "iosxr", Scenario: ds.sc}, log); err != nil {
		return td, err
	}
	for _, t := range cfg.GNMI.Targets {
		if t.Name == ds.device.target {
			for _, sub := range t.Subscriptions {
				td.GNMIPaths = append(td.GNMIPaths, sub.Path)
			}
		}
	}
	return td, nil
}

// syntheticPerDevice is how many interfaces each synthetic router of
// --interfaces has at most.
const syntheticPerDevice = 100

// syntheticDevices returns ceil(n/100) synthetic SNMP routers (synth-1,
// synth-2, ...) with n interfaces in all, each with a steady load; the
// first congests on 1/1/1 at 0:20–1:35, every 3 minutes.
func syntheticDevices(n int, start time.Time) ([]twin.Device, error) {
	var out []twin.Device
	for i := 0; n > 0; i++ {
		k := min(n, syntheticPerDevice)
		n -= k
		recs, err := recording.ReadSNMPRec(strings.NewReader(snmpagent.SyntheticRouter(k)), "synthetic router")
		if err != nil {
			return nil, err
		}
		mib, err := snmpagent.NewMIB(recs)
		if err != nil {
			return nil, err
		}
		sc := &scenario.Scenario{Baseline: &scenario.Baseline{Utilization: 0.25}, Repeat: 3 * time.Minute}
		if i == 0 {
			sc.Events = []scenario.Event{{
				Kind: scenario.Congestion, Interface: "1/1/1", At: 20 * time.Second, Until: 95 * time.Second, Ramp: 10 * time.Second,
				Direction: scenario.Out, Utilization: 0.98, DiscardsPerSecond: 1000,
			}}
		}
		if err := sc.Validate(); err != nil {
			return nil, err
		}
		name := fmt.Sprintf("synth-%d", i+1)
		d, err := snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: name, Community: "public", Scenario: sc, Start: start})
		if err != nil {
			return nil, err
		}
		out = append(out, twin.Device{Name: name, Scenario: sc, SNMP: d})
	}
	return out, nil
}

// firingLog keeps the firing transitions of a run's live decisions.
type firingLog struct {
	mu sync.Mutex
	fs []backtest.Firing
	// names maps a slot name to the model and version it stands for
	// (backtest --against runs a version under a second name); absent:
	// the decision's own model and version.
	names map[string]backtest.Version
}

func (l *firingLog) decision(d *schema.Decision) {
	if !d.Transition || d.State != schema.StateFiring {
		return
	}
	f := backtest.Firing{Model: d.Model, Version: d.ModelVersion, Device: d.Entity.Device, Component: d.Entity.Component,
		Time: d.Since, Action: d.Action}
	if v, ok := l.names[d.Model]; ok {
		f.Model, f.Version = v.Model, v.Version
	}
	l.mu.Lock()
	l.fs = append(l.fs, f)
	l.mu.Unlock()
}

func (l *firingLog) firings() []backtest.Firing {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.fs)
}

// twinLogger is the logger of twin and backtest: warnings by default.
func twinLogger(cmd *cobra.Command) (*slog.Logger, error) {
	level, _ := cmd.Flags().GetString("log-level")
	format, _ := cmd.Flags().GetString("log-format")
	if level == "" {
		level = "warn"
	}
	if format == "" {
		format = "text"
	}
	return service.NewLogger(cmd.ErrOrStderr(), level, format)
}

// runTwinWith runs a twin: setup builds the devices and configuration,
// prepare may change the configuration (backtest puts its versions in),
// and every firing lands in l.
func runTwinWith(ctx context.Context, f *twinFlags, log *slog.Logger, l *firingLog,
	prepare func(s *twinSetup, dataDir string) error) (*twin.Result, *twinSetup, string, func(), error) {
	dataDir, cleanup, err := f.sandboxDir()
	if err != nil {
		return nil, nil, "", nil, err
	}
	quietGlog(dataDir)
	start := twin.Begin(time.Now(), f.duration)
	s, err := newTwinSetup(f, dataDir, start, log)
	if err == nil && prepare != nil {
		err = prepare(s, dataDir)
	}
	if err != nil {
		cleanup()
		return nil, nil, "", nil, err
	}
	res, err := twin.Run(ctx, twin.Options{
		Config: s.cfg, DataDir: filepath.Join(dataDir, "data"), Devices: s.devices, Start: start, Duration: f.duration,
		Interval: f.interval, Speed: f.speed, OnDecision: l.decision, Log: log,
	})
	if err != nil {
		cleanup()
		return nil, nil, "", nil, err
	}
	return res, s, dataDir, cleanup, nil
}

func newTwinCmd() *cobra.Command {
	var (
		f    twinFlags
		from string
	)
	cmd := &cobra.Command{
		Use:   "twin [--scenarios DIR] [--speed N] [--duration D] | --from EXPORT",
		Short: "Run a digital twin: simulated devices and the real pipeline in a sandbox at N× real time, scored against the scenarios' incidents",
		Long: `Run the demo's simulated devices (or a synthetic router with --interfaces N)
on a virtual clock into the real pipeline (normalizer, feature store,
inference with the demo configuration) at up to --speed times real time. The
observations carry virtual timestamps, so windows close and actions fire by
event time as they would live. The scenarios' incidents are the run's labels;
at the end every model and rule's actions are scored against them: per
incident kind, how many were detected and how long after they began, and the
false actions per hour.

Nothing reaches production: the pipeline runs in a sandbox data directory
(--out, or a temporary one), with its own embedded NATS server on a random
loopback port, no collectors and its own model registry.

--from EXPORT replays a netfeat export CSV instead of simulating devices: its
windows go straight to the models and rules, its numeric label columns are
the labels (see netfeat backtest --from).`,
		Example: `  netfeat twin --speed 20
  netfeat twin --scenarios my-scenarios/ --duration 9m --speed 0 --json
  netfeat twin --interfaces 1000 --speed 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			log, err := twinLogger(cmd)
			if err != nil {
				return err
			}
			l := &firingLog{}
			var (
				res     *twin.Result
				s       *twinSetup
				dataDir string
				cleanup func()
			)
			if from != "" {
				if f.interfaces > 0 || f.scenarios != "" {
					return errors.New("--from replays an export: no --interfaces or --scenarios with it")
				}
				res, s, cleanup, err = runReplay(cmd.Context(), &f, from, log, l, nil)
			} else {
				res, s, dataDir, cleanup, err = runTwinWith(cmd.Context(), &f, log, l, nil)
			}
			if err != nil {
				return err
			}
			defer cleanup()
			var versions []backtest.Version
			c := s.cfg.Inference
			for _, r := range c.EventRules {
				versions = append(versions, backtest.Version{Model: r.Name})
			}
			for _, r := range c.Rules {
				versions = append(versions, backtest.Version{Model: r.Name})
			}
			for _, m := range c.Models {
				versions = append(versions, backtest.Version{Model: m.Name})
			}
			fs := l.firings()
			for i := range fs {
				fs[i].Version = "" // the twin scores models and rules by name
			}
			results, err := backtest.Score(res.Episodes, fs, versions, backtest.Options{Grace: f.grace, Kinds: f.kinds, From: res.Start, To: res.End})
			switch {
			case errors.Is(err, backtest.ErrNoLabels) && from != "":
				err = fmt.Errorf("twin: %w: %s has no numeric label column with a positive value", err, from)
			case errors.Is(err, backtest.ErrNoLabels):
				err = fmt.Errorf("twin run: %w: the scenarios script no incident in %s", err, f.duration)
			}
			if err != nil {
				return err
			}
			if f.jsonOut {
				return printJSON(cmd.OutOrStdout(), map[string]any{"source": s.source, "run": res, "firings": fs, "results": results})
			}
			printTwin(cmd.OutOrStdout(), s.source, res, &f, results, from != "")
			if f.out != "" && dataDir != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "== sandbox data in %s\n", dataDir)
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&from, "from", "", "replay the windows of a netfeat export CSV instead of simulated devices; its numeric label columns are the labels")
	return cmd
}

func printRun(w io.Writer, source string, res *twin.Result, f *twinFlags) {
	fmt.Fprintf(w, "netfeat %s; sandboxed pipeline\n", source)
	fmt.Fprintf(w, "== run: %s of virtual time in %s: %.1f× real time (asked: %s); %d reads, %d observations, %d decisions\n",
		res.End.Sub(res.Start), res.Wall.Round(10*time.Millisecond), res.Speed, speedWords(f.speed), res.Reads, res.Observations, res.Decisions)
	if res.RowsDropped > 0 {
		fmt.Fprintf(w, "== warning: inference dropped %d closed windows (its queues were full): lower --speed\n", res.RowsDropped)
	}
	fmt.Fprintf(w, "== labels: %d incident episodes\n", len(res.Episodes))
	for _, e := range res.Episodes {
		fmt.Fprintf(w, "   %s–%s  %s/%s  %s\n", sinceStart(e.Start.Sub(res.Start)), sinceStart(e.End.Sub(res.Start))[1:], e.Device, e.Component, e.Kind)
	}
}

func speedWords(s float64) string {
	if s <= 0 {
		return "as fast as possible"
	}
	return fmt.Sprintf("%g×", s)
}

func printTwin(w io.Writer, source string, res *twin.Result, f *twinFlags, results []backtest.Result, replay bool) {
	if replay {
		printReplay(w, source, res)
	} else {
		printRun(w, source, res, f)
	}
	kinds := resultKinds(results)
	fmt.Fprintf(w, "== actions against the labels (grace %s; per kind: detected/episodes, mean lead time)\n", f.grace)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "   MODEL\tACTIONS\tTRUE\tFALSE\tFALSE/H\tPRECISION\tRECALL\tF1\t%s\n", strings.ToUpper(strings.Join(kinds, "\t")))
	for _, r := range results {
		fmt.Fprintf(tw, "   %s\t%d\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f", r.Model, r.Actions, r.TrueActions, r.FalseActions,
			r.FalseActionsPerHour, r.Precision, r.Recall, r.F1)
		for _, k := range kinds {
			fmt.Fprintf(tw, "\t%s", kindCell(r.Kinds[k]))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

func resultKinds(results []backtest.Result) []string {
	var kinds []string
	for _, r := range results {
		for k := range r.Kinds {
			if !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
	}
	slices.Sort(kinds)
	return kinds
}

func kindCell(k backtest.KindScore) string {
	s := fmt.Sprintf("%d/%d", k.Detected, k.Episodes)
	if k.LeadTimeMeanSeconds != nil {
		s += fmt.Sprintf(" %+.0fs", *k.LeadTimeMeanSeconds)
	}
	return s
}

// jsonString is v as compact JSON, for the registry's copy of a result.
func jsonString(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
