package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/fleet"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/internal/fleettest"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/query"
	"github.com/netfeat/netfeat/schema"
)

// TestFleetConfigCheck holds `netfeat config check` to a clear message for
// each wrong combination of role, site, nats and fleet keys.
func TestFleetConfigCheck(t *testing.T) {
	const leaf = "nats:\n  leaf: {remotes: [{urls: [\"nats-leaf://hub1:7422\"]}]}\n"
	for _, tc := range []struct {
		name, cfg string
		want      []string // substrings of the error; none: valid
	}{
		{"standalone default", "", nil},
		{"edge", "role: edge\nsite: paris\n" + leaf, nil},
		{"edge with forwarding", "role: edge\nsite: paris\n" + leaf +
			"fleet:\n  edge:\n    sample_forwarding: {mode: sampled, every: 4, devices: {pe1: all}}\n    windows: {max_bytes: 1000000, discard: new}\n", nil},
		{"hub", "role: hub\nnats: {url: \"nats://a:4222,nats://b:4222\"}\nfleet: {hub: {retention: 2h, replicas: 3}}\n", nil},
		{"edge without site", "role: edge\n" + leaf, []string{"site: is required with role edge"}},
		{"edge without remotes", "role: edge\nsite: paris\n", []string{"nats.leaf.remotes: an edge needs at least one remote"}},
		{"edge with nats.url", "role: edge\nsite: paris\nnats: {url: \"nats://a:4222\", leaf: {remotes: [{urls: [\"nats-leaf://h:7422\"]}]}}\n",
			[]string{"nats.url: an edge runs its own embedded server"}},
		{"edge site is the hub domain", "role: edge\nsite: hub\n" + leaf, []string{"site: site \"hub\" is the hub's JetStream domain"}},
		{"edge bad site", "role: edge\nsite: \"a.b\"\n" + leaf, []string{"site: site \"a.b\": want 1-64 letters"}},
		{"edge fleet.edge.site differs", "role: edge\nsite: paris\nfleet: {edge: {site: lyon}}\n" + leaf, []string{"fleet.edge.site: \"lyon\" differs from site \"paris\""}},
		{"edge device states", "role: edge\nsite: paris\nfleet: {edge: {device_check: 5s, device_heartbeat: 2m, devices: {max_bytes: 10000000}}}\n" + leaf, nil},
		{"edge device_check too short", "role: edge\nsite: paris\nfleet: {edge: {device_check: 10ms}}\n" + leaf, []string{"fleet.edge: device_check 10ms: must be 100ms–1m"}},
		{"edge heartbeat below check", "role: edge\nsite: paris\nfleet: {edge: {device_check: 10s, device_heartbeat: 5s}}\n" + leaf, []string{"fleet.edge: device_heartbeat 5s: must be device_check (10s) to 24h"}},
		{"edge bad devices limits", "role: edge\nsite: paris\nfleet: {edge: {devices: {discard: some}}}\n" + leaf, []string{"fleet.edge: devices: discard \"some\""}},
		{"edge bad mode", "role: edge\nsite: paris\nfleet: {edge: {sample_forwarding: {mode: some}}}\n" + leaf, []string{"fleet.edge: sample_forwarding.mode \"some\""}},
		{"edge bad leaf url", "role: edge\nsite: paris\nnats:\n  leaf: {remotes: [{urls: [\"http://h:7422\"]}]}\n", []string{"nats.leaf.remotes[0].urls: \"http://h:7422\": must start with nats-leaf://"}},
		{"edge jetstream off", "role: edge\nsite: paris\nnats:\n  jetstream: false\n  leaf: {remotes: [{urls: [\"nats-leaf://h:7422\"]}]}\n", []string{"nats.jetstream: an edge keeps"}},
		{"hub without url", "role: hub\n", []string{"nats.url: a hub connects to the hub's NATS JetStream cluster"}},
		{"hub with site", "role: hub\nsite: paris\nnats: {url: \"nats://a:4222\"}\n", []string{"site: a hub has no site"}},
		{"hub with targets", "role: hub\nnats: {url: \"nats://a:4222\"}\nsnmp: {targets: [{name: r1, address: \"127.0.0.1:161\"}]}\n", []string{"role: a hub collects nothing"}},
		{"hub with leaf", "role: hub\nnats: {url: \"nats://a:4222\", leaf: {remotes: [{urls: [\"nats-leaf://h:7422\"]}]}}\n", []string{"nats.leaf: only applies to role edge"}},
		{"hub bad replicas", "role: hub\nnats: {url: \"nats://a:4222\"}\nfleet: {hub: {replicas: 7}}\n", []string{"fleet.hub: hub replicas 7"}},
		{"hub rollout", "role: hub\nnats: {url: \"nats://a:4222\"}\nfleet: {rollout: {replicas: 1, retry_delay: 2s}}\n", nil},
		{"hub bad rollout replicas", "role: hub\nnats: {url: \"nats://a:4222\"}\nfleet: {rollout: {replicas: 9}}\n", []string{"fleet.rollout: model roll-out replicas 9"}},
		{"edge bad rollout max", "role: edge\nsite: paris\nfleet: {rollout: {max_model_bytes: -1}}\n" + leaf, []string{"fleet.rollout:"}},
		{"standalone with site", "site: paris\n", []string{"site: only applies to role edge"}},
		{"bad role", "role: leaf\n", []string{"role: must be standalone, edge or hub"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("netfeat.yaml", []byte(tc.cfg))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want %q, got a valid configuration", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestHubTablesOnce feeds the hub's sink as fleet.Hub does, repeats
// included, and queries the fleet tables with SQL: every item counts once,
// actions keep the latest state per site and fingerprint, `devices` the
// newest device state beside what the hub got of each device's data, and
// rows older than retention are skipped.
func TestHubTablesOnce(t *testing.T) {
	view := schema.FeatureView{Name: "if_2s", Entity: schema.EntityComponent, Metrics: []string{"interface.in.bps"},
		Aggregations: []schema.Aggregation{"mean"}, Windows: []time.Duration{2 * time.Second}, Hop: 2 * time.Second}
	cfg := DefaultFleetConfig().Hub
	reg := prometheus.NewRegistry()
	sink := newHubSink(cfg, []schema.FeatureView{view}, reg)
	defer sink.close()
	ctx := context.Background()
	now := time.Now()
	names := view.FeatureNames()

	for _, site := range []string{"paris", "lyon"} {
		for i := range 3 {
			row := &schema.FeatureRow{View: view.Name, Entity: schema.Entity{Device: site + "-r1", Component: fmt.Sprintf("e%d", i)},
				WindowStart: now.Add(-2 * time.Second).UnixNano(), WindowEnd: now.UnixNano(), Names: names, Values: []float64{float64(i)}}
			d := &schema.Decision{ID: fmt.Sprintf("d-%s-%d", site, i), Time: now, Entity: row.Entity, View: view.Name, Model: "busy",
				Score: 1, Action: "alert", State: schema.StateFiring, Since: now, Transition: true, Fingerprint: fmt.Sprintf("fp%d", i),
				Features: map[string]float64{names[0]: float64(i), "nan": math.NaN()}}
			a, _ := fleet.ActionFromDecision(d)
			for delivered := range 2 { // at least once: the same ids again
				m := func(k fleet.Kind, id string) fleet.Meta {
					return fleet.Meta{Site: site, Kind: k, ID: id, Delivered: uint64(delivered + 1)}
				}
				if err := sink.Window(ctx, m(fleet.KindWindows, fleet.WindowID(site, row)), row); err != nil {
					t.Fatal(err)
				}
				if err := sink.Decision(ctx, m(fleet.KindDecisions, fleet.DecisionID(site, d)), d); err != nil {
					t.Fatal(err)
				}
				if err := sink.Action(ctx, m(fleet.KindActions, fleet.ActionID(site, &a)), &a); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// paris/fp0 resolves later; lyon/fp1 has an older transition
	// delivered late, which must not replace the newer.
	res := fleet.Action{ActionState: inference.ActionState{Model: "busy", Fingerprint: "fp0", Entity: schema.Entity{Device: "paris-r1", Component: "e0"},
		State: schema.StateResolved, Since: now.Add(time.Second), LastDecision: now.Add(time.Second)}}
	old := fleet.Action{ActionState: inference.ActionState{Model: "busy", Fingerprint: "fp1", Entity: schema.Entity{Device: "lyon-r1", Component: "e1"},
		State: schema.StatePending, Since: now.Add(-time.Minute), LastDecision: now.Add(-time.Minute)}}
	for _, x := range []struct {
		site string
		a    *fleet.Action
	}{{"paris", &res}, {"lyon", &old}} {
		if err := sink.Action(ctx, fleet.Meta{Site: x.site, Kind: fleet.KindActions, ID: fleet.ActionID(x.site, x.a)}, x.a); err != nil {
			t.Fatal(err)
		}
	}
	// paris-r1/e0: a newer window, then an older one delivered late; only
	// the newer is its latest.
	for i, off := range []time.Duration{2 * time.Second, -2 * time.Second} {
		row := &schema.FeatureRow{View: view.Name, Entity: schema.Entity{Device: "paris-r1", Component: "e0"},
			WindowStart: now.Add(off - 2*time.Second).UnixNano(), WindowEnd: now.Add(off).UnixNano(), Names: names, Values: []float64{float64(10 - 11*i)}}
		if err := sink.Window(ctx, fleet.Meta{Site: "paris", Kind: fleet.KindWindows, ID: fleet.WindowID("paris", row)}, row); err != nil {
			t.Fatal(err)
		}
	}
	// Older than retention: skipped.
	stale := &schema.Decision{ID: "stale", Time: now.Add(-cfg.Retention - time.Minute)}
	if err := sink.Decision(ctx, fleet.Meta{Site: "paris", Kind: fleet.KindDecisions, ID: "paris/decisions/stale"}, stale); err != nil {
		t.Fatal(err)
	}
	if err := sink.Samples(ctx, fleet.Meta{Site: "lyon", Kind: fleet.KindSamples, ID: "lyon/samples/1"},
		[]schema.Sample{{TS: now.UnixNano(), Entity: schema.Entity{Device: "lyon-r1", Component: "e0"}, Metric: "interface.in.octets", Value: 7}}); err != nil {
		t.Fatal(err)
	}
	// A second batch of the series, delivered twice: counted once.
	for range 2 {
		if err := sink.Samples(ctx, fleet.Meta{Site: "lyon", Kind: fleet.KindSamples, ID: "lyon/samples/2"},
			[]schema.Sample{{TS: now.Add(time.Second).UnixNano(), Entity: schema.Entity{Device: "lyon-r1", Component: "e0"}, Metric: "interface.in.octets", Value: 9}}); err != nil {
			t.Fatal(err)
		}
	}

	// Device states: paris-r1 goes up, then down (each delivered twice),
	// then its older "up" is delivered late and must not replace "down";
	// paris-sw9 is known only from its state, lyon-r1 only from data.
	devState := func(dev, st string, at time.Time) *fleet.DeviceState {
		d := &fleet.DeviceState{TS: at.UnixNano(), DeviceState: schema.DeviceState{Device: dev, Address: "10.0.0.1:161",
			Protocol: "snmp", Profile: "nokia-7210", State: st, LastSuccess: now.Add(-3 * time.Second).UnixNano(),
			LastDurationMS: 4.5, Observations: 120, Errors: 2}}
		if st != "up" {
			d.LastError, d.LastErrorTS = "request timeout", at.UnixNano()
		}
		return d
	}
	lateUp := devState("paris-r1", "up", now.Add(-time.Second))
	for _, d := range []*fleet.DeviceState{
		devState("paris-r1", "up", now.Add(-2*time.Second)), devState("paris-r1", "down", now),
		devState("paris-r1", "up", now.Add(-2*time.Second)), devState("paris-r1", "down", now),
		lateUp, devState("paris-sw9", "auth_failure", now),
	} {
		if err := sink.DeviceState(ctx, fleet.Meta{Site: "paris", Kind: fleet.KindDevices, ID: fleet.DeviceStateID("paris", d)}, d); err != nil {
			t.Fatal(err)
		}
	}

	eng, err := query.New(query.Sources(sink, query.Catalog(schema.Catalog)), query.DefaultOptions(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = eng.Stop(ctx) }()
	for sql, want := range map[string]string{
		"SELECT site, count(*) FROM actions WHERE state = 'firing' GROUP BY site ORDER BY site":                                                                                                  "lyon 3; paris 2",
		"SELECT site, count(*) FROM decisions GROUP BY site ORDER BY site":                                                                                                                       "lyon 3; paris 3",
		"SELECT site, count(*), sum(interface_in_bps__mean_2s) FROM if_2s GROUP BY site ORDER BY 1":                                                                                              "lyon 3 3; paris 5 12",
		"SELECT site, component, interface_in_bps__mean_2s FROM latest_if_2s ORDER BY site, component":                                                                                           "lyon e0 0; lyon e1 1; lyon e2 2; paris e0 10; paris e1 1; paris e2 2",
		"SELECT site, device, component, metric, last_value, samples, last_ts > first_ts FROM series":                                                                                            "lyon lyon-r1 e0 interface.in.octets 9 2 true",
		"SELECT site, state FROM actions WHERE fingerprint = 'fp1' ORDER BY site":                                                                                                                "lyon firing; paris firing",
		"SELECT site, device, windows, decisions, samples FROM devices ORDER BY site, device":                                                                                                    "lyon lyon-r1 3 3 2; paris paris-r1 5 3 0; paris paris-sw9 0 0 0",
		"SELECT device, coalesce(state, 'none'), coalesce(protocol, '-'), coalesce(last_error, '-'), state_ts IS NULL, first_seen IS NULL, last_seen IS NULL FROM devices ORDER BY site, device": "lyon-r1 none - - true false false; paris-r1 down snmp request timeout false false false; paris-sw9 auth_failure snmp request timeout false true true",
		"SELECT address, profile, last_duration_ms, observations, errors, last_error_ts = state_ts, last_success < state_ts FROM devices WHERE device = 'paris-r1'":                              "10.0.0.1:161 nokia-7210 4.5 120 2 true true",
		"SELECT site, metric, value FROM samples ORDER BY ts":                                                                                                                                    "lyon interface.in.octets 7; lyon interface.in.octets 9",
		"SELECT features FROM decisions WHERE id = 'd-paris-2'":                                                                                                                                  `{"interface_in_bps__mean_2s":2}`,
	} {
		if got := queryText(t, eng, sql); got != want {
			t.Errorf("%s:\n got %s\nwant %s", sql, got, want)
		}
	}
	if got := testutil.ToFloat64(sink.dups.WithLabelValues("decisions")); got != 6 {
		t.Errorf("duplicate decisions counted %v, want 6", got)
	}
	if got := testutil.ToFloat64(sink.skipped.WithLabelValues("decisions", "expired")); got != 1 {
		t.Errorf("expired decisions counted %v, want 1", got)
	}
	// The repeat of "down" is the state held: a duplicate; the repeat of
	// the first "up" and the late "up" are older than it.
	if got := testutil.ToFloat64(sink.dups.WithLabelValues("devices")); got != 1 {
		t.Errorf("duplicate device states counted %v, want 1", got)
	}
	if got := testutil.ToFloat64(sink.skipped.WithLabelValues("devices", "older_state")); got != 2 {
		t.Errorf("older device states counted %v, want 2", got)
	}
	// Retention removes rows, ids and devices as they age; lyon-r1's
	// state read at the end of retention outlives its data.
	sink.now = func() time.Time { return now.Add(cfg.Retention + 3*time.Second) }
	fresh := devState("lyon-r1", "up", now.Add(cfg.Retention))
	if err := sink.DeviceState(ctx, fleet.Meta{Site: "lyon", Kind: fleet.KindDevices, ID: fleet.DeviceStateID("lyon", fresh)}, fresh); err != nil {
		t.Fatal(err)
	}
	sink.expire()
	if got := queryText(t, eng, "SELECT (SELECT count(*) FROM decisions) + (SELECT count(*) FROM if_2s) + (SELECT count(*) FROM actions) + (SELECT count(*) FROM series) + (SELECT count(*) FROM latest_if_2s)"); got != "0" {
		t.Errorf("rows after retention: %s", got)
	}
	if got, want := queryText(t, eng, "SELECT site, device, state, windows, samples, first_seen IS NULL FROM devices"), "lyon lyon-r1 up 0 0 true"; got != want {
		t.Errorf("devices after retention: %s, want %s", got, want)
	}
	if len(sink.ids) != 0 {
		t.Errorf("%d ids kept after retention", len(sink.ids))
	}
}

// queryText runs sql and renders the rows as "a b; c d".
func queryText(t *testing.T, eng *query.Engine, sql string) string {
	t.Helper()
	var rows []string
	err := eng.Query(context.Background(), query.Request{SQL: sql}, func(r *query.Result) error {
		for r.Next() {
			rec := r.RecordBatch()
			for i := range int(rec.NumRows()) {
				var cells []string
				for c := range int(rec.NumCols()) {
					cells = append(cells, query.TextValue(rec.Column(c), i))
				}
				rows = append(rows, strings.Join(cells, " "))
			}
		}
		return r.Err()
	})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return strings.Join(rows, "; ")
}

// TestEdgeForwarderNeverWaits checks the pipeline's hooks return at once
// when the queues are full: what does not fit is dropped and counted.
func TestEdgeForwarderNeverWaits(t *testing.T) {
	cfg := DefaultFleetConfig().Edge
	cfg.Queue, cfg.SampleQueue = 2, 1
	cfg.SampleForwarding.Mode = fleet.SamplesAll
	f := newEdgeForwarder(cfg, "paris", nil, nil, slog.New(slog.DiscardHandler))
	row := &schema.FeatureRow{View: "v"}
	d := &schema.Decision{ID: "x", Transition: true, State: schema.StateFiring}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.window(row) // queued
		f.decision(d) // decision queued, its action dropped
		f.window(row) // dropped
		for range 3 { // the first batch queued, two dropped
			f.tap([]featurestore.Record{{Series: 0}, {Series: 1}})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a hook waited for the fleet path")
	}
	for kind, want := range map[string]float64{"windows": 1, "actions": 1, "decisions": 0, "samples": 4} {
		if got := testutil.ToFloat64(f.dropped.WithLabelValues(kind)); got != want {
			t.Errorf("dropped %s: %v, want %v", kind, got, want)
		}
	}
	// With forwarding off, the store gets no tap.
	cfg.SampleForwarding.Mode = fleet.SamplesOff
	if newEdgeForwarder(cfg, "paris", nil, nil, slog.New(slog.DiscardHandler)).forwardsSamples() {
		t.Error("forwarding off: the forwarder forwards samples")
	}
	cfg.SampleForwarding.Devices = map[string]fleet.SampleMode{"r1": fleet.SamplesSampled}
	if !newEdgeForwarder(cfg, "paris", nil, nil, slog.New(slog.DiscardHandler)).forwardsSamples() {
		t.Error("forwarding off but sampled for r1: the forwarder forwards no samples")
	}
}

// TestEdgeForwarderDeviceStates checks what the forwarder queues of the
// collectors' device states at each check: every state at first, then only
// changes (a new state or error; not last_success or the counters), every
// state again as a heartbeat, a removed device once, nothing of devices
// another node owns, even one this node reported before; a state the full
// queue dropped goes at the next check.
func TestEdgeForwarderDeviceStates(t *testing.T) {
	cfg := DefaultFleetConfig().Edge
	cfg.Queue = 3
	f := newEdgeForwarder(cfg, "paris", nil, nil, slog.New(slog.DiscardHandler))
	states := []schema.DeviceState{
		{Device: "r1", Address: "10.0.0.1:161", Protocol: "snmp", State: "up", LastSuccess: 1},
		{Device: "r2", Address: "10.0.0.2:57400", Protocol: "gnmi", State: "connecting"},
		{Device: "r3", Protocol: "snmp", State: "not_owned"},
	}
	f.states = func() []schema.DeviceState { return slices.Clone(states) }
	sent := map[string]deviceKey{}
	t0 := time.Unix(1_800_000_000, 0)
	// take empties the queue and renders it as "device state heartbeat".
	take := func() string {
		var out []string
		for len(f.items) > 0 {
			it := <-f.items
			d := it.device
			if d == nil {
				t.Fatalf("queued %s, want device states", it.kind())
			}
			out = append(out, fmt.Sprintf("%s %s %v", d.Device, d.State, d.Heartbeat))
		}
		return strings.Join(out, "; ")
	}
	for i, step := range []struct {
		change func()
		beat   bool
		want   string
	}{
		{nil, false, "r1 up false; r2 connecting false"},
		{func() { states[0].LastSuccess, states[0].Observations = 2, 50 }, false, ""},
		{func() { states[1].State = "up" }, false, "r2 up false"},
		{func() { states[0].State, states[0].LastError = "down", "timeout" }, false, "r1 down false"},
		{func() { states[0].LastError = "no route to host" }, false, "r1 down false"},
		{nil, true, "r1 down true; r2 up true"},
		{func() { states = states[1:] }, false, "r1 removed false"},
		// r2 handed to another node of the site: its state is that node's
		// to report, and this one says nothing (not "removed").
		{func() { states[0].State = "not_owned" }, false, ""},
		{nil, true, ""},
	} {
		if step.change != nil {
			step.change()
		}
		if !f.checkDevices(t0.Add(time.Duration(i)*time.Second), step.beat, sent) {
			t.Errorf("step %d: the queue did not take everything", i)
		}
		if got := take(); got != step.want {
			t.Errorf("step %d: queued %q, want %q", i, got, step.want)
		}
	}
	// A full queue: what does not fit is dropped, counted, and goes at the
	// next check.
	states = append(states, schema.DeviceState{Device: "r4", Protocol: "snmp", State: "unknown"},
		schema.DeviceState{Device: "r5", Protocol: "snmp", State: "unknown"}, schema.DeviceState{Device: "r6", Protocol: "snmp", State: "unknown"})
	f.items <- edgeItem{row: &schema.FeatureRow{}}
	if f.checkDevices(t0.Add(time.Minute), false, sent) {
		t.Error("a full queue took everything")
	}
	if got := testutil.ToFloat64(f.dropped.WithLabelValues("devices")); got != 1 {
		t.Errorf("dropped devices: %v, want 1", got)
	}
	<-f.items // the window
	got := take()
	if !f.checkDevices(t0.Add(time.Minute+time.Second), false, sent) {
		t.Error("the queue did not take the dropped state")
	}
	if got += "; " + take(); got != "r4 unknown false; r5 unknown false; r6 unknown false" {
		t.Errorf("queued %q over the two checks", got)
	}
}

// TestEdgeForwarderGathersSamples checks that the collectors' small batches
// leave in messages of up to max_per_message samples: one when the next
// batch would overflow it, one when its first batch waited linger, and what
// is queued at Stop.
func TestEdgeForwarderGathersSamples(t *testing.T) {
	cfg := DefaultFleetConfig().Edge
	cfg.SampleForwarding.Mode = fleet.SamplesAll
	cfg.SampleForwarding.MaxPerMessage = 1000
	cfg.SampleForwarding.Linger = time.Hour
	f := newEdgeForwarder(cfg, "paris", nil, nil, slog.New(slog.DiscardHandler))
	var (
		mu   sync.Mutex
		msgs []int
	)
	f.publishSamples = func(_ context.Context, b []fleet.SeriesSample) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		msgs = append(msgs, len(b))
		return len(b), nil
	}
	sent := func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(msgs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); f.forwardSamples(ctx) }()
	batch := func(n int) []featurestore.Record { return make([]featurestore.Record, n) }
	for _, n := range []int{300, 300, 300, 300, 2500, 50} {
		f.tap(batch(n))
	}
	// 300×3 fit; the fourth 300 would overflow: 900 goes. 300 + 2500
	// overflows: 300 goes, then 2500 alone (PublishSeriesSamples splits it).
	// The 50 waits for linger.
	testkit.Eventually(t, "two full messages", func() bool { return len(sent()) == 3 })
	if got := sent(); !slices.Equal(got, []int{900, 300, 2500}) {
		t.Fatalf("messages %v, want [900 300 2500]", got)
	}
	close(f.stop) // Stop: what is queued goes at once
	<-done
	if got := sent(); !slices.Equal(got, []int{900, 300, 2500, 50}) {
		t.Fatalf("after stop: messages %v, want [900 300 2500 50]", got)
	}

	// A short linger sends a lone batch without waiting for more.
	cfg.SampleForwarding.Linger = 20 * time.Millisecond
	f = newEdgeForwarder(cfg, "paris", nil, nil, slog.New(slog.DiscardHandler))
	msgs = nil
	f.publishSamples = func(_ context.Context, b []fleet.SeriesSample) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		msgs = append(msgs, len(b))
		return len(b), nil
	}
	go f.forwardSamples(ctx)
	f.tap(batch(7))
	testkit.Eventually(t, "the lone batch after linger", func() bool { return slices.Equal(sent(), []int{7}) })
}

// TestEdgeLeafRefused runs an edge against a hub that refuses its leaf
// connection, for a wrong password and for TLS the hub does not speak: the
// edge logs the refusal, counts it by reason, and keeps running and
// deciding alone (its own streams work).
func TestEdgeLeafRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	leafPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	hub, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: leafPort, Username: "edge", Password: "right"}})
	if err != nil {
		t.Fatal(err)
	}
	go hub.Start()
	if !hub.ReadyForConnections(10 * time.Second) {
		t.Fatal("hub server not ready")
	}
	defer hub.Shutdown()
	leafAddr := fmt.Sprintf("127.0.0.1:%d", leafPort)

	for _, tc := range []struct {
		name, reason, log string
		remote            LeafRemoteConfig
	}{
		{"wrong password", "auth", "the hub refused this edge's leaf connection (credentials)",
			LeafRemoteConfig{URLs: []string{"nats-leaf://edge:wrong@" + leafAddr}}},
		{"TLS to a plain port", "tls", "the leaf connection to the hub failed TLS",
			LeafRemoteConfig{URLs: []string{"tls://edge:right@" + leafAddr}, TLS: TLSConfig{InsecureSkipVerify: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DataDir = t.TempDir()
			cfg.HTTP.Listen, cfg.NATS.Listen = "127.0.0.1:0", "127.0.0.1:0"
			cfg.ShutdownTimeout = 5 * time.Second
			cfg.Role, cfg.Site = RoleEdge, "paris"
			cfg.NATS.Leaf.Remotes = []LeafRemoteConfig{tc.remote}
			var logs testkit.SyncBuffer
			svc := startServiceLog(t, &cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			defer func() {
				if t.Failed() {
					t.Log(logs.String())
				}
			}()
			testkit.EventuallyWithin(t, 15*time.Second, "the refusal counted", func() bool {
				return testutil.ToFloat64(svc.nats.leaf.errors.WithLabelValues(tc.reason)) > 0
			})
			if !strings.Contains(logs.String(), tc.log) {
				t.Errorf("no clear log line of the refusal:\n%s", logs.String())
			}
			if err := svc.Ready(); err != nil {
				t.Fatalf("edge not ready after the refusal: %v", err)
			}
			if got := testutil.ToFloat64(svc.nats.leaf.errors.WithLabelValues(tc.reason)); got < 1 {
				t.Fatalf("netfeat_fleet_leaf_errors_total{reason=%q} = %v", tc.reason, got)
			}
			// It keeps working alone: a decision reaches its local stream.
			svc.edge.decision(&schema.Decision{ID: "d1", Model: "m", Entity: schema.Entity{Device: "r1"}})
			js, err := jetstream.New(svc.NATS().Conn())
			if err != nil {
				t.Fatal(err)
			}
			testkit.EventuallyWithin(t, 10*time.Second, "the decision in the local stream", func() bool {
				s, err := js.Stream(context.Background(), fleet.EdgeStream(fleet.KindDecisions))
				return err == nil && s.CachedInfo().State.Msgs == 1
			})
		})
	}
}

// TestFleetExamples checks the shipped edge and hub examples load as
// `netfeat config check` loads them.
func TestFleetExamples(t *testing.T) {
	for file, role := range map[string]string{"../examples/fleet-edge.yaml": RoleEdge, "../examples/fleet-hub.yaml": RoleHub} {
		cfg, err := LoadConfig(file)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if cfg.Role != role {
			t.Errorf("%s: role %q, want %q", file, cfg.Role, role)
		}
	}
}

// TestHubTableMaxRows checks a full table keeps at most max_rows, the
// newest.
func TestHubTableMaxRows(t *testing.T) {
	tab := &hubTable{}
	for i := range 1000 {
		tab.add(64, hubRow{ts: int64(i)})
		if len(tab.rows) > 64 {
			t.Fatalf("%d rows after %d additions, max 64", len(tab.rows), i+1)
		}
	}
	if last := tab.rows[len(tab.rows)-1].ts; last != 999 || len(tab.rows) < 60 {
		t.Fatalf("%d rows, newest %d", len(tab.rows), last)
	}
}

// TestHubRewindAfterClusterRestart starts the hub's rewind right after
// every node of its cluster was killed and started again over its store:
// the streams have no leader for a while, and the rewind must wait for
// them instead of failing the hub's start.
func TestHubRewindAfterClusterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a 3-node nats-server cluster")
	}
	cl := fleettest.StartCluster(t, 3)
	nc := cl.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := DefaultFleetConfig().Hub
	for _, name := range []string{"NETFEAT_WINDOWS_paris", "NETFEAT_SAMPLES_lyon"} {
		s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"test." + name}, Replicas: 3, Storage: jetstream.FileStorage})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: cfg.Consumer, AckPolicy: jetstream.AckExplicitPolicy, Replicas: 3}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range cl.Nodes {
		cl.Cluster.Kill(i)
	}
	for i := range cl.Nodes {
		cl.Restart(i)
	}
	h := &hubComponent{cfg: cfg, log: slog.New(slog.DiscardHandler)}
	n, err := h.rewind(ctx, js)
	if err != nil || n != 2 {
		t.Fatalf("rewind after the restart: %d streams, %v", n, err)
	}
	for _, name := range []string{"NETFEAT_WINDOWS_paris", "NETFEAT_SAMPLES_lyon"} {
		if _, err := js.Consumer(ctx, name, cfg.Consumer); !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Errorf("%s: the hub's consumer is still there (%v)", name, err)
		}
	}
}

