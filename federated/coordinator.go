package federated

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Evaluator scores global weights on data the hub may hold (a
// demonstration's held-out set); ok false when it cannot.
type Evaluator func(weights []float64) (f1 float64, ok bool)

// RoundStatus is what the hub knows of one round (GET /v1/fl/rounds).
type RoundStatus struct {
	Model  string `json:"model"`
	Round  uint64 `json:"round"`
	State  string `json:"state"`           // running, completed, failed
	Phase  string `json:"phase,omitempty"` // while running: keys, masked, reveal
	Result string `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`

	Started time.Time  `json:"started"`
	Ended   *time.Time `json:"ended,omitempty"`

	Edges    int            `json:"edges"`             // sent keys
	Updates  int            `json:"updates"`           // masked updates accepted
	Dropped  []string       `json:"dropped,omitempty"` // sent keys, no update accepted
	Rejected map[string]int `json:"rejected,omitempty"`
	Samples  int64          `json:"samples,omitempty"` // Σ n of the updates

	// UpdateNorm is the norm of the weighted mean update.
	UpdateNorm float64 `json:"update_norm,omitempty"`
	// Version is the global version the round made (its round number).
	Version uint64 `json:"version,omitempty"`
	// F1Before and F1After score the global weights before and after the
	// round where an Evaluator is set (a demonstration); omitted otherwise.
	F1Before *float64 `json:"f1_before,omitempty"`
	F1After  *float64 `json:"f1_after,omitempty"`
}

// Status is the answer of GET /v1/fl/rounds.
type Status struct {
	Model    string        `json:"model"`
	Version  uint64        `json:"version"` // of the current global weights
	Interval string        `json:"interval"`
	Next     *time.Time    `json:"next_round,omitempty"`
	Rounds   []RoundStatus `json:"rounds"` // oldest first
}

// Coordinator runs the rounds of one federated model on the hub.
type Coordinator struct {
	cfg  Config
	nc   *nats.Conn
	log  *slog.Logger
	m    *hubMetrics
	eval Evaluator

	in   chan *nats.Msg
	subs []*nats.Subscription

	mu      sync.Mutex
	global  []float64
	version uint64
	last    uint64 // last round started
	rounds  []RoundStatus
	next    time.Time
	onNew   func(Global)
	store   StateStore
	loaded  bool

	runMu  sync.Mutex // one round at a time
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewCoordinator checks cfg (defaults applied) and returns a coordinator
// over nc, a connection to the hub cluster. The global weights start at
// zero, version 0. It makes no network call.
func NewCoordinator(cfg Config, nc *nats.Conn, reg prometheus.Registerer, log *slog.Logger) (*Coordinator, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate("federated"); err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, errors.New("federated: coordinator needs a NATS connection")
	}
	m, err := newHubMetrics(reg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Coordinator{
		cfg: cfg, nc: nc, log: log.With("component", "federated", "model", cfg.Model), m: m,
		global: make([]float64, cfg.Dim),
		in:     make(chan *nats.Msg, 4*cfg.MaxEdges+16),
	}, nil
}

// SetEvaluator sets the function that scores the global weights before and
// after each round (f1_before, f1_after). Call before Start.
func (c *Coordinator) SetEvaluator(e Evaluator) { c.eval = e }

// SetGlobalHandler sets a function called with each new global version
// (e.g. to keep it in a registry). Call before Start.
func (c *Coordinator) SetGlobalHandler(f func(Global)) { c.onNew = f }

// SetStateStore sets where the coordinator keeps its state across
// restarts. With a store, the schedule runs no round before the state has
// loaded (retried before each round). Call before Start.
func (c *Coordinator) SetStateStore(s StateStore) { c.store = s }

// load reads the stored state once; true when the coordinator may run
// rounds.
func (c *Coordinator) load(ctx context.Context) bool {
	if c.store == nil || c.loaded {
		return true
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, ok, err := c.store.Load(lctx, c.cfg.Model)
	if err != nil {
		c.log.Warn("federated: loading the stored state failed; no round before it loads", "err", err)
		return false
	}
	if ok {
		if err := c.SetGlobal(st.Weights, st.Version); err != nil {
			c.log.Error("federated: the stored state does not fit the model; starting from zero weights", "err", err)
		}
		c.mu.Lock()
		c.last = max(c.last, st.LastRound)
		c.mu.Unlock()
		c.log.Info("federated: state loaded", "version", st.Version, "last_round", st.LastRound)
	}
	c.loaded = true
	return true
}

// save stores the state (when a store is set); a failure is logged.
func (c *Coordinator) save(ctx context.Context) {
	if c.store == nil {
		return
	}
	c.mu.Lock()
	st := State{Model: c.cfg.Model, Version: c.version, LastRound: c.last, Weights: slices.Clone(c.global)}
	c.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.store.Save(sctx, st); err != nil {
		c.log.Warn("federated: saving the state failed", "err", err)
	}
}

// SetGlobal replaces the global weights and their version, and makes the
// next round number follow version (a hub restarted from a stored
// version). Call before Start.
func (c *Coordinator) SetGlobal(weights []float64, version uint64) error {
	if len(weights) != c.cfg.Dim || !allFinite(weights) {
		return fmt.Errorf("federated: global weights: want %d finite values, got %d", c.cfg.Dim, len(weights))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.global, c.version = slices.Clone(weights), version
	c.last = max(c.last, version)
	return nil
}

// Global returns the current global weights and their version.
func (c *Coordinator) Global() ([]float64, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.global), c.version
}

// Subscribe subscribes to the edges' messages. Start calls it; a caller
// that runs rounds itself (RunRound) calls it instead of Start.
func (c *Coordinator) Subscribe() error {
	if c.subs != nil {
		return nil
	}
	for _, ph := range []string{PhaseKeys, PhaseMasked, PhaseReveal} {
		subj := c.cfg.SubjectPrefix + "." + c.cfg.Model + ".*." + ph + ".*"
		s, err := c.nc.Subscribe(subj, func(msg *nats.Msg) {
			c.m.bytes.WithLabelValues("in").Add(float64(len(msg.Data)))
			select {
			case c.in <- msg:
			default:
				c.reject(nil, "overflow")
			}
		})
		if err != nil {
			c.unsubscribe()
			return fmt.Errorf("federated: subscribe %s: %w", subj, err)
		}
		c.subs = append(c.subs, s)
	}
	if err := c.nc.Flush(); err != nil {
		c.unsubscribe()
		return fmt.Errorf("federated: subscribe: %w", err)
	}
	return nil
}

func (c *Coordinator) unsubscribe() {
	for _, s := range c.subs {
		_ = s.Unsubscribe()
	}
	c.subs = nil
}

// Start subscribes and runs a round every Interval, the first one
// Interval after Start.
func (c *Coordinator) Start(ctx context.Context) error {
	if err := c.Subscribe(); err != nil {
		return err
	}
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			next := time.Now().Add(c.cfg.Interval)
			c.mu.Lock()
			c.next = next
			c.mu.Unlock()
			select {
			case <-run.Done():
				return
			case <-time.After(time.Until(next)):
			}
			st := c.RunRound(run)
			c.log.Info("federated round ended", "round", st.Round, "result", st.Result, "edges", st.Edges, "updates", st.Updates, "dropped", len(st.Dropped))
		}
	}()
	return nil
}

// Stop ends the schedule (a round in flight is canceled) and unsubscribes.
func (c *Coordinator) Stop(ctx context.Context) error {
	if c.cancel != nil {
		c.cancel()
	}
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("federated: stop: %w", ctx.Err())
	}
	c.unsubscribe()
	return nil
}

