package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/inference/client"
	"github.com/netfeat/netfeat/learning"
)

func init() { extraCommands = append(extraCommands, newTrainCmd) }

// trainFlags are the options of `netfeat train`.
type trainFlags struct {
	model, from, label, view, out, server, tokenFile, version, kind string
	alpha                                                           float64
	warmup, slots                                                   int
	period                                                          time.Duration
	features                                                        []string
	l2, holdout, threshold                                          float64
	upload, shadow                                                  bool
}

func newTrainCmd() *cobra.Command {
	var f trainFlags
	cmd := &cobra.Command{
		Use:   "train --model NAME --from EXPORT [--label COL] [--out FILE | --upload [--shadow]]",
		Short: "Train a logistic model version in Go from a `netfeat export` training set",
		Long: `Read a training set written by 'netfeat export' (CSV or Parquet: label columns,
then <view>__window_end and <view>__<feature> columns), train an L2-regularised
logistic regression on its features (Newton's method, standardised features) and
write the model file (kind logistic, with its training profile for drift) or
upload it to a running netfeat as a new version of MODEL.

The label column holds 1/0 (or true/false); rows with an empty label, or an
empty feature (no window within the export's --ttl), are skipped and counted. A
NaN or infinite feature, or labels of one class only, are refused. The most
recent --holdout share of the rows (in file order, which export sorts by time)
is kept out of training and reported as precision/recall/F1 at --threshold.`,
		Example: `  netfeat export --labels labels.csv --view interface_1m --out train.csv
  netfeat train --model congestion --from train.csv --label congested --out congestion-logistic.json
  netfeat train --model congestion --from train.parquet --upload --shadow
  # labels from operator feedback on actions:
  curl -s 'http://127.0.0.1:9464/v1/feedback?format=labels&model=congestion' > fb.csv
  netfeat export --labels fb.csv --view interface_1m --out fb.parquet
  netfeat train --model congestion --from fb.parquet --upload --shadow`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTrain(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kind, "kind", "logistic", "logistic, or a detector baseline: ewma or seasonal")
	fl.Float64Var(&f.alpha, "alpha", 0, "ewma/seasonal: the detector's smoothing factor (default 0.1)")
	fl.IntVar(&f.warmup, "warmup", 0, "ewma/seasonal: values before a series scores without a baseline (default 10, seasonal 3)")
	fl.DurationVar(&f.period, "period", 0, "seasonal: the period (default 24h)")
	fl.IntVar(&f.slots, "slots", 0, "seasonal: slots of the period (default 24)")
	fl.StringVar(&f.model, "model", "", "model name (required): the registry model to upload to, recorded in the file")
	fl.StringVar(&f.from, "from", "", "training set from 'netfeat export' (.csv, .parquet)")
	fl.StringVar(&f.label, "label", "", "label column (default: \"label\", else the only label column)")
	fl.StringVar(&f.view, "view", "", "use only this view's feature columns (default: every <view>__<feature> column)")
	fl.StringSliceVar(&f.features, "features", nil, "feature names to use, in input order (default: every feature column)")
	fl.Float64Var(&f.l2, "l2", 1e-4, "L2 penalty λ on the standardised weights (scikit-learn's C = 1/(N·λ))")
	fl.Float64Var(&f.holdout, "holdout", 0.2, "share of the most recent rows held out to report metrics (0: none)")
	fl.Float64Var(&f.threshold, "threshold", 0.5, "decision threshold for the held-out metrics")
	fl.StringVar(&f.out, "out", "", "write the model file here")
	fl.BoolVar(&f.upload, "upload", false, "upload the model to --server as a new version of --model")
	fl.StringVar(&f.version, "version", "", "with --upload: version name (default: the next v<N>)")
	fl.BoolVar(&f.shadow, "shadow", false, "with --upload: make the new version the shadow")
	fl.StringVar(&f.server, "server", "http://127.0.0.1:9464", "netfeat HTTP API URL")
	fl.StringVar(&f.tokenFile, "token-file", "", "file with the API bearer token (default: $NETFEAT_TOKEN)")
	return cmd
}

func runTrain(ctx context.Context, stdout, stderr io.Writer, f trainFlags) error {
	if f.model == "" || f.from == "" {
		return errors.New("--model and --from are required")
	}
	if f.out == "" && !f.upload {
		return errors.New("say where the model goes: --out FILE and/or --upload")
	}
	if f.shadow && !f.upload {
		return errors.New("--shadow needs --upload")
	}
	if f.holdout < 0 || f.holdout >= 1 {
		return fmt.Errorf("--holdout %v: want a share in [0, 1)", f.holdout)
	}
	tab, err := readTable(ctx, f.from)
	if err != nil {
		return fmt.Errorf("%s: %w", f.from, err)
	}
	if f.kind != "" && f.kind != string(inference.KindLogistic) {
		return runBaseline(ctx, stdout, stderr, tab, f)
	}
	ds, st, err := trainingSet(tab, f)
	if err != nil {
		return fmt.Errorf("%s: %w", f.from, err)
	}
	fmt.Fprintf(stderr, "%s: %d rows; %d used, %d without a label, %d with a missing feature; label %s; %d features\n",
		f.from, st.rows, ds.Len(), st.noLabel, st.missing, st.label, len(ds.Names))
	train, hold := ds.Split(f.holdout)
	start := time.Now()
	m, err := learning.Train(&train, learning.Options{L2: f.l2, Source: "netfeat train --from " + filepath.Base(f.from)})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	fmt.Fprintf(stderr, "trained on %d rows (%d positive) in %v, %d Newton iterations, loss %.6g\n",
		m.Trained.Rows, m.Trained.Positives, time.Since(start).Round(time.Millisecond), m.Trained.Iterations, m.Trained.Loss)
	if hold.Len() > 0 {
		met, err := learning.Evaluate(&hold, func(x []float64) (float64, error) { return m.Predict(x), nil }, f.threshold)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "held out %d rows: precision %.3f recall %.3f F1 %.3f (TP %d FP %d FN %d TN %d) at threshold %g\n",
			hold.Len(), met.Precision, met.Recall, met.F1, met.TP, met.FP, met.FN, met.TN, f.threshold)
	}
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	return deliver(ctx, stdout, f, b)
}

