package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/backtest"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/inference/client"
	"github.com/netfeat/netfeat/internal/twin"
	"github.com/netfeat/netfeat/models"
)

func init() { extraCommands = append(extraCommands, newBacktestCmd) }

// versionRef is a NAME@VERSION argument. VERSION is a version of the
// registry at --server, or builtin:NAME (a model embedded in the binary)
// or file:PATH (a local model file), which are not recorded.
type versionRef struct {
	model, version string
	artifact       []byte
}

func parseVersionRef(s string) (versionRef, error) {
	m, v, ok := strings.Cut(s, "@")
	if !ok || m == "" || v == "" {
		return versionRef{}, fmt.Errorf("%q: want NAME@VERSION (VERSION: a registry version, builtin:NAME or file:PATH)", s)
	}
	return versionRef{model: m, version: v}, nil
}

// local reports whether the version is not the registry's.
func (r versionRef) local() bool {
	return strings.HasPrefix(r.version, "builtin:") || strings.HasPrefix(r.version, "file:")
}

func (r versionRef) String() string { return r.model + "@" + r.version }

// fetch reads the version's model file: from the binary, the disk, or the
// registry at the server (read only).
func (r *versionRef) fetch(ctx context.Context, c *client.Client) error {
	var err error
	switch {
	case strings.HasPrefix(r.version, "builtin:"):
		b, ok := models.Builtin(strings.TrimPrefix(r.version, "builtin:"))
		if !ok {
			return fmt.Errorf("%s: no such builtin model (builtin models: %s)", r, strings.Join(models.Names(), ", "))
		}
		r.artifact = b
	case strings.HasPrefix(r.version, "file:"):
		if r.artifact, err = os.ReadFile(strings.TrimPrefix(r.version, "file:")); err != nil {
			return fmt.Errorf("%s: %w", r, err)
		}
	default:
		if r.artifact, err = c.Artifact(ctx, r.model, r.version); err != nil {
			return fmt.Errorf("%s from the registry at %s: %w", r, c.BaseURL, err)
		}
	}
	return nil
}

// againstSuffix names the second model slot a backtest --against runs
// the other version in, so both score the same windows with lifecycles of
// their own.
const againstSuffix = "-against"

// backtestReport is what netfeat backtest prints with --json.
type backtestReport struct {
	Source   string             `json:"source"`
	Run      *twin.Result       `json:"run"`
	Kinds    []string           `json:"kinds,omitempty"`
	GraceSec float64            `json:"grace_seconds"`
	Results  []backtest.Result  `json:"results"`
	Firings  []backtest.Firing  `json:"firings"`
	Episodes []backtest.Episode `json:"episodes"`
}

