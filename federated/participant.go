package federated

import (
	"context"
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Trainer trains a local update of the federated model on the edge's own
// data: from the global weights, the update to add to them (local weights
// minus global) and the number of samples it was trained on.
type Trainer interface {
	Train(ctx context.Context, global []float64) (update []float64, n int, err error)
}

// Preparer is implemented by a Trainer that reads its data afresh for
// each round. When a round starts, before the edge sends its key, the
// participant calls Prepare, bounded by half the round's deadline; an
// error keeps the edge out of the round: it sends nothing, so the hub
// never counts it (the round goes on without it). An error wrapping
// ErrSkipRound (too little data) counts as
// netfeat_fl_edge_rounds_total{result="skipped"}, any other as "refused".
// A successful Prepare is followed by Train in the same round.
type Preparer interface {
	Prepare(ctx context.Context, round uint64) error
}

// ErrSkipRound is what a Preparer wraps to sit a round out (too little
// data to train on).
var ErrSkipRound = errors.New("the edge sits this round out")

// TrainerFunc adapts a function to Trainer.
type TrainerFunc func(ctx context.Context, global []float64) ([]float64, int, error)

// Train calls f.
func (f TrainerFunc) Train(ctx context.Context, global []float64) ([]float64, int, error) {
	return f(ctx, global)
}

// Participant takes part in the rounds of one federated model on an edge.
// Only keys, masked updates, seeds with dropped edges and nothing else
// leave it; its data stay with its Trainer.
type Participant struct {
	cfg     Config
	edge    string
	nc      *nats.Conn
	trainer Trainer
	log     *slog.Logger
	m       *edgeMetrics

	in   chan *nats.Msg
	subs []*nats.Subscription

	mu       sync.Mutex
	global   []float64
	version  uint64
	onGlobal func(Global)

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewParticipant checks cfg (defaults applied) and returns the participant
// edge (its site) over nc, a connection that reaches the hub (the edge's
// own server, a leaf node of the hub). It makes no network call.
func NewParticipant(cfg Config, edge string, nc *nats.Conn, t Trainer, reg prometheus.Registerer, log *slog.Logger) (*Participant, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate("federated"); err != nil {
		return nil, err
	}
	if !validToken(edge) {
		return nil, fmt.Errorf("federated: edge id %q is not a subject token", edge)
	}
	if nc == nil || t == nil {
		return nil, errors.New("federated: participant needs a NATS connection and a trainer")
	}
	m, err := newEdgeMetrics(reg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Participant{
		cfg: cfg, edge: edge, nc: nc, trainer: t, m: m,
		log: log.With("component", "federated", "model", cfg.Model, "edge", edge),
		in:  make(chan *nats.Msg, 64),
	}, nil
}

// SetGlobalHandler sets a function called with each new global version the
// edge receives (the seam to install it as a model version). Call before
// Start.
func (p *Participant) SetGlobalHandler(f func(Global)) { p.onGlobal = f }

// Global returns the global weights the edge holds and their version (nil
// before the first round).
func (p *Participant) Global() ([]float64, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.global), p.version
}

// Start subscribes to the hub's messages of the model.
func (p *Participant) Start(ctx context.Context) error {
	for _, ph := range []string{PhaseStart, PhasePeers, PhaseUnmask, PhaseGlobal} {
		subj := p.cfg.SubjectPrefix + "." + p.cfg.Model + ".*." + ph
		s, err := p.nc.ChanSubscribe(subj, p.in)
		if err != nil {
			p.unsubscribe()
			return fmt.Errorf("federated: subscribe %s: %w", subj, err)
		}
		p.subs = append(p.subs, s)
	}
	if err := p.nc.Flush(); err != nil {
		p.unsubscribe()
		return fmt.Errorf("federated: subscribe: %w", err)
	}
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p.cancel = cancel
	p.wg.Add(1)
	go p.loop(run)
	return nil
}

func (p *Participant) unsubscribe() {
	for _, s := range p.subs {
		_ = s.Unsubscribe()
	}
	p.subs = nil
}

// Stop leaves the round in flight and unsubscribes.
func (p *Participant) Stop(ctx context.Context) error {
	p.unsubscribe()
	if p.cancel != nil {
		p.cancel()
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("federated: stop: %w", ctx.Err())
	}
}

// edgeRound is the edge's state of one round.
type edgeRound struct {
	round  uint64
	in     chan *nats.Msg
	cancel context.CancelFunc
}

// loop dispatches the hub's messages: a start begins a round (ending the
// one before), peers and unmask go to the round of their number, a global
// is kept.
func (p *Participant) loop(ctx context.Context) {
	defer p.wg.Done()
	var cur *edgeRound
	defer func() {
		if cur != nil {
			cur.cancel()
		}
	}()
	for {
		var msg *nats.Msg
		select {
		case <-ctx.Done():
			return
		case msg = <-p.in:
		}
		rnd, phase, edge, ok := parseSubject(msg.Subject, p.cfg.SubjectPrefix, p.cfg.Model)
		if !ok || edge != "" {
			continue
		}
		switch phase {
		case PhaseStart:
			var s Start
			if err := decode(msg.Data, &s); err != nil || s.Round != rnd || s.Model != p.cfg.Model {
				p.log.Warn("federated: a round start that does not decode", "round", rnd, "err", err)
				continue
			}
			if cur != nil {
				if rnd == cur.round { // a repeat
					continue
				}
				// A new round ends this one, whatever its number: a hub
				// restarted without its state numbers rounds again.
				cur.cancel()
			}
			rctx, cancel := context.WithTimeout(ctx, 4*p.cfg.Deadline)
			cur = &edgeRound{round: rnd, in: make(chan *nats.Msg, 4), cancel: cancel}
			p.wg.Add(1)
			go func(r *edgeRound) {
				defer p.wg.Done()
				defer r.cancel()
				p.runRound(rctx, r, s)
			}(cur)
		case PhaseGlobal:
			var g Global
			if err := decode(msg.Data, &g); err != nil || g.Model != p.cfg.Model || g.Version != rnd || len(g.Weights) != p.cfg.Dim {
				p.log.Warn("federated: a global model that does not decode", "round", rnd, "err", err)
				continue
			}
			p.setGlobal(g)
		default:
			if cur != nil && cur.round == rnd {
				select {
				case cur.in <- msg:
				default:
				}
			}
		}
	}
}

func (p *Participant) setGlobal(g Global) {
	p.mu.Lock()
	if g.Version == p.version && p.global != nil && slices.Equal(p.global, g.Weights) {
		p.mu.Unlock()
		return
	}
	p.global, p.version = slices.Clone([]float64(g.Weights)), g.Version
	p.mu.Unlock()
	p.m.version.Set(float64(g.Version))
	if p.onGlobal != nil {
		p.onGlobal(g)
	}
}

type trained struct {
	update []float64
	n      int
	err    error
}

// wait returns the next message of phase for the round, nil when ctx ends.
func (p *Participant) wait(ctx context.Context, r *edgeRound, phase string, v any) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case msg := <-r.in:
			_, ph, _, _ := parseSubject(msg.Subject, p.cfg.SubjectPrefix, p.cfg.Model)
			if ph != phase {
				continue
			}
			if err := decode(msg.Data, v); err != nil {
				p.log.Warn("federated: a hub message that does not decode", "phase", phase, "err", err)
				continue
			}
			return true
		}
	}
}

