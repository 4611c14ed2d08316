package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netfeat/netfeat/fleet"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

// inferenceRuntime starts a runtime with the shipped congestion model.
func inferenceRuntime(t *testing.T, nc *nats.Conn) *inference.Runtime {
	t.Helper()
	cfg := inference.DefaultConfig()
	// Every decision on NATS: TestWatchCmd sends windows until watch,
	// subscribing meanwhile, has seen one.
	cfg.Publish = inference.PublishAll
	cfg.Models = []inference.ModelConfig{{
		Name: "congestion", Kind: inference.KindXGBoost, View: "interface_1m",
		File: "../../models/congestion.json", Action: "reroute",
	}}
	r, err := inference.New(cfg, func() *nats.Conn { return nc }, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	return r
}

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func TestModelsCmd(t *testing.T) {
	r := inferenceRuntime(t, nil)
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()

	out, err := runCmd(t, "models", "list", "--server", srv.URL)
	if err != nil || !strings.Contains(out, "congestion  xgboost  interface_1m  v1") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if out, err = runCmd(t, "models", "upload", "congestion", "../../models/congestion.json", "--version", "v2", "--server", srv.URL); err != nil {
		t.Fatalf("upload: %v\n%s", err, out)
	}
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"shadow", "congestion", "v2"}, "congestion: live v1, shadow v2, previous -"},
		{[]string{"promote", "congestion"}, "congestion: live v2, shadow -, previous v1"},
		{[]string{"rollback", "congestion"}, "congestion: live v1, shadow -, previous -"},
	}
	for _, s := range steps {
		out, err := runCmd(t, append(append([]string{"models"}, s.args...), "--server", srv.URL)...)
		if err != nil || strings.TrimSpace(out) != s.want {
			t.Fatalf("%v: %v\n%q, want %q", s.args, err, out, s.want)
		}
	}
	out, err = runCmd(t, "models", "list", "congestion", "--server", srv.URL)
	if err != nil || !strings.Contains(out, "v1       live") || !strings.Contains(out, "upload") {
		t.Fatalf("list congestion: %v\n%s", err, out)
	}
	if _, err := runCmd(t, "models", "rollback", "congestion", "--server", srv.URL); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("rollback without history: %v", err)
	}
}

func TestWatchCmd(t *testing.T) {
	ns := testkit.StartNATS(t, server.Options{})
	nc := testkit.ConnectNATS(t, ns.ClientURL())
	r := inferenceRuntime(t, nc)

	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := runCmd(t, "watch", "--nats", ns.ClientURL(), "--device", "pe1.lab", "--count", "1", "--utc")
		done <- result{out, err}
	}()
	v := schema.FeatureView{
		Name: "interface_1m", Entity: schema.EntityComponent,
		Metrics:      []string{"interface.in.utilization", "interface.out.utilization", "interface.in.errors_ps", "interface.out.discards_ps"},
		Aggregations: []schema.Aggregation{schema.AggMean, schema.AggMax}, Windows: []time.Duration{time.Minute}, Hop: 10 * time.Second,
	}
	end := time.Now()
	for {
		end = end.Add(v.Hop)
		r.HandleRow(&schema.FeatureRow{
			View: v.Name, Entity: schema.Entity{Device: "pe1.lab", Component: "Gi0/0/0/1"},
			WindowStart: end.Add(-time.Minute).UnixNano(), WindowEnd: end.UnixNano(),
			Names: v.FeatureNames(), Values: []float64{0.1, 0.2, 0.95, 1, 0, 0, 500, 2000}, LastIngestTS: time.Now().UnixNano(),
		})
		select {
		case res := <-done:
			if res.err != nil {
				t.Fatal(res.err)
			}
			// The score is the shipped model's (models/congestion.golden.json).
			if !regexp.MustCompile(`congestion@v1 +pe1\.lab/Gi0/0/0/1 +0\.[5-9]\d{3} +reroute `).MatchString(res.out) {
				t.Fatalf("watch output:\n%s", res.out)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestModelsListFleet: `models list --fleet` prints the hub's model status
// bucket as a table and as JSON.
func TestModelsListFleet(t *testing.T) {
	ns := testkit.StartNATS(t, server.Options{JetStream: true, StoreDir: t.TempDir()})
	nc := testkit.ConnectNATS(t, ns.ClientURL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: fleet.DefaultModelStatusBucket})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, st := range []fleet.ModelStatus{
		{Site: "paris", Model: "congestion", Live: "v2", WantLive: "v2", Updated: at},
		{Site: "lyon", Model: "congestion", Live: "v1", WantLive: "v3", Error: "model object congestion@v3: sha256 mismatch", Updated: at},
		{Site: "berlin", Model: "congestion", Live: "v1", WantLive: "v2", Updated: at},
	} {
		b, _ := json.Marshal(st)
		if _, err := kv.Put(ctx, fleet.ModelStatusKey(st.Site, st.Model), b); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runCmd(t, "models", "list", "--fleet", "--nats", ns.ClientURL())
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "SITE") {
		t.Fatalf("table:\n%s", out)
	}
	for i, want := range []string{
		`^berlin\s+congestion\s+v1\s+-\s+v2\s+-\s+behind\s+2026-12-07 12:00:00\s+-$`,
		`^lyon\s+congestion\s+v1\s+-\s+v3\s+-\s+error\s+2026-12-07 12:00:00\s+model object congestion@v3: sha256 mismatch$`,
		`^paris\s+congestion\s+v2\s+-\s+v2\s+-\s+ok\s+2026-12-07 12:00:00\s+-$`,
	} {
		if !regexp.MustCompile(want).MatchString(lines[i+1]) {
			t.Errorf("row %d: %q does not match %s", i+1, lines[i+1], want)
		}
	}

	out, err = runCmd(t, "models", "list", "--fleet", "--json", "--nats", ns.ClientURL())
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var sts []fleet.ModelStatus
	if err := json.Unmarshal([]byte(out), &sts); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(sts) != 3 || sts[0].Site != "berlin" || sts[1].Error == "" || sts[2].Live != "v2" {
		t.Errorf("--json: %+v", sts)
	}

	if out, err := runCmd(t, "models", "list", "--fleet", "congestion", "--nats", ns.ClientURL()); err == nil {
		t.Errorf("--fleet with a MODEL argument succeeded: %s", out)
	}
}