// Status returns the rounds kept and the current version.
func (c *Coordinator) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{Model: c.cfg.Model, Version: c.version, Interval: c.cfg.Interval.String(), Rounds: make([]RoundStatus, len(c.rounds))}
	for i, r := range c.rounds {
		r.Dropped = slices.Clone(r.Dropped)
		r.Rejected = maps.Clone(r.Rejected)
		s.Rounds[i] = r
	}
	if !c.next.IsZero() {
		n := c.next
		s.Next = &n
	}
	return s
}

// Handler serves GET /v1/fl/rounds: Status as JSON.
func (c *Coordinator) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c.Status())
	})
}

// round is the hub's state of one round in flight.
type round struct {
	c        *Coordinator
	st       RoundStatus
	keys     map[string][]byte
	masked   map[string]bool // accepted (true) or rejected (false)
	sum      Ring
	revealed map[string]bool
	dropped  []string
}

// update records st in the history (replacing the entry of its round).
func (c *Coordinator) update(st RoundStatus) {
	st.Dropped = slices.Clone(st.Dropped)
	st.Rejected = maps.Clone(st.Rejected)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.rounds); n > 0 && c.rounds[n-1].Round == st.Round {
		c.rounds[n-1] = st
		return
	}
	c.rounds = append(c.rounds, st)
	if len(c.rounds) > c.cfg.History {
		c.rounds = slices.Delete(c.rounds, 0, len(c.rounds)-c.cfg.History)
	}
}