func (p *Participant) runRound(ctx context.Context, r *edgeRound, s Start) {
	cfg := p.cfg
	if s.Dim != cfg.Dim || len(s.Global) != cfg.Dim {
		p.refuse(r.round, fmt.Errorf("round of dimension %d (global %d), this edge's model has %d", s.Dim, len(s.Global), cfg.Dim))
		return
	}
	p.setGlobal(Global{Model: s.Model, Version: s.Version, Weights: s.Global})
	if pr, ok := p.trainer.(Preparer); ok {
		pctx, cancel := context.WithTimeout(ctx, cfg.Deadline/2)
		err := pr.Prepare(pctx, r.round)
		cancel()
		if errors.Is(err, ErrSkipRound) {
			p.m.rounds.WithLabelValues("skipped").Inc()
			p.log.Info("federated: this edge sits the round out", "round", r.round, "why", err)
			return
		}
		if err != nil {
			p.refuse(r.round, fmt.Errorf("preparing the local data: %w", err))
			return
		}
	}
	key, err := NewKey()
	if err != nil {
		p.refuse(r.round, err)
		return
	}
	// Train while the keys are gathered; the masked phase ends at most two
	// deadlines after the start.
	tctx, tcancel := context.WithTimeout(ctx, 2*cfg.Deadline*9/10)
	defer tcancel()
	done := make(chan trained, 1)
	go func() {
		u, n, err := p.trainer.Train(tctx, slices.Clone([]float64(s.Global)))
		done <- trained{u, n, err}
	}()
	if err := p.publish(r.round, PhaseKeys, Keys{Round: r.round, Edge: p.edge, Pub: key.PublicKey().Bytes()}); err != nil {
		p.refuse(r.round, err)
		return
	}
	var peers Peers
	if !p.wait(ctx, r, PhasePeers, &peers) {
		p.m.rounds.WithLabelValues("timeout").Inc()
		return
	}
	seeds, err := p.seeds(key, r.round, peers)
	if err != nil {
		p.refuse(r.round, err)
		return
	}
	var t trained
	select {
	case <-ctx.Done():
		p.m.rounds.WithLabelValues("timeout").Inc()
		return
	case t = <-done:
	}
	update, err := p.check(t)
	if err != nil {
		p.m.rounds.WithLabelValues("rejected").Inc()
		p.log.Warn("federated: local update rejected; this edge drops out of the round", "round", r.round, "err", err)
		return
	}
	vec := Quantize(update, t.n, cfg.Scale)
	Mask(vec, p.edge, seeds)
	if err := p.publish(r.round, PhaseMasked, Masked{Round: r.round, Edge: p.edge, Vec: vec}); err != nil {
		p.refuse(r.round, err)
		return
	}
	p.m.rounds.WithLabelValues("sent").Inc()

	// Reveals, if the hub asks for them before the round ends.
	var um Unmask
	if !p.wait(ctx, r, PhaseUnmask, &um) {
		return
	}
	rv, err := p.reveal(um, seeds)
	if err != nil {
		p.refuse(r.round, err)
		return
	}
	if err := p.publish(r.round, PhaseReveal, rv); err != nil {
		p.refuse(r.round, err)
		return
	}
	p.m.rounds.WithLabelValues("revealed").Inc()
}

