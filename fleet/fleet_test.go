package fleet

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/internal/fleettest"
	"github.com/netfeat/netfeat/schema"
)

func nan() float64 { return math.NaN() }

// TestFleetDelivers: what an edge publishes reaches the hub's sink exactly
// once, tagged with the edge's site, and publishing it again adds nothing.
func TestFleetDelivers(t *testing.T) {
	t.Parallel()
	w := newWorld(t, HubConfig{})
	const n = 40
	for i := range n {
		publishAll(t, w.edge, i)
	}
	// Published again (a retry after a lost acknowledgement): the same ids.
	for i := range 5 {
		publishAll(t, w.edge, i)
	}
	w.waitAll(t, n, 20*time.Second)
}

// cutFor is how long TestFleetCutLink cuts the link.
var cutFor = 12 * time.Second

// TestFleetCutLink: the WAN is cut while the edge keeps publishing; the
// edge stores everything locally, and once the link returns the hub gets
// every item exactly once.
func TestFleetCutLink(t *testing.T) {
	t.Parallel()
	w := newWorld(t, HubConfig{})
	for i := range 10 {
		publishAll(t, w.edge, i)
	}
	w.waitAll(t, 10, 20*time.Second)

	w.link.Cut()
	waitFor(t, 10*time.Second, "the leaf connection to drop", func() bool { return !w.es.LeafConnected() })
	for i := 10; i < 60; i++ {
		publishAll(t, w.edge, i)
	}
	// The cut outlasts JetStream's source health check (10 s) and the
	// inactivity threshold of the source consumer on the edge (10 s), so
	// the hub must set the source up again; nothing may cross meanwhile.
	time.Sleep(cutFor)
	for _, k := range Kinds {
		if got := w.sink.count(k); got != 10 {
			t.Fatalf("%s: %d items crossed a cut link, want 10", k, got)
		}
	}
	cutAt := time.Now()
	w.link.Restore()
	w.waitAll(t, 60, 30*time.Second)
	t.Logf("caught up %v after the link returned; sources restarted by the hub: %v",
		time.Since(cutAt).Round(time.Millisecond), testutil.ToFloat64(w.hub.m.kicks.WithLabelValues(HubStream(w.site, KindWindows))))
}