func newBacktestCmd() *cobra.Command {
	var (
		f         twinFlags
		model     string
		against   string
		useTwin   bool
		from      string
		server    string
		tokenFile string
		noRecord  bool
	)
	cmd := &cobra.Command{
		Use:   "backtest --model NAME@VERSION [--against NAME@VERSION] --twin|--from EXPORT",
		Short: "Score model versions side by side on the same twin run: precision, recall, F1, false actions per hour, lead time per incident kind",
		Long: `Run a digital twin (see netfeat twin) with the candidate version --model and,
with --against, a second version of the same model beside it: both score the
same windows, each with its own action lifecycle. Their actions are scored
against the twin's labels (the scenarios' incidents): precision, recall, F1,
false actions per hour of non-incident time and, per incident kind, the
episodes detected and the lead time from an incident's start to the first
action. --kind restricts recall to the kinds the model is meant to detect.

--from EXPORT replays a netfeat export CSV instead (netfeat export, or netfeat
demo --training-set): its windows of the model's view go straight to the
models, in window order; a numeric label column (such as congested) marks
its row's entity as in an incident of that column's name while above 0.
An export without one has no labels, and the backtest says so.

VERSION is a version of the registry at --server (fetched read-only), or
builtin:NAME for a model built into the binary, or file:PATH for a local
model file. The results of registry versions are stored with the version in
that registry (--no-record: not), where netfeat models promote's gate
compares them. The twin itself never touches the server: it runs in a
sandbox (its own data directory, NATS server and registry).`,
		Example: `  netfeat backtest --model congestion@v3 --against congestion@v2 --twin --kind congestion
  netfeat backtest --model congestion@file:new.json --against congestion@builtin:congestion --twin --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if from != "" && cmd.Flags().Changed("twin") && useTwin {
				return errors.New("--twin and --from exclude each other")
			}
			if from == "" && !useTwin {
				return errors.New("say what to score on: --twin or --from EXPORT")
			}
			cand, err := parseVersionRef(model)
			if err != nil {
				return fmt.Errorf("--model %w", err)
			}
			refs := []*versionRef{&cand}
			var base versionRef
			if against != "" {
				if base, err = parseVersionRef(against); err != nil {
					return fmt.Errorf("--against %w", err)
				}
				if base.model != cand.model {
					return fmt.Errorf("--against %s: another model than --model %s", base, cand)
				}
				if base.version == cand.version {
					return fmt.Errorf("--against %s: the same version as --model", base)
				}
				refs = append(refs, &base)
			}
			c, err := modelsClient(server, tokenFile)
			if err != nil {
				return err
			}
			for _, r := range refs {
				if err := r.fetch(cmd.Context(), c); err != nil {
					return err
				}
			}
			log, err := twinLogger(cmd)
			if err != nil {
				return err
			}
			l := &firingLog{names: map[string]backtest.Version{}}
			prepare := func(s *twinSetup, dataDir string) error {
				return placeVersions(s, dataDir, refs, l)
			}
			var (
				res     *twin.Result
				s       *twinSetup
				cleanup func()
			)
			if from != "" {
				res, s, cleanup, err = runReplay(cmd.Context(), &f, from, log, l, prepare)
			} else {
				res, s, _, cleanup, err = runTwinWith(cmd.Context(), &f, log, l, prepare)
			}
			if err != nil {
				return err
			}
			defer cleanup()
			versions := make([]backtest.Version, len(refs))
			for i, r := range refs {
				versions[i] = backtest.Version{Model: r.model, Version: r.version}
			}
			fs := l.firings()
			results, err := backtest.Score(res.Episodes, fs, versions, backtest.Options{Grace: f.grace, Kinds: f.kinds, From: res.Start, To: res.End})
			if errors.Is(err, backtest.ErrNoLabels) && from != "" {
				return fmt.Errorf("backtest: %w: %s has no numeric label column with a positive value, so precision and recall mean nothing", err, from)
			}
			if errors.Is(err, backtest.ErrNoLabels) {
				return fmt.Errorf("backtest: %w: the twin's scenarios script no incident in %s, so precision and recall mean nothing", err, f.duration)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !noRecord {
				if err := recordBacktests(cmd.Context(), c, s.source, res, f.kinds, refs, results, out, f.jsonOut); err != nil {
					return err
				}
			}
			if f.jsonOut {
				own := fs[:0:0]
				for _, x := range fs {
					if x.Model == cand.model {
						own = append(own, x)
					}
				}
				return printJSON(out, backtestReport{Source: s.source, Run: res, Kinds: f.kinds, GraceSec: f.grace.Seconds(),
					Results: results, Firings: own, Episodes: res.Episodes})
			}
			if from != "" {
				printReplay(out, s.source, res)
			} else {
				printRun(out, s.source, res, &f)
			}
			printBacktest(out, f.grace, f.kinds, results)
			return nil
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&model, "model", "", "the candidate, NAME@VERSION (required)")
	fl.StringVar(&against, "against", "", "score this version of the same model beside it, NAME@VERSION")
	fl.BoolVar(&useTwin, "twin", true, "score on a digital twin run (the default without --from)")
	fl.StringVar(&from, "from", "", "replay the windows of a netfeat export CSV into the models instead of a twin run; its numeric label columns are the labels")
	fl.StringVar(&server, "server", "http://127.0.0.1:9464", "netfeat HTTP API of the registry VERSION names")
	fl.StringVar(&tokenFile, "token-file", "", "file with the API bearer token (default: $NETFEAT_TOKEN)")
	fl.BoolVar(&noRecord, "no-record", false, "do not store the results with the versions in the registry")
	_ = cmd.MarkFlagRequired("model")
	return cmd
}

// modelsClient is the registry API client of --server and --token-file.
func modelsClient(server, tokenFile string) (*client.Client, error) {
	c := &client.Client{}
	c.BaseURL = server
	c.Token = os.Getenv("NETFEAT_TOKEN")
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		c.Token = strings.TrimSpace(string(b))
	}
	return c, nil
}

// placeVersions writes the versions' files into the sandbox and points the
// twin's configuration at them: the candidate in the model's own slot, the
// version it is compared against in a copy of the slot named
// <model>-against.
func placeVersions(s *twinSetup, dataDir string, refs []*versionRef, l *firingLog) error {
	ms := s.cfg.Inference.Models
	idx := -1
	var names []string
	for i, m := range ms {
		names = append(names, m.Name)
		if m.Name == refs[0].model {
			idx = i
		}
	}
	if idx < 0 {
		return fmt.Errorf("the twin's configuration (examples/demo.yaml) has no model %q (it has %s)", refs[0].model, strings.Join(names, ", "))
	}
	if err := os.MkdirAll(filepath.Join(dataDir, "versions"), 0o755); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	for i, r := range refs {
		mc := ms[idx]
		path := filepath.Join(dataDir, "versions", fmt.Sprintf("%s-%d%s", r.model, i, filepath.Ext(mc.File)))
		if err := os.WriteFile(path, r.artifact, 0o644); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		mc.File = path
		if i == 0 {
			s.cfg.Inference.Models[idx] = mc
		} else {
			mc.Name += againstSuffix
			s.cfg.Inference.Models = append(s.cfg.Inference.Models, mc)
		}
		l.names[mc.Name] = backtest.Version{Model: r.model, Version: r.version}
	}
	return nil
}

// recordBacktests stores each registry version's result with it.
func recordBacktests(ctx context.Context, c *client.Client, source string, res *twin.Result, kinds []string,
	refs []*versionRef, results []backtest.Result, out io.Writer, quiet bool) error {
	run := fmt.Sprintf("%s; %s of virtual time from %s; %d episodes", source, res.End.Sub(res.Start), res.Start.UTC().Format(time.RFC3339), len(res.Episodes))
	if len(kinds) > 0 {
		run += "; kinds " + strings.Join(kinds, ",")
	}
	for i, r := range refs {
		if r.local() {
			continue
		}
		bt := inference.Backtest{Run: run, Result: jsonString(results[i]), Metrics: map[string]float64{}}
		for _, m := range backtest.Metrics {
			bt.Metrics[m], _ = results[i].Metric(m)
		}
		if len(refs) == 2 {
			bt.Against = refs[1-i].String()
		}
		if _, err := c.RecordBacktest(ctx, r.model, r.version, bt); err != nil {
			return fmt.Errorf("record the backtest of %s in the registry at %s (--no-record skips it): %w", r, c.BaseURL, err)
		}
		if !quiet {
			fmt.Fprintf(out, "== recorded with %s in the registry at %s\n", r, c.BaseURL)
		}
	}
	return nil
}

// printBacktest prints the versions side by side.
func printBacktest(w io.Writer, grace time.Duration, kinds []string, results []backtest.Result) {
	what := "every kind"
	if len(kinds) > 0 {
		what = strings.Join(kinds, ", ")
	}
	fmt.Fprintf(w, "== backtest against the labels (%s; grace %s)\n", what, grace)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "   ")
	for _, r := range results {
		fmt.Fprintf(tw, "\t%s@%s", r.Model, r.Version)
	}
	fmt.Fprintln(tw)
	row := func(name string, f func(backtest.Result) string) {
		fmt.Fprintf(tw, "   %s", name)
		for _, r := range results {
			fmt.Fprintf(tw, "\t%s", f(r))
		}
		fmt.Fprintln(tw)
	}
	row("precision", func(r backtest.Result) string { return fmt.Sprintf("%.3f", r.Precision) })
	row("recall", func(r backtest.Result) string { return fmt.Sprintf("%.3f", r.Recall) })
	row("f1", func(r backtest.Result) string { return fmt.Sprintf("%.3f", r.F1) })
	row("false actions per hour", func(r backtest.Result) string { return fmt.Sprintf("%.2f", r.FalseActionsPerHour) })
	row("actions (true/false)", func(r backtest.Result) string {
		return fmt.Sprintf("%d (%d/%d)", r.Actions, r.TrueActions, r.FalseActions)
	})
	for _, k := range resultKinds(results) {
		row(k+": detected", func(r backtest.Result) string { return kindCell(r.Kinds[k]) })
		row(k+": max lead time", func(r backtest.Result) string {
			if m := r.Kinds[k].LeadTimeMaxSeconds; m != nil {
				return fmt.Sprintf("%.0fs", *m)
			}
			return "-"
		})
	}
	tw.Flush()
}

// runReplay replays an export's windows into the twin's models and rules
// (examples/demo.yaml) in a sandbox; prepare, when set, may change the
// configuration first.
func runReplay(ctx context.Context, f *twinFlags, from string, log *slog.Logger, l *firingLog,
	prepare func(s *twinSetup, dataDir string) error) (*twin.Result, *twinSetup, func(), error) {
	if st, err := os.Stat(from); err == nil && st.IsDir() {
		return nil, nil, nil, fmt.Errorf("--from %s: replaying a store directory is not implemented: export its windows with netfeat export --view V and replay the file", from)
	}
	file, err := os.Open(from)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--from: %w", err)
	}
	exp, err := backtest.ReadExport(file)
	file.Close()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--from %s: %w", from, err)
	}
	dataDir, cleanup, err := f.sandboxDir()
	if err != nil {
		return nil, nil, nil, err
	}
	s, err := twinConfig(dataDir)
	if err == nil && prepare != nil {
		err = prepare(s, dataDir)
	}
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	s.source = "export " + from
	res, err := twin.Replay(ctx, twin.ReplayOptions{Config: s.cfg, DataDir: filepath.Join(dataDir, "data"), Rows: exp.Rows,
		Episodes: exp.Episodes, From: exp.From, To: exp.To, OnDecision: l.decision, Log: log})
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	return res, s, cleanup, nil
}

func printReplay(w io.Writer, source string, res *twin.Result) {
	fmt.Fprintf(w, "netfeat: %s replayed into a sandboxed inference runtime\n", source)
	fmt.Fprintf(w, "== run: %d windows over %s in %s; %d decisions\n", res.Reads, res.End.Sub(res.Start).Round(time.Second),
		res.Wall.Round(10*time.Millisecond), res.Decisions)
	if res.RowsDropped > 0 {
		fmt.Fprintf(w, "== warning: inference dropped %d windows\n", res.RowsDropped)
	}
	fmt.Fprintf(w, "== labels: %d incident episodes\n", len(res.Episodes))
	for _, e := range res.Episodes {
		fmt.Fprintf(w, "   %s–%s  %s/%s  %s\n", e.Start.Format("15:04:05"), e.End.Format("15:04:05"), e.Device, e.Component, e.Kind)
	}
}