func (c *Coordinator) reject(r *round, reason string) {
	c.m.rejected.WithLabelValues(reason).Inc()
	if r != nil {
		if r.st.Rejected == nil {
			r.st.Rejected = map[string]int{}
		}
		r.st.Rejected[reason]++
	}
}

func (c *Coordinator) publish(rnd uint64, phase string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("federated: encode %s: %w", phase, err)
	}
	if err := c.nc.Publish(Subject(c.cfg.SubjectPrefix, c.cfg.Model, rnd, phase, ""), b); err != nil {
		return fmt.Errorf("federated: publish %s: %w", phase, err)
	}
	c.m.bytes.WithLabelValues("out").Add(float64(len(b)))
	return nil
}

// RunRound runs one round now and returns its status: announce, keys,
// peers, masked updates, reveals when edges dropped, aggregate, publish
// the new global. Call Subscribe (or Start) first.
func (c *Coordinator) RunRound(ctx context.Context) RoundStatus {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	if !c.load(ctx) {
		c.m.rounds.WithLabelValues("error").Inc()
		return RoundStatus{Model: c.cfg.Model, State: "failed", Result: "error", Error: "the stored state has not loaded", Started: time.Now().UTC()}
	}
	c.mu.Lock()
	c.last++
	rnd := c.last
	global, version := slices.Clone(c.global), c.version
	c.mu.Unlock()
	c.save(ctx)
	// Drop what is left of earlier rounds.
	for len(c.in) > 0 {
		msg := <-c.in
		c.reject(nil, c.staleReason(msg, rnd))
	}

	r := &round{c: c, keys: map[string][]byte{}, masked: map[string]bool{}, revealed: map[string]bool{}, sum: make(Ring, c.cfg.Dim+1)}
	r.st = RoundStatus{Model: c.cfg.Model, Round: rnd, State: "running", Phase: PhaseKeys, Started: time.Now().UTC()}
	c.m.round.Set(float64(rnd))
	for _, p := range []string{PhaseKeys, PhaseMasked, "dropped"} {
		c.m.edges.WithLabelValues(p).Set(0)
	}
	c.update(r.st)
	if c.eval != nil {
		if f1, ok := c.eval(global); ok {
			r.st.F1Before = &f1
		}
	}
	st := r.run(ctx, global, version)
	if st.Ended == nil {
		now := time.Now().UTC()
		st.Ended = &now
	}
	st.Phase = ""
	c.m.rounds.WithLabelValues(st.Result).Inc()
	c.update(st)
	return st
}

// staleReason classifies a message left from another round.
func (c *Coordinator) staleReason(msg *nats.Msg, current uint64) string {
	if rnd, _, _, ok := parseSubject(msg.Subject, c.cfg.SubjectPrefix, c.cfg.Model); ok && rnd != current {
		return "wrong_round"
	}
	return "malformed"
}

func (r *round) fail(result string, err error) RoundStatus {
	r.st.State, r.st.Result = "failed", result
	if err != nil {
		r.st.Error = err.Error()
	}
	r.c.log.Warn("federated round failed", "round", r.st.Round, "result", result, "err", err)
	return r.st
}

