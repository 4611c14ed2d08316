package inference

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

func dur(d time.Duration) *time.Duration { return &d }

func TestLifecycleStep(t *testing.T) {
	type ev struct {
		at    time.Duration
		holds bool
		state string // after the step
		pub   bool   // published (transition or repeat)
	}
	cases := []struct {
		name string
		l    ActionLifecycle
		evs  []ev
	}{
		{"fires at once, resolves at once", ActionLifecycle{}, []ev{
			{0, false, "inactive", false},
			{10 * time.Second, true, "firing", true},
			{20 * time.Second, true, "firing", false},
			{30 * time.Second, false, "resolved", true},
			{40 * time.Second, false, "resolved", false},
			{50 * time.Second, true, "firing", true},
		}},
		{"for", ActionLifecycle{For: 20 * time.Second}, []ev{
			{0, true, "pending", true},
			{10 * time.Second, true, "pending", false},
			{20 * time.Second, true, "firing", true},
			{30 * time.Second, false, "resolved", true},
			{40 * time.Second, true, "pending", true},
			{50 * time.Second, false, "inactive", true},
		}},
		{"keep_firing_for rides out a dip", ActionLifecycle{KeepFiringFor: dur(15 * time.Second)}, []ev{
			{0, true, "firing", true},
			{10 * time.Second, false, "firing", false},
			{20 * time.Second, true, "firing", false},
			{30 * time.Second, false, "firing", false},
			{34 * time.Second, false, "firing", false},
			{35 * time.Second, false, "resolved", true},
		}},
		{"repeat_interval", ActionLifecycle{RepeatInterval: dur(30 * time.Second)}, []ev{
			{0, true, "firing", true},
			{10 * time.Second, true, "firing", false},
			{29 * time.Second, true, "firing", false},
			{30 * time.Second, true, "firing", true},
			{59 * time.Second, true, "firing", false},
			{60 * time.Second, true, "firing", true},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			def := DefaultConfig().Lifecycle
			p := newLifeParams(c.l, def, "reroute")
			var lc lifecycle
			for i, e := range c.evs {
				st := lc.step(&p, int64(e.at), e.holds)
				if lc.state != e.state || st.publish != e.pub {
					t.Fatalf("step %d at %v holds %v: state %s published %v, want %s %v", i, e.at, e.holds, lc.state, st.publish, e.state, e.pub)
				}
			}
		})
	}
}

func TestLifecycleFlapGuard(t *testing.T) {
	def := DefaultConfig().Lifecycle // 6 transitions, 1m
	p := newLifeParams(ActionLifecycle{RepeatInterval: dur(10 * time.Second)}, def, "reroute")
	var lc lifecycle
	published, suppressed := 0, 0
	// 100 transitions a second for 10 s.
	var t0 int64
	for i := range 1000 {
		t0 = int64(i) * int64(10*time.Millisecond)
		st := lc.step(&p, t0, i%2 == 0)
		if st.publish {
			published++
		}
		if st.suppressed {
			suppressed++
		}
	}
	// The flap limit's worth, the transition that starts the flapping and
	// one repeat per repeat interval.
	if limit := def.FlapLimit + 1 + 1; published > limit {
		t.Fatalf("%d published in 10 s of flapping, want at most %d", published, limit)
	}
	if suppressed < 900 || !lc.flapping {
		t.Fatalf("suppressed %d, flapping %v", suppressed, lc.flapping)
	}
	// It settles: quiet long enough, the state is published once.
	at := lc.nextDeadline(&p)
	if at == 0 {
		t.Fatal("no deadline while flapping")
	}
	quiet := lc.calmAt(&p)
	st := lc.step(&p, quiet, lc.lastHolds)
	if lc.flapping {
		t.Fatalf("still flapping at the calm deadline (score %v)", lc.flapScore)
	}
	_ = st
}

// eventConfig has an event rule link_down and a congestion model.
func eventConfig() Config {
	c := testConfig()
	c.Publish = PublishTransitions
	c.EventRules = []EventRuleConfig{{
		Name: "link_down", Metric: "interface.oper_status", Op: "!=", State: "up", Action: "reroute",
		ActionLifecycle: ActionLifecycle{ResolveAction: "restore"},
	}}
	return c
}

