package federated

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// edgeData is one edge's training set and trainer.
type edgeData struct {
	name string
	tr   Trainer
	lr   *logistic // nil for a misbehaving trainer
}

// honestEdges makes n edges with logistic trainers on non-IID data drawn
// from one hidden model of dim-1 features, and a held-out set.
func honestEdges(n, dim int, seed uint64) ([]edgeData, [][]float64, []float64) {
	r := rand.New(rand.NewPCG(seed, 99))
	truth := make([]float64, dim)
	for i := range truth {
		truth[i] = r.NormFloat64()
	}
	truth[dim-1] = 0.2
	var edges []edgeData
	for i := range n {
		rows, labels := dataset(r, truth, 50+r.IntN(200), 0.3*float64(i%3-1))
		l := &logistic{rows: rows, labels: labels, epochs: 20, lr: 0.5, l2: 1e-3}
		edges = append(edges, edgeData{name: fmt.Sprintf("site%02d", i), tr: l, lr: l})
	}
	rows, labels := dataset(r, truth, 1000, 0)
	return edges, rows, labels
}

// expectedGlobal computes what the hub must make of global and the honest
// edges' updates: the same clipping, rounding and weighted mean.
func expectedGlobal(t *testing.T, cfg Config, global []float64, edges []edgeData) []float64 {
	t.Helper()
	cfg = cfg.WithDefaults()
	sum := make([]uint64, cfg.Dim+1)
	for _, e := range edges {
		if e.lr == nil {
			continue
		}
		u, n, err := e.tr.Train(context.Background(), global)
		if err != nil {
			t.Fatal(err)
		}
		Clip(u, cfg.ClipNorm)
		for i, x := range Quantize(u, n, cfg.Scale) {
			sum[i] += x
		}
	}
	mean, _ := Dequantize(sum, cfg.Scale)
	out := make([]float64, cfg.Dim)
	for i := range out {
		out[i] = global[i] + mean[i]
	}
	return out
}

// startParticipants starts one participant per edge, each on its own
// connection from conns (one per edge).
func startParticipants(t *testing.T, cfg Config, edges []edgeData, conns []*nats.Conn) []*Participant {
	t.Helper()
	var ps []*Participant
	for i, e := range edges {
		p, err := NewParticipant(cfg, e.name, conns[i], e.tr, nil, quiet)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.Stop(ctx); err != nil {
				t.Error(err)
			}
		})
		ps = append(ps, p)
	}
	return ps
}

func newCoordinator(t *testing.T, cfg Config, nc *nats.Conn) (*Coordinator, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := NewCoordinator(cfg, nc, reg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.unsubscribe)
	return c, reg
}

var quiet = slog.New(slog.DiscardHandler)

func sameConn(nc *nats.Conn, n int) []*nats.Conn {
	out := make([]*nats.Conn, n)
	for i := range out {
		out[i] = nc
	}
	return out
}

