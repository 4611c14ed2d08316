package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/federated"
)

// TestFLStatus reads a hub's rounds: the table, and JSON where f1_before
// and f1_after appear only for the round that knows them; the bearer
// token goes with the request.
func TestFLStatus(t *testing.T) {
	f := 0.91
	start := time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC)
	end := start.Add(1500 * time.Millisecond)
	st := federated.Status{Model: "congestion", Version: 2, Interval: "1h0m0s", Rounds: []federated.RoundStatus{
		{Model: "congestion", Round: 1, State: "failed", Result: "too_few_edges", Started: start, Ended: &end, Edges: 2},
		{Model: "congestion", Round: 2, State: "completed", Result: "completed", Started: start, Ended: &end, Edges: 10, Updates: 9,
			Dropped: []string{"lyon"}, Rejected: map[string]int{"shape": 1}, Samples: 1234, UpdateNorm: 0.5, Version: 2, F1Before: &f, F1After: &f},
	}}
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		if r.URL.Path != "/v1/fl/rounds" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	}))
	defer srv.Close()
	t.Setenv("NETFEAT_TOKEN", "s3cret")

	out, err := runCmd(t, "fl", "status", "--server", srv.URL)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	t.Logf("netfeat fl status:\n%s", out)
	for _, want := range []string{"model congestion: global version 2", "completed", "too_few_edges", "lyon", "shape:1", "0.910", "1.5s"} {
		if !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
	if auth != "Bearer s3cret" {
		t.Fatalf("authorization %q", auth)
	}
	// Newest first.
	if strings.Index(out, "completed") > strings.Index(out, "too_few_edges") {
		t.Fatalf("rounds not newest first:\n%s", out)
	}

	out, err = runCmd(t, "fl", "status", "--json", "--server", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Rounds []map[string]any `json:"rounds"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil || len(raw.Rounds) != 2 {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if _, ok := raw.Rounds[0]["f1_before"]; ok {
		t.Fatalf("f1_before of a round without an evaluation: %v", raw.Rounds[0])
	}
	if raw.Rounds[1]["f1_before"] != 0.91 || raw.Rounds[1]["f1_after"] != 0.91 {
		t.Fatalf("f1 fields: %v", raw.Rounds[1])
	}

	if _, err := runCmd(t, "fl", "status", "--server", srv.URL+"/nothing"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("a missing API: %v", err)
	}
}