func stateEvent(dev, iface string, ts time.Time, v, prev float64) *schema.StateEvent {
	return &schema.StateEvent{Entity: schema.Entity{Device: dev, Component: iface}, Metric: "interface.oper_status",
		Value: v, Prev: prev, TS: ts.UnixNano(), IngestTS: time.Now().UnixNano()}
}

func TestEventRuleFiresAndResolves(t *testing.T) {
	srv := startNATS(t, -1, t.TempDir())
	nc := connect(t, srv.ClientURL())
	got := collect(t, nc, "netfeat.decisions.link_down.>")
	r := newRuntime(t, eventConfig(), nc, t.TempDir())
	t0 := time.Now().Add(-time.Second)
	r.HandleEvent(stateEvent("pe1", "Gi0/1", t0, 1, math.NaN())) // first seen up: nothing to publish
	r.HandleEvent(stateEvent("pe1", "Gi0/1", t0.Add(100*time.Millisecond), 2, 1))
	r.HandleEvent(stateEvent("pe1", "Gi0/1", t0.Add(200*time.Millisecond), 2, 2)) // a repeat of the state: no transition
	r.HandleEvent(stateEvent("pe1", "Gi0/1", t0.Add(300*time.Millisecond), 1, 2))
	got.wait(t, 2)
	quiesce(t, r, nc, got, schema.Entity{Device: "pe1", Component: "Gi0/1"}, 1) // nothing more may come
	ds := got.wait(t, 2)
	if len(ds) != 2 {
		t.Fatalf("%d decisions published, want 2: %+v", len(ds), ds)
	}
	fire, res := ds[0], ds[1]
	if fire.State != "firing" || !fire.Transition || fire.Action != "reroute" || fire.Trigger != "event" ||
		fire.Event == nil || fire.Event.State != "down" || fire.Event.Prev != "up" || !fire.Since.Equal(t0.Add(100*time.Millisecond).UTC()) {
		t.Fatalf("firing decision %+v", fire)
	}
	if res.State != "resolved" || res.Action != "restore" || res.Fingerprint != fire.Fingerprint || fire.Fingerprint == "" {
		t.Fatalf("resolved decision %+v (firing %+v)", res, fire)
	}
	if fire.TriggerToDecisionUS <= 0 || fire.TriggerToDecisionUS > 5e6 {
		t.Fatalf("trigger_to_decision_us %d", fire.TriggerToDecisionUS)
	}
	acts := r.Actions()
	if len(acts) != 1 || acts[0].State != "resolved" || acts[0].Fingerprint != fire.Fingerprint {
		t.Fatalf("actions %+v", acts)
	}
	if n := testutil.ToFloat64(r.m.transitions.WithLabelValues("link_down", "firing")); n != 1 {
		t.Fatalf("firing transitions %v", n)
	}
}

func TestEventRuleForFiresOnTimer(t *testing.T) {
	srv := startNATS(t, -1, t.TempDir())
	nc := connect(t, srv.ClientURL())
	got := collect(t, nc, "netfeat.decisions.link_down.>")
	cfg := eventConfig()
	cfg.EventRules[0].For = 150 * time.Millisecond
	r := newRuntime(t, cfg, nc, t.TempDir())
	r.HandleEvent(stateEvent("pe1", "Gi0/1", time.Now(), 2, 1))
	ds := got.wait(t, 2)
	if ds[0].State != "pending" || ds[1].State != "firing" || ds[1].Trigger != "timer" || !ds[1].Transition {
		t.Fatalf("decisions %+v", ds)
	}
	if held := ds[1].Since.Sub(ds[0].Since); held != 150*time.Millisecond {
		t.Fatalf("fired %v after pending, want 150ms", held)
	}
	// A link back up before `for` never fires.
	r.HandleEvent(stateEvent("pe1", "Gi0/2", time.Now(), 2, 1))
	r.HandleEvent(stateEvent("pe1", "Gi0/2", time.Now().Add(10*time.Millisecond), 1, 2))
	got.wait(t, 4)
	// Both events are handled, so a deadline the down event armed lies
	// before now+for. The worker's timers run on the wall clock (it has no
	// injected clock): wait for that deadline itself, then make the worker
	// sweep its timers after it and wait for what it published.
	time.Sleep(time.Until(time.Now().Add(cfg.EventRules[0].For)))
	quiesce(t, r, nc, got, schema.Entity{Device: "pe1", Component: "Gi0/2"}, 1)
	if ds = got.wait(t, 4); len(ds) != 4 || ds[2].State != "pending" || ds[3].State != "inactive" {
		t.Fatalf("decisions %+v", ds[2:])
	}
}