// TestRoundsConverge runs three rounds of 10 edges over NATS: each global
// is exactly the weighted mean of the clipped updates, every edge holds
// it, the held-out F1 rises, and the status reports it.
func TestRoundsConverge(t *testing.T) {
	srv, _ := startServer(t, false)
	cfg := Config{Model: "congestion", Dim: 17, MinEdges: 3, Expect: 10, Deadline: 10 * time.Second, ClipNorm: 2}
	edges, rows, labels := honestEdges(10, 17, 1)
	hub := connect(t, srv)
	c, reg := newCoordinator(t, cfg, hub)
	c.SetEvaluator(func(w []float64) (float64, bool) { return f1(w, rows, labels), true })
	var conns []*nats.Conn
	for range edges {
		conns = append(conns, connect(t, srv))
	}
	ps := startParticipants(t, cfg, edges, conns)

	for rnd := uint64(1); rnd <= 3; rnd++ {
		before, _ := c.Global()
		want := expectedGlobal(t, cfg, before, edges)
		st := c.RunRound(context.Background())
		if st.Result != "completed" || st.Updates != 10 || len(st.Dropped) != 0 || st.Round != rnd || st.Version != rnd {
			t.Fatalf("round %d: %+v", rnd, st)
		}
		got, v := c.Global()
		if v != rnd || !slices.Equal(got, want) {
			t.Fatalf("round %d: global %v (version %d), want %v", rnd, got[:3], v, want[:3])
		}
		for _, p := range ps {
			waitFor(t, 10*time.Second, "edge holds the global", func() bool {
				w, pv := p.Global()
				return pv == rnd && slices.Equal(w, want)
			})
		}
	}
	s := c.Status()
	first, last := s.Rounds[0], s.Rounds[len(s.Rounds)-1]
	if first.F1Before == nil || last.F1After == nil || !(*last.F1After > *first.F1Before) || *last.F1After < 0.8 {
		t.Fatalf("F1 did not rise: %+v / %+v", first, last)
	}
	if n := testutil.ToFloat64(c.m.rounds.WithLabelValues("completed")); n != 3 {
		t.Fatalf("rounds_total{completed} = %v", n)
	}
	// The status over HTTP carries f1_before and f1_after.
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/fl/rounds", nil))
	var raw struct {
		Rounds []map[string]any `json:"rounds"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil || len(raw.Rounds) != 3 {
		t.Fatalf("status: %v %s", err, rec.Body)
	}
	for _, k := range []string{"f1_before", "f1_after", "samples", "update_norm"} {
		if _, ok := raw.Rounds[2][k]; !ok {
			t.Fatalf("status round lacks %s: %v", k, raw.Rounds[2])
		}
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

// TestStatusOmitsUnknownF1 checks that a round without an evaluator leaves
// f1_before and f1_after out.
func TestStatusOmitsUnknownF1(t *testing.T) {
	b, err := json.Marshal(RoundStatus{Model: "m", Round: 1})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if _, ok := m["f1_before"]; ok {
		t.Fatalf("f1_before present: %s", b)
	}
	f := 0.5
	b, _ = json.Marshal(RoundStatus{F1Before: &f, F1After: &f})
	_ = json.Unmarshal(b, &m)
	if m["f1_before"] != 0.5 || m["f1_after"] != 0.5 {
		t.Fatalf("f1 fields: %s", b)
	}
}

// hang never returns before the round ends: an edge that never comes back.
var hang = TrainerFunc(func(ctx context.Context, _ []float64) ([]float64, int, error) {
	<-ctx.Done()
	return nil, 0, ctx.Err()
})

func fixed(u []float64, n int) Trainer {
	return TrainerFunc(func(context.Context, []float64) ([]float64, int, error) { return slices.Clone(u), n, nil })
}

// rogue is a raw client that takes part in a round with bad messages: a
// masked update of the wrong length, a duplicate key, a masked update for
// an edge without keys, a key for another round and a malformed key.
func rogue(t *testing.T, nc *nats.Conn, cfg Config) {
	t.Helper()
	cfg = cfg.WithDefaults()
	pre := cfg.SubjectPrefix + "." + cfg.Model
	key, _ := NewKey()
	keys := func(rnd uint64, edge string) []byte {
		b, _ := json.Marshal(Keys{Round: rnd, Edge: edge, Pub: key.PublicKey().Bytes()})
		return b
	}
	sub := func(subj string, f func(rnd uint64)) {
		if _, err := nc.Subscribe(subj, func(m *nats.Msg) {
			rnd, _, _, _ := parseSubject(m.Subject, cfg.SubjectPrefix, cfg.Model)
			f(rnd)
		}); err != nil {
			t.Fatal(err)
		}
	}
	sub(pre+".*.start", func(rnd uint64) {
		_ = nc.Publish(Subject(cfg.SubjectPrefix, cfg.Model, rnd, PhaseKeys, "rogue"), keys(rnd, "rogue"))
		_ = nc.Publish(Subject(cfg.SubjectPrefix, cfg.Model, rnd, PhaseKeys, "rogue"), keys(rnd, "rogue"))
		_ = nc.Publish(Subject(cfg.SubjectPrefix, cfg.Model, rnd+5, PhaseKeys, "late"), keys(rnd+5, "late"))
		_ = nc.Publish(Subject(cfg.SubjectPrefix, cfg.Model, rnd, PhaseKeys, "junk"), []byte("{not json"))
	})
	sub(pre+".*.peers", func(rnd uint64) {
		short, _ := json.Marshal(Masked{Round: rnd, Edge: "rogue", Vec: make(Ring, cfg.Dim)})
		_ = nc.Publish(Subject(cfg.SubjectPrefix, cfg.Model, rnd, PhaseMasked, "rogue"), short)
		ghost, _ := json.Marshal(Masked{Round: rnd, Edge: "ghost", Vec: make(Ring, cfg.Dim+1)})
		_ = nc.Publish(Subject(cfg.SubjectPrefix, cfg.Model, rnd, PhaseMasked, "ghost"), ghost)
	})
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestRoundBadUpdates runs a round with six honest edges, one that never
// returns, one whose update holds NaN, one of too large a norm, one of the
// wrong shape and a rogue client: the round completes on its deadline
// with exactly the honest edges' weighted mean, and every bad update is
// counted by reason.
func TestRoundBadUpdates(t *testing.T) {
	srv, _ := startServer(t, false)
	// No expect: the key phase lasts its deadline, so that the rogue's
	// duplicate and malformed keys arrive within it whatever their order.
	cfg := Config{Model: "m", Dim: 17, MinEdges: 3, Deadline: 2 * time.Second}
	edges, _, _ := honestEdges(6, 17, 2)
	nan := make([]float64, 17)
	nan[3] = math.NaN()
	big := make([]float64, 17)
	big[0] = 100
	edges = append(edges,
		edgeData{name: "hang", tr: hang},
		edgeData{name: "nan", tr: fixed(nan, 10)},
		edgeData{name: "norm", tr: fixed(big, 10)},
		edgeData{name: "shape", tr: fixed(make([]float64, 16), 10)},
	)
	nc := connect(t, srv)
	c, _ := newCoordinator(t, cfg, nc)
	ps := startParticipants(t, cfg, edges, sameConn(connect(t, srv), len(edges)))
	rogue(t, connect(t, srv), cfg)

	want := expectedGlobal(t, cfg, make([]float64, 17), edges)
	st := c.RunRound(context.Background())
	if st.Result != "completed" || st.Updates != 6 || st.Edges != 11 {
		t.Fatalf("round: %+v", st)
	}
	if d := []string{"hang", "nan", "norm", "rogue", "shape"}; !slices.Equal(st.Dropped, d) {
		t.Fatalf("dropped %v, want %v", st.Dropped, d)
	}
	if got, _ := c.Global(); !slices.Equal(got, want) {
		t.Fatalf("global %v, want %v", got[:3], want[:3])
	}
	for reason, n := range map[string]float64{"shape": 1, "duplicate": 1, "unknown_edge": 1, "wrong_round": 1, "malformed": 1} {
		if got := testutil.ToFloat64(c.m.rejected.WithLabelValues(reason)); got != n {
			t.Errorf("hub rejected{%s} = %v, want %v", reason, got, n)
		}
		if st.Rejected[reason] != int(n) {
			t.Errorf("status rejected[%s] = %d, want %v", reason, st.Rejected[reason], n)
		}
	}
	byName := map[string]*Participant{}
	for i, e := range edges {
		byName[e.name] = ps[i]
	}
	for name, reason := range map[string]string{"nan": "nan", "norm": "norm", "shape": "shape"} {
		if got := testutil.ToFloat64(byName[name].m.rejected.WithLabelValues(reason)); got != 1 {
			t.Errorf("edge %s rejected{%s} = %v, want 1", name, reason, got)
		}
	}
}

// TestRoundFails covers rounds that must not produce a global: too few
// keys, too few survivors (no reveal is asked: it would expose them), and
// a survivor that does not reveal.
func TestRoundFails(t *testing.T) {
	u := []float64{0.1, 0.2, 0.3}
	for _, tc := range []struct {
		name   string
		edges  []edgeData
		result string
	}{
		{"too few edges", []edgeData{{name: "a", tr: fixed(u, 5)}, {name: "b", tr: fixed(u, 5)}}, "too_few_edges"},
		{"too few survivors", []edgeData{{name: "a", tr: fixed(u, 5)}, {name: "b", tr: hang}, {name: "c", tr: hang}}, "too_few_survivors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := startServer(t, false)
			cfg := Config{Model: "m", Dim: 3, MinEdges: 3, Deadline: 500 * time.Millisecond}
			c, _ := newCoordinator(t, cfg, connect(t, srv))
			spy := connect(t, srv)
			unmasks, err := spy.SubscribeSync("netfeat-fl.m.*.unmask")
			if err != nil {
				t.Fatal(err)
			}
			startParticipants(t, cfg, tc.edges, sameConn(connect(t, srv), len(tc.edges)))
			st := c.RunRound(context.Background())
			if st.Result != tc.result || st.State != "failed" {
				t.Fatalf("round: %+v", st)
			}
			if _, v := c.Global(); v != 0 {
				t.Fatalf("global version %d after a failed round", v)
			}
			if n, _, _ := unmasks.Pending(); n != 0 {
				t.Fatal("the hub asked for reveals")
			}
			if got := testutil.ToFloat64(c.m.rounds.WithLabelValues(tc.result)); got != 1 {
				t.Fatalf("rounds_total{%s} = %v", tc.result, got)
			}
		})
	}

	t.Run("survivor does not reveal", func(t *testing.T) {
		srv, _ := startServer(t, false)
		cfg := Config{Model: "m", Dim: 3, MinEdges: 3, Expect: 5, Deadline: 500 * time.Millisecond}
		c, _ := newCoordinator(t, cfg, connect(t, srv))
		edges := []edgeData{{name: "a", tr: fixed(u, 5)}, {name: "b", tr: fixed(u, 5)}, {name: "c", tr: fixed(u, 5)}, {name: "d", tr: hang}}
		startParticipants(t, cfg, edges, sameConn(connect(t, srv), len(edges)))
		// "mute" sends a key and a well-formed masked update, then never
		// reveals.
		nc := connect(t, srv)
		key, _ := NewKey()
		_, _ = nc.Subscribe("netfeat-fl.m.*.start", func(m *nats.Msg) {
			rnd, _, _, _ := parseSubject(m.Subject, "netfeat-fl", "m")
			b, _ := json.Marshal(Keys{Round: rnd, Edge: "mute", Pub: key.PublicKey().Bytes()})
			_ = nc.Publish(Subject("netfeat-fl", "m", rnd, PhaseKeys, "mute"), b)
		})
		_, _ = nc.Subscribe("netfeat-fl.m.*.peers", func(m *nats.Msg) {
			rnd, _, _, _ := parseSubject(m.Subject, "netfeat-fl", "m")
			b, _ := json.Marshal(Masked{Round: rnd, Edge: "mute", Vec: make(Ring, 4)})
			_ = nc.Publish(Subject("netfeat-fl", "m", rnd, PhaseMasked, "mute"), b)
		})
		_ = nc.Flush()
		st := c.RunRound(context.Background())
		if st.Result != "unmask_failed" || !slices.Equal(st.Dropped, []string{"d"}) {
			t.Fatalf("round: %+v", st)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Model: "m", Dim: 17}
	if err := ok.WithDefaults().Validate("federated"); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"no model", func(c *Config) { c.Model = "" }, "federated.model"},
		{"dotted model", func(c *Config) { c.Model = "a.b" }, "federated.model"},
		{"no dim", func(c *Config) { c.Dim = -1 }, "federated.dim"},
		{"one edge", func(c *Config) { c.MinEdges = 1 }, "federated.min_edges"},
		{"max below min", func(c *Config) { c.MinEdges, c.MaxEdges = 5, 4 }, "federated.max_edges"},
		{"short interval", func(c *Config) { c.Interval = time.Millisecond }, "federated.interval"},
		{"short deadline", func(c *Config) { c.Deadline = time.Millisecond }, "federated.deadline"},
		{"negative clip", func(c *Config) { c.ClipNorm = -1 }, "federated.clip_norm"},
		{"max norm below clip", func(c *Config) { c.ClipNorm, c.MaxNorm = 2, 1 }, "federated.max_norm"},
		{"overflowing scale", func(c *Config) { c.Scale = 1 << 50 }, "federated.scale"},
		{"netfeat prefix", func(c *Config) { c.SubjectPrefix = "netfeat" }, "federated.subject_prefix"},
		{"expect above max", func(c *Config) { c.Expect = 5000 }, "federated.expect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.edit(&c)
			err := c.WithDefaults().Validate("federated")
			if err == nil || !contains(err.Error(), tc.field+":") {
				t.Fatalf("error %v, want one on %s", err, tc.field)
			}
		})
	}
}

func contains(s, sub string) bool {
	return len(sub) <= len(s) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

// preparing is a Trainer that prepares each round: prepare's error keeps
// it out of the round; it records the rounds prepared and trained.
type preparing struct {
	Trainer
	prepare  error
	mu       sync.Mutex
	prepared []uint64
	trained  int
}

func (p *preparing) Prepare(_ context.Context, round uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.prepared = append(p.prepared, round)
	return p.prepare
}

func (p *preparing) Train(ctx context.Context, global []float64) ([]float64, int, error) {
	p.mu.Lock()
	p.trained++
	p.mu.Unlock()
	return p.Trainer.Train(ctx, global)
}

// TestPreparerSitsOut runs a round with an edge whose Prepare succeeds, one
// that skips (too little data) and one whose Prepare fails: the last two
// send nothing, so the round completes with the other edges' updates and
// no edge dropped; the skip and the refusal are counted apart.
func TestPreparerSitsOut(t *testing.T) {
	srv, _ := startServer(t, false)
	cfg := Config{Model: "m", Dim: 3, MinEdges: 2, Deadline: 500 * time.Millisecond}
	u := []float64{0.1, 0.2, 0.3}
	ready := &preparing{Trainer: fixed(u, 5)}
	skip := &preparing{Trainer: fixed(u, 5), prepare: fmt.Errorf("3 labelled windows, need 20: %w", ErrSkipRound)}
	broken := &preparing{Trainer: fixed(u, 5), prepare: fmt.Errorf("labels: the decision log is unreadable")}
	edges := []edgeData{{name: "a", tr: fixed(u, 5)}, {name: "b", tr: ready}, {name: "c", tr: skip}, {name: "d", tr: broken}}
	c, _ := newCoordinator(t, cfg, connect(t, srv))
	ps := startParticipants(t, cfg, edges, sameConn(connect(t, srv), len(edges)))
	st := c.RunRound(context.Background())
	if st.Result != "completed" || st.Edges != 2 || st.Updates != 2 || len(st.Dropped) != 0 || st.Samples != 10 {
		t.Fatalf("round: %+v", st)
	}
	for _, p := range []*preparing{ready, skip, broken} {
		p.mu.Lock()
		if !slices.Equal(p.prepared, []uint64{st.Round}) {
			t.Errorf("prepared rounds %v, want [%d]", p.prepared, st.Round)
		}
		p.mu.Unlock()
	}
	ready.mu.Lock()
	skip.mu.Lock()
	broken.mu.Lock()
	if ready.trained != 1 || skip.trained != 0 || broken.trained != 0 {
		t.Errorf("trained: ready %d, skip %d, broken %d; want 1, 0, 0", ready.trained, skip.trained, broken.trained)
	}
	ready.mu.Unlock()
	skip.mu.Unlock()
	broken.mu.Unlock()
	for i, want := range map[int]map[string]float64{1: {"sent": 1, "skipped": 0}, 2: {"skipped": 1, "refused": 0, "sent": 0}, 3: {"refused": 1, "skipped": 0}} {
		for result, n := range want {
			if got := testutil.ToFloat64(ps[i].m.rounds.WithLabelValues(result)); got != n {
				t.Errorf("edge %s rounds_total{%s} = %v, want %v", edges[i].name, result, got, n)
			}
		}
	}
	// Every edge, the skipping ones too, holds the new global.
	want, _ := c.Global()
	waitFor(t, 5*time.Second, "every edge holds the global", func() bool {
		for _, p := range ps {
			if g, v := p.Global(); v != st.Version || !slices.Equal(g, want) {
				return false
			}
		}
		return true
	})
}
