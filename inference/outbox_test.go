package inference

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

// TestOutboxExactlyOnce stops the NATS server, makes decisions (across a
// restart of the runtime too), restarts the server on the same port and
// store, and checks that a JetStream consumer sees every decision exactly
// once, in the order they were made.
func TestOutboxExactlyOnce(t *testing.T) {
	ctx := context.Background()
	store, dir := t.TempDir(), t.TempDir()
	srv := startNATS(t, -1, store)
	port := srv.Addr().(*net.TCPAddr).Port
	nc := connect(t, srv.ClientURL())

	cfg := testConfig()
	cfg.JetStream.Stream = "NETFEAT_DECISIONS"
	cfg.Outbox.RetryInterval = 20 * time.Millisecond
	cfg.Outbox.AckTimeout = 2 * time.Second
	cfg.Outbox.DrainBatch = 7 // several drain steps

	var want []string // decision ids in the order they were made
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	produce := func(r *Runtime, n int) {
		t.Helper()
		before := len(liveIDs(r))
		for i := range n {
			end = end.Add(10 * time.Second)
			r.HandleRow(row("pe1", fmt.Sprintf("Gi0/%d", i%4), end, congested))
		}
		testkit.Eventually(t, "len(liveIDs(r)) == before+2*n", func() bool { return len(liveIDs(r)) == before+2*n })
	}

	a, err := New(cfg, connOf(nc), dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	produce(a, 10) // NATS up: published directly
	testkit.Eventually(t, "testutil.ToFloat64(a.m.published) == 20", func() bool { return testutil.ToFloat64(a.m.published) == 20 })

	srv.Shutdown()
	srv.WaitForShutdown()
	testkit.Eventually(t, "!nc.IsConnected()", func() bool { return !nc.IsConnected() })
	produce(a, 15) // NATS down: into the outbox
	testkit.Eventually(t, "a.pub.ob.pending.Load() == 30", func() bool { return a.pub.ob.pending.Load() == 30 })
	want = append(want, liveIDs(a)...)
	stopCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if err := a.Stop(stopCtx); err != nil {
		t.Fatalf("stop while NATS is down: %v", err)
	}
	cancel()

	// A new runtime on the same data directory finds the outbox.
	b := newRuntime(t, cfg, nc, dir)
	if n := b.pub.ob.pending.Load(); n != 30 {
		t.Fatalf("outbox after restart holds %d, want 30", n)
	}
	produce(b, 5)
	testkit.Eventually(t, "b.pub.ob.pending.Load() == 40", func() bool { return b.pub.ob.pending.Load() == 40 })
	if n := testutil.ToFloat64(b.m.published); n != 0 {
		t.Fatalf("published %v while NATS was down", n)
	}

	startNATS(t, port, store)
	testkit.Eventually(t, "b.pub.ob.pending.Load() == 0", func() bool { return b.pub.ob.pending.Load() == 0 })
	produce(b, 5) // after the drain: direct again
	want = append(want, liveIDs(b)...)
	// 40 drained from the outbox (30 made by a, 10 by b), then 10 direct.
	testkit.Eventually(t, "testutil.ToFloat64(b.m.published) == 50", func() bool { return testutil.ToFloat64(b.m.published) == 50 })
	if got := testutil.ToFloat64(b.m.outboxDrained); got != 40 {
		t.Fatalf("drained %v, want 40", got)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, cfg.JetStream.Stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			got = append(got, m.Headers().Get(jetstream.MsgIDHeader))
			n++
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if len(want) != 70 {
		t.Fatalf("made %d decisions, want 70", len(want))
	}
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Fatalf("decision %s reached the stream %d times", id, seen[id])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("stream holds %d decisions, made %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("decision %d out of order: stream %s, made %s", i, got[i], want[i])
		}
	}
}

// liveIDs lists the ids of the runtime's published (non-shadow) decisions
// in the order they were made.
func liveIDs(r *Runtime) []string {
	var ids []string
	for _, x := range r.rec.snapshot() {
		if !x.shadow {
			ids = append(ids, x.d.ID)
		}
	}
	return ids
}

func TestOutboxEncoding(t *testing.T) {
	m := &outMsg{subject: schema.DecisionSubject("m", "d"), id: "id-1", data: []byte(`{"a":1}`)}
	got, err := decodeOutMsg(encodeOutMsg(m))
	if err != nil || got.subject != m.subject || got.id != m.id || string(got.data) != string(m.data) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, b := range [][]byte{nil, {0xff}, {5, 'a'}} {
		if _, err := decodeOutMsg(b); !errors.Is(err, errCorruptOutbox) {
			t.Fatalf("decode %v: %v", b, err)
		}
	}
}

// TestOutboxCoreNATS is the same outage on core NATS: workers publish
// directly while NATS is up, decisions wait in the outbox while it is
// down, and a subscriber on the same (reconnecting) connection receives
// every decision once, in order, including those made after the drain.
func TestOutboxCoreNATS(t *testing.T) {
	store := t.TempDir()
	srv := startNATS(t, -1, store)
	port := srv.Addr().(*net.TCPAddr).Port
	nc := connect(t, srv.ClientURL())
	got := collect(t, nc, "netfeat.decisions.>")
	cfg := testConfig()
	cfg.Outbox.RetryInterval = 20 * time.Millisecond
	r := newRuntime(t, cfg, nc, t.TempDir())
	direct := func() bool {
		r.pub.mu.RLock()
		defer r.pub.mu.RUnlock()
		return r.pub.direct
	}

	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	produce := func(n int) {
		for range n {
			end = end.Add(10 * time.Second)
			r.HandleRow(row("pe1", "Gi0/1", end, congested))
		}
	}
	testkit.Eventually(t, "the direct publish", direct)
	produce(10)
	got.wait(t, 20)

	srv.Shutdown()
	srv.WaitForShutdown()
	testkit.Eventually(t, "!nc.IsConnected()", func() bool { return !nc.IsConnected() })
	produce(10)
	testkit.Eventually(t, "r.pub.ob.pending.Load() == 20", func() bool { return r.pub.ob.pending.Load() == 20 })
	if direct() {
		t.Fatal("workers still publish directly while decisions wait in the outbox")
	}
	startNATS(t, port, store)
	testkit.Eventually(t, "r.pub.ob.pending.Load() == 0 && direct()", func() bool { return r.pub.ob.pending.Load() == 0 && direct() })
	produce(5)
	ds := got.wait(t, 50)
	ids := liveIDs(r)
	if len(ds) != 50 || len(ids) != 50 {
		t.Fatalf("received %d, made %d", len(ds), len(ids))
	}
	for i := range ids {
		if ds[i].ID != ids[i] {
			t.Fatalf("decision %d: received %s, made %s", i, ds[i].ID, ids[i])
		}
	}
}

// TestOutboxCorruptEntries drains an outbox whose oldest entries do not
// decode: they are dropped and counted, the good ones delivered in order.
func TestOutboxCorruptEntries(t *testing.T) {
	srv := startNATS(t, -1, t.TempDir())
	nc := connect(t, srv.ClientURL())
	sub, err := nc.SubscribeSync("netfeat.decisions.>")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Outbox.DrainBatch = 2
	r, err := New(cfg, connOf(nc), t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop(context.Background())
	if err := r.open(); err != nil { // the files, without the goroutines: the test drains by hand
		t.Fatal(err)
	}
	ob := r.pub.ob
	good := func(id string) *outMsg { return &outMsg{subject: "netfeat.decisions.m.d", id: id, data: []byte(`{}`)} }
	// Two corrupt entries first fill a whole drain batch.
	if err := r.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set(outboxKey(ob.nextSeq), []byte{0xff}); err != nil {
			return err
		}
		return txn.Set(outboxKey(ob.nextSeq+1), []byte{0xff})
	}); err != nil {
		t.Fatal(err)
	}
	ob.nextSeq += 2
	ob.count += 2
	if _, err := ob.append([]*outMsg{good("a"), good("b"), good("c")}, 100); err != nil {
		t.Fatal(err)
	}
	r.pub.drain(time.Now().Add(5 * time.Second))
	if ob.count != 0 || testutil.ToFloat64(r.m.outboxDropped) != 2 {
		t.Fatalf("outbox holds %d, dropped %v", ob.count, testutil.ToFloat64(r.m.outboxDropped))
	}
	for _, want := range []string{"a", "b", "c"} {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get(jetstream.MsgIDHeader); got != want {
			t.Fatalf("received %q, want %q", got, want)
		}
	}
}
