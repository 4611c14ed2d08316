package frontend

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/query"
)

func TestNATSResponder(t *testing.T) {
	nc := testkit.ConnectNATS(t, testkit.StartNATS(t, server.Options{MaxPayload: 64 << 10}).ClientURL())
	e := newTestEngine(t, testSource(t, 5000, 1000), nil)
	r := NewNATSResponder("", func() *nats.Conn { return nc }, e, nil)
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	ask := func(body string) *nats.Msg {
		t.Helper()
		m, err := nc.Request(DefaultNATSSubject, []byte(body), 5*time.Second)
		if err != nil {
			t.Fatalf("request %s: %v", body, err)
		}
		return m
	}
	tests := []struct {
		body, status, want string
	}{
		{`{"sql":"SELECT count(*) AS n FROM samples"}`, "200", `"rows":[[5000]]`},
		{`{"sql":"SELECT device FROM devices ORDER BY device","format":"csv"}`, "200", "device\nr1\nr2\n"},
		{`{"sql":"SELEC 1"}`, "400", "Parser Error"},
		{`{"sql":"COPY (SELECT 1) TO '/tmp/x.csv'"}`, "400", "Permission Error"},
		{`not json`, "400", "bad request body"},
		{`{"sql":"SELECT * FROM samples","max_rows":100000}`, "413", "max payload"},
	}
	for _, tc := range tests {
		m := ask(tc.body)
		if got := m.Header.Get(HeaderStatus); got != tc.status || !strings.Contains(string(m.Data), tc.want) {
			t.Fatalf("%s: status %s body %.200s, want %s containing %q", tc.body, got, m.Data, tc.status, tc.want)
		}
	}
	m := ask(`{"sql":"SELECT ts FROM samples","max_rows":10}`)
	var doc struct {
		Truncated bool
		Rows      [][]any
	}
	if err := json.Unmarshal(m.Data, &doc); err != nil || !doc.Truncated || len(doc.Rows) != 10 || m.Header.Get(query.HeaderTruncated) != "true" {
		t.Fatalf("truncated reply: %v %+v %v", err, doc, m.Header)
	}
}