// TestFleetDeviceStatesCut: device states that change while the WAN is cut
// (a device goes down, fails authentication and comes back; another goes
// down; a third is removed), each published again as a retry, reach the
// hub once each after the link returns, in the order the edge stored
// them, and the hub's view of every device is its newest state.
func TestFleetDeviceStatesCut(t *testing.T) {
	t.Parallel()
	w := newWorld(t, HubConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ts := t0
	state := func(dev, st, lastErr string) *DeviceState {
		ts = ts.Add(time.Second)
		d := &DeviceState{TS: ts.UnixNano(), DeviceState: schema.DeviceState{Device: dev, Address: "127.0.0.1:161", Protocol: "snmp", State: st}}
		if lastErr != "" {
			d.LastError, d.LastErrorTS = lastErr, ts.UnixNano()
		} else {
			d.LastSuccess = ts.UnixNano()
		}
		return d
	}
	// Each message is published twice (a retry after a lost
	// acknowledgement): the edge stream stores it once.
	publish := func(ds ...*DeviceState) {
		t.Helper()
		for range 2 {
			if err := w.edge.PublishDeviceStates(ctx, ds); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, dev := range []string{"pe0", "pe1", "pe2"} {
		publish(state(dev, "up", ""))
	}
	waitFor(t, 20*time.Second, "3 device states at the sink", func() bool { return w.sink.count(KindDevices) == 3 })

	w.link.Cut()
	waitFor(t, 10*time.Second, "the leaf connection to drop", func() bool { return !w.es.LeafConnected() })
	during := []*DeviceState{
		state("pe0", "down", "request timeout"), state("pe1", "down", "request timeout"),
		state("pe0", "auth_failure", "wrong digest"), state("pe2", StateRemoved, ""),
		state("pe0", "up", ""),
	}
	publish(during[:2]...)
	publish(during[2:]...)
	time.Sleep(cutFor)
	if got := w.sink.count(KindDevices); got != 3 {
		t.Fatalf("%d device states crossed a cut link, want 3", got)
	}
	w.link.Restore()
	waitFor(t, 30*time.Second, "8 device states at the sink", func() bool { return w.sink.count(KindDevices) >= 8 })
	time.Sleep(500 * time.Millisecond) // a repeat would come now
	if got := w.sink.count(KindDevices); got != 8 {
		t.Errorf("sink has %d distinct device states, want 8", got)
	}
	w.sink.check(t)
	js, err := jetstream.New(w.cluster.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	// 3 single messages, then 2 batches.
	s, err := js.Stream(ctx, HubStream(w.site, KindDevices))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.CachedInfo().State.Msgs, uint64(3+2); got != want {
		t.Errorf("hub stream %s holds %d messages, want %d", HubStream(w.site, KindDevices), got, want)
	}
	for dev, want := range map[string][]string{
		"pe0": {"up", "down", "auth_failure", "up"},
		"pe1": {"up", "down"},
		"pe2": {"up", StateRemoved},
	} {
		w.sink.mu.Lock()
		got := w.sink.history[dev]
		w.sink.mu.Unlock()
		if !slices.Equal(got, want) {
			t.Errorf("%s: states reached the hub as %v, want %v", dev, got, want)
		}
		last := w.sink.device(dev)
		if last == nil || last.State != want[len(want)-1] {
			t.Errorf("%s: hub's newest state %+v, want %s", dev, last, want[len(want)-1])
		}
	}
	if d := w.sink.device("pe1"); d == nil || d.LastError != "request timeout" || d.Protocol != "snmp" || d.Address != "127.0.0.1:161" {
		t.Errorf("pe1 at the hub: %+v", d)
	}
}

// TestFleetHubNodeKilled: a hub node is killed with SIGKILL while the edge
// publishes (the leader of a hub stream, so sourcing and the consumer move
// to another node); nothing is lost or stored twice, and the node rejoins.
func TestFleetHubNodeKilled(t *testing.T) {
	t.Parallel()
	w := newWorld(t, HubConfig{})
	js, err := jetstream.New(w.cluster.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, HubStream(w.site, KindWindows))
	if err != nil {
		t.Fatal(err)
	}
	leader := s.CachedInfo().Cluster.Leader
	victim := -1
	for i, nd := range w.cluster.Nodes {
		if nd.Name == leader {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("leader %q of %s is no cluster node", leader, HubStream(w.site, KindWindows))
	}

	for i := range 60 {
		publishAll(t, w.edge, i)
		if i == 20 {
			w.cluster.Kill(victim)
			t.Logf("killed %s (leader of %s) with SIGKILL", leader, HubStream(w.site, KindWindows))
		}
	}
	killed := time.Now()
	w.waitAll(t, 60, 30*time.Second)
	t.Logf("hub caught up %v after the last publish", time.Since(killed).Round(time.Millisecond))
	w.cluster.Restart(victim)
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	if err := w.cluster.WaitReady(rctx); err != nil {
		t.Fatal(err)
	}
	for i := 60; i < 70; i++ {
		publishAll(t, w.edge, i)
	}
	w.waitAll(t, 70, 30*time.Second)
}

// TestFleetEdgeRestart: the edge's server stops mid-stream and starts again
// over its store; what it acknowledged before reaches the hub, items
// published again after the restart are stored once, and the edge keeps
// its instance id (the hub keeps accepting it).
func TestFleetEdgeRestart(t *testing.T) {
	t.Parallel()
	w := newWorld(t, HubConfig{})
	for i := range 30 {
		publishAll(t, w.edge, i)
	}
	id := w.edge.InstanceID()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.edge.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	w.edgeNC.Close()
	restart := time.Now()
	w.es.Restart()
	w.startEdge(t)
	t.Logf("edge restarted in %v", time.Since(restart).Round(time.Millisecond))
	if got := w.edge.InstanceID(); got != id {
		t.Fatalf("instance id changed over a restart: %s, then %s", id, got)
	}
	// The producer repeats what it is not sure was stored.
	for i := 25; i < 60; i++ {
		publishAll(t, w.edge, i)
	}
	w.waitAll(t, 60, 30*time.Second)
	t.Logf("hub caught up %v after the restart", time.Since(restart).Round(time.Millisecond))
}

// TestFleetBadMessages: corrupt, oversized and foreign messages on the
// edge's streams are counted per hub stream and skipped; the others
// arrive.
func TestFleetBadMessages(t *testing.T) {
	t.Parallel()
	w := newWorld(t, HubConfig{MaxMessageBytes: 64 << 10})
	for i := range 5 {
		publishAll(t, w.edge, i)
	}
	js, err := jetstream.New(w.edgeNC)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inject := func(k Kind, id, instance string, data []byte) {
		t.Helper()
		m := nats.NewMsg(subjectPrefix(w.site, k) + ".bad")
		m.Header.Set(nats.MsgIdHdr, id)
		m.Header.Set(HeaderSite, w.site)
		if instance != "" {
			m.Header.Set(HeaderInstance, instance)
		}
		m.Data = data
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	inst := w.edge.InstanceID()
	inject(KindWindows, "bad-1", inst, []byte(`{"schema_version":1,"view":`))
	inject(KindDecisions, "bad-2", inst, []byte(`{"schema_version":7}`))
	inject(KindSamples, "bad-3", inst, []byte("ARROW1\x00\x00garbage"))
	big := make([]byte, 100<<10)
	inject(KindSamples, "bad-4", inst, big)
	inject(KindActions, "bad-5", "", []byte(`{}`))
	inject(KindActions, "bad-6", "someone-else", []byte(`{}`))
	inject(KindDevices, "bad-7", inst, []byte(`{"schema_version":1,"device":"pe1","ts":5}`))
	for i := 5; i < 20; i++ {
		publishAll(t, w.edge, i)
	}
	waitFor(t, 20*time.Second, "valid items after the bad ones", func() bool {
		for _, k := range Kinds {
			if w.sink.count(k) < 20 {
				return false
			}
		}
		return true
	})
	for _, c := range []struct {
		vec  *prometheus.CounterVec
		name string
		k    Kind
		want float64
	}{
		{w.hub.m.corrupt, "corrupt", KindWindows, 1},
		{w.hub.m.corrupt, "corrupt", KindDecisions, 1},
		{w.hub.m.corrupt, "corrupt", KindSamples, 1},
		{w.hub.m.oversized, "oversized", KindSamples, 1},
		{w.hub.m.refused, "refused", KindActions, 2},
		{w.hub.m.corrupt, "corrupt", KindActions, 0},
		{w.hub.m.corrupt, "corrupt", KindDevices, 1},
	} {
		if got := testutil.ToFloat64(c.vec.WithLabelValues(HubStream(w.site, c.k))); got != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, HubStream(w.site, c.k), got, c.want)
		}
	}
	for _, k := range Kinds {
		if got := w.sink.count(k); got != 20 {
			t.Errorf("%s: %d items at the sink, want 20", k, got)
		}
	}
	w.sink.check(t)
}

// TestFleetSiteTaken: a second edge that claims a registered site's name is
// refused, and the registered edge goes on unharmed.
func TestFleetSiteTaken(t *testing.T) {
	t.Parallel()
	w := newWorld(t, HubConfig{})
	for i := range 10 {
		publishAll(t, w.edge, i)
	}
	w.waitAll(t, 10, 20*time.Second)

	link := fleettest.NewLink(t, w.cluster.LeafAddrs())
	es := fleettest.StartEdge(t, w.site, t.TempDir(), link.URL())
	reg := prometheus.NewRegistry()
	other, err := NewEdge(edgeTestConfig(w.site), es.Connect(t), reg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := other.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.Registered(ctx); !errors.Is(err, ErrSiteTaken) {
		t.Fatalf("second edge with site %s: registration %v, want ErrSiteTaken", w.site, err)
	}
	if got := testutil.ToFloat64(other.m.refused); got != 1 {
		t.Errorf("registration_refused_total = %v, want 1", got)
	}
	other.Stop(ctx)
	es.Shutdown()

	for i := 10; i < 20; i++ {
		publishAll(t, w.edge, i)
	}
	w.waitAll(t, 20, 20*time.Second)
}

// TestFleetTwoSites: two edges behind one hub are sourced separately, each
// item carries its site, and neither edge stores the other's messages
// (subjects carry the site, and the harness's leaf remotes deny netfeat.>
// as docs/fleet.md recommends).
func TestFleetTwoSites(t *testing.T) {
	t.Parallel()
	w := newWorld(t, HubConfig{})
	w.sink.mu.Lock()
	w.sink.sites = []string{"lyon"}
	w.sink.mu.Unlock()
	link := fleettest.NewLink(t, w.cluster.LeafAddrs())
	es := fleettest.StartEdge(t, "lyon", t.TempDir(), link.URL())
	lyonNC := es.Connect(t)
	lyon, err := NewEdge(edgeTestConfig("lyon"), lyonNC, prometheus.NewRegistry(), testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := lyon.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer lyon.Stop(ctx)
	if err := lyon.Registered(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		publishAll(t, w.edge, i)
	}
	for i := range 7 {
		publishAll(t, lyon, 100+i)
	}
	waitFor(t, 20*time.Second, "7 items of each kind from lyon", func() bool { return w.sink.siteCount("lyon") >= 7*len(Kinds) })
	w.waitAll(t, 20, 20*time.Second)
	if got := w.sink.siteCount("lyon"); got != 7*len(Kinds) {
		t.Errorf("lyon: %d items at the sink, want %d", got, 7*len(Kinds))
	}
	for _, c := range []struct {
		nc   *nats.Conn
		site string
		want uint64
	}{{w.edgeNC, "paris", 20}, {lyonNC, "lyon", 7}} {
		js, err := jetstream.New(c.nc)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range Kinds {
			s, err := js.Stream(ctx, EdgeStream(k))
			if err != nil {
				t.Fatal(err)
			}
			if got := s.CachedInfo().State.Msgs; got != c.want {
				t.Errorf("%s's %s holds %d messages, want %d", c.site, EdgeStream(k), got, c.want)
			}
		}
	}
	if got := w.hub.Sites(); !slices.Equal(got, []string{"lyon", "paris"}) {
		t.Errorf("hub sources %v, want [lyon paris]", got)
	}
}
