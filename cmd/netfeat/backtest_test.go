package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/models"
)

// eagerModel is the congestion model with a base score that makes it fire
// on every interface: a candidate worse than the shipped one.
func eagerModel(t *testing.T) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(models.Congestion, &m); err != nil {
		t.Fatal(err)
	}
	m["learner"].(map[string]any)["learner_model_param"].(map[string]any)["base_score"] = "0.9999"
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "eager.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBacktestAndGate backtests a worse candidate against the live version
// of a registry, which records both results, and checks that promote
// refuses the candidate on the server's gate metric (f1, as the service
// configures it by default) unless forced.
func TestBacktestAndGate(t *testing.T) {
	r := inferenceRuntime(t, nil)
	r.SetGateMetric("f1")
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	if out, err := runCmd(t, "models", "upload", "congestion", eagerModel(t), "--version", "v2", "--server", srv.URL); err != nil {
		t.Fatalf("upload: %v\n%s", err, out)
	}
	out, err := runCmd(t, "backtest", "--model", "congestion@v2", "--against", "congestion@v1", "--twin", "--kind", "congestion",
		"--speed", "0", "--json", "--server", srv.URL)
	if err != nil {
		t.Fatalf("backtest: %v\n%s", err, out)
	}
	var rep struct {
		Results []struct {
			Model, Version        string
			Precision, Recall, F1 float64
			FalseActionsPerHour   float64 `json:"false_actions_per_hour"`
			Kinds                 map[string]struct{ Episodes, Detected int }
		}
		Episodes []struct{ Kind, Device, Component string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Results) != 2 || rep.Results[0].Version != "v2" || rep.Results[1].Version != "v1" {
		t.Fatalf("results %+v", rep.Results)
	}
	cand, live := rep.Results[0], rep.Results[1]
	if live.Recall != 1 || live.F1 <= cand.F1 || cand.FalseActionsPerHour <= live.FalseActionsPerHour {
		t.Fatalf("v1 should detect the congestion and beat v2: v1 %+v, v2 %+v", live, cand)
	}
	if len(rep.Episodes) != 3 || live.Kinds["congestion"].Episodes != 1 {
		t.Fatalf("episodes %+v, kinds %+v", rep.Episodes, live.Kinds)
	}
	mi, err := r.Model(context.Background(), "congestion")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range mi.Versions {
		if v.Backtest == nil || v.Backtest.Metrics["f1"] != map[string]float64{"v1": live.F1, "v2": cand.F1}[v.Version] {
			t.Fatalf("version %s: backtest %+v not recorded", v.Version, v.Backtest)
		}
	}
	out, err = runCmd(t, "models", "promote", "congestion", "v2", "--server", srv.URL)
	if err == nil || !strings.Contains(err.Error(), "promotion gate refused") {
		t.Fatalf("promote of a worse version: %v\n%s", err, out)
	}
	if out, err = runCmd(t, "models", "promote", "congestion", "v2", "--gate-metric", "recall", "--server", srv.URL); err == nil {
		t.Fatalf("promote on recall: accepted\n%s", out)
	}
	out, err = runCmd(t, "models", "promote", "congestion", "v2", "--force", "--server", srv.URL)
	if err != nil || strings.TrimSpace(out) != "congestion: live v2, shadow -, previous v1" {
		t.Fatalf("forced promote: %v\n%s", err, out)
	}
}

func TestBacktestBadInput(t *testing.T) {
	noIncidents := t.TempDir()
	for _, d := range demoDevices {
		if err := os.WriteFile(filepath.Join(noIncidents, d.target+".yaml"), []byte("baseline: {utilization: 0.25}\nevents: []\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	nonEmpty := t.TempDir()
	if err := os.WriteFile(filepath.Join(nonEmpty, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"backtest", "--model", "congestion@builtin:congestion", "--scenarios", noIncidents, "--duration", "30s", "--speed", "0"},
			"has no labels"},
		{[]string{"twin", "--scenarios", noIncidents, "--duration", "30s", "--speed", "0"}, "has no labels"},
		{[]string{"backtest", "--model", "congestion"}, "want NAME@VERSION"},
		{[]string{"backtest", "--model", "congestion@builtin:congestion", "--against", "other@v1"}, "another model"},
		{[]string{"backtest", "--model", "nosuch@builtin:congestion", "--speed", "0", "--duration", "30s"}, `has no model "nosuch"`},
		{[]string{"twin", "--out", nonEmpty}, "not empty"},
		{[]string{"twin", "--duration", "0s"}, "--duration must be positive"},
	}
	for _, tc := range tests {
		out, err := runCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q\n%s", tc.args, err, tc.want, out)
		}
	}
}

// writeExport writes an export CSV of the congestion model's view over 10
// minutes: r/hot congested (98 % out, 1000 discards/s) from 3:00 to 6:00
// and labelled so, r/calm at 25 %; label says whether the label column
// is there.
func writeExport(t *testing.T, label bool) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("ts,device,component,")
	if label {
		b.WriteString("congested,")
	}
	b.WriteString("interface_1m__window_end")
	feats := []string{"interface_in_utilization__mean_1m", "interface_in_utilization__max_1m", "interface_out_utilization__mean_1m",
		"interface_out_utilization__max_1m", "interface_in_errors_ps__mean_1m", "interface_in_errors_ps__max_1m",
		"interface_out_discards_ps__mean_1m", "interface_out_discards_ps__max_1m"}
	for _, f := range feats {
		b.WriteString(",interface_1m__" + f)
	}
	b.WriteString("\n")
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for s := 0; s < 600; s += 5 {
		ts := t0.Add(time.Duration(s) * time.Second).Format(time.RFC3339)
		for _, ent := range []string{"hot", "calm"} {
			util, disc, lab := 0.25, 0.0, "0"
			if ent == "hot" && s >= 180 && s < 360 {
				util, disc, lab = 0.98, 1000, "1"
			}
			fmt.Fprintf(&b, "%s,r,%s,", ts, ent)
			if label {
				b.WriteString(lab + ",")
			}
			fmt.Fprintf(&b, "%s,%g,%g,%g,%g,0,0,%g,%g\n", ts, util, util, util, util, disc, disc)
		}
	}
	path := filepath.Join(t.TempDir(), "export.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBacktestFromExport(t *testing.T) {
	out, err := runCmd(t, "backtest", "--model", "congestion@builtin:congestion", "--against", "congestion@file:"+eagerModel(t),
		"--from", writeExport(t, true), "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var rep struct {
		Results []struct {
			Version      string
			Recall, F1   float64
			FalseActions int `json:"false_actions"`
			Kinds        map[string]struct{ Detected int }
		}
		Episodes []struct{ Kind, Component string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(rep.Episodes) != 1 || rep.Episodes[0].Kind != "congested" || rep.Episodes[0].Component != "hot" {
		t.Fatalf("episodes %+v", rep.Episodes)
	}
	shipped, eager := rep.Results[0], rep.Results[1]
	if shipped.Recall != 1 || shipped.FalseActions != 0 || eager.FalseActions == 0 || eager.F1 >= shipped.F1 {
		t.Fatalf("shipped %+v, eager %+v", shipped, eager)
	}
	_, err = runCmd(t, "backtest", "--model", "congestion@builtin:congestion", "--from", writeExport(t, false))
	if err == nil || !strings.Contains(err.Error(), "has no labels") {
		t.Fatalf("export without labels: %v", err)
	}
	// netfeat twin --from scores every model and rule on the export.
	out, err = runCmd(t, "twin", "--from", writeExport(t, true))
	if err != nil || !regexp.MustCompile(`(?m)^\s+congestion\s+1\s+1\s+0\s`).MatchString(out) {
		t.Fatalf("twin --from: %v\n%s", err, out)
	}
	if _, err = runCmd(t, "twin", "--from", writeExport(t, false)); err == nil || !strings.Contains(err.Error(), "has no labels") {
		t.Fatalf("twin --from without labels: %v", err)
	}
	_, err = runCmd(t, "backtest", "--model", "congestion@builtin:congestion", "--from", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "store directory is not implemented") {
		t.Fatalf("store directory: %v", err)
	}
}
