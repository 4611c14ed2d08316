package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/internal/fleettest"
	"github.com/netfeat/netfeat/models"
)

const rolloutModel = "congestion"

// newRolloutRuntime starts an inference runtime with the shipped
// congestion model (its v1) in a directory of its own.
func newRolloutRuntime(t *testing.T) *inference.Runtime {
	t.Helper()
	cfg := inference.DefaultConfig()
	cfg.DecisionRetention = 0
	cfg.Models = []inference.ModelConfig{{
		Name: rolloutModel, Kind: inference.KindXGBoost, View: "interface_1m",
		File: inference.BuiltinPrefix + "congestion", Action: "reroute",
	}}
	r, err := inference.New(cfg, nil, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("stop runtime: %v", err)
		}
	})
	return r
}

// modelVariant returns the shipped congestion model cut to its first n
// trees: a different, valid model file.
func modelVariant(t *testing.T, n int) []byte {
	t.Helper()
	b, ok := models.Builtin("congestion")
	if !ok {
		t.Fatal("no builtin congestion model")
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	gb := m["learner"].(map[string]any)["gradient_booster"].(map[string]any)["model"].(map[string]any)
	gb["trees"] = gb["trees"].([]any)[:n]
	gb["tree_info"] = gb["tree_info"].([]any)[:n]
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rolloutWorld is a hub cluster with a registry and its publisher, and one
// edge behind a Link with a registry and its follower.
type rolloutWorld struct {
	cluster   *fleettest.Cluster
	link      *fleettest.Link
	es        *fleettest.EdgeServer
	hubRT     *inference.Runtime
	edgeRT    *inference.Runtime
	follower  *ModelFollower
	edgeReg   *prometheus.Registry
	hubJS     jetstream.JetStream
	site      string
	rolloutCf ModelRolloutConfig
}

func newRolloutWorld(t *testing.T, cfg ModelRolloutConfig) *rolloutWorld {
	t.Helper()
	w := &rolloutWorld{site: "lyon", rolloutCf: cfg}
	w.cluster = fleettest.StartCluster(t, 3)
	hubNC := w.cluster.Connect(t)
	js, err := jetstream.New(hubNC)
	if err != nil {
		t.Fatal(err)
	}
	w.hubJS = js
	w.hubRT = newRolloutRuntime(t)
	pub, err := NewModelPublisher(cfg, hubNC, w.hubRT, prometheus.NewRegistry(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := pub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Stop(context.Background()) })

	w.link = fleettest.NewLink(t, w.cluster.LeafAddrs())
	w.es = fleettest.StartEdge(t, w.site, t.TempDir(), w.link.URL())
	w.edgeRT = newRolloutRuntime(t)
	w.edgeReg = prometheus.NewRegistry()
	f, err := NewModelFollower(cfg, w.site, w.es.Connect(t), w.edgeRT, w.edgeReg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Stop(context.Background()) })
	w.follower = f
	// The hub publishes its v1 at start; the edge, which has the same v1,
	// reports it.
	w.waitStatus(t, "the edge's first status", func(st ModelStatus) bool { return st.Live == "v1" && st.Error == "" })
	return w
}

// edgeModel returns the edge registry's state of the model.
func (w *rolloutWorld) edgeModel(t *testing.T) inference.ModelInfo {
	t.Helper()
	mi, err := w.edgeRT.Model(context.Background(), rolloutModel)
	if err != nil {
		t.Fatal(err)
	}
	return mi
}

// hubStatus reads the edge's status of the model from the hub's bucket.
func (w *rolloutWorld) hubStatus(t *testing.T) (ModelStatus, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sts, err := ReadModelStatus(ctx, w.hubJS, "")
	if err != nil {
		return ModelStatus{}, false
	}
	for _, st := range sts {
		if st.Site == w.site && st.Model == rolloutModel {
			return st, true
		}
	}
	return ModelStatus{}, false
}

// waitStatus waits until the hub's status bucket holds a status of the
// edge that cond accepts.
func (w *rolloutWorld) waitStatus(t *testing.T, what string, cond func(ModelStatus) bool) ModelStatus {
	t.Helper()
	var last ModelStatus
	waitFor(t, 20*time.Second, what+" in the hub's status bucket", func() bool {
		st, ok := w.hubStatus(t)
		last = st
		return ok && cond(st)
	})
	return last
}

// hubPut stores artifact as version on the hub's registry.
func (w *rolloutWorld) hubPut(t *testing.T, version string, artifact []byte) {
	t.Helper()
	if _, err := w.hubRT.AddVersion(context.Background(), rolloutModel, version, artifact); err != nil {
		t.Fatalf("hub upload %s: %v", version, err)
	}
}

// rolloutCutFor is how long TestModelRollout cuts the link.
var rolloutCutFor = 12 * time.Second

// TestModelRollout: a version uploaded and promoted on the hub runs live on
// the edge and the hub's status bucket says so; a shadow version runs in
// shadow; a version promoted while the link is cut reaches the edge when it
// returns, and the edge keeps its model meanwhile; so does a follower
// started during a cut.
func TestModelRollout(t *testing.T) {
	t.Parallel()
	// A resync longer than the test: catching up after the cut is the
	// watch's doing.
	w := newRolloutWorld(t, ModelRolloutConfig{Resync: 5 * time.Minute, RetryDelay: 200 * time.Millisecond})
	ctx := context.Background()

	v2 := modelVariant(t, 5)
	w.hubPut(t, "v2", v2)
	if err := w.hubRT.Promote(ctx, rolloutModel, "v2"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 10*time.Second, "v2 live on the edge", func() bool { return w.edgeModel(t).Live == "v2" })
	t.Logf("v2 live on the edge %v after the promote", time.Since(start).Round(time.Millisecond))
	w.waitStatus(t, "live v2", func(st ModelStatus) bool { return st.Live == "v2" && st.WantLive == "v2" && st.Error == "" })
	mi := w.edgeModel(t)
	for _, vi := range mi.Versions {
		if vi.Version == "v2" && (vi.SHA256 != sha256Hex(v2) || vi.Source != "hub") {
			t.Errorf("edge v2: sha256 %s source %q, want %s from the hub", vi.SHA256, vi.Source, sha256Hex(v2))
		}
	}

	w.hubPut(t, "v3", modelVariant(t, 3))
	if err := w.hubRT.SetShadow(ctx, rolloutModel, "v3"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "v3 in shadow on the edge", func() bool {
		mi := w.edgeModel(t)
		return mi.Live == "v2" && mi.Shadow == "v3"
	})
	w.waitStatus(t, "shadow v3", func(st ModelStatus) bool { return st.Shadow == "v3" && st.Live == "v2" })

	// The cut: the hub promotes v4; the edge keeps v2 live and v3 in shadow.
	w.link.Cut()
	waitFor(t, 10*time.Second, "the leaf connection to drop", func() bool { return !w.es.LeafConnected() })
	w.hubPut(t, "v4", modelVariant(t, 7))
	if err := w.hubRT.Promote(ctx, rolloutModel, "v4"); err != nil {
		t.Fatal(err)
	}
	// The publisher writes the policy on the hub side of the cut.
	waitFor(t, 10*time.Second, "the policy of v4 on the hub", func() bool {
		kv, err := w.hubJS.KeyValue(ctx, DefaultModelPolicyBucket)
		if err != nil {
			return false
		}
		e, err := kv.Get(ctx, rolloutModel)
		return err == nil && bytes.Contains(e.Value(), []byte(`"live":"v4"`))
	})
	// Longer than the watch's heartbeats (an ordered consumer's, 5 s) may
	// be missed: the edge's watch notices the cut and cannot set itself up
	// again until the link returns.
	time.Sleep(rolloutCutFor)
	if mi := w.edgeModel(t); mi.Live != "v2" || mi.Shadow != "v3" {
		t.Fatalf("edge during the cut: live %s shadow %s, want v2 and v3", mi.Live, mi.Shadow)
	}
	w.link.Restore()
	start = time.Now()
	// Within 5 s: the follower opens its watch again as soon as the hub
	// answers (~0.3 s here); waiting for JetStream to reset the watch's
	// ordered consumer would take ~8 s.
	waitFor(t, 5*time.Second, "v4 live on the edge after the cut", func() bool { return w.edgeModel(t).Live == "v4" })
	t.Logf("v4 live on the edge %v after the link returned", time.Since(start).Round(time.Millisecond))
	w.waitStatus(t, "live v4", func(st ModelStatus) bool { return st.Live == "v4" && st.Error == "" })
	if got := testutil.ToFloat64(w.follower.m.installed); got != 3 {
		t.Errorf("versions installed: %v, want 3 (v2, v3, v4)", got)
	}

	// A follower that starts while the link is cut (an edge restarted
	// during a cut) keeps the registry as it is and catches up later.
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.follower.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	w.link.Cut()
	waitFor(t, 10*time.Second, "the leaf connection to drop", func() bool { return !w.es.LeafConnected() })
	w.hubPut(t, "v5", modelVariant(t, 9))
	if err := w.hubRT.Promote(ctx, rolloutModel, "v5"); err != nil {
		t.Fatal(err)
	}
	f, err := NewModelFollower(w.rolloutCf, w.site, w.es.Connect(t), w.edgeRT, prometheus.NewRegistry(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Stop(context.Background()) })
	waitFor(t, 10*time.Second, "the new follower to fail to reach the hub", func() bool { return testutil.ToFloat64(f.m.errors) > 0 })
	if mi := w.edgeModel(t); mi.Live != "v4" {
		t.Fatalf("edge with the link cut: live %s, want v4", mi.Live)
	}
	w.link.Restore()
	waitFor(t, 20*time.Second, "v5 live on the edge", func() bool { return w.edgeModel(t).Live == "v5" })
	w.waitStatus(t, "live v5", func(st ModelStatus) bool { return st.Live == "v5" && st.Error == "" })
}

// TestModelRolloutRefused: a published object whose bytes do not have the
// policy's SHA-256, one larger than max_model_bytes, and one that does not
// load are refused and counted; the edge keeps its live version, and the
// status says why. A good version afterwards goes live.
func TestModelRolloutRefused(t *testing.T) {
	t.Parallel()
	good := modelVariant(t, 5)
	w := newRolloutWorld(t, ModelRolloutConfig{MaxModelBytes: int64(2 * len(good)), RetryDelay: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	objs, err := w.hubJS.ObjectStore(ctx, DefaultModelBucket)
	if err != nil {
		t.Fatal(err)
	}
	policy, err := w.hubJS.KeyValue(ctx, DefaultModelPolicyBucket)
	if err != nil {
		t.Fatal(err)
	}
	// publish puts an object and a policy that makes it live, as a hub
	// with a damaged store or a hostile writer would.
	publish := func(version string, object []byte, sum string) {
		t.Helper()
		if _, err := objs.PutBytes(ctx, ModelObjectName(rolloutModel, version), object); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(ModelPolicy{Model: rolloutModel, Kind: string(inference.KindXGBoost), Live: version, LiveSHA256: sum, Updated: time.Now()})
		if _, err := policy.Put(ctx, rolloutModel, b); err != nil {
			t.Fatal(err)
		}
	}
	refused := func(reason string) float64 { return testutil.ToFloat64(w.follower.m.refused.WithLabelValues(reason)) }
	cases := []struct {
		version, reason, errHas string
		object                  []byte
		sum                     string
	}{
		{"v7", RefusedChecksum, "sha256", modelVariant(t, 3), sha256Hex(good)},
		{"v8", RefusedOversize, "max_model_bytes", bytes.Repeat([]byte{' '}, 3*len(good)), sha256Hex(good)},
		{"v9", RefusedInvalid, "does not load", []byte(`{"learner": 1}`), sha256Hex([]byte(`{"learner": 1}`))},
	}
	for _, c := range cases {
		publish(c.version, c.object, c.sum)
		waitFor(t, 10*time.Second, c.reason+" refusal counted", func() bool { return refused(c.reason) == 1 })
		st := w.waitStatus(t, "the error of "+c.version, func(st ModelStatus) bool { return st.WantLive == c.version })
		if st.Live != "v1" || !strings.Contains(st.Error, c.errHas) {
			t.Errorf("%s: status live %s error %q, want v1 and an error with %q", c.version, st.Live, st.Error, c.errHas)
		}
		if mi := w.edgeModel(t); mi.Live != "v1" || hasVersion(mi, c.version) {
			t.Errorf("%s: edge live %s, has it: %v; want v1 and not", c.version, mi.Live, hasVersion(mi, c.version))
		}
	}
	// A refused policy is not tried again: the counters stay.
	for _, c := range cases {
		if got := refused(c.reason); got != 1 {
			t.Errorf("%s refusals: %v, want 1", c.reason, got)
		}
	}
	publish("v10", good, sha256Hex(good))
	waitFor(t, 10*time.Second, "v10 live on the edge", func() bool { return w.edgeModel(t).Live == "v10" })
	w.waitStatus(t, "live v10 without error", func(st ModelStatus) bool { return st.Live == "v10" && st.Error == "" })
}

func hasVersion(mi inference.ModelInfo, v string) bool {
	for _, vi := range mi.Versions {
		if vi.Version == v {
			return true
		}
	}
	return false
}
