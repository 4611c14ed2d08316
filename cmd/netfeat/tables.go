package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/query"
)

func init() { extraCommands = append(extraCommands, newTablesCmd) }

func newTablesCmd() *cobra.Command {
	var (
		cf     queryClientFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "tables",
		Short: "List the SQL tables of a running netfeat, with their columns",
		Long: `List the tables a running netfeat answers SQL over (GET /v1/tables): each
table's name, a one-line description and its columns with their SQL types.
--json prints the server's answer as it is.`,
		Example: `  netfeat tables
  netfeat tables --server http://10.0.0.5:9464 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := cf.client().Tables(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			for _, t := range list.Tables {
				fmt.Fprintf(tw, "%s\t%s\n", escapeCell(t.Name), escapeCell(t.Description))
				cols := make([]string, len(t.Columns))
				for i, c := range t.Columns {
					cols[i] = escapeCell(c.Name) + " " + escapeCell(c.Type)
				}
				fmt.Fprintf(tw, "\t  %s\n", strings.Join(cols, ", "))
			}
			if err := tw.Flush(); err != nil {
				return fmt.Errorf("print: %w", err)
			}
			fmt.Fprintf(out, "(%d tables)\n", len(list.Tables))
			return nil
		},
	}
	cf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the JSON of GET /v1/tables")
	return cmd
}

// tablesHelp lists the standard tables for the help of query and export.
func tablesHelp() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, t := range query.StandardTables {
		fmt.Fprintf(tw, "  %s\t%s\n", t.Name, t.Description)
	}
	_ = tw.Flush()
	return b.String()
}
