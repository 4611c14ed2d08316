package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/netfeat/netfeat/query"
	"github.com/netfeat/netfeat/query/frontend"
	"github.com/netfeat/netfeat/schema"
)

// startQueryServer serves POST /v1/query over a feature view "cpu" (device
// entity, one window per minute for r1 and r2, mean = minute index) and the
// metrics catalog.
func startQueryServer(t *testing.T, token string) string {
	t.Helper()
	view := schema.FeatureView{Name: "cpu", Entity: schema.EntityDevice, Metrics: []string{"system.cpu.utilization"},
		Aggregations: []schema.Aggregation{schema.AggMean}, Windows: []time.Duration{time.Minute}, Hop: time.Minute}
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema.FeatureViewSchema(view))
	defer b.Release()
	for m := 0; m < 10; m++ {
		for _, d := range []string{"r1", "r2"} {
			b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.Add(time.Duration(m) * time.Minute).UnixNano()))
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.Add(time.Duration(m+1) * time.Minute).UnixNano()))
			b.Field(2).(*array.StringBuilder).Append(d)
			b.Field(3).(*array.StringBuilder).Append("")
			b.Field(4).(*array.Float64Builder).Append(float64(m))
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	mem := &query.MemSource{}
	t.Cleanup(mem.Close)
	if err := mem.Set(query.TableInfo{Name: "cpu", Schema: rec.Schema(), TimeColumn: "window_end", Description: "cpu per minute"}, rec); err != nil {
		t.Fatal(err)
	}
	e, err := query.New(query.Sources(mem, query.Catalog(schema.Catalog)), query.DefaultOptions(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Stop(context.Background()) })
	mux := http.NewServeMux()
	mux.Handle("/v1/query", frontend.NewHandler(token, e, nil))
	mux.Handle("/v1/tables", frontend.TablesHandler(token, e, nil))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func runQueryCmd(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

func TestQueryCmd(t *testing.T) {
	url := startQueryServer(t, "tok")
	tests := []struct {
		name string
		args []string
		want string
		err  string
	}{
		{"table", []string{"query", "--server", url, "--token", "tok", "SELECT device, max(system_cpu_utilization__mean_1m) AS m FROM cpu GROUP BY device ORDER BY device"},
			"device  m\n------  ---\nr1      9\nr2      9\n(2 rows)\n", ""},
		{"feature units", []string{"query", "--server", url, "--token", "tok", "SELECT device, system_cpu_utilization__mean_1m / 20 AS system_cpu_utilization__mean_1m, system_cpu_utilization__mean_1m * 5e6 AS big FROM cpu WHERE window_start = '2025-03-01 12:09:00+00' ORDER BY device"},
			"device  system_cpu_utilization  big\n        mean_1m\n------  ----------------------  ---\nr1      45 %                    45000000\nr2      45 %                    45000000\n(2 rows)\n", ""},
		{"value units", []string{"query", "--server", url, "--token", "tok", "SELECT * FROM (VALUES ('interface.in.bps', 1.234e9), ('interface.in.octets', 123456789.0), ('nope', 2.5)) t(metric, value)"},
			"metric               value\n------               -----\ninterface.in.bps     1.23 Gb/s\ninterface.in.octets  123456789 B\nnope                 2.5\n(3 rows)\n", ""},
		{"json keeps raw values", []string{"query", "--server", url, "--token", "tok", "--format", "json", "SELECT 'interface.in.bps' AS metric, 1.234e9::DOUBLE AS value"},
			`{"columns":[{"name":"metric","type":"utf8"},{"name":"value","type":"float64"}],"rows":[["interface.in.bps",1.234e+09]],"row_count":1,"truncated":false}` + "\n", ""},
		{"csv", []string{"query", "--server", url, "--token", "tok", "--format", "csv", "SELECT name, unit FROM metrics WHERE name = 'interface.in.bps'"},
			"name,unit\ninterface.in.bps,bits/s\n", ""},
		{"json", []string{"query", "--server", url, "--token", "tok", "--format", "json", "SELECT 1 AS one"},
			`{"columns":[{"name":"one","type":"int32"}],"rows":[[1]],"row_count":1,"truncated":false}` + "\n", ""},
		{"history", []string{"query", "--server", url, "--token", "tok", "--from", "2025-03-01T12:00:00Z", "--to", "2025-03-01T12:03:00Z", "SELECT count(*) AS n FROM cpu"},
			"n\n---\n4\n(1 rows)\n", ""},
		{"null", []string{"query", "--server", url, "--token", "tok", "SELECT NULL AS x"}, "x\n---\nNULL\n(1 rows)\n", ""},
		{"terminal escape", []string{"query", "--server", url, "--token", "tok", `SELECT chr(27) || '[31mred' || chr(10) || 'x' AS "a` + "\x1b" + `b"`},
			"a\\x1bb\n------\n\\x1b[31mred\\nx\n(1 rows)\n", ""},
		{"bad sql", []string{"query", "--server", url, "--token", "tok", "SELEC 1"}, "", "400 Bad Request: invalid query: Parser Error: syntax error"},
		{"no token", []string{"query", "--server", url, "SELECT 1"}, "", "401 Unauthorized"},
		{"bad format", []string{"query", "--server", url, "--format", "xml", "SELECT 1"}, "", "want table, json or csv"},
		{"half range", []string{"query", "--server", url, "--from", "2025-03-01T12:00:00Z", "SELECT 1"}, "", "go together"},
	}
	for _, tc := range tests {
		out, _, err := runQueryCmd(t, tc.args...)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || out != tc.want {
			t.Fatalf("%s: err %v, output\n%q\nwant\n%q", tc.name, err, out, tc.want)
		}
	}
}

func TestExportCmd(t *testing.T) {
	url := startQueryServer(t, "")
	dir := t.TempDir()
	labels := filepath.Join(dir, "labels.csv")
	if err := os.WriteFile(labels, []byte("ts,device,label\n2025-03-01T12:05:30Z,r1,1\n2025-03-01T12:02:00Z,r2,0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{filepath.Join(dir, "train.csv"), filepath.Join(dir, "train.parquet")} {
		_, errOut, err := runQueryCmd(t, "export", "--server", url, "--labels", labels, "--view", "cpu", "--out", out)
		if err != nil {
			t.Fatalf("export %s: %v (%s)", out, err, errOut)
		}
		if !strings.Contains(errOut, "wrote 2 rows to "+out) {
			t.Fatalf("stderr %q", errOut)
		}
		if _, err := os.Stat(out + ".partial"); !os.IsNotExist(err) {
			t.Fatalf("partial file left: %v", err)
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, "train.csv"))
	if err != nil {
		t.Fatal(err)
	}
	want := "ts,device,label,cpu__window_end,cpu__system_cpu_utilization__mean_1m\n" +
		"2025-03-01T12:02:00Z,r2,0,2025-03-01T12:02:00Z,1\n" +
		"2025-03-01T12:05:30Z,r1,1,2025-03-01T12:05:00Z,4\n"
	if string(got) != want {
		t.Fatalf("csv\n%s\nwant\n%s", got, want)
	}
	if fi, err := os.Stat(filepath.Join(dir, "train.parquet")); err != nil || fi.Size() < 100 {
		t.Fatalf("parquet: %v %v", fi, err)
	}
	if _, _, err := runQueryCmd(t, "export", "--server", url, "--labels", labels, "--view", "cpu", "--out", filepath.Join(dir, "x.txt")); err == nil || !strings.Contains(err.Error(), "--format") {
		t.Fatalf("unknown extension: %v", err)
	}
}

func TestEscapeCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"pe1 Gi0/0 é 日本", "pe1 Gi0/0 é 日本"},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"a\tb\nc\rd", `a\tb\nc\rd`},
		{"bell\a del\x7f c1\u009b", `bell\a del\x7f c1\u009b`},
		{"rtl\u202eevil", `rtl\u202eevil`},
		{"bad\xffutf8", `bad\xffutf8`},
		{`back\slash`, `back\\slash`},
	}
	for _, tc := range tests {
		if got := escapeCell(tc.in); got != tc.want {
			t.Errorf("escapeCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTablesCmd(t *testing.T) {
	url := startQueryServer(t, "tok")
	tests := []struct {
		name string
		args []string
		want []string
		err  string
	}{
		{"table", []string{"tables", "--server", url, "--token", "tok"}, []string{
			"cpu      cpu per minute\n",
			"window_start TIMESTAMP WITH TIME ZONE, window_end TIMESTAMP WITH TIME ZONE, device VARCHAR, component VARCHAR, system_cpu_utilization__mean_1m DOUBLE\n",
			"metrics  " + query.DescMetrics,
			"(2 tables)\n",
		}, ""},
		{"json", []string{"tables", "--server", url, "--token", "tok", "--json"}, []string{
			`"name": "cpu"`, `"description": "cpu per minute"`, `"name": "window_end",`, `"type": "TIMESTAMP WITH TIME ZONE"`,
		}, ""},
		{"no token", []string{"tables", "--server", url}, nil, "missing or wrong bearer token (HTTP 401)"},
		{"no server", []string{"tables", "--server", "http://127.0.0.1:1"}, nil, "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("NETFEAT_TOKEN", "")
			out, _, err := runQueryCmd(t, tc.args...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestQueryHelpListsTables: the help of query names every standard table.
func TestQueryHelpListsTables(t *testing.T) {
	out, _, err := runQueryCmd(t, "query", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, td := range query.StandardTables {
		if !strings.Contains(out, "  "+td.Name+" ") {
			t.Errorf("query --help does not list %s:\n%s", td.Name, out)
		}
	}
}