// deliver writes the model file to --out and/or uploads it.
func deliver(ctx context.Context, stdout io.Writer, f trainFlags, b []byte) error {
	if f.out != "" {
		if err := os.WriteFile(f.out, b, 0o644); err != nil {
			return fmt.Errorf("write model: %w", err)
		}
		fmt.Fprintf(stdout, "wrote %s (%d bytes)\n", f.out, len(b))
	}
	if f.upload {
		c := &client.Client{}
		c.BaseURL, c.Token = f.server, os.Getenv("NETFEAT_TOKEN")
		if f.tokenFile != "" {
			t, err := os.ReadFile(f.tokenFile)
			if err != nil {
				return fmt.Errorf("token file: %w", err)
			}
			c.Token = strings.TrimSpace(string(t))
		}
		vi, err := c.Upload(ctx, f.model, f.version, b)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s stored (sha256 %s, %d bytes)\n", vi.Model, vi.Version, vi.SHA256[:12], vi.Size)
		if f.shadow {
			mi, err := c.Shadow(ctx, f.model, vi.Version)
			if err := printChange(stdout, mi, err); err != nil {
				return err
			}
		}
	}
	return nil
}

// table is a training set's columns: cells as strings ("" for NULL).
type table struct {
	names []string
	cols  [][]string
}

func readTable(ctx context.Context, path string) (*table, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet", ".pq":
		return readParquet(ctx, path)
	case ".csv":
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readCSV(f)
	}
	return nil, errors.New("want a .csv or .parquet file (netfeat export --out)")
}

func readCSV(r io.Reader) (*table, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	t := &table{names: append([]string(nil), head...), cols: make([][]string, len(head))}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return t, nil
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		for i, v := range rec {
			t.cols[i] = append(t.cols[i], strings.Clone(v))
		}
	}
}

