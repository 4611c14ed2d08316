package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/federated"
)

// newFLCmd is `netfeat fl`: federated learning on a hub (docs/learning.md).
func newFLCmd() *cobra.Command {
	var (
		server    string
		tokenFile string
		jsonOut   bool
	)
	cmd := &cobra.Command{
		Use:   "fl",
		Short: "Federated learning across the fleet: the hub's rounds",
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the hub's federated rounds (GET /v1/fl/rounds)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			token := os.Getenv("NETFEAT_TOKEN")
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("token file: %w", err)
				}
				token = strings.TrimSpace(string(b))
			}
			st, err := fetchFLStatus(cmd.Context(), server, token)
			if err != nil {
				return err
			}
			if jsonOut {
				return printJSON(cmd.OutOrStdout(), st)
			}
			return printFLStatus(cmd.OutOrStdout(), st)
		},
	}
	status.Flags().StringVar(&server, "server", "http://127.0.0.1:9464", "the hub's HTTP API URL")
	status.Flags().StringVar(&tokenFile, "token-file", "", "file with the API bearer token (default: $NETFEAT_TOKEN)")
	status.Flags().BoolVar(&jsonOut, "json", false, "print the rounds as JSON (f1_before/f1_after only where known)")
	cmd.AddCommand(status, newFLDemoCmd())
	return cmd
}

// fetchFLStatus asks the hub for its rounds.
func fetchFLStatus(ctx context.Context, server, token string) (federated.Status, error) {
	var st federated.Status
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(server, "/")+"/v1/fl/rounds", nil)
	if err != nil {
		return st, fmt.Errorf("fl status: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("fl status: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return st, fmt.Errorf("fl status: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("fl status: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("fl status: decode: %w", err)
	}
	return st, nil
}

// printFLStatus prints the model and one line per round, newest first.
func printFLStatus(w io.Writer, st federated.Status) error {
	next := "-"
	if st.Next != nil {
		next = st.Next.Local().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "model %s: global version %d, a round every %s, next %s\n", st.Model, st.Version, st.Interval, next)
	if len(st.Rounds) == 0 {
		_, err := fmt.Fprintln(w, "no round yet")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUND\tSTARTED\tTOOK\tSTATE\tRESULT\tEDGES\tUPDATES\tDROPPED\tREJECTED\tSAMPLES\tNORM\tF1 BEFORE\tF1 AFTER")
	for i := len(st.Rounds) - 1; i >= 0; i-- {
		r := st.Rounds[i]
		took := "-"
		if r.Ended != nil {
			took = r.Ended.Sub(r.Started).Round(time.Millisecond).String()
		}
		state := r.State
		if r.Phase != "" {
			state += " (" + r.Phase + ")"
		}
		var rej []string
		for k, n := range r.Rejected {
			rej = append(rej, fmt.Sprintf("%s:%d", k, n))
		}
		slices.Sort(rej)
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%d\t%.4g\t%s\t%s\n", r.Round, r.Started.Local().Format(time.RFC3339), took,
			state, orDash(r.Result), r.Edges, r.Updates, orDash(strings.Join(r.Dropped, ",")), orDash(strings.Join(rej, ",")),
			r.Samples, r.UpdateNorm, f1Cell(r.F1Before), f1Cell(r.F1After))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func f1Cell(f *float64) string {
	if f == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f", *f)
}
