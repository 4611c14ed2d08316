package inference

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(benchSubscriberEnv); url != "" {
		if err := benchSubscriber(url); err != nil {
			fmt.Fprintln(os.Stderr, "bench subscriber:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if addr := os.Getenv(benchTCPSinkEnv); addr != "" {
		if err := benchTCPSink(addr); err != nil {
			fmt.Fprintln(os.Stderr, "bench tcp sink:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m,
		// Badger's and nats.go's package-level helpers outlive a test.
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

// congestionView is the feature view the shipped congestion model scores.
var congestionView = schema.FeatureView{
	Name:   "interface_1m",
	Entity: schema.EntityComponent,
	Metrics: []string{
		"interface.in.utilization", "interface.out.utilization",
		"interface.in.errors_ps", "interface.out.discards_ps",
	},
	Aggregations: []schema.Aggregation{schema.AggMean, schema.AggMax},
	Windows:      []time.Duration{time.Minute},
	Hop:          10 * time.Second,
}

var congestionNames = congestionView.FeatureNames()

// row builds an interface_1m row; vals maps feature name → value, the
// others are 0.
func row(device, iface string, end time.Time, vals map[string]float64) *schema.FeatureRow {
	r := &schema.FeatureRow{
		View: congestionView.Name, Entity: schema.Entity{Device: device, Component: iface},
		WindowStart: end.Add(-time.Minute).UnixNano(), WindowEnd: end.UnixNano(),
		Names: congestionNames, Values: make([]float64, len(congestionNames)),
		LastIngestTS: time.Now().UnixNano(), ClosedAt: time.Now().UnixNano(),
	}
	for i, n := range congestionNames {
		r.Values[i] = vals[n]
	}
	return r
}

// congested and idle are feature vectors the shipped model scores high and
// low (they are edge rows of models/congestion.golden.json).
var (
	congested = map[string]float64{
		"interface_in_utilization__mean_1m": 0.1, "interface_in_utilization__max_1m": 0.2,
		"interface_out_utilization__mean_1m": 0.95, "interface_out_utilization__max_1m": 1.0,
		"interface_out_discards_ps__mean_1m": 500, "interface_out_discards_ps__max_1m": 2000,
	}
	idle = map[string]float64{
		"interface_in_utilization__mean_1m": 0.1, "interface_in_utilization__max_1m": 0.2,
		"interface_out_utilization__mean_1m": 0.3, "interface_out_utilization__max_1m": 0.4,
	}
)

const congestionModel = "../models/congestion.json"

// goldenCongested and goldenIdle are python3-xgboost's scores of the
// congested and idle vectors with the shipped model, read from the rows
// of models/congestion.golden.json that hold them (train_congestion.py
// writes them there), so a retrained model needs no edit here.
var goldenCongested, goldenIdle = goldenScore(congested), goldenScore(idle)

func goldenScore(vec map[string]float64) float64 {
	b, err := os.ReadFile("../models/congestion.golden.json")
	if err != nil {
		panic(err)
	}
	var g struct {
		Features   []string     `json:"features"`
		Rows       [][]*float64 `json:"rows"`
		Prediction []float64    `json:"prediction"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		panic(err)
	}
rows:
	for i, r := range g.Rows {
		for j, f := range g.Features {
			v, ok := vec[f]
			if ok != (r[j] != nil) || ok && float64(float32(v)) != *r[j] {
				continue rows
			}
		}
		return g.Prediction[i]
	}
	panic(fmt.Sprintf("models/congestion.golden.json has no row for %v", vec))
}

// startNATS runs testkit.StartNATS with JetStream stored in store, on
// port (-1 for a random one): the one server shape the tests here use.
func startNATS(t testing.TB, port int, store string) *server.Server {
	t.Helper()
	return testkit.StartNATS(t, server.Options{Port: port, JetStream: true, StoreDir: store})
}

// connect connects to url, reconnecting forever every 20 ms (the outbox
// tests restart the server under a connected runtime).
func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	return testkit.ConnectNATS(t, url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
}

// testConfig returns a configuration with the congestion model and a
// utilisation rule as its fallback, publishing every decision (the tests of
// publishing count them; lifecycle_test.go tests publishing transitions).
func testConfig() Config {
	c := DefaultConfig()
	c.Publish = PublishAll
	c.Rules = []RuleConfig{{
		Name: "out_util_high", View: "interface_1m", Feature: "interface_out_utilization__mean_1m",
		Op: ">", Threshold: 0.9, Action: "alert",
	}}
	c.Models = []ModelConfig{{
		Name: "congestion", Kind: KindXGBoost, View: "interface_1m", File: congestionModel,
		Action: "reroute", FallbackRule: "out_util_high",
	}}
	return c
}

// newRuntime creates and starts a runtime and stops it at the end of the
// test.
func newRuntime(t testing.TB, cfg Config, nc *nats.Conn, dir string) *Runtime {
	t.Helper()
	r, err := New(cfg, connOf(nc), dir, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return r
}

// collector subscribes to decisions and keeps what arrives.
type collector struct {
	mu      sync.Mutex
	msgs    []*nats.Msg
	ds      []schema.Decision
	ch      chan struct{}
	subject string        // what it subscribed to
	barrier chan struct{} // a message quiesce sent arrived
}

func collect(t testing.TB, nc *nats.Conn, subject string) *collector {
	t.Helper()
	c := &collector{ch: make(chan struct{}, 1<<16), subject: subject, barrier: make(chan struct{}, 1)}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		if m.Header.Get(barrierHeader) != "" {
			c.barrier <- struct{}{}
			return
		}
		var d schema.Decision
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Errorf("decision JSON: %v: %s", err, m.Data)
			return
		}
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.ds = append(c.ds, d)
		c.mu.Unlock()
		c.ch <- struct{}{}
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return c
}

// wait returns once n decisions arrived, or fails the test.
func (c *collector) wait(t testing.TB, n int) []schema.Decision {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.ds)
		c.mu.Unlock()
		if got >= n {
			c.mu.Lock()
			defer c.mu.Unlock()
			return append([]schema.Decision(nil), c.ds...)
		}
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("received %d decisions, want %d", got, n)
		}
	}
}

// connOf returns the connection source New takes for a fixed nc (nil: no
// NATS).
func connOf(nc *nats.Conn) func() *nats.Conn {
	if nc == nil {
		return nil
	}
	return func() *nats.Conn { return nc }
}
