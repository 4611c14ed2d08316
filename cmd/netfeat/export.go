package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/query"
)

func newExportCmd() *cobra.Command {
	var (
		cf     queryClientFlags
		labels string
		views  []string
		out    string
		format string
		ttl    time.Duration
		quiet  bool
	)
	cmd := &cobra.Command{
		Use:   "export --labels FILE --view V [--view V2] --out FILE",
		Short: "Write a point-in-time correct training set (Parquet or CSV)",
		Long: `Join a labels file with feature views as of each label's time (DuckDB ASOF
JOIN) and write the result locally. Each label row gets, per view, the newest
window that had closed (window_end <= ts) for its device (and component, when
the labels have one and the view is per component); windows older than --ttl
give NULL. No feature from after a label's time can leak into its row.

The labels file is CSV with a header: ts (RFC 3339 or Unix ns), device,
optionally component, then label columns. The views' rows are fetched from
the running netfeat over HTTP (history included); the join runs locally.
Output columns are the label columns, then <view>__window_end and
<view>__<feature> for each view.`,
		Example: `  netfeat export --labels incidents.csv --view if_traffic --out train.parquet
  netfeat export --labels l.csv --view if_traffic --view cpu --ttl 10m --out train.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if labels == "" || out == "" || len(views) == 0 {
				return errors.New("--labels, --view and --out are required")
			}
			if format == "" {
				switch strings.ToLower(filepath.Ext(out)) {
				case ".parquet", ".pq":
					format = query.OutputParquet
				case ".csv":
					format = query.OutputCSV
				default:
					return fmt.Errorf("--out %s: say --format parquet or csv", out)
				}
			}
			lf, err := os.Open(labels)
			if err != nil {
				return fmt.Errorf("labels: %w", err)
			}
			rec, err := query.ReadLabelsCSV(lf)
			lf.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", labels, err)
			}
			defer rec.Release()

			tmp := out + ".partial"
			f, err := os.Create(tmp)
			if err != nil {
				return fmt.Errorf("create output: %w", err)
			}
			defer os.Remove(tmp) // after a successful rename this is a no-op
			var bar *progressbar.ProgressBar
			stage := ""
			ts := &query.TrainingSet{Client: cf.client(), Labels: rec, Views: views, TTL: ttl}
			if !quiet {
				ts.Progress = func(s string, done, total int64) {
					if s != stage {
						if bar != nil {
							_ = bar.Finish()
						}
						stage = s
						opts := []progressbar.Option{
							progressbar.OptionSetWriter(cmd.ErrOrStderr()),
							progressbar.OptionSetDescription(fmt.Sprintf("%-22s", s)),
							progressbar.OptionSetWidth(30),
							progressbar.OptionThrottle(100 * time.Millisecond),
							progressbar.OptionClearOnFinish(),
						}
						if s == "write" { // fetch counts nanoseconds of history: percent only
							opts = append(opts, progressbar.OptionShowCount())
						}
						bar = progressbar.NewOptions64(total, opts...)
					}
					_ = bar.Set64(done)
				}
			}
			n, err := ts.Write(cmd.Context(), f, format)
			if bar != nil {
				_ = bar.Finish()
			}
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("close output: %w", cerr)
			}
			if err != nil {
				return err
			}
			if err := os.Rename(tmp, out); err != nil {
				return fmt.Errorf("output: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d rows to %s\n", n, out)
			return nil
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&labels, "labels", "", "labels CSV: ts, device, [component], label columns")
	f.StringArrayVar(&views, "view", nil, "feature view to join (repeatable)")
	f.StringVar(&out, "out", "", "output file (.parquet or .csv)")
	f.StringVar(&format, "format", "", "parquet or csv (default: from --out's extension)")
	f.DurationVar(&ttl, "ttl", time.Hour, "oldest feature window usable for a label")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}
