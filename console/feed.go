package console

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/schema"
)

// ActionEvent is an action's state as the feed sends it: the action
// (inference.ActionState, as GET /v1/actions) and the features of the
// decision that last moved its state, when the feed saw that decision.
type ActionEvent struct {
	inference.ActionState
	// Features are the inputs of the decision of the last transition.
	Features map[string]float64 `json:"features,omitempty"`
	// Transition is when that decision was made; zero in a snapshot of an
	// action whose transition the feed did not see (before a restart).
	Transition time.Time `json:"transition,omitzero"`
}

// maxRemembered bounds the features the feed keeps (one set per model and
// entity that changed state); past it, new transitions are sent without
// being remembered for later snapshots.
const maxRemembered = 100_000

// subscriberBuffer is how many events a slow stream may have queued before
// it misses some and is sent a fresh snapshot instead.
const subscriberBuffer = 256

// keepAlive is how often an idle stream sends a comment, so that proxies
// and the browser keep the connection.
const keepAlive = 15 * time.Second

// ActionFeed is the live action feed: an http.Handler that streams, as
// server-sent events, a snapshot of every current action ("snapshot", a
// JSON array of ActionEvent) and then each transition as it happens
// ("action", one ActionEvent). It learns of transitions from Observe,
// which the inference runtime calls in-process (ObserveTransitions).
type ActionFeed struct {
	actions func() []inference.ActionState

	mu       sync.Mutex
	features map[string]ActionEvent // fingerprint → the last transition seen
	subs     map[*subscriber]struct{}
	closed   bool
	done     chan struct{}

	streams prometheus.Gauge
	dropped prometheus.Counter
}

type subscriber struct {
	ch     chan ActionEvent
	lagged bool // guarded by ActionFeed.mu: an event was dropped
}

// NewActionFeed returns a feed whose snapshots list actions() (nil: none).
// Its metrics go to reg (nil: not registered).
func NewActionFeed(actions func() []inference.ActionState, reg prometheus.Registerer) *ActionFeed {
	f := &ActionFeed{
		actions:  actions,
		features: map[string]ActionEvent{},
		subs:     map[*subscriber]struct{}{},
		done:     make(chan struct{}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "netfeat_console_action_streams",
			Help: "Live action streams (GET /v1/actions/stream) open."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "netfeat_console_action_events_dropped_total",
			Help: "Action events a slow stream missed (it was sent a snapshot instead)."}),
	}
	if reg != nil {
		reg.MustRegister(f.streams, f.dropped)
	}
	return f
}

// Observe takes a decision that moved an action's state. It runs on an
// inference worker: it copies what it needs and hands it to every open
// stream without waiting.
func (f *ActionFeed) Observe(d *schema.Decision) {
	ev := ActionEvent{
		ActionState: inference.ActionState{
			Model: d.Model, ModelVersion: d.ModelVersion, Fingerprint: d.Fingerprint, Entity: d.Entity, View: d.View,
			Trigger: d.Trigger, State: d.State, Since: d.Since, Action: d.Action, Score: d.Score, Reason: d.Reason,
			LastDecision: d.Time, Flapping: d.Flapping,
		},
		Features:   finite(d.Features),
		Transition: d.Time,
	}
	if math.IsNaN(ev.Score) || math.IsInf(ev.Score, 0) {
		ev.Score = 0 // JSON has no NaN; a decision without its inputs has no score
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if d.State == schema.StateInactive {
		delete(f.features, d.Fingerprint)
	} else if _, ok := f.features[d.Fingerprint]; ok || len(f.features) < maxRemembered {
		f.features[d.Fingerprint] = ev
	}
	for s := range f.subs {
		select {
		case s.ch <- ev:
		default:
			s.lagged = true
			f.dropped.Inc()
		}
	}
}

// finite copies m without its NaN and infinite values (a missing input),
// which JSON cannot carry.
func finite(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			out[k] = v
		}
	}
	return out
}

// Close ends every open stream and refuses new ones (503), so that the
// HTTP server's graceful stop does not wait for them.
func (f *ActionFeed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		close(f.done)
	}
}

// Stop is Close, with the signature of a service component's stop.
func (f *ActionFeed) Stop(context.Context) error {
	f.Close()
	return nil
}

func (f *ActionFeed) subscribe() (*subscriber, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, false
	}
	s := &subscriber{ch: make(chan ActionEvent, subscriberBuffer)}
	f.subs[s] = struct{}{}
	f.streams.Inc()
	return s, true
}

func (f *ActionFeed) unsubscribe(s *subscriber) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs, s)
	f.streams.Dec()
}

// takeLagged reports whether s missed events since the last call.
func (f *ActionFeed) takeLagged(s *subscriber) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := s.lagged
	s.lagged = false
	return l
}

// Snapshot returns every current action with the features of its last
// transition, when the feed saw it. It also forgets the features of
// actions the runtime no longer lists.
func (f *ActionFeed) Snapshot() []ActionEvent {
	var states []inference.ActionState
	if f.actions != nil {
		states = f.actions()
	}
	out := make([]ActionEvent, len(states))
	live := make(map[string]bool, len(states))
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, a := range states {
		out[i].ActionState = a
		live[a.Fingerprint] = true
		if ev, ok := f.features[a.Fingerprint]; ok && ev.Model == a.Model {
			out[i].Features, out[i].Transition = ev.Features, ev.Transition
		}
	}
	if f.actions != nil {
		for fp, ev := range f.features {
			// Keep a transition newer than the list (it may not show yet).
			if !live[fp] && time.Since(ev.Transition) > time.Minute {
				delete(f.features, fp)
			}
		}
	}
	return out
}

// ServeHTTP streams the feed as text/event-stream until the client goes,
// or Close.
func (f *ActionFeed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	s, ok := f.subscribe()
	if !ok {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer f.unsubscribe(s)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// Subscribed before the snapshot: a transition in between is sent
	// twice at worst, and the page keeps the newest.
	if err := f.send(w, rc, "snapshot", f.Snapshot(), "retry: 2000\n"); err != nil {
		return
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-f.done:
			return
		case ev := <-s.ch:
			if f.takeLagged(s) {
				err = f.send(w, rc, "snapshot", f.Snapshot(), "")
			} else {
				err = f.send(w, rc, "action", ev, "")
			}
		case <-tick.C:
			if _, err = fmt.Fprint(w, ": keep-alive\n\n"); err == nil {
				err = rc.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// send writes one event and flushes it.
func (f *ActionFeed) send(w http.ResponseWriter, rc *http.ResponseController, event string, v any, prefix string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", event, err)
	}
	if _, err := fmt.Fprintf(w, "%sevent: %s\ndata: %s\n\n", prefix, event, b); err != nil {
		return fmt.Errorf("write %s event: %w", event, err)
	}
	if err := rc.Flush(); err != nil {
		return fmt.Errorf("flush %s event: %w", event, err)
	}
	return nil
}
