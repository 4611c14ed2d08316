package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

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

	cmd.AddCommand(&cobra.Command{
		Use:   "list [MODEL]",
		Short: "Show models with their live, shadow and previous versions (all versions of MODEL)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				mi, err := c.Get(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return printVersions(cmd.OutOrStdout(), mi)
			}
			ms, err := c.List(cmd.Context())
			if err != nil {
				return err
			}
			return printModels(cmd.OutOrStdout(), ms)
		},
	})

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
	cmd.AddCommand(&cobra.Command{
		Use:   "promote MODEL [VERSION]",
		Short: "Make VERSION live without a restart (no VERSION: promote the shadow version)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			mi, err := c.Promote(cmd.Context(), args[0], optArg(args, 1))
			return printChange(cmd.OutOrStdout(), mi, err)
		},
	})
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
	fmt.Fprintln(tw, "VERSION\tSTATE\tCREATED\tSHA256\tSIZE\tSOURCE")
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", v.Version, dash(state), v.Created.Format("2006-01-02 15:04:05"), dash(sha), v.Size, v.Source)
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