func readParquet(ctx context.Context, path string) (*table, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	tab, err := fr.ReadTable(ctx)
	if err != nil {
		return nil, err
	}
	defer tab.Release()
	t := &table{}
	for i := range int(tab.NumCols()) {
		c := tab.Column(i)
		t.names = append(t.names, c.Name())
		var cells []string
		for _, chunk := range c.Data().Chunks() {
			for j := range chunk.Len() {
				cells = append(cells, cellString(chunk, j))
			}
		}
		t.cols = append(t.cols, cells)
	}
	return t, nil
}

// cellString renders one Arrow cell as the CSV export would.
func cellString(a arrow.Array, i int) string {
	if a.IsNull(i) {
		return ""
	}
	switch a := a.(type) {
	case *array.Float64:
		return strconv.FormatFloat(a.Value(i), 'g', -1, 64)
	case *array.Float32:
		return strconv.FormatFloat(float64(a.Value(i)), 'g', -1, 32)
	case *array.Int64:
		return strconv.FormatInt(a.Value(i), 10)
	case *array.Int32:
		return strconv.FormatInt(int64(a.Value(i)), 10)
	case *array.Boolean:
		return strconv.FormatBool(a.Value(i))
	}
	return a.ValueStr(i)
}

type trainStats struct {
	rows, noLabel, missing int
	label                  string
}

// pickFeatures returns the feature columns (indexes and feature names)
// and the other columns that may be labels.
func pickFeatures(t *table, f trainFlags) ([]int, []string, []string, error) {
	// Feature columns: <view>__<feature>, not <view>__window_end.
	var featCols []int
	var names []string
	var labels []string
	for i, n := range t.names {
		view, feat, ok := strings.Cut(n, "__")
		switch {
		case ok && strings.Contains(feat, "__") && (f.view == "" || view == f.view):
			featCols = append(featCols, i)
			names = append(names, feat)
		case ok:
		case n != "ts" && n != "device" && n != "component":
			labels = append(labels, n)
		}
	}
	if len(f.features) > 0 {
		featCols, names = featCols[:0], names[:0]
		for _, want := range f.features {
			found := false
			for i, n := range t.names {
				if _, feat, ok := strings.Cut(n, "__"); ok && feat == want && (f.view == "" || strings.HasPrefix(n, f.view+"__")) {
					featCols, names, found = append(featCols, i), append(names, feat), true
					break
				}
			}
			if !found {
				return nil, nil, nil, fmt.Errorf("no column for feature %s", want)
			}
		}
	}
	if len(featCols) == 0 {
		return nil, nil, nil, errors.New("no feature columns (<view>__<metric>__<agg>_<window>): is this a netfeat export file?")
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			return nil, nil, nil, fmt.Errorf("feature %s comes from two views: pick one with --view", n)
		}
		seen[n] = true
	}
	return featCols, names, labels, nil
}

// trainingSet picks the label and feature columns and builds the dataset.
func trainingSet(t *table, f trainFlags) (*learning.Dataset, trainStats, error) {
	var st trainStats
	idx := map[string]int{}
	for i, n := range t.names {
		idx[n] = i
	}
	featCols, names, labels, err := pickFeatures(t, f)
	if err != nil {
		return nil, st, err
	}
	st.label = f.label
	if st.label == "" {
		switch {
		case idx["label"] > 0 || (len(t.names) > 0 && t.names[0] == "label"):
			st.label = "label"
		case len(labels) == 1:
			st.label = labels[0]
		default:
			return nil, st, fmt.Errorf("say which column is the label with --label (candidates: %s)", strings.Join(labels, ", "))
		}
	}
	lc, ok := idx[st.label]
	if !ok {
		return nil, st, fmt.Errorf("no label column %q", st.label)
	}
	ds := &learning.Dataset{Names: names}
	x := make([]float64, len(featCols))
	n := 0
	if len(t.cols) > 0 {
		n = len(t.cols[0])
	}
	st.rows = n
rows:
	for r := range n {
		var y float64
		switch strings.ToLower(t.cols[lc][r]) {
		case "":
			st.noLabel++
			continue
		case "1", "1.0", "true":
			y = 1
		case "0", "0.0", "false":
			y = 0
		default:
			return nil, st, fmt.Errorf("row %d: label %q, want 1/0 or true/false", r+1, t.cols[lc][r])
		}
		for j, c := range featCols {
			s := t.cols[c][r]
			if s == "" {
				st.missing++
				continue rows
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, st, fmt.Errorf("row %d: %s: %q is not a number", r+1, t.names[c], s)
			}
			x[j] = v
		}
		if math.IsNaN(y) {
			continue
		}
		if err := ds.Add(x, y); err != nil {
			return nil, st, err
		}
	}
	return ds, st, nil
}

