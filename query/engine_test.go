//go:build duckdb_arrow

package query

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	duckdb "github.com/duckdb/duckdb-go/v2"
	"go.uber.org/goleak"

	"github.com/netfeat/netfeat/query/internal/fixture"
	"github.com/netfeat/netfeat/schema"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's connection opener lives until the DB is closed;
		// nats.go and grpc leave short-lived goroutines after Close.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	)
}

// TestSandboxRefuses checks that SQL cannot reach the file system, the
// network, extensions or the configuration, nor write anything.
func TestSandboxRefuses(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.csv")
	if err := os.WriteFile(secret, []byte("a,b\n1,2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// One database, so that the final check sees what every statement did.
	e := newTestEngine(t, testSource(t, 1000, 100), func(o *Options) { o.MaxConcurrent = 1 })
	out := filepath.Join(dir, "out.csv")
	// engine is what the Engine answers; dsn, when set, is what DuckDB
	// itself answers on a connection opened with the sandbox DSN and no
	// statement check in front, so each layer is proved on its own.
	tests := []struct {
		name, sql, engine, dsn string
	}{
		{"read_csv", "SELECT * FROM read_csv('/etc/passwd')", "cannot read files", "Permission Error"},
		{"read_csv own file", "SELECT * FROM read_csv('" + secret + "')", "cannot read files", "Permission Error"},
		{"read_text", "SELECT * FROM read_text('/etc/passwd')", "cannot read files", "Permission Error"},
		{"replacement scan", "SELECT * FROM '" + secret + "'", "cannot read files", "Permission Error"},
		// DuckDB itself allows its temporary directory and WAL paths.
		{"read_text temp dir", "SELECT * FROM read_text('.tmp/secret.txt')", "cannot read files", ""},
		{"read_text wal", "SELECT * FROM read_text('.wal')", "cannot read files", ""},
		{"glob temp dir", "SELECT * FROM glob('.tmp/*')", "cannot read files", ""},
		{"quoted read_text", `SELECT * FROM "READ_TEXT"('.wal')`, "cannot read files", ""},
		{"join replacement scan", "SELECT * FROM samples JOIN '.wal' ON true", "cannot read files", ""},
		{"qualified repeat", "SELECT system.main.repeat('x', 3)", "call repeat unqualified", ""},
		{"copy to", "COPY (SELECT 1) TO '" + out + "'", "Permission Error", "Permission Error"},
		{"copy table to", "COPY samples TO '" + out + "' (FORMAT csv)", "Permission Error", ""},
		{"attach", "ATTACH '" + filepath.Join(dir, "x.db") + "' AS x", "only SELECT", "Permission Error"},
		{"install", "INSTALL httpfs", "only SELECT", "Permission Error"},
		{"load", "LOAD httpfs", "only SELECT", "Permission Error"},
		{"set", "SET disabled_optimizers = ''", "only SELECT", "locked"},
		{"set external access", "SET enable_external_access = true", "only SELECT", "locked"},
		{"reset", "RESET enable_external_access", "only SELECT", "locked"},
		{"create table", "CREATE TABLE t AS SELECT 1 AS a", "only SELECT", ""},
		{"create view", "CREATE VIEW v AS SELECT * FROM samples", "only SELECT", ""},
		{"drop view", "DROP VIEW samples", "only SELECT", ""},
		{"pragma", "PRAGMA enable_profiling", "only SELECT", ""},
		{"two statements", "SELECT 1; CREATE TABLE t (a INT)", "one statement", ""},
		{"export database", "EXPORT DATABASE '" + dir + "'", "", "Permission Error"},
		{"close the wrapper", "SELECT 1) ; CREATE TABLE t1 (a INT); SELECT (1", "one statement", ""},
		{"escape string", `SELECT E'\'' ; CREATE TABLE t2 (a INT); SELECT ''`, "one statement", ""},
		{"dollar quote", "SELECT $$'$$) ; CREATE TABLE t3 (a INT); SELECT ('$$", "one statement", ""},
		{"explain analyze", "EXPLAIN ANALYZE CREATE TABLE t5 AS SELECT 1", "EXPLAIN ANALYZE", ""},
		{"internal names", "SELECT * FROM __netfeat_src_samples", "reserved", ""},
	}
	raw, err := duckdb.NewConnector(DefaultOptions().DSN(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rawDB := sql.OpenDB(raw)
	defer rawDB.Close()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, _, err := queryRows(t.Context(), e, Request{SQL: tc.sql})
			if err == nil {
				t.Fatalf("%s: ran, returned %v", tc.sql, rows)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s: error %v is not ErrInvalid", tc.sql, err)
			}
			if !strings.Contains(err.Error(), tc.engine) {
				t.Fatalf("%s: error %q does not contain %q", tc.sql, err, tc.engine)
			}
			if tc.dsn == "" {
				return
			}
			_, err = rawDB.ExecContext(t.Context(), tc.sql)
			if err == nil || !strings.Contains(err.Error(), tc.dsn) {
				t.Fatalf("%s on the bare sandbox DSN: error %v, want %q", tc.sql, err, tc.dsn)
			}
		})
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("COPY wrote %s: %v", out, err)
	}
	// Block comments nest as in DuckDB: this is one SELECT and a comment.
	if rows, _, err := queryRows(t.Context(), e, Request{SQL: "SELECT 1 /* /* */ ; CREATE TABLE t4 (a INT); */"}); err != nil || len(rows) != 1 {
		t.Fatalf("nested comment: %v %v", rows, err)
	}
	// The engine still answers, and nothing the refused statements tried
	// to create exists.
	rows, _, err := queryRows(t.Context(), e, Request{SQL: "SELECT count(*) FROM duckdb_tables()"})
	if err != nil || len(rows) != 1 || rows[0][0] != int64(0) {
		t.Fatalf("after refusals: rows %v, err %v", rows, err)
	}
	rows, _, err = queryRows(t.Context(), e, Request{SQL: "SELECT value FROM duckdb_settings() WHERE name = 'enable_external_access'"})
	if err != nil || len(rows) != 1 || rows[0][0] != "false" {
		t.Fatalf("enable_external_access: rows %v, err %v", rows, err)
	}
}

// TestColumnSubset is the regression test for duckdb/duckdb-go#24: with the
// unused_columns optimizer on, a query over an Arrow view that reads a
// subset of the columns returned wrong values or crashed. Each query reads
// a different subset and is compared with the truth computed in Go.
func TestColumnSubset(t *testing.T) {
	const n = 50_000
	e := newTestEngine(t, testSource(t, n, 4096), nil)

	var sum, sumR2 float64
	var lastR2 fixture.Sample
	perMetric := map[string]int64{}
	var maxComp string
	for i := 0; i < n; i++ {
		s := fixture.SampleAt(i)
		sum += s.Value
		perMetric[s.Metric]++
		if s.Device == "r2" {
			sumR2 += s.Value
			lastR2 = s
		}
		if s.Device == "r3" && s.Component > maxComp {
			maxComp = s.Component
		}
	}
	tests := []struct {
		name string
		sql  string
		want []any
	}{
		{"value only", "SELECT sum(value) FROM samples", []any{sum}},
		{"last column filtered by second", "SELECT sum(value) FROM samples WHERE device = 'r2'", []any{sumR2}},
		{"first and last", "SELECT value FROM samples WHERE ts = TIMESTAMPTZ '" + time.Unix(0, lastR2.TS).UTC().Format("2006-01-02 15:04:05.000") + "+00'", []any{lastR2.Value}},
		{"latest per device", "SELECT component, metric, value FROM samples WHERE device = 'r2' ORDER BY ts DESC LIMIT 1", []any{lastR2.Component, lastR2.Metric, lastR2.Value}},
		{"dictionary only", "SELECT max(component) FROM samples WHERE device = 'r3'", []any{maxComp}},
		{"count star", "SELECT count(*) FROM samples", []any{int64(n)}},
		{"group by", "SELECT count(*) FROM samples WHERE metric = 'interface.out.bps'", []any{perMetric["interface.out.bps"]}},
		{"view feature subset", "SELECT sum(interface_in_bps__max_1m) FROM if_traffic WHERE device = 'r1'", []any{float64(3 * 10 * 45)}},
		{"decisions subset", "SELECT count(*) FILTER (WHERE shadow), max(ingest_to_decision_us) FROM decisions", []any{int64(10), int64(119)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for run := 0; run < 2; run++ { // twice: each query gets fresh streams
				rows, _, err := queryRows(t.Context(), e, Request{SQL: tc.sql})
				if err != nil {
					t.Fatalf("%s: %v", tc.sql, err)
				}
				if len(rows) != 1 || len(rows[0]) != len(tc.want) {
					t.Fatalf("%s: got %v, want one row %v", tc.sql, rows, tc.want)
				}
				for i, w := range tc.want {
					got := rows[0][i]
					if wf, ok := w.(float64); ok {
						if gf, ok := got.(float64); !ok || !approx(gf, wf) {
							t.Fatalf("%s: column %d = %v, want %v", tc.sql, i, got, w)
						}
						continue
					}
					if got != w {
						t.Fatalf("%s: column %d = %v (%T), want %v (%T)", tc.sql, i, got, got, w, w)
					}
				}
			}
		})
	}
}

// TestTables checks every table the service serves.
func TestTables(t *testing.T) {
	e := newTestEngine(t, testSource(t, 1200, 500), nil)
	tests := []struct {
		sql  string
		want string
	}{
		{"SELECT count(*) FROM samples", "1200"},
		{"SELECT count(*), count(DISTINCT device) FROM if_traffic", "120 4"},
		{"SELECT count(*), count(interface_in_bps__max_1m) FROM latest_if_traffic", "12 0"},
		{"SELECT count(*), min(model) FROM decisions", "20 congestion"},
		{"SELECT count(*), sum(samples) FROM series", "4 14400"},
		{"SELECT device, state, last_error FROM devices WHERE state <> 'up'", "r2 auth_failure authentication failure"},
		{"SELECT count(*) FROM devices WHERE last_success IS NULL", "1"},
		{fmt.Sprintf("SELECT count(*) FROM metrics WHERE name = 'interface.in.bps' AND unit = 'bits/s' HAVING count(*) = 1 OR %d = 0", len(schema.Catalog)), "1"},
		{"SELECT count(*) FROM samples s JOIN series USING (device)", "1200"},
		{"DESCRIBE samples", "ts TIMESTAMP WITH TIME ZONE YES    device VARCHAR YES    component VARCHAR YES    metric VARCHAR YES    value DOUBLE YES   "},
	}
	for _, tc := range tests {
		rows, _, err := queryRows(t.Context(), e, Request{SQL: tc.sql})
		if err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		var parts []string
		for _, r := range rows {
			for _, v := range r {
				if v == nil {
					parts = append(parts, "")
					continue
				}
				parts = append(parts, fmt.Sprint(v))
			}
		}
		if got := strings.Join(parts, " "); got != tc.want {
			t.Fatalf("%s: got %q, want %q", tc.sql, got, tc.want)
		}
	}
}

// TestMultiScan checks queries that scan one table twice: DuckDB reads an
// Arrow stream once, so without care the second scan sees no rows.
func TestMultiScan(t *testing.T) {
	const n = 3000
	e := newTestEngine(t, testSource(t, n, 1000), nil)
	var sum float64
	above := 0
	for i := 0; i < n; i++ {
		sum += fixture.SampleAt(i).Value
	}
	mean := sum / n
	for i := 0; i < n; i++ {
		if fixture.SampleAt(i).Value > mean {
			above++
		}
	}
	tests := []struct {
		sql  string
		want int64
	}{
		{"SELECT count(*) FROM samples a JOIN samples b ON a.ts = b.ts", n},
		{"SELECT count(*) FROM samples WHERE value > (SELECT avg(value) FROM samples)", int64(above)},
		{"WITH s AS (SELECT ts, value FROM samples) SELECT count(*) FROM s a JOIN s b USING (ts)", n},
		{"SELECT count(*) FROM (SELECT ts FROM samples UNION ALL SELECT ts FROM samples)", 2 * n},
		{"SELECT count(*) FROM (SELECT ts FROM samples UNION ALL SELECT ts FROM decisions)", n + 20},
		{"SELECT count(*) FROM samples WHERE device IN (SELECT device FROM series)", n},
		{"SELECT CAST(sum(r1) AS BIGINT) FROM (PIVOT samples ON device USING count(*) GROUP BY metric)", n / 4},
	}
	for _, tc := range tests {
		rows, _, err := queryRows(t.Context(), e, Request{SQL: tc.sql})
		if err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		if len(rows) != 1 || rows[0][0] != tc.want {
			t.Fatalf("%s: got %v, want %d", tc.sql, rows, tc.want)
		}
	}
	// Materialized tables do not outlive their query.
	rows, _, err := queryRows(t.Context(), e, Request{SQL: "SELECT count(*) FROM duckdb_tables()"})
	if err != nil || rows[0][0] != int64(0) {
		t.Fatalf("tables left behind: %v %v", rows, err)
	}
}

// TestUnwrappable runs statements that cannot be wrapped in a subquery:
// they take the prepared path and still get the row limit.
func TestUnwrappable(t *testing.T) {
	e := newTestEngine(t, testSource(t, 1200, 500), func(o *Options) { o.MaxRows = 3 })
	tests := []struct {
		sql       string
		rows      int
		truncated bool
	}{
		{"SUMMARIZE samples", 3, true},
		{"PIVOT samples ON device USING count(*) GROUP BY metric", 3, false},
		{"SELECT * FROM (PIVOT samples ON metric USING count(*) GROUP BY device) ORDER BY device", 3, true},
		{"EXPLAIN SELECT * FROM samples", 1, false},
	}
	for _, tc := range tests {
		rows, truncated, err := queryRows(t.Context(), e, Request{SQL: tc.sql})
		if err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		if len(rows) != tc.rows || truncated != tc.truncated {
			t.Fatalf("%s: %d rows truncated=%v, want %d %v: %v", tc.sql, len(rows), truncated, tc.rows, tc.truncated, rows)
		}
	}
}

func TestRowLimit(t *testing.T) {
	e := newTestEngine(t, testSource(t, 5000, 700), func(o *Options) { o.MaxRows = 1000 })
	tests := []struct {
		sql       string
		maxRows   int
		wantRows  int
		truncated bool
	}{
		{"SELECT * FROM samples", 0, 1000, true},
		{"SELECT * FROM samples", 10, 10, true},
		{"SELECT * FROM samples", 5000, 1000, true},
		{"SELECT * FROM samples LIMIT 1000", 0, 1000, false},
		{"SELECT * FROM samples LIMIT 999;  -- trailing comment", 0, 999, false},
		{"SELECT ts FROM samples ORDER BY ts DESC", 3, 3, true},
		{"EXPLAIN SELECT * FROM samples", 0, 1, false},
	}
	for _, tc := range tests {
		rows, truncated, err := queryRows(t.Context(), e, Request{SQL: tc.sql, MaxRows: tc.maxRows})
		if err != nil {
			t.Fatalf("%s: %v", tc.sql, err)
		}
		if len(rows) != tc.wantRows || truncated != tc.truncated {
			t.Fatalf("%s (max %d): %d rows truncated=%v, want %d truncated=%v", tc.sql, tc.maxRows, len(rows), truncated, tc.wantRows, tc.truncated)
		}
	}
	// ORDER BY survives the limit wrapper.
	rows, _, err := queryRows(t.Context(), e, Request{SQL: "SELECT ts FROM samples ORDER BY ts DESC", MaxRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rows[0][0].(time.Time), time.Unix(0, fixture.SampleAt(4999).TS).UTC(); !got.Equal(want) {
		t.Fatalf("ORDER BY ts DESC first row %v, want %v", got, want)
	}
}

func TestTimeoutAndMemoryLimit(t *testing.T) {
	e := newTestEngine(t, testSource(t, 100, 100), func(o *Options) {
		o.Timeout = 300 * time.Millisecond
		o.MemoryLimit = "64MB"
	})
	start := time.Now()
	_, _, err := queryRows(t.Context(), e, Request{SQL: "SELECT count(*) FROM range(1000000000000) a WHERE a.range % 7 = 3"})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("long query: err %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timeout took %v", d)
	}
	e = newTestEngine(t, testSource(t, 100, 100), func(o *Options) { o.MemoryLimit = "64MB" })
	start = time.Now()
	_, _, err = queryRows(t.Context(), e, Request{SQL: "SELECT max(length(l)) FROM (SELECT list(range) AS l FROM range(50000000))"})
	t.Logf("memory-hungry query failed after %v: %v", time.Since(start), err)
	if err == nil || !strings.Contains(err.Error(), "Out of Memory") {
		t.Fatalf("memory-hungry query: err %v, want Out of Memory", err)
	}
	rows, _, err := queryRows(t.Context(), e, Request{SQL: "SELECT count(*) FROM samples"})
	if err != nil || rows[0][0] != int64(100) {
		t.Fatalf("after limits: %v %v", rows, err)
	}
}

func TestBadQueries(t *testing.T) {
	e := newTestEngine(t, testSource(t, 100, 100), nil)
	tests := []struct{ sql, want string }{
		{"SELEC 1", "Parser Error"},
		{"SELECT * FROM nosuchtable", "Catalog Error"},
		{"SELECT nosuchcolumn FROM samples", "Binder Error"},
		{"SELECT 1/0::INT + 'a'", "Conversion Error"},
		{"", "empty query"},
		{"   -- only a comment", ""},
		{"SELECT * FROM query('SELECT * FROM sam' || 'ples')", ""},
		{"SELECT * FROM samples WHERE ts >", "Parser Error"},
	}
	for _, tc := range tests {
		_, _, err := queryRows(t.Context(), e, Request{SQL: tc.sql})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%q: err %v, want ErrInvalid containing %q", tc.sql, err, tc.want)
		}
	}
	rows, _, err := queryRows(t.Context(), e, Request{SQL: "SELECT count(*) FROM samples"})
	if err != nil || rows[0][0] != int64(100) {
		t.Fatalf("after bad queries: %v %v", rows, err)
	}
	// With the samples view registered on the only database, a query that
	// reaches it without naming it gets an error, not stale or empty rows.
	e1 := newTestEngine(t, testSource(t, 100, 100), func(o *Options) { o.MaxConcurrent = 1 })
	if _, _, err := queryRows(t.Context(), e1, Request{SQL: "SELECT count(*) FROM samples"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = queryRows(t.Context(), e1, Request{SQL: "SELECT count(*) FROM query_table('sam' || 'ples')"})
	if err == nil || !strings.Contains(err.Error(), "table samples is not available to this query") {
		t.Fatalf("unnamed table: %v", err)
	}
}

func TestHistoryRange(t *testing.T) {
	e := newTestEngine(t, testSource(t, 10_000, 1000), nil)
	from := t0.Add(2 * time.Second)
	to := t0.Add(5 * time.Second)
	rows, _, err := queryRows(t.Context(), e, Request{
		SQL:  "SELECT count(*), min(ts), max(ts) FROM samples",
		From: from, To: to,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rows[0][0] != int64(3000) || !rows[0][1].(time.Time).Equal(from) || !rows[0][2].(time.Time).Equal(to.Add(-time.Millisecond)) {
		t.Fatalf("history: %v", rows)
	}
	// Tables without a time column read their current contents.
	rows, _, err = queryRows(t.Context(), e, Request{SQL: "SELECT count(*) FROM series", From: from, To: to})
	if err != nil || rows[0][0] != int64(4) {
		t.Fatalf("series in a ranged query: %v %v", rows, err)
	}
	// Feature views are ranged by window_end.
	rows, _, err = queryRows(t.Context(), e, Request{SQL: "SELECT count(*) FROM if_traffic", From: t0, To: t0.Add(3 * time.Minute)})
	if err != nil || rows[0][0] != int64(2*12) {
		t.Fatalf("view history: %v %v", rows, err)
	}
	if _, _, err := queryRows(t.Context(), e, Request{SQL: "SELECT 1", From: to, To: from}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reversed range: %v", err)
	}
}

func TestConcurrentQueries(t *testing.T) {
	e := newTestEngine(t, testSource(t, 20_000, 2048), func(o *Options) { o.MaxConcurrent = 3 })
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				rows, _, err := queryRows(context.Background(), e, Request{SQL: "SELECT count(*), sum(value) FROM samples WHERE device = 'r1'"})
				if err != nil {
					errs <- err
					return
				}
				if rows[0][0] != int64(5000) {
					errs <- fmt.Errorf("count %v", rows[0][0])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestOptionsValidate(t *testing.T) {
	defaults := DefaultOptions()
	if err := defaults.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := Options{Timeout: -1, MaxRows: 0, MemoryLimit: "lots", Threads: -2, MaxConcurrent: 0}
	err := bad.Validate()
	for _, field := range []string{"timeout", "max_rows", "memory_limit", "threads", "max_concurrent"} {
		var found bool
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var fe *schema.FieldError
			if errors.As(e, &fe) && fe.Field == field {
				found = true
			}
		}
		if !found {
			t.Fatalf("no FieldError for %s in %v", field, err)
		}
	}
}

// TestTableListing checks that every database lists every table, whatever
// the queries before it named: the views were once registered on first
// use, and each database answered SHOW TABLES with a different part.
func TestTableListing(t *testing.T) {
	mem := &MemSource{}
	t.Cleanup(mem.Close)
	src := Sources(testSource(t, 100, 100), mem)
	e := newTestEngine(t, src, func(o *Options) { o.MaxConcurrent = 3 })
	want := func() string {
		var names []string
		for _, ti := range e.Tables() {
			names = append(names, ti.Name)
		}
		return strings.Join(names, ",")
	}
	listings := []struct{ name, sql string }{
		{"show tables", "SHOW TABLES"},
		{"information_schema.tables", "SELECT table_name FROM information_schema.tables ORDER BY 1"},
		{"information_schema.columns", "SELECT DISTINCT table_name FROM information_schema.columns ORDER BY 1"},
		{"duckdb_views", "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1"},
	}
	check := func(stage string) {
		t.Helper()
		for _, l := range listings {
			// More runs than databases, so that each database answers.
			for run := range 7 {
				rows, _, err := queryRows(t.Context(), e, Request{SQL: l.sql})
				if err != nil {
					t.Fatalf("%s: %s run %d: %v", stage, l.name, run, err)
				}
				var got []string
				for _, r := range rows {
					got = append(got, fmt.Sprint(r[0]))
				}
				if g := strings.Join(got, ","); g != want() {
					t.Fatalf("%s: %s run %d: got %q, want %q", stage, l.name, run, g, want())
				}
			}
		}
	}
	check("fresh")
	// Queries naming some tables, and one scanning samples twice (it
	// materializes through internal views), leave the listing whole.
	for _, q := range []string{"SELECT count(*) FROM samples", "SELECT count(*) FROM decisions", "SELECT count(*) FROM samples a JOIN samples b USING (ts)"} {
		if _, _, err := queryRows(t.Context(), e, Request{SQL: q}); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	check("after queries")
	// A table added later is listed at once, everywhere.
	sc := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	if err := mem.Set(TableInfo{Name: "extra", Schema: sc}); err != nil {
		t.Fatal(err)
	}
	check("after adding a table")
	// DESCRIBE works for every table and agrees with Describe (GET
	// /v1/tables).
	for _, td := range Describe(e.Tables()).Tables {
		rows, _, err := queryRows(t.Context(), e, Request{SQL: "DESCRIBE " + quoteIdent(td.Name)})
		if err != nil || len(rows) != len(td.Columns) {
			t.Fatalf("DESCRIBE %s: %d rows, %v; want %d", td.Name, len(rows), err, len(td.Columns))
		}
		for i, c := range td.Columns {
			if rows[i][0] != c.Name || rows[i][1] != c.Type {
				t.Fatalf("DESCRIBE %s column %d: %v %v, Describe says %s %s", td.Name, i, rows[i][0], rows[i][1], c.Name, c.Type)
			}
		}
	}
}

// TestMisspeltTable checks that a misspelt table gets a netfeat table
// suggested, never one of DuckDB's internal catalog.
func TestMisspeltTable(t *testing.T) {
	e := newTestEngine(t, testSource(t, 100, 100), nil)
	tests := []struct {
		sql, want string
	}{
		{"SELECT * FROM sample", `Did you mean "samples"?`},
		{"SELECT * FROM devics", `Did you mean "devices"?`},
		{"DESCRIBE sampels", `Did you mean "samples"?`},
		{"SELECT * FROM pg_desc", "Tables: decisions, devices, if_traffic, latest_if_traffic, metrics, samples, series."},
		{"SELECT * FROM tabels", "Tables: decisions,"},
		{"SELECT * FROM settingz", "Tables: decisions,"},
		{"SELECT * FROM x", "Tables: decisions,"},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			_, _, err := queryRows(t.Context(), e, Request{SQL: tc.sql})
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "Catalog Error: Table with name") {
				t.Fatalf("message %q, want it to contain %q", msg, tc.want)
			}
			for _, internal := range []string{"pg_", "duckdb_", "information_schema", "sqlite_"} {
				if strings.Contains(msg, internal) && !strings.Contains(tc.sql, internal) {
					t.Fatalf("message %q names DuckDB's catalog (%s)", msg, internal)
				}
			}
		})
	}
}