func TestFlappingLinkIsDamped(t *testing.T) {
	srv := startNATS(t, -1, t.TempDir())
	nc := connect(t, srv.ClientURL())
	got := collect(t, nc, "netfeat.decisions.link_down.>")
	r := newRuntime(t, eventConfig(), nc, t.TempDir())
	t0 := time.Now()
	for i := range 1000 { // 100 transitions a second for 10 s of event time
		v := 1.0
		if i%2 == 0 {
			v = 2
		}
		r.HandleEvent(stateEvent("pe1", "Gi0/1", t0.Add(time.Duration(i)*10*time.Millisecond), v, 3-v))
	}
	testkit.Eventually(t, "testutil.ToFloat64(r.m.events) == 1000 && r.queued() == 0", func() bool { return testutil.ToFloat64(r.m.events) == 1000 && r.queued() == 0 })
	quiesce(t, r, nc, got, schema.Entity{Device: "pe1", Component: "Gi0/1"}, 1)
	got.mu.Lock()
	n := len(got.ds)
	got.mu.Unlock()
	if limit := DefaultConfig().Lifecycle.FlapLimit + 1; n > limit {
		t.Fatalf("%d decisions published for 1000 transitions, want at most %d", n, limit)
	}
	if s := testutil.ToFloat64(r.m.flapSuppressed.WithLabelValues("link_down")); s < 900 {
		t.Fatalf("flap_suppressed_total %v", s)
	}
	if a := r.Actions(); len(a) != 1 || !a[0].Flapping {
		t.Fatalf("actions %+v", a)
	}
}

func TestOneEpisodeOneFiringOneResolved(t *testing.T) {
	srv := startNATS(t, -1, t.TempDir())
	nc := connect(t, srv.ClientURL())
	got := collect(t, nc, "netfeat.decisions.congestion.>")
	cfg := eventConfig()
	cfg.Models[0].KeepFiringFor = dur(20 * time.Second)
	r := newRuntime(t, cfg, nc, t.TempDir())
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	episode := []map[string]float64{idle, idle, congested, congested, idle /* a dip */, congested, congested, congested, idle, idle, idle, idle}
	for i, v := range episode {
		r.HandleRow(row("pe1", "Gi0/1", end.Add(time.Duration(i)*10*time.Second), v))
	}
	testkit.Eventually(t, "len(r.rec.snapshot()) >= 2*len(episode)", func() bool { return len(r.rec.snapshot()) >= 2*len(episode) })
	got.wait(t, 2)
	quiesce(t, r, nc, got, schema.Entity{Device: "pe1", Component: "Gi0/1"}, 1)
	ds := got.wait(t, 2)
	var states []string
	for _, d := range ds {
		states = append(states, d.State+"/"+d.Action)
	}
	if !slices.Equal(states, []string{"firing/reroute", "resolved/reroute"}) {
		t.Fatalf("published %v, want one firing and one resolved", states)
	}
	if !ds[0].Since.Equal(end.Add(20*time.Second)) || !ds[1].Since.Equal(end.Add(90*time.Second)) {
		t.Fatalf("since %v and %v", ds[0].Since, ds[1].Since)
	}
	// Every window is still in the decisions table.
	n := 0
	for _, x := range r.rec.snapshot() {
		if x.d.Model == "congestion" {
			n++
		}
	}
	if n != len(episode) {
		t.Fatalf("%d congestion decisions recorded, want %d", n, len(episode))
	}
}

