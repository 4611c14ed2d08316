package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/learning"
	"github.com/netfeat/netfeat/schema"
)

const learningTestConfig = `
data_dir: %s
shutdown_timeout: 5s
http:
  listen: 127.0.0.1:0
  token_env: %s
nats:
  listen: 127.0.0.1:0
views:
  - name: traffic
    entity: component
    metrics: [interface.in.bps]
    aggregations: [mean]
    windows: [1s]
    hop: 1s
    allowed_lateness: 0s
inference:
  models:
    - name: busy
      kind: logistic
      view: traffic
      file: %s
learning:
  enabled: true
  on_drift: true
  min_samples: 50
  drift:
    window: 4
    every: 1
`

// trainBusy trains a logistic model of "interface_in_bps__mean_1s > 150"
// on values spread over 0–1000, and writes its file.
func trainBusy(t *testing.T) string {
	t.Helper()
	ds := &learning.Dataset{Names: []string{"interface_in_bps__mean_1s"}}
	for i := range 1000 {
		y := 0.0
		if i > 150 {
			y = 1
		}
		if err := ds.Add([]float64{float64(i)}, y); err != nil {
			t.Fatal(err)
		}
	}
	m, err := learning.Train(ds, learning.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "busy.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLearningService runs a logistic model in the service: its inputs
// (100–203 bps, far from the 0–1000 it was trained on) drift, the drift
// table and metric show it, feedback on its action is accepted and the
// retraining loop answers.
func TestLearningService(t *testing.T) {
	env := "NETFEAT_TEST_TOKEN_LEARNING"
	t.Setenv(env, testToken)
	cfg, err := ParseConfig("learning.yaml", fmt.Appendf(nil, learningTestConfig, t.TempDir(), env, trainBusy(t)))
	if err != nil {
		t.Fatal(err)
	}
	svc := startService(t, cfg)
	base := time.Now().Truncate(time.Second).Add(-10 * time.Second)
	var batch []schema.Sample
	for s := range 6 {
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
	rt := svc.Inference()
	testkit.Eventually(t, "drift evaluated", func() bool { return len(rt.Drift()) > 0 })
	code, body := postQuery(t, svc, testToken, `{"sql": "SELECT model, model_version, feature, max(psi) AS psi, bool_or(drifting) AS drifting FROM drift GROUP BY ALL"}`)
	var rep queryReply
	if err := json.Unmarshal([]byte(body), &rep); code != 200 || err != nil || len(rep.Rows) != 1 {
		t.Fatalf("drift table: HTTP %d %s", code, body)
	}
	if r := rep.Rows[0]; r[0] != "busy" || r[1] != "v1" || r[2] != "interface_in_bps__mean_1s" || r[3].(float64) <= 0.2 || r[4] != true {
		t.Fatalf("drift row %v", r)
	}
	metrics := getLearning(t, svc, "/metrics", "")
	if !strings.Contains(metrics, `netfeat_model_feature_psi{feature="interface_in_bps__mean_1s",model="busy",version="v1"}`) {
		t.Fatal("no netfeat_model_feature_psi series")
	}
	// The drift decision, and the retraining it triggered (too few labels).
	testkit.Eventually(t, "a drift decision", func() bool {
		ds, _ := rt.RecentDecisions(0)
		for _, d := range ds {
			if d.Action == inference.ActionDrift && d.State == schema.StateFiring {
				return true
			}
		}
		return false
	})
	testkit.Eventually(t, "a drift-triggered run", func() bool {
		return strings.Contains(getLearning(t, svc, "/v1/learning/runs", testToken), `"trigger":"drift","result":"too_few"`)
	})
	// Feedback on eth1's firing action.
	var fp string
	testkit.Eventually(t, "eth1 fires", func() bool {
		for _, a := range rt.Actions() {
			if a.Entity.Component == "eth1" && a.State == schema.StateFiring {
				fp = a.Fingerprint
				return true
			}
		}
		return false
	})
	if code, b := postLearning(t, svc, "/v1/actions/"+fp+"/feedback", testToken, `{"label":"true_positive"}`); code != 201 {
		t.Fatalf("feedback: HTTP %d %s", code, b)
	}
	if code, _ := postLearning(t, svc, "/v1/actions/"+fp+"/feedback", "", `{"label":"true_positive"}`); code != 401 {
		t.Fatalf("feedback without a token: HTTP %d", code)
	}
	if code, b := postLearning(t, svc, "/v1/learning/retrain/busy", testToken, ""); code != 200 || !strings.Contains(b, `"result":"too_few"`) {
		t.Fatalf("retrain: HTTP %d %s", code, b)
	}
	if code, _ := postLearning(t, svc, "/v1/learning/retrain/nope", testToken, ""); code != 404 {
		t.Fatalf("retrain of an unknown model: HTTP %d", code)
	}
}

func TestLearningConfigChecks(t *testing.T) {
	for _, tc := range []struct {
		name, learning, want string
	}{
		{"not logistic", "learning: {models: [rule_m]}", `learning.models[0]: "rule_m" is not a model`},
		{"enabled without model", "learning: {enabled: true, on_drift: true}", "learning.enabled: no model to retrain"},
		{"bad threshold", "learning: {drift: {psi_threshold: -1}}", "learning.drift.psi_threshold"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := fmt.Sprintf("data_dir: %s\n%s\n", t.TempDir(), tc.learning)
			_, err := ParseConfig("x.yaml", []byte(y))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func getLearning(t *testing.T, svc *Service, path, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+svc.HTTP().Addr()+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func postLearning(t *testing.T, svc *Service, path, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+svc.HTTP().Addr()+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRetrainFromFeedback closes the loop on a real runtime: a logistic
// model calls 200 and 300 bps busy; an operator confirms the action on
// the 300 bps interface and refutes the one on the 200 bps interface; the
// loop trains on the labelled windows, the candidate beats the live
// version on the held-out ones and is promoted.
func TestRetrainFromFeedback(t *testing.T) {
	ctx := context.Background()
	icfg := inference.DefaultConfig()
	icfg.Models = []inference.ModelConfig{{Name: "busy", Kind: inference.KindLogistic, View: "traffic", File: trainBusy(t)}}
	rt, err := inference.New(icfg, nil, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	names := []string{"interface_in_bps__mean_1s"}
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 10 {
		for _, e := range []struct {
			ifc string
			v   float64
		}{{"eth0", 300}, {"eth1", 200}} {
			at := end.Add(time.Duration(i) * time.Second)
			rt.HandleRow(&schema.FeatureRow{
				View: "traffic", Entity: schema.Entity{Device: "r1", Component: e.ifc},
				WindowStart: at.Add(-time.Second).UnixNano(), WindowEnd: at.UnixNano(),
				Names: names, Values: []float64{e.v + float64(i)},
			})
		}
	}
	testkit.Eventually(t, "20 decisions", func() bool { ds, _ := rt.RecentDecisions(0); return len(ds) == 20 })
	for _, a := range rt.Actions() {
		label := inference.LabelFalsePositive
		if a.Entity.Component == "eth0" {
			label = inference.LabelTruePositive
		}
		if a.State != schema.StateFiring {
			t.Fatalf("action %+v not firing", a)
		}
		if _, err := rt.AddFeedback(ctx, a.Fingerprint, label, ""); err != nil {
			t.Fatal(err)
		}
	}
	lcfg := learning.DefaultConfig()
	lcfg.Enabled, lcfg.OnDrift, lcfg.AutoPromote, lcfg.MinSamples = true, true, true, 10
	reg := runtimeRegistry{rt}
	loop, err := learning.NewLoop(lcfg, []string{"busy"}, reg, reg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	run := loop.Retrain(ctx, "busy", learning.TriggerManual)
	if run.Result != learning.ResultPromoted || run.Rows != 20 || run.Verdict.Candidate.F1 != 1 || run.Verdict.Live.F1 >= 1 {
		b, _ := json.Marshal(run)
		t.Fatalf("run: %s", b)
	}
	t.Log(run.Verdict.Reason)
	mi, err := rt.Model(ctx, "busy")
	if err != nil || mi.Live != run.Version || mi.Versions[len(mi.Versions)-1].Source != "retrained" {
		t.Fatalf("registry after the run: %+v, %v", mi, err)
	}
	score, err := rt.VersionScorer(ctx, "busy", mi.Live, names)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		v    float64
		busy bool
	}{{305, true}, {205, false}} {
		if s, err := score([]float64{tc.v}); err != nil || (s >= 0.5) != tc.busy {
			t.Errorf("retrained model at %v bps: %v, %v", tc.v, s, err)
		}
	}
}

// stubGate passes every candidate.
type stubGate struct{}

func (stubGate) Evaluate(context.Context, learning.Candidate) (learning.Verdict, error) {
	return learning.Verdict{Pass: true, Reason: "stub"}, nil
}

// TestLearningGateAdded: with learning.gate.twin the service does not
// start until a gate is added (netfeat serve adds the twin's); without the
// loop there is nothing to add a gate to.
func TestLearningGateAdded(t *testing.T) {
	env := "NETFEAT_TEST_TOKEN_LEARNING_GATE"
	t.Setenv(env, testToken)
	model := trainBusy(t)
	twinCfg := fmt.Sprintf(learningTestConfig, t.TempDir(), env, model) + "  gate:\n    twin:\n      scenarios: " + t.TempDir() + "\n"
	cfg, err := ParseConfig("learning.yaml", []byte(twinCfg))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(cfg, NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "learning.gate.twin") {
		t.Fatalf("start without the twin gate: %v", err)
	}
	svc, err = New(cfg, NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SetLearningGate(stubGate{}); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatalf("start with the gate: %v", err)
	}
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	off, err := ParseConfig("off.yaml", []byte(strings.Replace(twinCfg, "enabled: true", "enabled: false", 1)))
	if err != nil {
		t.Fatal(err)
	}
	svc, err = New(off, NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SetLearningGate(stubGate{}); err == nil || !strings.Contains(err.Error(), "learning.enabled") {
		t.Fatalf("a gate without the loop: %v", err)
	}
}
