package inference

// The action lifecycle (pending, firing, resolved) of each (model, entity):
// see the diagram below. A lifecycle is owned by the worker goroutine of
// its entity.

import (
	"crypto/sha1"
	"encoding/hex"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// The action lifecycle of one (model or rule, entity): the states and
// timing of a Prometheus alerting rule (for, keep_firing_for) with
// Alertmanager's repeat_interval, plus a flap guard.
//
//	inactive ──holds──► pending ──held for `for`──► firing ──not held for keep_firing_for──► resolved
//	    ▲                  │                          ▲  │                                       │
//	    └────not held──────┘                          └──┴── holds again ◄──────────────────────┘ (to pending or firing)
//
// Time is event time: a window's end, or a state event's timestamp, or the
// deadline of a timer an event lifecycle set for itself. A lifecycle is
// touched only by the worker that owns its entity; what other goroutines
// read of it (the actions table) is the immutable ActionState it
// publishes after each step.

// lifeParams are a slot's resolved lifecycle settings.
type lifeParams struct {
	forDur, keepFiring, repeat int64 // ns
	flapLimit                  int
	flapWindow                 int64
	action, resolveAction      string
}

func newLifeParams(l ActionLifecycle, def LifecycleConfig, action string) lifeParams {
	p := lifeParams{
		forDur: int64(l.For), keepFiring: int64(def.KeepFiringFor), repeat: int64(def.RepeatInterval),
		flapLimit: def.FlapLimit, flapWindow: int64(def.FlapWindow), action: action, resolveAction: l.ResolveAction,
	}
	if l.KeepFiringFor != nil {
		p.keepFiring = int64(*l.KeepFiringFor)
	}
	if l.RepeatInterval != nil {
		p.repeat = int64(*l.RepeatInterval)
	}
	if p.repeat <= 0 {
		p.repeat = int64(time.Hour)
	}
	if p.resolveAction == "" {
		p.resolveAction = action
	}
	return p
}

// lifecycle is one (slot, entity)'s action state.
type lifecycle struct {
	state     string
	since     int64 // when state began
	heldSince int64 // when the condition started to hold, while holding
	holding   bool  // the condition held at the last evaluation
	lastHeld  int64 // the last time the condition held
	lastT     int64 // the newest evaluation time
	lastWin   int64 // the newest window end evaluated (redelivered windows are not stepped)
	lastSent  int64 // evaluation time of the last published transition or repeat
	published string
	// The flap guard: a transition count that decays exponentially with
	// time constant flapWindow (Nagios-style), as of flapAt.
	flapScore float64
	flapAt    int64
	flapping  bool
	suppress  int64 // transitions not published while flapping

	// Event lifecycles: the last event and whether the condition held on
	// it (a timer steps the lifecycle with that), and the generation of
	// the timer armed for it.
	lastEvent *schema.DecisionEvent
	lastHolds bool
	timerGen  uint64

	fp string // the fingerprint, computed once

	used  atomic.Int64 // wall clock of the last step, for forget
	shown atomic.Pointer[ActionState]
}

// stepResult is what one step did.
type stepResult struct {
	transition bool // state moved
	publish    bool // a transition or a repeat to publish
	repeat     bool // a repeat, not a transition
	flapping   bool
	suppressed bool // a transition the flap guard kept back
}

// step advances lc with one evaluation at event time t. holds says whether
// the condition holds.
func (lc *lifecycle) step(p *lifeParams, t int64, holds bool) stepResult {
	if t < lc.lastT {
		t = lc.lastT // event time never runs backwards within a lifecycle
	}
	lc.lastT = t
	prev := lc.state
	if holds {
		lc.lastHeld = t
		if !lc.holding {
			lc.heldSince, lc.holding = t, true
		}
		switch lc.state {
		case "", schema.StateInactive, schema.StateResolved:
			lc.state, lc.since = schema.StatePending, t
			if p.forDur <= 0 {
				lc.state = schema.StateFiring
			}
		case schema.StatePending:
			if t-lc.heldSince >= p.forDur {
				lc.state, lc.since = schema.StateFiring, t
			}
		}
	} else {
		lc.heldSince, lc.holding = 0, false
		switch lc.state {
		case schema.StatePending:
			lc.state, lc.since = schema.StateInactive, t
		case schema.StateFiring:
			if t-lc.lastHeld >= p.keepFiring {
				lc.state, lc.since = schema.StateResolved, t
			}
		case "":
			lc.state, lc.since = schema.StateInactive, t
		}
	}
	var res stepResult
	res.transition = lc.state != prev && prev != "" || (prev == "" && lc.state != schema.StateInactive)
	wasFlapping := lc.flapping
	lc.flapGuard(p, t, res.transition)
	switch {
	case res.transition && lc.flapping:
		res.suppressed = true
		lc.suppress++
		// The transition that starts the flapping is published, marked.
		res.publish = !wasFlapping
	case res.transition:
		res.publish = true
	case wasFlapping && !lc.flapping:
		// The flapping stopped: publish the state if it differs from the
		// last one published.
		res.publish = lc.state != lc.published
	}
	if !res.publish && (lc.state == schema.StateFiring || lc.flapping) && t-lc.lastSent >= p.repeat {
		res.publish, res.repeat = true, true
	}
	if res.publish {
		lc.lastSent = t
		lc.published = lc.state
	}
	res.flapping = lc.flapping
	return res
}

// flapGuard decays the flap score to t, adds the transition if there is
// one, and sets flapping: on above flapLimit, off again at or below half of
// it (hysteresis, so that the guard itself does not flap).
func (lc *lifecycle) flapGuard(p *lifeParams, t int64, transition bool) {
	if p.flapLimit <= 0 {
		return
	}
	if lc.flapScore > 0 && t > lc.flapAt {
		lc.flapScore *= math.Exp(-float64(t-lc.flapAt) / float64(p.flapWindow))
	}
	lc.flapAt = t
	if transition {
		lc.flapScore++
	}
	switch {
	case lc.flapScore > float64(p.flapLimit):
		lc.flapping = true
	case lc.flapScore <= float64(p.flapLimit)/2:
		lc.flapping = false
	}
}

// calmAt is the event time at which a flapping lifecycle's score will have
// decayed to half the flap limit, if no transition comes.
func (lc *lifecycle) calmAt(p *lifeParams) int64 {
	half := float64(p.flapLimit) / 2
	if lc.flapScore <= half {
		return lc.flapAt
	}
	return lc.flapAt + int64(float64(p.flapWindow)*math.Log(lc.flapScore/half)) + 1
}

// actionOf is the action a decision in lc's state carries.
func (lc *lifecycle) actionOf(p *lifeParams) string {
	switch lc.state {
	case schema.StatePending, schema.StateFiring:
		return p.action
	case schema.StateResolved:
		return p.resolveAction
	}
	return ActionNone
}

// nextDeadline is the event time at which an event lifecycle must be
// evaluated again without a new event (pending reaching `for`, a firing
// action outliving keep_firing_for, a repeat, a flap window ending), or 0.
func (lc *lifecycle) nextDeadline(p *lifeParams) int64 {
	var at int64
	earliest := func(t int64) {
		if t > lc.lastT && (at == 0 || t < at) {
			at = t
		}
	}
	switch lc.state {
	case schema.StatePending:
		earliest(lc.heldSince + p.forDur)
	case schema.StateFiring:
		if !lc.holding {
			earliest(lc.lastHeld + p.keepFiring)
		}
		earliest(lc.lastSent + p.repeat)
	}
	if lc.flapping {
		earliest(lc.calmAt(p))
		earliest(lc.lastSent + p.repeat)
	}
	return at
}

// ActionState is the current state of one (model or rule, entity) action:
// a row of the SQL `actions` table and of GET /v1/actions.
type ActionState struct {
	Model        string        `json:"model"`
	ModelVersion string        `json:"model_version"`
	Fingerprint  string        `json:"fingerprint"`
	Entity       schema.Entity `json:"entity"`
	View         string        `json:"view,omitempty"`
	Trigger      string        `json:"trigger"`
	State        string        `json:"state"`
	Since        time.Time     `json:"since"`
	Action       string        `json:"action"`
	Score        float64       `json:"score"`
	Reason       string        `json:"reason"`
	// LastDecision is the time of the newest decision; LastPublished the
	// event time of the last transition or repeat published.
	LastDecision  time.Time `json:"last_decision"`
	LastPublished time.Time `json:"last_published"`
	Flapping      bool      `json:"flapping,omitempty"`
	// Suppressed counts the transitions the flap guard kept back.
	Suppressed int64 `json:"suppressed,omitempty"`
}

// lifecycles is a slot's lifecycles by entity.
type lifecycles struct {
	mu sync.Mutex
	m  map[schema.Entity]*lifecycle
}

// get returns the entity's lifecycle, creating it. Only the worker that
// owns the entity calls it for that entity.
func (ls *lifecycles) get(e schema.Entity) *lifecycle {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	lc, ok := ls.m[e]
	if !ok {
		if ls.m == nil {
			ls.m = map[schema.Entity]*lifecycle{}
		}
		lc = &lifecycle{}
		ls.m[e] = lc
	}
	return lc
}

// lookup returns the entity's lifecycle or nil.
func (ls *lifecycles) lookup(e schema.Entity) *lifecycle {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.m[e]
}

// forget drops lifecycles not stepped since cutoff (Unix ns, wall clock)
// that are not firing: a firing action is kept until it resolves.
func (ls *lifecycles) forget(cutoff int64) int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	n := 0
	for e, lc := range ls.m {
		if lc.used.Load() < cutoff {
			if st := lc.shown.Load(); st != nil && st.State == schema.StateFiring {
				continue
			}
			delete(ls.m, e)
			n++
		}
	}
	return n
}

// states returns the published states of the lifecycles that are not
// inactive.
func (ls *lifecycles) states(out []ActionState) []ActionState {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, lc := range ls.m {
		if st := lc.shown.Load(); st != nil && st.State != schema.StateInactive {
			out = append(out, *st)
		}
	}
	return out
}

// fingerprint is the stable id of a (model, entity) action: 16 hex digits
// of the SHA-1 of model, device and component.
func fingerprint(model string, e schema.Entity) string {
	h := sha1.New()
	h.Write([]byte(model))
	h.Write([]byte{0})
	h.Write([]byte(e.Device))
	h.Write([]byte{0})
	h.Write([]byte(e.Component))
	var sum [sha1.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:8])
}
