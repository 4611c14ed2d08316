package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/netfeat/netfeat/internal/apiclient"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/query"
	"github.com/netfeat/netfeat/schema"
)

// sqlTestConfig has one device view with a 1 s tumbling window and a rule
// that fires on every entity with traffic, so decisions exist to query.
const sqlTestConfig = `
data_dir: %s
shutdown_timeout: 5s
http:
  listen: 127.0.0.1:0
  token_env: %s
nats:
  listen: 127.0.0.1:0
query:
  flight_listen: 127.0.0.1:0
  max_rows: 1000
views:
  - name: traffic
    entity: component
    metrics: [interface.in.bps]
    aggregations: [mean, max, count]
    windows: [1s]
    hop: 1s
    allowed_lateness: 0s
inference:
  rules:
    - name: busy
      view: traffic
      feature: interface_in_bps__mean_1s
      op: ">"
      threshold: 0
`

const testToken = "s3cret-token"

// newSQLService starts a service with SQL on every front end, and feeds it
// three seconds of samples for two interfaces of r1, so that two windows
// close and the rule decides on them.
func newSQLService(t *testing.T) *Service {
	t.Helper()
	env := "NETFEAT_TEST_TOKEN_" + strings.ToUpper(strings.ReplaceAll(t.Name(), "/", "_"))
	t.Setenv(env, testToken)
	cfg, err := ParseConfig("sql.yaml", fmt.Appendf(nil, sqlTestConfig, t.TempDir(), env))
	if err != nil {
		t.Fatal(err)
	}
	svc := startService(t, cfg)
	base := time.Now().Truncate(time.Second).Add(-10 * time.Second)
	var batch []schema.Sample
	for s := range 4 {
		for i, ifc := range []string{"eth0", "eth1"} {
			for ms := 0; ms < 1000; ms += 250 {
				ts := base.Add(time.Duration(s)*time.Second + time.Duration(ms)*time.Millisecond).UnixNano()
				batch = append(batch, schema.Sample{
					TS: ts, IngestTS: ts, Entity: schema.Entity{Device: "r1", Component: ifc},
					Metric: "interface.in.bps", Value: float64(100*(i+1) + s), Source: "test",
				})
			}
		}
	}
	if err := svc.Store().Append(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	// A gNMI path no profile maps, for the unmapped table.
	now := time.Now().UnixNano()
	if err := svc.Normalizer().Observe(context.Background(), []schema.Observation{{
		Device: "r1", Protocol: schema.ProtocolGNMI, Origin: "acme-secret-oper", Path: "widgets/widget[id=1]/spin",
		Kind: schema.KindCounter64, Uint: 7, DeviceTime: now, RecvTime: now,
	}}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "decisions on r1", func() bool {
		return len(svc.Inference().DecisionRecords()[0].Columns()) > 0 && svc.Inference().DecisionRecords()[0].NumRows() >= 2
	})
	return svc
}

type queryReply struct {
	Columns []struct{ Name, Type string } `json:"columns"`
	Rows    [][]any                       `json:"rows"`
	Error   string                        `json:"error"`
}

func postQuery(t *testing.T, svc *Service, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+svc.HTTP().Addr()+"/v1/query", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestSQLOverHTTP checks that every table of docs/sql.md is served by the
// running service, with the bearer token enforced.
func TestSQLOverHTTP(t *testing.T) {
	svc := newSQLService(t)
	tests := []struct {
		name, sql string
		want      string // a substring of the JSON reply
	}{
		{"samples", `SELECT count(*) AS n, sum(value) AS s FROM samples WHERE device = 'r1'`, `[32,`},
		{"samples subset", `SELECT component FROM samples WHERE component = 'eth1' LIMIT 1`, `[["eth1"]]`},
		{"view", `SELECT count(DISTINCT component) FROM traffic`, `[[2]]`},
		{"latest", `SELECT component, interface_in_bps__count_1s FROM latest_traffic ORDER BY component`, `"eth0",4`},
		{"point lookup", `SELECT component, interface_in_bps__count_1s FROM latest_traffic WHERE device = 'r1' AND component = 'eth1'`, `"rows":[["eth1",4]]`},
		{"point lookup miss", `SELECT * FROM latest_traffic WHERE device = 'r1' AND component = 'eth9'`, `"rows":[]`},
		{"series", `SELECT metric, samples FROM series WHERE component = 'eth0'`, `[["interface.in.bps",16]]`},
		{"decisions", `SELECT DISTINCT model, action, component FROM decisions ORDER BY component`, `["busy","alert","eth0"],["busy","alert","eth1"]`},
		{"metrics", `SELECT unit FROM metrics WHERE name = 'interface.in.bps'`, `[["bits/s"]]`},
		{"devices", `SELECT count(*) FROM devices`, `[[0]]`},
		{"unmapped", `SELECT device, path, count FROM unmapped WHERE path LIKE 'acme%'`, `[["r1","acme-secret-oper:widgets/widget/spin",1]]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]string{"sql": tc.sql})
			code, out := postQuery(t, svc, testToken, string(body))
			if code != http.StatusOK || !strings.Contains(out, tc.want) {
				t.Fatalf("%s: status %d, reply %s; want %s in it", tc.sql, code, out, tc.want)
			}
		})
	}
	if _, m := get(t, "http://"+svc.HTTP().Addr()+"/metrics"); !strings.Contains(m, "netfeat_query_entity_lookups_total 2\n") {
		t.Errorf("want 2 entity lookups (the two point queries), metrics say %q", grepLines(m, "entity_lookups"))
	}
	t.Run("history", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{
			"sql":  `SELECT count(*) FROM samples`,
			"from": time.Now().Add(-time.Hour), "to": time.Now().Add(time.Hour),
		})
		if code, out := postQuery(t, svc, testToken, string(body)); code != http.StatusOK || !strings.Contains(out, `[[32]]`) {
			t.Fatalf("ranged query: %d %s", code, out)
		}
	})
	t.Run("decisions history", func(t *testing.T) {
		// The ranged query reads the decision log files; the plain one
		// the in-memory ring, which here still holds every decision.
		count := func(ranged bool) string {
			req := map[string]any{"sql": `SELECT count(*), count(DISTINCT id), min(component) FROM decisions`}
			if ranged {
				req["from"], req["to"] = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
			}
			body, _ := json.Marshal(req)
			code, out := postQuery(t, svc, testToken, string(body))
			if code != http.StatusOK {
				t.Fatalf("decisions: %d %s", code, out)
			}
			var r queryReply
			if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Rows) != 1 {
				t.Fatalf("decisions: %s %v", out, err)
			}
			return fmt.Sprint(r.Rows[0]...)
		}
		ring, logged := count(false), count(true)
		if ring != logged || strings.HasPrefix(ring, "0") {
			t.Fatalf("decisions: ring %s, log %s", ring, logged)
		}
		body, _ := json.Marshal(map[string]any{"sql": `SELECT count(*) FROM decisions`,
			"from": time.Now().Add(-2 * time.Hour), "to": time.Now().Add(-time.Hour)})
		if code, out := postQuery(t, svc, testToken, string(body)); code != http.StatusOK || !strings.Contains(out, `[[0]]`) {
			t.Fatalf("decisions an hour ago: %d %s", code, out)
		}
	})
	t.Run("bad sql", func(t *testing.T) {
		code, out := postQuery(t, svc, testToken, `{"sql":"SELECT nope FROM samples"}`)
		if code != http.StatusBadRequest || !strings.Contains(out, "nope") {
			t.Fatalf("bad query: %d %s", code, out)
		}
	})
	t.Run("tables", func(t *testing.T) {
		c := &query.Client{Client: apiclient.Client{BaseURL: "http://" + svc.HTTP().Addr(), Token: testToken}}
		list, err := c.Tables(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, td := range list.Tables {
			names = append(names, td.Name)
			if td.Description == "" || strings.Contains(td.Description, "\n") || len(td.Columns) == 0 {
				t.Errorf("table %s: description %q, %d columns: want one line and columns", td.Name, td.Description, len(td.Columns))
			}
			// Every table is one of the documented kinds (query --help
			// and docs/sql.md list StandardTables).
			doc := td.Name
			if doc == "traffic" {
				doc = "<view>"
			} else if doc == "latest_traffic" {
				doc = "latest_<view>"
			}
			if !slices.ContainsFunc(query.StandardTables, func(d query.TableDoc) bool { return d.Name == doc }) {
				t.Errorf("table %s is not in query.StandardTables", td.Name)
			}
		}
		want := "actions,decisions,devices,drift,latest_traffic,metrics,samples,series,traffic,unmapped"
		if got := strings.Join(names, ","); got != want {
			t.Fatalf("GET /v1/tables: %s, want %s", got, want)
		}
		// SHOW TABLES and information_schema agree with it on every run
		// (each run may take another database).
		for _, sql := range []string{"SHOW TABLES", "SELECT table_name FROM information_schema.tables ORDER BY 1"} {
			for run := range 6 {
				body, _ := json.Marshal(map[string]string{"sql": sql})
				code, out := postQuery(t, svc, testToken, string(body))
				var r queryReply
				if err := json.Unmarshal([]byte(out), &r); code != http.StatusOK || err != nil {
					t.Fatalf("%s: %d %s", sql, code, out)
				}
				var got []string
				for _, row := range r.Rows {
					got = append(got, fmt.Sprint(row[0]))
				}
				if g := strings.Join(got, ","); g != want {
					t.Fatalf("%s run %d: %s, want %s", sql, run, g, want)
				}
			}
		}
		if _, err := (&query.Client{Client: apiclient.Client{BaseURL: c.BaseURL}}).Tables(t.Context()); err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("GET /v1/tables without a token: %v, want a 401", err)
		}
	})
	t.Run("actions", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+svc.HTTP().Addr()+"/v1/actions?state=firing", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var acts []map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&acts); resp.StatusCode != http.StatusOK || err != nil {
			t.Fatalf("GET /v1/actions: %d %v", resp.StatusCode, err)
		}
	})
	for _, tok := range []string{"", "wrong"} {
		t.Run("token "+tok, func(t *testing.T) {
			if code, out := postQuery(t, svc, tok, `{"sql":"SELECT 1"}`); code != http.StatusUnauthorized {
				t.Fatalf("query with token %q: %d %s, want 401", tok, code, out)
			}
			req, _ := http.NewRequest(http.MethodGet, "http://"+svc.HTTP().Addr()+"/v1/models", nil)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("model API with token %q: %d, want 401", tok, resp.StatusCode)
			}
		})
	}
}

func TestSQLOverNATS(t *testing.T) {
	svc := newSQLService(t)
	nc, err := nats.Connect(svc.NATS().ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The HTTP token applies to the NATS front end too (#19): without it,
	// 401.
	for _, tc := range []struct{ auth, status string }{
		{"", "401"}, {"Bearer wrong", "401"}, {"Bearer " + testToken, "200"},
	} {
		req := nats.NewMsg("netfeat.query")
		req.Data = []byte(`{"sql":"SELECT count(*) FROM latest_traffic"}`)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		msg, err := nc.RequestMsg(req, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := msg.Header.Get("Netfeat-Status"); got != tc.status {
			t.Fatalf("Authorization %q: status %s (%s), want %s", tc.auth, got, msg.Data, tc.status)
		}
		if tc.status == "200" && !strings.Contains(string(msg.Data), `[[2]]`) {
			t.Fatalf("NATS reply %s", msg.Data)
		}
	}
}

func TestSQLOverFlight(t *testing.T) {
	svc := newSQLService(t)
	cl, err := flightsql.NewClient(svc.FlightSQLAddr(), nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.Execute(ctx, "SELECT 1"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v, want Unauthenticated", err)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testToken)
	info, err := cl.Execute(ctx, "SELECT count(*) AS n FROM samples")
	if err != nil {
		t.Fatal(err)
	}
	rdr, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	var n int64 = -1
	for rdr.Next() {
		rec := rdr.RecordBatch()
		n = rec.Column(0).(interface{ Value(int) int64 }).Value(0)
	}
	if n != 32 {
		t.Fatalf("flight count = %d, want 32", n)
	}
}

func TestQueryConfigErrors(t *testing.T) {
	_, err := ParseConfig("bad.yaml", []byte("query:\n  max_rows: 0\n  flight_listen: nohost\n  nats_subject: 'a.>'\n"))
	if err == nil {
		t.Fatal("bad query section accepted")
	}
	for _, want := range []string{"query.max_rows", "query.flight_listen", "query.nats_subject"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// TestQueryStageLifecycle checks that the service builds the SQL stage up
// front without starting it, that the query components start and stop with
// the group, and that POST /v1/query answers 503 from the engine's own
// state once it has stopped (the tokens are still loaded then).
func TestQueryStageLifecycle(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:0"
	cfg.Query.FlightListen = "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	svc, err := New(&cfg, NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Query() == nil || svc.Query().Ready() == nil {
		t.Fatalf("engine after New: %v, want built and not running", svc.Query())
	}
	if a := svc.FlightSQLAddr(); a != "" {
		t.Fatalf("Flight SQL address before Start: %q", a)
	}
	var names []string
	for _, st := range svc.group.Status() {
		names = append(names, st.Name)
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "query query.nats query.flightsql") {
		t.Fatalf("components %q: want query, query.nats, query.flightsql in order", got)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := svc.Query().Ready(); err != nil {
		t.Fatalf("engine after Start: %v", err)
	}
	if svc.FlightSQLAddr() == "" {
		t.Fatal("no Flight SQL address after Start")
	}
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	svc.http.mux.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/query", strings.NewReader(`{"sql":"SELECT 1"}`)))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "query engine not started") {
		t.Fatalf("/v1/query after Stop: %d %q, want 503 from the engine", rec.Code, rec.Body.String())
	}
}