// collect hands messages of phase to take until the deadline, done
// returns true, or ctx ends (false). Other messages are rejected.
func (r *round) collect(ctx context.Context, phase string, take func(edge string, data []byte), done func() bool) bool {
	r.st.Phase = phase
	r.c.update(r.st)
	t := time.NewTimer(r.c.cfg.Deadline)
	defer t.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case msg := <-r.c.in:
			rnd, ph, edge, ok := parseSubject(msg.Subject, r.c.cfg.SubjectPrefix, r.c.cfg.Model)
			switch {
			case !ok || edge == "":
				r.c.reject(r, "malformed")
			case rnd != r.st.Round:
				r.c.reject(r, "wrong_round")
			case ph != phase:
				r.c.reject(r, "wrong_phase")
			default:
				take(edge, msg.Data)
			}
		}
	}
	return true
}

func (r *round) run(ctx context.Context, global []float64, version uint64) RoundStatus {
	c := r.c
	cfg := c.cfg
	if err := c.publish(r.st.Round, PhaseStart, Start{Round: r.st.Round, Model: cfg.Model, Dim: cfg.Dim, Version: version, Global: global, Deadline: cfg.Deadline.Milliseconds()}); err != nil {
		return r.fail("error", err)
	}

	// Keys.
	if !r.collect(ctx, PhaseKeys, r.takeKeys, func() bool {
		return len(r.keys) >= cfg.MaxEdges || (cfg.Expect > 0 && len(r.keys) >= cfg.Expect)
	}) {
		return r.fail("canceled", ctx.Err())
	}
	r.st.Edges = len(r.keys)
	c.m.edges.WithLabelValues(PhaseKeys).Set(float64(len(r.keys)))
	if len(r.keys) < cfg.MinEdges {
		return r.fail("too_few_edges", fmt.Errorf("%d edges sent keys, min_edges is %d", len(r.keys), cfg.MinEdges))
	}
	peers := Peers{Round: r.st.Round}
	for _, e := range slices.Sorted(maps.Keys(r.keys)) {
		peers.Peers = append(peers.Peers, Peer{Edge: e, Pub: r.keys[e]})
	}
	if err := c.publish(r.st.Round, PhasePeers, peers); err != nil {
		return r.fail("error", err)
	}

	// Masked updates.
	if !r.collect(ctx, PhaseMasked, r.takeMasked, func() bool { return len(r.masked) == len(r.keys) }) {
		return r.fail("canceled", ctx.Err())
	}
	var survivors []string
	for _, p := range peers.Peers {
		if r.masked[p.Edge] {
			survivors = append(survivors, p.Edge)
		} else {
			r.dropped = append(r.dropped, p.Edge)
		}
	}
	r.st.Updates, r.st.Dropped = len(survivors), r.dropped
	c.m.edges.WithLabelValues(PhaseMasked).Set(float64(len(survivors)))
	c.m.edges.WithLabelValues("dropped").Set(float64(len(r.dropped)))
	if len(survivors) < cfg.MinEdges {
		// Asking for reveals now would unmask the few survivors' updates.
		return r.fail("too_few_survivors", fmt.Errorf("%d masked updates accepted, min_edges is %d", len(survivors), cfg.MinEdges))
	}

	// Reveals: the survivors' seeds with the dropped edges.
	if len(r.dropped) > 0 {
		if err := c.publish(r.st.Round, PhaseUnmask, Unmask{Round: r.st.Round, Survivors: survivors, Dropped: r.dropped}); err != nil {
			return r.fail("error", err)
		}
		isSurvivor := map[string]bool{}
		for _, s := range survivors {
			isSurvivor[s] = true
		}
		take := func(edge string, data []byte) { r.takeReveal(edge, data, isSurvivor) }
		if !r.collect(ctx, PhaseReveal, take, func() bool { return len(r.revealed) == len(survivors) }) {
			return r.fail("canceled", ctx.Err())
		}
		if len(r.revealed) < len(survivors) {
			return r.fail("unmask_failed", fmt.Errorf("%d of %d survivors revealed their seeds", len(r.revealed), len(survivors)))
		}
	}

	// Aggregate.
	mean, n := Dequantize(r.sum, cfg.Scale)
	r.st.Samples = n
	if n < 1 || n > int64(cfg.MaxSamples)*int64(len(survivors)) {
		return r.fail("rejected", fmt.Errorf("aggregate sample count %d outside [1, %d]", n, int64(cfg.MaxSamples)*int64(len(survivors))))
	}
	norm := Norm(mean)
	r.st.UpdateNorm = norm
	// A weighted mean of updates of norm ≤ clip_norm has norm ≤ clip_norm;
	// rounding adds at most √dim/(2·scale).
	if limit := cfg.ClipNorm + math.Sqrt(float64(cfg.Dim))/cfg.Scale; !(norm <= limit) {
		return r.fail("rejected", fmt.Errorf("aggregate update norm %.6g exceeds %.6g (a survivor's reveal or update was wrong)", norm, limit))
	}
	next := make([]float64, cfg.Dim)
	for i := range next {
		next[i] = global[i] + mean[i]
	}
	g := Global{Model: cfg.Model, Version: r.st.Round, Weights: next, Edges: len(survivors), Samples: n}
	if err := c.publish(r.st.Round, PhaseGlobal, g); err != nil {
		return r.fail("error", err)
	}
	c.mu.Lock()
	c.global, c.version = next, r.st.Round
	c.mu.Unlock()
	c.save(ctx)
	if c.onNew != nil {
		c.onNew(g)
	}
	if c.eval != nil {
		if f1, ok := c.eval(next); ok {
			r.st.F1After = &f1
		}
	}
	now := time.Now().UTC()
	r.st.State, r.st.Result, r.st.Version, r.st.Ended = "completed", "completed", r.st.Round, &now
	return r.st
}

