package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/fleet"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/inference/client"
)

func newModelsCmd() *cobra.Command {
	var (
		server    string
		tokenFile string
	)
	c := &client.Client{}
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List, upload, shadow, promote and roll back model versions on a running server",
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			c.BaseURL = server
			c.Token = os.Getenv("NETFEAT_TOKEN")
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("token file: %w", err)
				}
				c.Token = strings.TrimSpace(string(b))
			}
			return nil
		},
	}
	cmd.PersistentFlags().StringVar(&server, "server", "http://127.0.0.1:9464", "netfeat HTTP API URL")
	cmd.PersistentFlags().StringVar(&tokenFile, "token-file", "", "file with the API bearer token (default: $NETFEAT_TOKEN)")

	var (
		fleetList bool
		natsURL   string
		natsCreds string
		jsonOut   bool
	)
	list := &cobra.Command{
		Use:   "list [MODEL]",
		Short: "Show models with their live, shadow and previous versions (all versions of MODEL); --fleet: what every edge runs",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if fleetList {
				if len(args) == 1 {
					return fmt.Errorf("--fleet lists every model: no MODEL argument")
				}
				return listFleet(cmd.Context(), cmd.OutOrStdout(), natsURL, natsCreds, jsonOut)
			}
			if len(args) == 1 {
				mi, err := c.Get(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if jsonOut {
					return printJSON(cmd.OutOrStdout(), mi)
				}
				return printVersions(cmd.OutOrStdout(), mi)
			}
			ms, err := c.List(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOut {
				return printJSON(cmd.OutOrStdout(), ms)
			}
			return printModels(cmd.OutOrStdout(), ms)
		},
	}
	list.Flags().BoolVar(&fleetList, "fleet", false, "list what every edge runs, from the hub's model status bucket (not the HTTP API)")
	list.Flags().StringVar(&natsURL, "nats", nats.DefaultURL, "with --fleet: the hub's NATS URL(s), comma-separated")
	list.Flags().StringVar(&natsCreds, "nats-creds", "", "with --fleet: NATS credentials file")
	list.Flags().BoolVar(&jsonOut, "json", false, "print JSON instead of a table")
	cmd.AddCommand(list)

	var version string
	upload := &cobra.Command{
		Use:   "upload MODEL FILE",
		Short: "Store FILE as a new version of MODEL (it does not score until shadowed or promoted)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			vi, err := c.Upload(cmd.Context(), args[0], version, b)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s stored (sha256 %s, %d bytes)\n", vi.Model, vi.Version, vi.SHA256[:12], vi.Size)
			return nil
		},
	}
	upload.Flags().StringVar(&version, "version", "", "version name (default: the next v<N>)")
	cmd.AddCommand(upload)

	cmd.AddCommand(&cobra.Command{
		Use:   "shadow MODEL [VERSION]",
		Short: "Score VERSION beside the live version without publishing it (no VERSION: stop the shadow)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			mi, err := c.Shadow(cmd.Context(), args[0], optArg(args, 1))
			return printChange(cmd.OutOrStdout(), mi, err)
		},
	})
	var gate inference.Gate
	promote := &cobra.Command{
		Use:   "promote MODEL [VERSION]",
		Short: "Make VERSION live without a restart (no VERSION: promote the shadow version), unless its backtest is worse than the live version's",
		Long: `Make VERSION live without a restart (no VERSION: the shadow version).

The promotion gate: when both VERSION and the live version have a backtest
result in the registry (netfeat backtest records them), the server refuses
VERSION if its result is worse on --gate-metric (f1, precision, recall:
lower is worse; false_actions_per_hour: higher is worse; default: the
server's learning.gate.metric, f1 unless configured). --force promotes
anyway; the server logs it as a warning and counts it
(netfeat_inference_promote_forced_total).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			mi, err := c.PromoteGated(cmd.Context(), args[0], optArg(args, 1), gate)
			return printChange(cmd.OutOrStdout(), mi, err)
		},
	}
	promote.Flags().StringVar(&gate.Metric, "gate-metric", "", "backtest metric the promotion gate compares: f1, precision, recall or false_actions_per_hour (default: the server's learning.gate.metric)")
	promote.Flags().BoolVar(&gate.Force, "force", false, "promote even when the gate refuses (logged and counted by the server)")
	cmd.AddCommand(promote)
	cmd.AddCommand(&cobra.Command{
		Use:   "rollback MODEL",
		Short: "Make the previous live version live again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mi, err := c.Rollback(cmd.Context(), args[0])
			return printChange(cmd.OutOrStdout(), mi, err)
		},
	})
	return cmd
}

func optArg(args []string, i int) string {
	if len(args) > i {
		return args[i]
	}
	return ""
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printModels(w io.Writer, ms []inference.ModelInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tKIND\tVIEW\tLIVE\tSHADOW\tPREVIOUS\tVERSIONS")
	for _, m := range ms {
		prev := ""
		if n := len(m.History); n > 0 {
			prev = m.History[n-1]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", m.Name, m.Kind, m.View, dash(m.Live), dash(m.Shadow), dash(prev), len(m.Versions))
	}
	return tw.Flush()
}

func printVersions(w io.Writer, m inference.ModelInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTATE\tCREATED\tSHA256\tSIZE\tBACKTEST F1\tSOURCE")
	for _, v := range m.Versions {
		state := ""
		switch {
		case v.Version == m.Live:
			state = "live"
		case v.Version == m.Shadow:
			state = "shadow"
		case len(m.History) > 0 && v.Version == m.History[len(m.History)-1]:
			state = "previous"
		}
		sha := v.SHA256
		if len(sha) > 12 {
			sha = sha[:12]
		}
		bt := "-"
		if v.Backtest != nil {
			bt = fmt.Sprintf("%.3f", v.Backtest.Metrics["f1"])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", v.Version, dash(state), v.Created.Format("2006-01-02 15:04:05"), dash(sha), v.Size, bt, v.Source)
	}
	return tw.Flush()
}

func printChange(w io.Writer, m inference.ModelInfo, err error) error {
	if err != nil {
		return err
	}
	prev := ""
	if n := len(m.History); n > 0 {
		prev = m.History[n-1]
	}
	fmt.Fprintf(w, "%s: live %s, shadow %s, previous %s\n", m.Name, dash(m.Live), dash(m.Shadow), dash(prev))
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// listFleet prints the hub's model status bucket: per site and model, what
// the edge runs and what the hub's policy asks of it.
func listFleet(ctx context.Context, w io.Writer, url, creds string, jsonOut bool) error {
	opts := []nats.Option{nats.Name("netfeat models list --fleet"), nats.Timeout(5 * time.Second)}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return fmt.Errorf("connect to the hub at %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sts, err := fleet.ReadModelStatus(ctx, js, fleet.DefaultModelStatusBucket)
	if err != nil {
		return err
	}
	if jsonOut {
		if sts == nil {
			sts = []fleet.ModelStatus{}
		}
		return printJSON(w, sts)
	}
	return printFleetStatus(w, sts)
}

func printFleetStatus(w io.Writer, sts []fleet.ModelStatus) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tMODEL\tLIVE\tSHADOW\tWANT LIVE\tWANT SHADOW\tSTATE\tUPDATED\tERROR")
	for _, st := range sts {
		state := "ok"
		switch {
		case st.Error != "":
			state = "error"
		case st.Live != st.WantLive || st.Shadow != st.WantShadow:
			state = "behind"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Site, st.Model, dash(st.Live), dash(st.Shadow),
			dash(st.WantLive), dash(st.WantShadow), state, st.Updated.UTC().Format("2006-01-02 15:04:05"), dash(st.Error))
	}
	return tw.Flush()
}