func (p *Participant) refuse(rnd uint64, err error) {
	p.m.rounds.WithLabelValues("refused").Inc()
	p.log.Warn("federated: this edge leaves the round", "round", rnd, "err", err)
}

func (p *Participant) publish(rnd uint64, phase string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("federated: encode %s: %w", phase, err)
	}
	if err := p.nc.Publish(Subject(p.cfg.SubjectPrefix, p.cfg.Model, rnd, phase, p.edge), b); err != nil {
		return fmt.Errorf("federated: publish %s: %w", phase, err)
	}
	return nil
}

// seeds checks the round's peers and derives this edge's seed with each
// other one.
func (p *Participant) seeds(key *ecdh.PrivateKey, rnd uint64, peers Peers) (map[string]Seed, error) {
	if peers.Round != rnd {
		return nil, fmt.Errorf("peers of round %d in round %d", peers.Round, rnd)
	}
	if len(peers.Peers) < p.cfg.MinEdges || len(peers.Peers) > p.cfg.MaxEdges {
		return nil, fmt.Errorf("the round has %d edges, outside [min_edges %d, max_edges %d]", len(peers.Peers), p.cfg.MinEdges, p.cfg.MaxEdges)
	}
	own := key.PublicKey().Bytes()
	seeds := make(map[string]Seed, len(peers.Peers)-1)
	found := false
	for i, pe := range peers.Peers {
		if i > 0 && pe.Edge <= peers.Peers[i-1].Edge {
			return nil, errors.New("peers not sorted or repeated")
		}
		if pe.Edge == p.edge {
			if string(pe.Pub) != string(own) {
				return nil, errors.New("the peers carry another key for this edge")
			}
			found = true
			continue
		}
		s, err := PairSeed(key, pe.Pub, p.cfg.Model, rnd, p.edge, pe.Edge)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", pe.Edge, err)
		}
		seeds[pe.Edge] = s
	}
	if !found {
		return nil, errors.New("this edge is not among the peers")
	}
	return seeds, nil
}

