package service

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/federated"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

// flEdge is one edge of TestFederatedEdges.
type flEdge struct {
	site     string
	install  string
	feedback bool // operators judged its actions
	svc      *Service
	logs     *testkit.SyncBuffer
}

// TestFederatedEdges runs federated learning between running edges: a
// hub's NATS server with a coordinator, and four edge services, each with
// its embedded server a leaf node of the hub's (on 127.0.0.1). On three
// edges the model busy calls 300 bps and 200 bps busy and an operator
// confirms the first action and refutes the second (20 labelled windows
// each); the fourth has no feedback. A round: the three train on their
// own labelled windows, the fourth sits it out (too few rows, counted),
// the round completes with the three; every edge, the fourth too, installs
// the global as version fl-<round> of its model fl (shadow, or live where
// federated.install says so), and inference scores new windows with it.
// A global that cannot be installed is counted and leaves the version in
// place.
func TestFederatedEdges(t *testing.T) {
	hubOpts := &server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: -1}}
	hubSrv, err := server.NewServer(hubOpts)
	if err != nil {
		t.Fatal(err)
	}
	hubSrv.Start()
	t.Cleanup(func() { hubSrv.Shutdown(); hubSrv.WaitForShutdown() })
	if !hubSrv.ReadyForConnections(10 * time.Second) {
		t.Fatal("hub server not ready")
	}
	leafURL := fmt.Sprintf("nats-leaf://127.0.0.1:%d", hubOpts.LeafNode.Port)
	busy, start := trainBusy(t), flStartFile(t)
	const fed = "federated: {model: fl, dim: 2, labels: busy, min_rows: 10, min_edges: 3, expect: 3, deadline: 5s, interval: 1h," +
		" install: %s, train: {epochs: 50}, features: [{name: " + flFeature + ", log1p: true, center: 5.5, scale: 0.2}]}\n"

	edges := []*flEdge{
		{site: "paris", install: FederatedShadow, feedback: true},
		{site: "lyon", install: FederatedShadow, feedback: true},
		{site: "nice", install: FederatedLive, feedback: true},
		{site: "brest", install: FederatedShadow},
	}
	for _, e := range edges {
		y := fmt.Sprintf(flEdgeConfig, e.site, t.TempDir(), leafURL, busy, start) + fmt.Sprintf(fed, e.install)
		cfg, err := ParseConfig(e.site+".yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		e.logs = &testkit.SyncBuffer{}
		e.svc = startServiceLog(t, cfg, slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	defer func() {
		if t.Failed() {
			for _, e := range edges {
				t.Logf("%s:\n%s", e.site, e.logs.String())
			}
		}
	}()
	for _, e := range edges {
		testkit.EventuallyWithin(t, 15*time.Second, e.site+"'s leaf connection", func() bool {
			return e.svc.NATS().Server().NumLeafNodes() > 0
		})
	}

	// Labels: busy fires on both interfaces; operators judge three edges'.
	names := []string{flFeature}
	end := time.Now().Truncate(time.Second).Add(-time.Minute)
	window := func(rt *inference.Runtime, ifc string, at time.Time, v float64) {
		rt.HandleRow(&schema.FeatureRow{
			View: "traffic", Entity: schema.Entity{Device: "r1", Component: ifc},
			WindowStart: at.Add(-time.Second).UnixNano(), WindowEnd: at.UnixNano(),
			Names: names, Values: []float64{v},
		})
	}
	ctx := context.Background()
	for _, e := range edges {
		rt := e.svc.Inference()
		for i := range 10 {
			window(rt, "eth0", end.Add(time.Duration(i)*time.Second), 300+float64(i))
			window(rt, "eth1", end.Add(time.Duration(i)*time.Second), 200+float64(i))
		}
		testkit.Eventually(t, e.site+": busy's 20 decisions", func() bool {
			n := 0
			ds, _ := rt.RecentDecisions(0)
			for _, d := range ds {
				if d.Model == "busy" {
					n++
				}
			}
			return n == 20
		})
		if !e.feedback {
			continue
		}
		for _, a := range rt.Actions() {
			if a.Model != "busy" {
				continue
			}
			label := inference.LabelFalsePositive
			if a.Entity.Component == "eth0" {
				label = inference.LabelTruePositive
			}
			if _, err := rt.AddFeedback(ctx, a.Fingerprint, label, ""); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The hub's coordinator: the same rounds' settings as the edges'.
	hubNC, err := nats.Connect(hubSrv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer hubNC.Close()
	fc := edges[0].svc.cfg.Federated.Config
	coord, err := federated.NewCoordinator(fc, hubNC, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := coord.Subscribe(); err != nil {
		t.Fatal(err)
	}
	// The edges' subscriptions reach the hub's server over their leaf
	// connections shortly after they start: wait for all four edges'
	// interest in the round's start and global.
	for _, subj := range []string{"netfeat-fl.fl.1.start", "netfeat-fl.fl.1.global"} {
		testkit.EventuallyWithin(t, 15*time.Second, "the four edges' interest in "+subj, func() bool {
			return hubSrv.GlobalAccount().Interest(subj) >= len(edges)
		})
	}
	st := coord.RunRound(ctx)
	if st.Result != "completed" || st.Edges != 3 || st.Updates != 3 || st.Samples != 60 || len(st.Dropped) != 0 {
		t.Fatalf("round: %+v", st)
	}
	global, gv := coord.Global()
	if gv != st.Version || !(global[0] > 0) {
		t.Fatalf("global %v version %d: want a positive weight on the busy feature", global, gv)
	}
	version := FederatedVersion(st.Version)
	t.Logf("round %d: %d edges, %d samples, global %v", st.Round, st.Updates, st.Samples, global)

	// The fourth edge sat the round out, and said why.
	brest := edges[3]
	if got := testutil.ToFloat64(brest.svc.flEdge.skips.WithLabelValues("too_few")); got < 1 {
		t.Errorf("brest: netfeat_fl_edge_skips_total{reason=too_few} = %v", got)
	}
	if !strings.Contains(brest.logs.String(), "0 windows of model busy labelled by feedback, federated.min_rows is 10") {
		t.Errorf("brest: no log of why it sat the round out")
	}
	for _, e := range edges[:3] {
		if got := testutil.ToFloat64(e.svc.flEdge.rows); got != 20 {
			t.Errorf("%s: labelled rows %v, want 20", e.site, got)
		}
	}

	// Every edge installs the global, as its configuration says, and
	// inference scores new windows with it.
	at := end.Add(time.Minute)
	for _, e := range edges {
		rt := e.svc.Inference()
		testkit.Eventually(t, e.site+" installs "+version, func() bool {
			mi, err := rt.Model(ctx, "fl")
			if err != nil {
				return false
			}
			if e.install == FederatedLive {
				return mi.Live == version
			}
			return mi.Shadow == version && mi.Live == "v1"
		})
		window(rt, "eth0", at, 310)
		window(rt, "eth1", at, 210)
		var scores = map[string]float64{}
		testkit.Eventually(t, e.site+": decisions of "+version, func() bool {
			ds, shadow := rt.RecentDecisions(0)
			for i, d := range ds {
				if d.Model == "fl" && d.ModelVersion == version && d.Window.End.Equal(at) && shadow[i] == (e.install == FederatedShadow) {
					scores[d.Entity.Component] = d.Score
				}
			}
			return len(scores) == 2
		})
		// The score is the global weights' on the window, through the
		// feature space's log1p.
		for ifc, v := range map[string]float64{"eth0": 310, "eth1": 210} {
			z := (math.Log1p(v) - 5.5) / 0.2
			want := 1 / (1 + math.Exp(-(global[0]*z + global[1])))
			if math.Abs(scores[ifc]-want) > 1e-9 {
				t.Errorf("%s %s: score %v, the global's %v", e.site, ifc, scores[ifc], want)
			}
		}
		if !(scores["eth0"] >= 0.5 && scores["eth1"] < 0.5) {
			t.Errorf("%s: the federated model scores 310 bps %v and 210 bps %v; want busy and not", e.site, scores["eth0"], scores["eth1"])
		}
		t.Logf("%s (%s): %s scores 310 bps %.3f, 210 bps %.3f", e.site, e.install, version, scores["eth0"], scores["eth1"])
		// Counted once the registry changed: wait for it.
		testkit.Eventually(t, e.site+": installs{installed} 1", func() bool {
			return testutil.ToFloat64(e.svc.flEdge.installs.WithLabelValues("installed")) == 1
		})
	}

	// A global that cannot be installed: counted and logged, and the
	// installed version stays.
	rt := brest.svc.Inference()
	before, err := rt.Model(ctx, "fl")
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range []federated.Global{
		{Model: "fl", Version: st.Version + 1, Weights: federated.Floats{math.NaN(), 0}},
		{Model: "fl", Version: st.Version, Weights: federated.Floats{1, 2}, Edges: 3, Samples: 60}, // another fl-<round>
	} {
		brest.svc.flEdge.offer(g)
		testkit.Eventually(t, fmt.Sprintf("failure %d counted", i+1), func() bool {
			return testutil.ToFloat64(brest.svc.flEdge.installs.WithLabelValues("failed")) == float64(i+1)
		})
	}
	after, err := rt.Model(ctx, "fl")
	if err != nil {
		t.Fatal(err)
	}
	if after.Live != before.Live || after.Shadow != version || len(after.Versions) != len(before.Versions) ||
		!slices.EqualFunc(after.Versions, before.Versions, func(a, b inference.VersionInfo) bool { return a.SHA256 == b.SHA256 }) {
		t.Fatalf("registry changed by refused globals: before %+v, after %+v", before, after)
	}
	for _, w := range []string{"weight 0 is NaN", "version already exists"} {
		if !strings.Contains(brest.logs.String(), w) {
			t.Errorf("brest: no log of the refused global (%q)", w)
		}
	}

	// Rounds go on: the edge keeps its newest keepFederatedVersions
	// federated versions (and any in use), not one per round.
	const more = keepFederatedVersions + 3
	for i := range uint64(more) {
		brest.svc.flEdge.offer(federated.Global{Model: "fl", Version: st.Version + 2 + i, Weights: federated.Floats{1, float64(i)}, Edges: 3, Samples: 60})
		testkit.Eventually(t, fmt.Sprintf("round %d installed", st.Version+2+i), func() bool {
			return testutil.ToFloat64(brest.svc.flEdge.installs.WithLabelValues("installed")) == float64(2+i)
		})
	}
	mi, err := rt.Model(ctx, "fl")
	if err != nil {
		t.Fatal(err)
	}
	var fl []string
	for _, v := range mi.Versions {
		if strings.HasPrefix(v.Version, "fl-") {
			fl = append(fl, v.Version)
		}
	}
	newest := FederatedVersion(st.Version + 1 + more)
	if len(fl) > keepFederatedVersions+2 || !slices.Contains(fl, newest) || slices.Contains(fl, FederatedVersion(st.Version+2)) {
		t.Errorf("federated versions kept after %d more rounds: %v (live %s, shadow %s, history %v); want at most %d and %s",
			more, fl, mi.Live, mi.Shadow, mi.History, keepFederatedVersions+2, newest)
	}
}