// TestHubFutureStamps: a device state or a window stamped far ahead of
// the hub's clock (an edge clock that jumped) does not become the newest,
// so the correctly stamped ones after it still show.
func TestHubFutureStamps(t *testing.T) {
	view := schema.FeatureView{Name: "if_2s", Entity: schema.EntityComponent, Metrics: []string{"interface.in.bps"},
		Aggregations: []schema.Aggregation{"mean"}, Windows: []time.Duration{2 * time.Second}, Hop: 2 * time.Second}
	cfg := DefaultFleetConfig().Hub
	sink := newHubSink(cfg, []schema.FeatureView{view}, prometheus.NewRegistry())
	defer sink.close()
	ctx := context.Background()
	now := time.Now()
	names := view.FeatureNames()
	for _, at := range []struct {
		ts    time.Time
		state string
	}{{now.Add(time.Hour), "down"}, {now, "up"}} {
		d := &fleet.DeviceState{TS: at.ts.UnixNano(), DeviceState: schema.DeviceState{Device: "r1", State: at.state}}
		if err := sink.DeviceState(ctx, fleet.Meta{Site: "paris", Kind: fleet.KindDevices, ID: fleet.DeviceStateID("paris", d)}, d); err != nil {
			t.Fatal(err)
		}
		row := &schema.FeatureRow{View: view.Name, Entity: schema.Entity{Device: "r1", Component: "e0"},
			WindowStart: at.ts.Add(-2 * time.Second).UnixNano(), WindowEnd: at.ts.UnixNano(), Names: names, Values: []float64{float64(at.ts.Sub(now) / time.Second)}}
		if err := sink.Window(ctx, fleet.Meta{Site: "paris", Kind: fleet.KindWindows, ID: fleet.WindowID("paris", row)}, row); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := query.New(query.Sources(sink, query.Catalog(schema.Catalog)), query.DefaultOptions(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = eng.Stop(ctx) }()
	for sql, want := range map[string]string{
		"SELECT device, state FROM devices":                             "r1 up",
		"SELECT component, interface_in_bps__mean_2s FROM latest_if_2s": "e0 0",
		"SELECT count(*) FROM if_2s":                                    "2",
	} {
		if got := queryText(t, eng, sql); got != want {
			t.Errorf("%s:\n got %s\nwant %s", sql, got, want)
		}
	}
	for kind, reason := range map[string]string{"devices": "future", "windows": "future_latest"} {
		if got := testutil.ToFloat64(sink.skipped.WithLabelValues(kind, reason)); got != 1 {
			t.Errorf("skipped %s/%s = %v, want 1", kind, reason, got)
		}
	}
}