// check validates a local update before it is masked (the hub cannot see
// it): its shape, finite values, sample count and norm; it clips it to
// clip_norm. A rejection is counted by reason.
func (p *Participant) check(t trained) ([]float64, error) {
	reject := func(reason string, err error) ([]float64, error) {
		p.m.rejected.WithLabelValues(reason).Inc()
		return nil, err
	}
	switch {
	case t.err != nil:
		return reject("train_error", fmt.Errorf("training: %w", t.err))
	case len(t.update) != p.cfg.Dim:
		return reject("shape", fmt.Errorf("update of %d values, the model has %d", len(t.update), p.cfg.Dim))
	case !allFinite(t.update):
		return reject("nan", errors.New("update holds NaN or Inf"))
	case t.n < 1 || t.n > p.cfg.MaxSamples:
		return reject("samples", fmt.Errorf("sample count %d outside [1, %d]", t.n, p.cfg.MaxSamples))
	}
	if n := Norm(t.update); !(n <= p.cfg.MaxNorm) {
		return reject("norm", fmt.Errorf("update norm %.6g exceeds max_norm %.6g", n, p.cfg.MaxNorm))
	}
	u := slices.Clone(t.update)
	Clip(u, p.cfg.ClipNorm)
	for _, x := range u { // clipped: |x·scale| ≤ clip_norm·scale, checked against int64 by Validate
		if math.Abs(x) > p.cfg.ClipNorm {
			return reject("norm", errors.New("update out of range after clipping"))
		}
	}
	return u, nil
}

// reveal answers an unmask request with this edge's seeds with the dropped
// edges, after checking that the request cannot expose a survivor: this
// edge is a survivor, there are at least min_edges survivors, and no
// dropped edge is a survivor.
func (p *Participant) reveal(um Unmask, seeds map[string]Seed) (Reveal, error) {
	rv := Reveal{Round: um.Round, Edge: p.edge}
	if len(um.Survivors) < p.cfg.MinEdges || !slices.Contains(um.Survivors, p.edge) {
		return rv, fmt.Errorf("unmask request with %d survivors (min_edges %d) or without this edge", len(um.Survivors), p.cfg.MinEdges)
	}
	for _, s := range um.Survivors {
		if s != p.edge && !hasSeed(seeds, s) {
			return rv, fmt.Errorf("survivor %s was not a peer", s)
		}
	}
	for _, d := range um.Dropped {
		if slices.Contains(um.Survivors, d) {
			return rv, fmt.Errorf("edge %s is both a survivor and dropped", d)
		}
		s, ok := seeds[d]
		if !ok {
			return rv, fmt.Errorf("dropped edge %s was not a peer", d)
		}
		rv.Seeds = append(rv.Seeds, RevealedSeed{Edge: d, Seed: s[:]})
	}
	return rv, nil
}

func hasSeed(m map[string]Seed, k string) bool { _, ok := m[k]; return ok }