func (r *round) takeKeys(edge string, data []byte) {
	var k Keys
	switch {
	case decode(data, &k) != nil || k.Edge != edge || k.Round != r.st.Round:
		r.c.reject(r, "malformed")
	case len(k.Pub) != 32:
		r.c.reject(r, "shape")
	case r.keys[edge] != nil:
		r.c.reject(r, "duplicate")
	case len(r.keys) >= r.c.cfg.MaxEdges:
		r.c.reject(r, "overflow")
	default:
		r.keys[edge] = k.Pub
	}
}

func (r *round) takeMasked(edge string, data []byte) {
	if r.keys[edge] == nil {
		r.c.reject(r, "unknown_edge")
		return
	}
	if _, seen := r.masked[edge]; seen {
		r.c.reject(r, "duplicate")
		return
	}
	var m Masked
	switch {
	case decode(data, &m) != nil || m.Edge != edge || m.Round != r.st.Round:
		r.c.reject(r, "malformed")
	case len(m.Vec) != r.c.cfg.Dim+1:
		r.c.reject(r, "shape")
	default:
		for i, x := range m.Vec {
			r.sum[i] += x
		}
		r.masked[edge] = true
		return
	}
	// A rejected update is left out like a dropped edge's: the survivors
	// reveal their seeds with it.
	r.masked[edge] = false
}

func (r *round) takeReveal(edge string, data []byte, survivor map[string]bool) {
	if !survivor[edge] {
		r.c.reject(r, "unknown_edge")
		return
	}
	if r.revealed[edge] {
		r.c.reject(r, "duplicate")
		return
	}
	var rv Reveal
	if decode(data, &rv) != nil || rv.Edge != edge || rv.Round != r.st.Round || len(rv.Seeds) != len(r.dropped) {
		r.c.reject(r, "reveal")
		return
	}
	seeds := map[string]Seed{}
	for _, s := range rv.Seeds {
		if len(s.Seed) != SeedSize || !slices.Contains(r.dropped, s.Edge) {
			r.c.reject(r, "reveal")
			return
		}
		seeds[s.Edge] = Seed(s.Seed)
	}
	if len(seeds) != len(r.dropped) {
		r.c.reject(r, "reveal")
		return
	}
	for d, s := range seeds {
		RemoveMask(r.sum, edge, d, s)
	}
	r.revealed[edge] = true
}
