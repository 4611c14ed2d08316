package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/internal/fleettest"
	"github.com/netfeat/netfeat/schema"
)

// recSink records what the hub hands it, by message id.
type recSink struct {
	mu        sync.Mutex
	seen      map[string]int // id → deliveries
	items     map[Kind]int   // distinct ids per kind
	bySite    map[string]int // distinct ids per site
	samples   int            // samples in distinct batches
	wrongSite []string
	streamDup []string // ids delivered again with Delivered == 1: stored twice
	site      string   // the site expected
	sites     []string // more sites expected
	// devices is the newest state of each device of the expected site,
	// by DeviceState.TS, as the hub's `devices` table keeps it.
	devices map[string]*DeviceState
	// history is every state of each device of the expected site in the
	// order of its first delivery.
	history map[string][]string
}

func newRecSink(site string) *recSink {
	return &recSink{seen: map[string]int{}, items: map[Kind]int{}, bySite: map[string]int{}, site: site, devices: map[string]*DeviceState{}, history: map[string][]string{}}
}

func (s *recSink) add(m Meta, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if (m.Site != s.site && !slices.Contains(s.sites, m.Site)) || !strings.HasPrefix(m.ID, m.Site+"/") {
		s.wrongSite = append(s.wrongSite, m.Site+" "+m.ID)
	}
	if s.seen[m.ID] > 0 && m.Delivered <= 1 {
		s.streamDup = append(s.streamDup, m.ID)
	}
	s.seen[m.ID]++
	if s.seen[m.ID] == 1 {
		s.bySite[m.Site]++
		if m.Site == s.site {
			s.items[m.Kind]++
			s.samples += n
		}
	}
}

func (s *recSink) Window(_ context.Context, m Meta, row *schema.FeatureRow) error {
	if row.View == "" || len(row.Names) != len(row.Values) {
		return fmt.Errorf("bad row %+v", row)
	}
	s.add(m, 0)
	return nil
}

func (s *recSink) Decision(_ context.Context, m Meta, d *schema.Decision) error {
	s.add(m, 0)
	return nil
}

func (s *recSink) Action(_ context.Context, m Meta, a *Action) error { s.add(m, 0); return nil }

func (s *recSink) Samples(_ context.Context, m Meta, b []schema.Sample) error {
	s.add(m, len(b))
	return nil
}

func (s *recSink) DeviceState(_ context.Context, m Meta, d *DeviceState) error {
	s.add(m, 0)
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.Site != s.site {
		return nil
	}
	if s.seen[m.ID] == 1 {
		s.history[d.Device] = append(s.history[d.Device], d.State)
	}
	if old := s.devices[d.Device]; old == nil || old.TS < d.TS {
		s.devices[d.Device] = d
	}
	return nil
}

// device returns the newest state of device held by the sink, or nil.
func (s *recSink) device(device string) *DeviceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.devices[device]
}

// siteCount returns the distinct items of site.
func (s *recSink) siteCount(site string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bySite[site]
}

// count returns the distinct items of kind from the expected site.
func (s *recSink) count(k Kind) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.items[k]
}

