package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testTTL is the lease TTL of the tests: leases are written with a 2 s
// server-side TTL and renewed every testRenew.
const (
	testTTL   = 3 * time.Second
	testRenew = (testTTL - time.Second) / 3
)

// natsServer is an embedded NATS server that a test can stop and start
// again on the same port and store, to simulate a KV outage.
type natsServer struct {
	t     testing.TB
	store string
	port  int
	mu    sync.Mutex
	srv   *server.Server
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	ns := &natsServer{t: t, store: t.TempDir(), port: -1}
	ns.start()
	t.Cleanup(ns.stop)
	return ns
}

func (ns *natsServer) start() {
	ns.t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: ns.port, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: ns.store,
	})
	if err != nil {
		ns.t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		ns.t.Fatalf("nats server not ready")
	}
	ns.mu.Lock()
	ns.srv = s
	ns.port = s.Addr().(*net.TCPAddr).Port
	ns.mu.Unlock()
}

func (ns *natsServer) stop() {
	ns.mu.Lock()
	s := ns.srv
	ns.srv = nil
	ns.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

func (ns *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", ns.port) }

// site is the nodes of one test's cluster and the timeline of their owned
// sets.
type site struct {
	t       *testing.T
	ns      *natsServer
	targets []string
	tl      Timeline
	mu      sync.Mutex
	nodes   map[string]*testNode
}

type testNode struct {
	*Node
	nc  *nats.Conn
	reg *prometheus.Registry
	// dead is set when the test has closed the node's connection: the
	// process is gone, whatever its goroutine still believes.
	dead bool
}

func newSite(t *testing.T, targets int) *site {
	return &site{t: t, ns: startNATS(t), targets: names("router-", targets), nodes: map[string]*testNode{}}
}

// start runs a node with its own connection; it is stopped gracefully
// when the test ends unless the test stopped or killed it.
func (s *site) start(name string, ttl time.Duration) *testNode {
	return s.startRenew(name, ttl, 0)
}

// startRenew starts a node renewing every renew (0: the default).
func (s *site) startRenew(name string, ttl, renew time.Duration) *testNode {
	t := s.t
	t.Helper()
	nc, err := nats.Connect(s.ns.url(), nats.Timeout(10*time.Second), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	reg := prometheus.NewRegistry()
	n, err := New(Config{Node: name, LeaseTTL: ttl, Renew: renew, Targets: s.targets}, js, reg, testLogger(t))
	if err != nil {
		t.Fatalf("new node: %v", err)
	}
	n.OnChange(s.tl.Observer(name))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	tn := &testNode{Node: n, nc: nc, reg: reg}
	s.mu.Lock()
	s.nodes[name] = tn
	s.mu.Unlock()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Stop(ctx)
		nc.Close()
	})
	return tn
}

// stop stops a node gracefully and forgets it.
func (s *site) stop(name string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.nodes[name].Stop(ctx); err != nil {
		s.t.Fatalf("stop %s: %v", name, err)
	}
	s.mu.Lock()
	delete(s.nodes, name)
	s.mu.Unlock()
}

// kill closes a node's connection without releasing anything, as kill -9
// would, and records that from now on it owns nothing. Its goroutine
// keeps running like a partitioned process; what it delivers afterwards
// stays in the timeline for the overlap check.
func (s *site) kill(name string) time.Time {
	tn := s.nodes[name]
	tn.nc.Close()
	at := time.Now()
	s.mu.Lock()
	tn.dead = true
	s.mu.Unlock()
	return at
}

// running returns the names of nodes neither stopped nor killed.
func (s *site) running() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, n := range s.nodes {
		if !n.dead {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// settled reports whether the running, non-drained nodes own exactly the
// assignment: each target by one node, the one rendezvous hashing gives.
func (s *site) settled(drained ...string) (bool, string) {
	var live []string
	for _, n := range s.running() {
		if !slices.Contains(drained, n) {
			live = append(live, n)
		}
	}
	want := map[string][]string{}
	for _, tg := range s.targets {
		a := Assign(tg, live)
		want[a] = append(want[a], tg)
	}
	for _, n := range s.running() {
		got := s.nodes[n].Owned()
		slices.Sort(want[n])
		if !slices.Equal(got, want[n]) {
			return false, fmt.Sprintf("%s owns %d targets, want %d", n, len(got), len(want[n]))
		}
	}
	return true, ""
}

// owners returns target → node over the running nodes' owned sets.
func (s *site) owners() map[string]string {
	out := map[string]string{}
	for _, n := range s.running() {
		for _, tg := range s.nodes[n].Owned() {
			out[tg] = n
		}
	}
	return out
}

// waitFor polls cond every 5 ms until it holds, failing the test with its
// last explanation after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var why string
	for time.Since(start) < d {
		var ok bool
		if ok, why = cond(); ok {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %s", what, d, why)
	return 0
}

// realEvents is the timeline as the devices see it: a killed node owns
// nothing from its kill on, whatever its goroutine delivers later.
func realEvents(events []Ownership, killed string, at time.Time) []Ownership {
	var out []Ownership
	inserted := false
	for _, e := range events {
		if !inserted && e.Time.After(at) {
			out = append(out, Ownership{Time: at, Node: killed})
			inserted = true
		}
		if e.Node == killed && !e.Time.Before(at) {
			continue
		}
		out = append(out, e)
	}
	if !inserted {
		out = append(out, Ownership{Time: at, Node: killed})
	}
	return out
}

func checkNoOverlap(t *testing.T, tl *Timeline) {
	t.Helper()
	if o := Overlaps(tl.Events()); len(o) > 0 {
		t.Fatalf("%d moments with a target owned twice, first: %s owned by %s and %s at %v",
			len(o), o[0].Target, o[0].Nodes[0], o[0].Nodes[1], o[0].Time.Format(time.StampMicro))
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = testWriter{}

// (a) Three nodes share 200 targets: each target is owned by exactly one
// node, the one the assignment gives, and Status says the same.
func TestThreeNodesOwnEveryTargetOnce(t *testing.T) {
	s := newSite(t, 200)
	for _, n := range []string{"a", "b", "c"} {
		s.start(n, testTTL)
	}
	took := waitFor(t, 5*time.Second, "settle", func() (bool, string) { return s.settled() })
	t.Logf("3 nodes settled on 200 targets in %v", took.Round(time.Millisecond))
	owners := s.owners()
	if len(owners) != 200 {
		t.Fatalf("%d targets owned, want 200", len(owners))
	}
	total := 0
	for _, n := range s.running() {
		c := len(s.nodes[n].Owned())
		total += c
		if got := testutil.ToFloat64(s.nodes[n].m.owned); int(got) != c {
			t.Fatalf("%s: owned gauge %v, owns %d", n, got, c)
		}
		t.Logf("node %s owns %d targets", n, c)
	}
	if total != 200 {
		t.Fatalf("nodes own %d targets in total, want 200 (a target owned twice)", total)
	}
	checkNoOverlap(t, &s.tl)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.nodes["a"].Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if len(st.Nodes) != 3 || len(st.Targets) != 200 {
		t.Fatalf("status: %d nodes, %d targets", len(st.Nodes), len(st.Targets))
	}
	for _, ts := range st.Targets {
		if !ts.Valid || ts.Owner != owners[ts.Target] {
			t.Fatalf("status: %s owned by %q (valid %v), nodes say %q", ts.Target, ts.Owner, ts.Valid, owners[ts.Target])
		}
	}
	for _, ns := range st.Nodes {
		if !ns.Alive || ns.Owned != len(s.nodes[ns.Node].Owned()) || ns.Targets != 200 {
			t.Fatalf("status of %s: %+v", ns.Node, ns)
		}
		if left := time.Until(ns.LeaseExpires); left <= 0 || left > testTTL+time.Second {
			t.Fatalf("status of %s: lease expires in %v", ns.Node, left)
		}
	}
}

// (b) A node stopped gracefully hands its targets over at once: the others
// own them within one renewal period.
func TestGracefulStopHandsOver(t *testing.T) {
	s := newSite(t, 200)
	for _, n := range []string{"a", "b", "c"} {
		s.start(n, testTTL)
	}
	waitFor(t, 5*time.Second, "settle", func() (bool, string) { return s.settled() })
	before := len(s.nodes["b"].Owned())
	acquiredBefore := acquired(s, "a", "c")
	start := time.Now()
	s.stop("b")
	waitFor(t, testRenew, "others own b's targets", func() (bool, string) { return s.settled() })
	gap := LongestGap(s.tl.Events(), s.targets, start, time.Now())
	t.Logf("graceful stop: %d targets handed over, all owned again %v after Stop began; longest gap %v (%s)",
		before, time.Since(start).Round(time.Millisecond), gap.Duration().Round(time.Microsecond), gap.Target)
	if gap.Duration() > testRenew {
		t.Fatalf("longest gap %v, want within one renewal (%v)", gap.Duration(), testRenew)
	}
	checkNoOverlap(t, &s.tl)
	if got := acquired(s, "a", "c") - acquiredBefore; int(got) != before {
		t.Fatalf("a and c counted %v targets acquired, b handed over %d", got, before)
	}
}

// acquired sums the acquired-targets counters of nodes.
func acquired(s *site, nodes ...string) float64 {
	sum := 0.0
	for _, n := range nodes {
		sum += testutil.ToFloat64(s.nodes[n].m.handovers.WithLabelValues("acquired"))
	}
	return sum
}

// (c) A node that dies (its connection closed, nothing released) loses
// its targets to the others once its lease expires: within the lease TTL
// of the kill. Its own goroutine, cut off, stops them before the others
// start, so even a partitioned node never overlaps.
func TestDeadNodeTargetsTakenAfterLease(t *testing.T) {
	s := newSite(t, 200)
	for _, n := range []string{"a", "b", "c"} {
		s.start(n, testTTL)
	}
	waitFor(t, 5*time.Second, "settle", func() (bool, string) { return s.settled() })
	victim := s.nodes["c"].Owned()
	killed := s.kill("c")
	took := waitFor(t, testTTL+testRenew+time.Second, "a and b own c's targets", func() (bool, string) { return s.settled() })
	gap := LongestGap(realEvents(s.tl.Events(), "c", killed), s.targets, killed, time.Now())
	t.Logf("kill: %d targets of the dead node owned again %v after the kill; longest gap %v (%s); lease TTL %v, renewal %v",
		len(victim), took.Round(time.Millisecond), gap.Duration().Round(time.Millisecond), gap.Target, testTTL, testRenew)
	if gap.Duration() > testTTL {
		t.Fatalf("longest gap %v, want at most the lease TTL (%v)", gap.Duration(), testTTL)
	}
	// The dead node's own goroutine must have dropped everything (its
	// lease deadline passed) before anyone else took its targets.
	waitFor(t, testTTL, "the cut-off node stops its targets", func() (bool, string) {
		return len(s.nodes["c"].Owned()) == 0, fmt.Sprintf("still owns %d", len(s.nodes["c"].Owned()))
	})
	checkNoOverlap(t, &s.tl)
	if got := testutil.ToFloat64(s.nodes["c"].m.handovers.WithLabelValues("lost")); int(got) != len(victim) {
		t.Fatalf("dead node counted %v targets lost, owned %d", got, len(victim))
	}
	if testutil.ToFloat64(s.nodes["c"].m.renewFailures) == 0 {
		t.Fatal("dead node counted no renewal failure")
	}
}

// (d) A node joining takes only the targets it wins (about T/(N+1)), and
// at no moment is a target owned by two nodes: the old owner stops and
// releases before the newcomer takes it.
func TestJoinMovesFewWithoutOverlap(t *testing.T) {
	s := newSite(t, 200)
	for _, n := range []string{"a", "b", "c"} {
		s.start(n, testTTL)
	}
	waitFor(t, 5*time.Second, "settle", func() (bool, string) { return s.settled() })
	before := s.owners()
	start := time.Now()
	s.start("d", testTTL)
	took := waitFor(t, 5*time.Second, "settle with d", func() (bool, string) { return s.settled() })
	after := s.owners()
	moved := 0
	for tg, n := range after {
		if before[tg] != n {
			moved++
			if n != "d" {
				t.Fatalf("%s moved from %s to %s, not to the new node", tg, before[tg], n)
			}
		}
	}
	want := 0
	for _, tg := range s.targets {
		if Assign(tg, []string{"a", "b", "c", "d"}) == "d" {
			want++
		}
	}
	gap := LongestGap(s.tl.Events(), s.targets, start, time.Now())
	t.Logf("join: %d of 200 targets moved to the new node (T/(N+1) = 50) in %v; longest gap %v (%s)",
		moved, took.Round(time.Millisecond), gap.Duration().Round(time.Microsecond), gap.Target)
	if moved != want || moved < 30 || moved > 70 {
		t.Fatalf("%d targets moved, want %d (about 50)", moved, want)
	}
	if gap.Duration() > testRenew {
		t.Fatalf("longest gap %v during the join, want below one renewal", gap.Duration())
	}
	checkNoOverlap(t, &s.tl)
}

// (e) A drained node ends with no target, the others take its targets,
// and undraining gives them back.
func TestDrain(t *testing.T) {
	s := newSite(t, 200)
	for _, n := range []string{"a", "b", "c"} {
		s.start(n, testTTL)
	}
	waitFor(t, 5*time.Second, "settle", func() (bool, string) { return s.settled() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.nodes["a"].Drain(ctx, "b"); err != nil {
		t.Fatalf("drain: %v", err)
	}
	took := waitFor(t, 5*time.Second, "b drained", func() (bool, string) { return s.settled("b") })
	if n := len(s.nodes["b"].Owned()); n != 0 {
		t.Fatalf("drained node owns %d targets", n)
	}
	gap := LongestGap(s.tl.Events(), s.targets, start, time.Now())
	t.Logf("drain: b's targets moved in %v; longest gap %v", took.Round(time.Millisecond), gap.Duration().Round(time.Microsecond))
	st, err := s.nodes["c"].Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, ns := range st.Nodes {
		if ns.Draining != (ns.Node == "b") || !ns.Alive {
			t.Fatalf("status of %s: %+v", ns.Node, ns)
		}
	}
	if err := s.nodes["b"].Undrain(ctx, "b"); err != nil {
		t.Fatalf("undrain: %v", err)
	}
	waitFor(t, 5*time.Second, "b back", func() (bool, string) { return s.settled() })
	checkNoOverlap(t, &s.tl)
}

// (f) A KV outage shorter than the lease deadline leaves every node with
// its targets, and the cluster carries on after it without moving any: a
// renewal sent during the outage waits, buffered by the client, and is
// answered when the server is back.
func TestShortKVOutageKeepsTargets(t *testing.T) {
	// Leases of 5 s on the server, renewed every 500 ms: a node keeps its
	// targets until 5 s - 125 ms after its last renewal, at least 4.375 s
	// after the outage began, however slowly the server stops and starts
	// on a loaded machine.
	const ttl, renew = 6 * time.Second, 500 * time.Millisecond
	s := newSite(t, 200)
	for _, n := range []string{"a", "b", "c"} {
		s.startRenew(n, ttl, renew)
	}
	waitFor(t, 5*time.Second, "settle", func() (bool, string) { return s.settled() })
	before := s.owners()
	down := time.Now()
	s.ns.stop()
	time.Sleep(1500*time.Millisecond - time.Since(down)) // the outage itself (three renewal periods), not an assertion
	s.ns.start()
	up := time.Now()
	if out := up.Sub(down); out > ttl-time.Second-renew/4-renew {
		t.Fatalf("the server took %v to stop and start, longer than the lease deadline allows; the machine is too loaded for this test", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Renewals resumed: every lease now expires later than one written
	// after the restart would.
	waitFor(t, ttl, "all leases renewed", func() (bool, string) {
		st, err := s.nodes["a"].Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, ns := range st.Nodes {
			if !ns.LeaseExpires.After(up.Add(ttl - time.Second)) {
				return false, ns.Node + " not yet renewed"
			}
		}
		return len(st.Nodes) == 3, fmt.Sprintf("%d nodes", len(st.Nodes))
	})
	t.Logf("short outage of %v: renewals resumed %v after the server returned; no target moved or stopped",
		up.Sub(down).Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
	if after := s.owners(); !maps.Equal(before, after) {
		t.Fatalf("ownership changed across a short outage")
	}
	for _, e := range s.tl.Events() {
		if e.Time.After(down) {
			t.Fatalf("%s changed its owned set during a short outage (to %d targets)", e.Node, len(e.Owned))
		}
	}
	// The cluster still works: a node stopping now hands over.
	s.stop("a")
	waitFor(t, 5*time.Second, "settle after outage", func() (bool, string) { return s.settled() })
	checkNoOverlap(t, &s.tl)
}

// (f) An outage longer than the lease: each node stops its targets by its
// lease deadline (the others could take them then), and the cluster
// reconverges once the bucket is back.
func TestLongKVOutageStopsTargets(t *testing.T) {
	s := newSite(t, 200)
	for _, n := range []string{"a", "b", "c"} {
		s.start(n, testTTL)
	}
	waitFor(t, 5*time.Second, "settle", func() (bool, string) { return s.settled() })
	down := time.Now()
	s.ns.stop()
	took := waitFor(t, testTTL+time.Second, "all nodes stop their targets", func() (bool, string) {
		return len(s.owners()) == 0, fmt.Sprintf("%d targets still owned", len(s.owners()))
	})
	if took > testTTL-time.Second {
		t.Fatalf("nodes stopped their targets %v after the bucket went away, want within the lease's server-side TTL %v", took, testTTL-time.Second)
	}
	time.Sleep(testTTL / 2) // let the outage outlast every lease
	s.ns.start()
	up := time.Now()
	back := waitFor(t, 3*testTTL, "settle after the outage", func() (bool, string) { return s.settled() })
	t.Logf("long outage: targets stopped %v after the server went away; all owned again %v after it returned (outage %v)",
		took.Round(time.Millisecond), back.Round(time.Millisecond), up.Sub(down).Round(time.Millisecond))
	checkNoOverlap(t, &s.tl)
	for _, n := range s.running() {
		if testutil.ToFloat64(s.nodes[n].m.renewFailures) == 0 {
			t.Fatalf("%s counted no renewal failure", n)
		}
	}
}

// A new target list (a configuration reload) is applied by every node:
// removed targets are stopped and their records released, new ones taken.
func TestSetTargets(t *testing.T) {
	s := newSite(t, 20)
	for _, n := range []string{"a", "b"} {
		s.start(n, testTTL)
	}
	waitFor(t, 5*time.Second, "settle", func() (bool, string) { return s.settled() })
	removed := s.targets[:5]
	next := append(slices.Clone(s.targets[5:]), names("switch-", 5)...)
	for _, n := range s.running() {
		if err := s.nodes[n].SetTargets(next); err != nil {
			t.Fatalf("set targets: %v", err)
		}
	}
	s.targets = next
	waitFor(t, 5*time.Second, "settle on the new list", func() (bool, string) { return s.settled() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waitFor(t, 5*time.Second, "removed targets released", func() (bool, string) {
		st, err := s.nodes["a"].Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, ts := range st.Targets {
			if slices.Contains(removed, ts.Target) && ts.Owner != "" {
				return false, ts.Target + " still owned by " + ts.Owner
			}
		}
		return true, ""
	})
	if err := s.nodes["a"].SetTargets([]string{""}); err == nil {
		t.Fatal("empty target name accepted")
	}
	checkNoOverlap(t, &s.tl)
}

// After a graceful stop the bucket shows the node gone and none of its
// records valid; a node restarted under the same name joins again.
func TestStopThenRestart(t *testing.T) {
	s := newSite(t, 50)
	for _, n := range []string{"a", "b"} {
		s.start(n, testTTL)
	}
	waitFor(t, 5*time.Second, "settle", func() (bool, string) { return s.settled() })
	s.stop("b")
	waitFor(t, 5*time.Second, "a owns all", func() (bool, string) { return s.settled() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := s.nodes["a"].Status(ctx)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if len(st.Nodes) != 1 || st.Nodes[0].Node != "a" || st.Nodes[0].Owned != 50 {
		t.Fatalf("status after b stopped: %+v", st.Nodes)
	}
	s.start("b", testTTL)
	waitFor(t, 5*time.Second, "b back", func() (bool, string) { return s.settled() })
	checkNoOverlap(t, &s.tl)
}

// 5,000 targets: owner writes are pipelined, so a join or a graceful stop
// moves a quarter of them with gaps far below one renewal, and a long
// reconciliation never delays lease renewal (it runs on its own
// goroutine).
func TestManyTargets(t *testing.T) {
	const testTTL, testRenew = 10 * time.Second, 3 * time.Second
	if testing.Short() {
		t.Skip("5,000 targets")
	}
	count := 5000
	if raceEnabled {
		count = 1000 // the race detector slows the embedded server tenfold
	}
	s := newSite(t, count)
	for _, n := range []string{"a", "b", "c"} {
		s.start(n, testTTL)
	}
	took := waitFor(t, 10*time.Second, "settle", func() (bool, string) { return s.settled() })
	start := time.Now()
	s.start("d", testTTL)
	waitFor(t, 10*time.Second, "settle with d", func() (bool, string) { return s.settled() })
	join := LongestGap(s.tl.Events(), s.targets, start, time.Now())
	start = time.Now()
	s.stop("a")
	waitFor(t, 10*time.Second, "settle without a", func() (bool, string) { return s.settled() })
	stop := LongestGap(s.tl.Events(), s.targets, start, time.Now())
	t.Logf("%d targets: 3 nodes settled in %v; join longest gap %v; graceful stop longest gap %v",
		count, took.Round(time.Millisecond), join.Duration().Round(time.Millisecond), stop.Duration().Round(time.Millisecond))
	// Under the race detector on a loaded machine the embedded server is
	// too slow for a timing bound; the run still checks overlaps and leases.
	if !raceEnabled && (join.Duration() > testRenew || stop.Duration() > testRenew) {
		t.Fatalf("gaps above one renewal (%v)", testRenew)
	}
	for _, n := range s.running() {
		if got := testutil.ToFloat64(s.nodes[n].m.handovers.WithLabelValues("lost")); got != 0 {
			t.Fatalf("%s lost its lease during the moves (%v targets dropped)", n, got)
		}
	}
	checkNoOverlap(t, &s.tl)
}

// Start fails within its context when the bucket is unreachable, and can
// be called again once it is back.
func TestStartWithoutBucket(t *testing.T) {
	ns := startNATS(t)
	nc, err := nats.Connect(ns.url(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	n, err := New(Config{Node: "a", LeaseTTL: testTTL, Targets: []string{"r1"}}, js, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ns.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := n.Start(ctx); err == nil {
		t.Fatal("Start succeeded without a server")
	}
	ns.start()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatalf("Start after the server returned: %v", err)
	}
	t.Cleanup(func() { _ = n.Stop(context.Background()) })
	waitFor(t, 5*time.Second, "owns its target", func() (bool, string) {
		return slices.Equal(n.Owned(), []string{"r1"}), fmt.Sprint(n.Owned())
	})
	if !n.Ready() {
		t.Fatal("not ready with a lease")
	}
}

// A second process using a node name that has a live lease is kept out
// until that lease ends: it owns nothing meanwhile (two processes never
// own one target), and gets the lease once the first stops, or once the
// lease of a first that died expires.
func TestDuplicateNodeName(t *testing.T) {
	s := newSite(t, 50)
	first := s.start("a", testTTL)
	waitFor(t, 5*time.Second, "a owns all", func() (bool, string) { return s.settled() })
	nc, err := nats.Connect(s.ns.url(), nats.Timeout(10*time.Second), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	dup, err := New(Config{Node: "a", LeaseTTL: testTTL, Targets: s.targets}, js, nil, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	dup.OnChange(s.tl.Observer("a (second process)"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := dup.Start(ctx); err != nil {
		t.Fatalf("start of the second process: %v", err)
	}
	t.Cleanup(func() { _ = dup.Stop(context.Background()) })
	// For two lease periods, the second owns nothing and the first keeps
	// everything.
	deadline := time.Now().Add(2 * testTTL)
	for time.Now().Before(deadline) {
		if len(dup.Owned()) != 0 || dup.Ready() {
			t.Fatalf("the second process owns %d targets (ready %v) while the first holds the name", len(dup.Owned()), dup.Ready())
		}
		if len(first.Owned()) != 50 {
			t.Fatalf("the first process owns %d targets, want 50", len(first.Owned()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The first dies: the second takes the name once its lease expires.
	killed := s.kill("a")
	took := waitFor(t, testTTL+time.Second, "the second process owns all", func() (bool, string) {
		return len(dup.Owned()) == 50, fmt.Sprintf("owns %d", len(dup.Owned()))
	})
	gap := LongestGap(realEvents(s.tl.Events(), "a", killed), s.targets, killed, time.Now())
	t.Logf("restart under a live name: the new process owned all 50 targets %v after the old one died; longest gap %v",
		took.Round(time.Millisecond), gap.Duration().Round(time.Millisecond))
	if gap.Duration() > testTTL {
		t.Fatalf("gap %v longer than the lease TTL", gap.Duration())
	}
	checkNoOverlap(t, &s.tl)
}