func TestNoActionOnMissingInputs(t *testing.T) {
	cfg := eventConfig()
	cfg.Models[0].Optional = map[string]float64{"interface_in_errors_ps__mean_1m": 0, "interface_in_errors_ps__max_1m": 0}
	r := newRuntime(t, cfg, nil, t.TempDir())
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// A loopback: no speed, so no utilisation; errors and discards high.
	lo := row("pe1", "system", end, map[string]float64{"interface_out_discards_ps__mean_1m": 125000, "interface_out_discards_ps__max_1m": 125000})
	for i, n := range lo.Names {
		if n == "interface_in_utilization__mean_1m" || n == "interface_in_utilization__max_1m" ||
			n == "interface_out_utilization__mean_1m" || n == "interface_out_utilization__max_1m" ||
			n == "interface_in_errors_ps__mean_1m" || n == "interface_in_errors_ps__max_1m" {
			lo.Values[i] = math.NaN()
		}
	}
	r.HandleRow(lo)
	testkit.Eventually(t, "len(r.rec.snapshot()) == 2", func() bool { return len(r.rec.snapshot()) == 2 })
	for _, x := range r.rec.snapshot() {
		d := x.d
		if d.Action != "none" {
			t.Fatalf("%s acted on a window without its inputs: %+v", d.Model, d)
		}
		if d.Model == "congestion" && !slices.Equal(d.MissingFeatures, []string{
			"interface_in_utilization__mean_1m", "interface_in_utilization__max_1m",
			"interface_out_utilization__mean_1m", "interface_out_utilization__max_1m"}) &&
			len(d.MissingFeatures) != 4 {
			t.Fatalf("missing features %v", d.MissingFeatures)
		}
	}
	if n := testutil.ToFloat64(r.m.missing.WithLabelValues("congestion", "no_data")); n != 1 {
		t.Fatalf("missing_features_total{congestion,no_data} = %v", n)
	}
	if a := r.Actions(); len(a) != 0 {
		t.Fatalf("actions %+v", a)
	}
}

func TestModelBoundToEvents(t *testing.T) {
	// The congestion model, bound to events, scores the entity's latest
	// window when its link changes state.
	cfg := eventConfig()
	cfg.EventRules = nil
	cfg.Models = append(cfg.Models[:0], ModelConfig{Name: "congestion", Kind: KindXGBoost, View: "interface_1m",
		File: congestionModel, Action: "reroute", Trigger: TriggerEvent})
	r := newRuntime(t, cfg, nil, t.TempDir())
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	latest := row("pe1", "Gi0/1", end, congested)
	r.SetLatest(func(view string, e schema.Entity) (*schema.FeatureRow, bool) {
		if view == "interface_1m" && e == latest.Entity {
			return latest, true
		}
		return nil, false
	})
	r.HandleEvent(stateEvent("pe1", "Gi0/1", end.Add(time.Second), 2, 1))
	r.HandleEvent(stateEvent("pe1", "Gi0/9", end.Add(time.Second), 2, 1)) // no window yet
	testkit.Eventually(t, "len(r.rec.snapshot()) == 2", func() bool { return len(r.rec.snapshot()) == 2 })
	byIface := map[string]schema.Decision{}
	for _, x := range r.rec.snapshot() {
		byIface[x.d.Entity.Component] = x.d
	}
	if d := byIface["Gi0/1"]; d.Trigger != "event" || d.State != "firing" || d.Action != "reroute" || d.Score != goldenCongested {
		t.Fatalf("event-bound decision %+v", d)
	}
	if d := byIface["Gi0/9"]; d.Action != "none" || len(d.MissingFeatures) == 0 {
		t.Fatalf("decision without a window %+v", d)
	}
	if n := testutil.ToFloat64(r.m.missing.WithLabelValues("congestion", "no_window")); n != 1 {
		t.Fatalf("missing_features_total{no_window} = %v", n)
	}
}

func TestActionStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startNATS(t, -1, t.TempDir())
	nc := connect(t, srv.ClientURL())
	got := collect(t, nc, "netfeat.decisions.>")
	cfg := eventConfig()
	r, err := New(cfg, connOf(nc), dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.HandleEvent(stateEvent("pe1", "Gi0/1", time.Now(), 2, 1))
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r.HandleRow(row("pe1", "Gi0/1", end, congested))
	got.wait(t, 3) // link_down, congestion and its fallback rule's own decision
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = newRuntime(t, cfg, nc, dir)
	if a := r.Actions(); len(a) != 3 || a[0].State != "firing" || a[1].State != "firing" || a[2].State != "firing" {
		t.Fatalf("actions after restart %+v", a)
	}
	// Still down, still congested: no new firing published.
	r.HandleEvent(stateEvent("pe1", "Gi0/1", time.Now(), 2, 2))
	r.HandleRow(row("pe1", "Gi0/1", end.Add(10*time.Second), congested))
	testkit.Eventually(t, "len(r.rec.snapshot()) == 3", func() bool { return len(r.rec.snapshot()) == 3 })
	quiesce(t, r, nc, got, schema.Entity{Device: "pe1", Component: "Gi0/1"}, 2) // still down
	if ds := got.wait(t, 3); len(ds) != 3 {
		t.Fatalf("%d decisions published, want the 3 from before the restart: %+v", len(ds), ds[3:])
	}
}

func TestFirstSeenDownIsNoIncident(t *testing.T) {
	r := newRuntime(t, eventConfig(), nil, t.TempDir())
	t0 := time.Now()
	r.HandleEvent(stateEvent("pe1", "unused", t0, 2, math.NaN())) // down since before we watched
	r.HandleEvent(stateEvent("pe1", "unused", t0.Add(time.Second), 1, 2))
	r.HandleEvent(stateEvent("pe1", "unused", t0.Add(2*time.Second), 2, 1)) // a real change
	testkit.Eventually(t, "len(r.rec.snapshot()) == 2", func() bool { return len(r.rec.snapshot()) == 2 })
	ds := r.rec.snapshot()
	if ds[0].d.State != "inactive" || ds[0].d.Transition || ds[1].d.State != "firing" || !ds[1].d.Transition {
		t.Fatalf("decisions %+v, %+v", ds[0].d, ds[1].d)
	}
	if n := testutil.ToFloat64(r.m.eventsBaseline); n != 1 {
		t.Fatalf("events_first_seen_total = %v", n)
	}
}

// barrierHeader marks the message quiesce sends through a collector's
// subject; the collector does not count it as a decision.
const barrierHeader = "Netfeat-Test-Barrier"

// quiesce returns once r has handled everything queued on ent's worker
// before the call, with the timers due by then, and once c has received
// every decision r published meanwhile. Tests call it before checking that
// no further decision came, instead of sleeping "long enough":
//
//   - two first-seen events of interface.oper_status with value v (ent's
//     current state) go through ent's worker after everything queued
//     before them: a series' first value changes no lifecycle that has a
//     state and publishes nothing. The worker sweeps due timers after each
//     item, so once it counts the second, the first's sweep is done;
//   - then the outbox drains, and a barrier message goes to c's subject on
//     nc, the connection r publishes on: NATS delivers one connection's
//     messages to a subscription in the order they were published.
func quiesce(t *testing.T, r *Runtime, nc *nats.Conn, c *collector, ent schema.Entity, v float64) {
	t.Helper()
	base := testutil.ToFloat64(r.m.eventsBaseline)
	for range 2 {
		r.HandleEvent(stateEvent(ent.Device, ent.Component, time.Now(), v, math.NaN()))
	}
	testkit.Eventually(t, "the worker of "+ent.String()+" to handle the sentinel events", func() bool {
		return testutil.ToFloat64(r.m.eventsBaseline) == base+2
	})
	testkit.Eventually(t, "the outbox to drain", func() bool { return r.pub.ob.pending.Load() == 0 })
	m := nats.NewMsg(strings.TrimSuffix(c.subject, ">") + "test_barrier")
	m.Header.Set(barrierHeader, "1")
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.barrier:
	case <-time.After(testkit.DefaultTimeout):
		t.Fatal("the barrier message did not come back through NATS")
	}
}
