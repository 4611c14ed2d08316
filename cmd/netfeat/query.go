package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/internal/apiclient"
	"github.com/netfeat/netfeat/query"
)

// defaultQueryServer is where `netfeat serve` listens for HTTP by default.
const defaultQueryServer = "http://127.0.0.1:9464"

// queryClientFlags are the flags shared by query and export.
type queryClientFlags struct {
	server string
	token  string
}

func (f *queryClientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.server, "server", envOr("NETFEAT_SERVER", defaultQueryServer), "base URL of the running netfeat (env NETFEAT_SERVER)")
	cmd.Flags().StringVar(&f.token, "token", "", "bearer token (default: env NETFEAT_TOKEN)")
}

func (f *queryClientFlags) client() *query.Client {
	token := f.token
	if token == "" {
		token = os.Getenv("NETFEAT_TOKEN")
	}
	return &query.Client{Client: apiclient.Client{BaseURL: f.server, Token: token}}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func newQueryCmd() *cobra.Command {
	var (
		cf       queryClientFlags
		format   string
		from, to string
		maxRows  int
	)
	cmd := &cobra.Command{
		Use:   "query [flags] SQL",
		Short: "Run SQL against a running netfeat",
		Long: `Send one SQL statement to a running netfeat (POST /v1/query) and print the
result. With --from and --to the time-stamped tables are read from history
over [from, to). SQL "-" reads the statement from standard input.

Tables (docs/sql.md; "netfeat tables" lists a server's, with their columns):
` + tablesHelp(),
		Example: `  netfeat query "SELECT * FROM devices"
  netfeat query --format csv "SELECT ts, value FROM samples WHERE device = 'pe1' AND metric = 'interface.in.bps'"
  netfeat query --from 2025-03-01T00:00:00Z --to 2025-03-02T00:00:00Z "SELECT device, max(value) FROM samples GROUP BY ALL"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sql := args[0]
			if sql == "-" {
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return fmt.Errorf("read SQL from stdin: %w", err)
				}
				sql = string(b)
			}
			req := query.Request{SQL: sql, MaxRows: maxRows}
			var err error
			if req.From, req.To, err = parseRange(from, to); err != nil {
				return err
			}
			c := cf.client()
			out := cmd.OutOrStdout()
			switch format {
			case "table":
				return printTable(cmd, c, req)
			case "json", "csv":
				req.Format = format
				resp, err := c.Do(cmd.Context(), req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if _, err := io.Copy(out, resp.Body); err != nil {
					return fmt.Errorf("read result: %w", err)
				}
				if err := query.TrailerError(resp); err != nil {
					return err
				}
				if resp.Trailer.Get(query.HeaderTruncated) == "true" {
					fmt.Fprintf(cmd.ErrOrStderr(), "result truncated at %s rows (the server's row limit)\n", resp.Trailer.Get(query.HeaderRows))
				}
				return nil
			}
			return fmt.Errorf("--format %q: want table, json or csv", format)
		},
	}
	cf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&format, "format", "table", "output: table, json or csv")
	f.StringVar(&from, "from", "", "read history from this time (RFC 3339), with --to")
	f.StringVar(&to, "to", "", "read history up to this time (RFC 3339, exclusive), with --from")
	f.IntVar(&maxRows, "max-rows", 0, "at most this many rows (0: the server's limit)")
	return cmd
}

// parseRange parses --from/--to; both or neither.
func parseRange(from, to string) (time.Time, time.Time, error) {
	if from == "" && to == "" {
		return time.Time{}, time.Time{}, nil
	}
	if from == "" || to == "" {
		return time.Time{}, time.Time{}, errors.New("--from and --to go together")
	}
	f, err := time.Parse(time.RFC3339Nano, from)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("--from: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, to)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("--to: %w", err)
	}
	return f, t, nil
}

// printTable fetches the result as Arrow and prints an aligned table with a
// row count.
func printTable(cmd *cobra.Command, c *query.Client, req query.Request) error {
	rd, resp, err := c.Arrow(cmd.Context(), req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	defer rd.Release()
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	var names []string
	for _, f := range rd.Schema().Fields() {
		names = append(names, escapeCell(f.Name))
	}
	cell := cellFormatters(rd.Schema())
	first, second, split := headerLines(names)
	fmt.Fprintln(tw, strings.Join(first, "\t"))
	if split {
		// Trailing empty cells would pad the line with spaces.
		last := len(second)
		for last > 0 && second[last-1] == "" {
			last--
		}
		fmt.Fprintln(tw, strings.Join(second[:last], "\t"))
	}
	rule := make([]string, len(names))
	for i := range names {
		rule[i] = strings.Repeat("-", max(len(first[i]), len(second[i]), 3))
	}
	fmt.Fprintln(tw, strings.Join(rule, "\t"))
	rows := 0
	cells := make([]string, len(names))
	for rd.Next() {
		rec := rd.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			for c := range cells {
				v := "NULL"
				if !rec.Column(c).IsNull(i) {
					v = cell[c](rec, i)
				}
				cells[c] = escapeCell(v)
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
			rows++
		}
	}
	if err := rd.Err(); err != nil {
		return fmt.Errorf("read result: %w", err)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if err := query.TrailerError(resp); err != nil {
		return err
	}
	note := ""
	if resp.Trailer.Get(query.HeaderTruncated) == "true" {
		note = ", truncated at the server's row limit"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "(%d rows%s)\n", rows, note)
	return nil
}

// cellFormatters returns, per column of sc, how a table prints a value:
// DOUBLE columns with units and SI prefixes when the unit is known (a
// feature column by its name; a value column by the row's metric), other
// columns as query.TextValue gives them.
func cellFormatters(sc *arrow.Schema) []func(arrow.RecordBatch, int) string {
	metricCol := -1
	if idx := sc.FieldIndices("metric"); len(idx) == 1 && sc.Field(idx[0]).Type.ID() == arrow.STRING {
		metricCol = idx[0]
	}
	out := make([]func(arrow.RecordBatch, int) string, len(sc.Fields()))
	for c, f := range sc.Fields() {
		out[c] = func(rec arrow.RecordBatch, i int) string { return query.TextValue(rec.Column(c), i) }
		if f.Type.ID() != arrow.FLOAT64 {
			continue
		}
		unit, feature := featureUnit(f.Name)
		switch {
		case feature:
			out[c] = func(rec arrow.RecordBatch, i int) string {
				return formatQuantity(rec.Column(c).(*array.Float64).Value(i), unit)
			}
		case metricCol >= 0 && (f.Name == "value" || f.Name == "last_value"):
			out[c] = func(rec arrow.RecordBatch, i int) string {
				m := rec.Column(metricCol).(*array.String)
				return formatMetricValue(rec.Column(c).(*array.Float64).Value(i), m.Value(i))
			}
		default:
			out[c] = func(rec arrow.RecordBatch, i int) string {
				return formatPlain(rec.Column(c).(*array.Float64).Value(i))
			}
		}
	}
	return out
}

// escapeCell makes a value safe to print on a terminal: control characters
// (terminal escapes such as \x1b[31m, tabs and newlines that would break
// the table), bidirectional overrides and invalid UTF-8 are written as Go
// escapes, and a backslash as two, so that what prints is what the value
// holds.
func escapeCell(s string) string {
	clean := true
	for _, r := range s {
		if r == '\\' || r == utf8.RuneError || unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case unsafeRune(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// unsafeRune reports whether r changes how a terminal shows what follows:
// C0 and C1 controls, DEL, and Unicode format characters (bidirectional
// overrides, zero-width characters).
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}