// check fails the test on an item from the wrong site or stored twice.
func (s *recSink) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.wrongSite) > 0 {
		t.Errorf("items with the wrong site: %v", s.wrongSite)
	}
	if len(s.streamDup) > 0 {
		t.Errorf("%d items delivered twice as first deliveries (stored twice at the hub): %v", len(s.streamDup), s.streamDup[:min(5, len(s.streamDup))])
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testLog(t *testing.T) *slog.Logger {
	if testing.Verbose() && os.Getenv("FLEET_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// world is a hub cluster, its Hub with a recording sink, and one edge
// behind a Link.
type world struct {
	cluster *fleettest.Cluster
	link    *fleettest.Link
	es      *fleettest.EdgeServer
	edgeNC  *nats.Conn
	edge    *Edge
	edgeReg *prometheus.Registry
	hub     *Hub
	hubReg  *prometheus.Registry
	sink    *recSink
	site    string
}

func edgeTestConfig(site string) EdgeConfig {
	cfg := DefaultEdgeConfig(site)
	cfg.CheckInterval = 200 * time.Millisecond
	cfg.RegisterRetry = 200 * time.Millisecond
	cfg.SampleForwarding.Mode = SamplesAll
	cfg.SampleForwarding.MaxPerMessage = 500
	return cfg
}

func newWorld(t *testing.T, hubCfg HubConfig) *world {
	t.Helper()
	w := &world{site: "paris"}
	start := time.Now()
	w.cluster = fleettest.StartCluster(t, 3)
	t.Logf("hub cluster ready in %v", time.Since(start).Round(time.Millisecond))
	w.sink = newRecSink(w.site)
	w.hubReg = prometheus.NewRegistry()
	hub, err := NewHub(hubCfg, w.cluster.Connect(t), w.sink, w.hubReg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := hub.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hub.Stop(context.Background()) })
	w.hub = hub
	w.link = fleettest.NewLink(t, w.cluster.LeafAddrs())
	w.es = fleettest.StartEdge(t, w.site, t.TempDir(), w.link.URL())
	w.startEdge(t)
	t.Logf("edge sourced by the hub %v after start", time.Since(start).Round(time.Millisecond))
	return w
}

// startEdge starts an Edge on the edge server and waits until the hub
// sources its site.
func (w *world) startEdge(t *testing.T) {
	t.Helper()
	w.edgeNC = w.es.Connect(t)
	w.edgeReg = prometheus.NewRegistry()
	e, err := NewEdge(edgeTestConfig(w.site), w.edgeNC, w.edgeReg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Stop(context.Background()) })
	w.edge = e
	if err := e.Registered(ctx); err != nil {
		t.Fatalf("edge registration: %v", err)
	}
	waitFor(t, 20*time.Second, "the hub to source the site", func() bool {
		s := w.hub.Sites()
		return len(s) == 1 && s[0] == w.site
	})
}

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func testWindow(i int) *schema.FeatureRow {
	return &schema.FeatureRow{
		View: "interface_1m", Entity: schema.Entity{Device: fmt.Sprintf("pe%d", i%7), Component: "eth0"},
		WindowStart: t0.Add(time.Duration(i) * time.Second).UnixNano(), WindowEnd: t0.Add(time.Duration(i)*time.Second + time.Minute).UnixNano(),
		Names: []string{"a__mean_1m", "b__max_1m"}, Values: []float64{float64(i), nan()},
		ClosedAt: t0.UnixNano(), CloseReason: schema.CloseComplete,
	}
}

func testDecision(i int) *schema.Decision {
	end := t0.Add(time.Duration(i) * time.Second)
	return &schema.Decision{
		SchemaVersion: schema.DecisionSchemaVersion, ID: fmt.Sprintf("00000000-0000-5000-8000-%012d", i), Time: end,
		Entity: schema.Entity{Device: "pe1", Component: "eth0"}, View: "interface_1m", Model: "congestion", ModelVersion: "v1",
		Score: 0.5, Action: "none", State: schema.StateInactive, Since: end, Fingerprint: "fp",
		Features: map[string]float64{"a": 1, "gone": nan()}, Window: schema.Window{Start: end.Add(-time.Minute), End: end}, Trigger: schema.TriggerWindow,
	}
}

func testAction(i int) *Action {
	st := []string{schema.StatePending, schema.StateFiring, schema.StateResolved}[i%3]
	return &Action{ActionState: inference.ActionState{Model: "congestion", ModelVersion: "v1", Fingerprint: "fp", Entity: schema.Entity{Device: "pe1", Component: "eth0"},
		Trigger: schema.TriggerWindow, State: st, Since: t0.Add(time.Duration(i) * time.Second), Action: "alert", LastDecision: t0}}
}

// testSamples returns batch i of n samples; batches never share a sample.
func testSamples(i, n int) []schema.Sample {
	out := make([]schema.Sample, n)
	for j := range out {
		out[j] = schema.Sample{
			TS: t0.Add(time.Duration(i*n+j) * time.Millisecond).UnixNano(), IngestTS: t0.UnixNano(),
			Entity: schema.Entity{Device: fmt.Sprintf("pe%d", j%4), Component: fmt.Sprintf("eth%d", j%8)},
			Metric: "interface.in.octets", Value: float64(i*n + j), Source: "sim/gnmi",
		}
	}
	return out
}

// testDeviceState returns state i of device pe<i%3>: its state cycles
// through up, down and up again, its time moves on with i.
func testDeviceState(i int) *DeviceState {
	st := schema.DeviceState{Device: fmt.Sprintf("pe%d", i%3), Address: fmt.Sprintf("127.0.0.%d:161", 1+i%3), Protocol: "snmp",
		Profile: "nokia-7210", State: []string{"up", "down", "up"}[i/3%3], Observations: int64(100 * i), Errors: int64(i / 3),
		LastSuccess: t0.Add(time.Duration(i) * time.Second).UnixNano(), LastDurationMS: 12.5}
	if st.State == "down" {
		st.LastError, st.LastErrorTS = fmt.Sprintf("request timeout %d", i), t0.Add(time.Duration(i)*time.Second).UnixNano()
	}
	return &DeviceState{TS: t0.Add(time.Duration(i) * time.Second).UnixNano(), DeviceState: st}
}

// publishAll publishes item i of every kind (a sample batch of 50).
func publishAll(t *testing.T, e *Edge, i int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.PublishWindow(ctx, testWindow(i)); err != nil {
		t.Fatal(err)
	}
	if err := e.PublishDecision(ctx, testDecision(i)); err != nil {
		t.Fatal(err)
	}
	if err := e.PublishAction(ctx, testAction(i)); err != nil {
		t.Fatal(err)
	}
	if n, err := e.PublishSamples(ctx, testSamples(i, 50)); err != nil || n != 50 {
		t.Fatalf("publish samples: %d, %v", n, err)
	}
	if err := e.PublishDeviceState(ctx, testDeviceState(i)); err != nil {
		t.Fatal(err)
	}
}

// waitAll waits until the sink holds n distinct items of every kind.
func (w *world) waitAll(t *testing.T, n int, d time.Duration) {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("%d items of every kind at the sink", n), func() bool {
		for _, k := range Kinds {
			if w.sink.count(k) < n {
				return false
			}
		}
		return true
	})
	for _, k := range Kinds {
		if got := w.sink.count(k); got != n {
			t.Errorf("%s: sink has %d distinct items, want %d", k, got, n)
		}
	}
	w.sink.mu.Lock()
	samples := w.sink.samples
	w.sink.mu.Unlock()
	if samples != n*50 {
		t.Errorf("sink has %d samples, want %d", samples, n*50)
	}
	w.sink.check(t)
	// Exact: the hub streams hold every id once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(w.cluster.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds {
		s, err := js.Stream(ctx, HubStream(w.site, k))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CachedInfo().State.Msgs; got != uint64(n) {
			t.Errorf("hub stream %s holds %d messages, want %d", HubStream(w.site, k), got, n)
		}
	}
}

// TestMain fails the package when a test leaves goroutines behind: the
// Edge, the Hub, the model publisher and follower, the Link and the
// servers must all stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Badger's (the inference registry's) package-level helpers
		// outlive a test.
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/dgraph-io/ristretto/v2.(*defaultPolicy[...]).processItems"),
		goleak.IgnoreAnyFunction("github.com/dgraph-io/ristretto/v2.(*Cache[...]).processItems"),
		// nats.go v1.55.0 starts this goroutine with the first async
		// publish and it reads the status channel once started; when the
		// publisher is cleaned up first (CleanupPublisher sets the channel
		// to nil), it waits on a nil channel for ever. A library leak of
		// one goroutine per JetStream context, not ours.
		goleak.IgnoreTopFunction("github.com/nats-io/nats.go/jetstream.(*jetStream).resetPendingAcksOnReconnect"),
	)
}
