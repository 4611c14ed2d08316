package frontend

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/netfeat/netfeat/internal/apiclient"
	"github.com/netfeat/netfeat/query"
)

func newTestServer(t *testing.T, token string) (*query.Engine, *httptest.Server) {
	t.Helper()
	e := newTestEngine(t, testSource(t, 5000, 1000), func(o *query.Options) { o.MaxRows = 100 })
	return newTestServerFor(t, e, token)
}

// newTestServerFor serves e's POST /v1/query.
func newTestServerFor(t *testing.T, e *query.Engine, token string) (*query.Engine, *httptest.Server) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("POST /v1/query", NewHandler(token, e, nil))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return e, srv
}

func TestHTTPFormats(t *testing.T) {
	_, srv := newTestServer(t, "")
	c := &query.Client{Client: apiclient.Client{BaseURL: srv.URL}}
	q := "SELECT device, count(*) AS n, min(ts) AS first FROM samples GROUP BY device ORDER BY device"

	t.Run("json", func(t *testing.T) {
		resp, err := c.Do(t.Context(), query.Request{SQL: q})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct {
			Columns   []struct{ Name, Type string }
			Rows      [][]any
			RowCount  int64 `json:"row_count"`
			Truncated bool
			Error     string
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Columns) != 3 || doc.Columns[1].Name != "n" || doc.Columns[1].Type != "int64" {
			t.Fatalf("columns %+v", doc.Columns)
		}
		if len(doc.Rows) != 4 || doc.RowCount != 4 || doc.Truncated || doc.Error != "" {
			t.Fatalf("doc %+v", doc)
		}
		if doc.Rows[1][0] != "r2" || doc.Rows[1][1] != float64(1250) || doc.Rows[1][2] != "2025-03-01T12:00:00.001Z" {
			t.Fatalf("row 1 = %v", doc.Rows[1])
		}
	})
	t.Run("csv", func(t *testing.T) {
		resp, err := c.Do(t.Context(), query.Request{SQL: q, Format: query.FormatCSV})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		recs, err := csv.NewReader(resp.Body).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(recs[0], ","); got != "device,n,first" || len(recs) != 5 || strings.Join(recs[4], ",") != "r4,1250,2025-03-01T12:00:00.003Z" {
			t.Fatalf("csv %v", recs)
		}
		if resp.Trailer.Get(query.HeaderRows) != "4" || resp.Trailer.Get(query.HeaderTruncated) != "false" {
			t.Fatalf("trailer %v", resp.Trailer)
		}
	})
	t.Run("arrow truncated", func(t *testing.T) {
		rd, resp, err := c.Arrow(t.Context(), query.Request{SQL: "SELECT * FROM samples"})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		n := 0
		for rd.Next() {
			n += int(rd.RecordBatch().NumRows())
		}
		if rd.Err() != nil {
			t.Fatal(rd.Err())
		}
		rd.Release()
		_, _ = io.Copy(io.Discard, resp.Body)
		if n != 100 || resp.Trailer.Get(query.HeaderTruncated) != "true" || query.TrailerError(resp) != nil {
			t.Fatalf("%d rows, trailer %v", n, resp.Trailer)
		}
		if f := rd.Schema().Field(1); f.Name != "device" {
			t.Fatalf("schema %v", rd.Schema())
		}
	})
}

func TestHTTPErrors(t *testing.T) {
	_, srv := newTestServer(t, "s3cret")
	post := func(auth, body string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/query", strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name, auth, body string
		status           int
		want             string
	}{
		{"no token", "", `{"sql":"SELECT 1"}`, 401, "bearer token"},
		{"wrong token", "Bearer nope", `{"sql":"SELECT 1"}`, 401, "bearer token"},
		{"basic auth", "Basic czNjcmV0", `{"sql":"SELECT 1"}`, 401, "bearer token"},
		{"ok", "Bearer s3cret", `{"sql":"SELECT 41 + 1 AS x"}`, 200, `"rows":[[42]]`},
		{"syntax", "Bearer s3cret", `{"sql":"SELEC 1"}`, 400, "Parser Error: syntax error at or near"},
		{"sandbox", "Bearer s3cret", `{"sql":"SELECT * FROM read_csv('/etc/passwd')"}`, 400, "cannot read files"},
		{"unknown field", "Bearer s3cret", `{"sql":"SELECT 1","limit":3}`, 400, "unknown field"},
		{"bad format", "Bearer s3cret", `{"sql":"SELECT 1","format":"xml"}`, 400, "format"},
		{"not json", "Bearer s3cret", `SELECT 1`, 400, "bad request body"},
	}
	for _, tc := range tests {
		status, body := post(tc.auth, tc.body)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Fatalf("%s: %d %s, want %d containing %q", tc.name, status, body, tc.status, tc.want)
		}
	}
	resp, err := http.Get(srv.URL + "/v1/query")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}