// runBaseline fits the baseline of an ewma or seasonal detector (the
// mean and variance of each feature's normal values, per slot for
// seasonal) and writes or uploads the detector's version file: its
// features, parameters and baseline. With a label column, only rows
// labelled 0 count as normal.
func runBaseline(ctx context.Context, stdout, stderr io.Writer, t *table, f trainFlags) error {
	kind := inference.Kind(f.kind)
	if kind != inference.KindEWMA && kind != inference.KindSeasonal {
		return fmt.Errorf("--kind %s: want logistic, ewma or seasonal", f.kind)
	}
	featCols, names, _, err := pickFeatures(t, f)
	if err != nil {
		return fmt.Errorf("%s: %w", f.from, err)
	}
	idx := map[string]int{}
	for i, n := range t.names {
		idx[n] = i
	}
	lc, hasLabel := idx[f.label]
	if f.label == "" {
		lc, hasLabel = idx["label"]
	} else if !hasLabel {
		return fmt.Errorf("%s: no label column %q", f.from, f.label)
	}
	view, _, _ := strings.Cut(t.names[featCols[0]], "__")
	tc, hasTime := idx[view+"__window_end"]
	if !hasTime {
		tc, hasTime = idx["ts"]
	}
	params := inference.DetectorParams{Alpha: f.alpha, Warmup: f.warmup, Period: f.period, Slots: f.slots}
	slots := 0
	if kind == inference.KindSeasonal {
		if !hasTime {
			return fmt.Errorf("%s: a seasonal baseline needs %s__window_end or ts", f.from, view)
		}
		slots = f.slots
		if slots == 0 {
			slots = 24
		}
	}
	period := f.period
	if period == 0 {
		period = 24 * time.Hour
	}
	ds := &learning.Dataset{Names: names}
	var times []int64
	x := make([]float64, len(names))
	n, used := 0, 0
	if len(t.cols) > 0 {
		n = len(t.cols[0])
	}
rows:
	for r := range n {
		if hasLabel {
			if l := strings.ToLower(t.cols[lc][r]); l != "0" && l != "0.0" && l != "false" {
				continue // not a normal window, or unlabelled
			}
		}
		for j, c := range featCols {
			v, err := strconv.ParseFloat(t.cols[c][r], 64)
			if t.cols[c][r] == "" {
				continue rows
			}
			if err != nil {
				return fmt.Errorf("%s: row %d: %s: %q is not a number", f.from, r+1, t.names[c], t.cols[c][r])
			}
			x[j] = v
		}
		if slots > 0 {
			ts, err := parseExportTime(t.cols[tc][r])
			if err != nil {
				return fmt.Errorf("%s: row %d: %w", f.from, r+1, err)
			}
			times = append(times, ts)
		}
		ds.X = append(ds.X, x...)
		ds.Y = append(ds.Y, 0)
		used++
	}
	b, err := learning.FitBaseline(ds, times, period, slots)
	if err != nil {
		return fmt.Errorf("%s: %w", f.from, err)
	}
	fmt.Fprintf(stderr, "%s: %d rows, %d normal windows with every feature; %s baseline of %d features\n", f.from, n, used, kind, len(names))
	spec := struct {
		Features []string                 `json:"features"`
		Params   inference.DetectorParams `json:"params"`
		Baseline *learning.Baseline       `json:"baseline"`
	}{names, params, b}
	file, err := json.MarshalIndent(spec, "", " ")
	if err != nil {
		return err
	}
	return deliver(ctx, stdout, f, append(file, '\n'))
}

func parseExportTime(s string) (int64, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixNano(), nil
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	return 0, fmt.Errorf("time %q: want RFC 3339 or Unix ns", s)
}
