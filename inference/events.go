package inference

// The event path: HandleEvent (called on the feature store's goroutine)
// queues a state event onto the worker of its entity; the current state of
// every entity's state metrics (entityStates) is shared by the workers
// under its mutex. Event rules and event-bound models are decided by that
// worker.

// The event path: state events from the feature store (a link going down,
// from an SNMP trap, a gNMI ON_CHANGE update or a poll that saw it) are
// queued to the worker that owns the entity and evaluated at once by the
// event rules of their metric and by the models bound to events, without
// waiting for a window.

import (
	"math"
	"strings"
	"sync"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// eventCond is an event rule's condition.
type eventCond struct {
	cfg    EventRuleConfig
	value  float64
	equals bool
}

func newEventCond(cfg EventRuleConfig) *eventCond {
	v, _ := stateValue(cfg.Metric, cfg.State) // validated
	return &eventCond{cfg: cfg, value: v, equals: cfg.Op != "!="}
}

func (c *eventCond) holds(v float64) bool { return (v == c.value) == c.equals }

// version is the rule's version string: a digest of its configuration.
func (c *eventCond) version() string {
	x := c.cfg
	return "config-" + shortHash(x.Metric+"|"+x.Op+"|"+x.State+"|"+x.Action+"|"+x.ResolveAction+"|"+x.For.String())
}

// HandleEvent queues a state event for evaluation. It never blocks: when
// the entity's queue is full the event is dropped and counted. It matches
// schema.StateEventHandler; the runtime owns ev after the call.
func (r *Runtime) HandleEvent(ev *schema.StateEvent) {
	if ev == nil || r.stopping.Load() {
		return
	}
	if len(r.eventRules[ev.Metric]) == 0 && len(r.eventModels) == 0 {
		return
	}
	r.m.events.Inc()
	if !r.enqueue(r.shard(ev.Entity), item{ev: ev}) {
		r.m.eventsDropped.Inc()
	}
}

// entityStates keeps the newest value of each state metric per entity, for
// the rows of models bound to events.
type entityStates struct {
	mu sync.Mutex
	m  map[schema.Entity]*entityState
}

type entityState struct {
	vals map[string]float64 // feature name (metric with '_') → value
	used int64
}

func (es *entityStates) set(e schema.Entity, metric string, v float64) {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.m == nil {
		es.m = map[schema.Entity]*entityState{}
	}
	st, ok := es.m[e]
	if !ok {
		st = &entityState{vals: map[string]float64{}}
		es.m[e] = st
	}
	st.vals[stateFeature(metric)] = v
	st.used = time.Now().UnixNano()
}

func (es *entityStates) get(e schema.Entity, feature string) (float64, bool) {
	es.mu.Lock()
	defer es.mu.Unlock()
	if st, ok := es.m[e]; ok {
		v, ok := st.vals[feature]
		return v, ok
	}
	return 0, false
}

func (es *entityStates) forget(cutoff int64) {
	es.mu.Lock()
	defer es.mu.Unlock()
	for e, st := range es.m {
		if st.used < cutoff {
			delete(es.m, e)
		}
	}
}

// stateFeature is the feature name under which an event-bound model reads
// the current value of a state metric: the metric with '.' as '_'
// ("interface_oper_status").
func stateFeature(metric string) string { return strings.ReplaceAll(metric, ".", "_") }

// stateFeatures are the state features every event row carries.
var stateFeatures = func() []string {
	var out []string
	for _, m := range schema.Catalog {
		if m.Kind == schema.KindStateMetric {
			out = append(out, stateFeature(m.Name))
		}
	}
	return out
}()

func (r *Runtime) processEvent(ev *schema.StateEvent, w *worker) {
	r.states.set(ev.Entity, ev.Metric, ev.Value)
	de := &schema.DecisionEvent{Metric: ev.Metric, State: schema.StateName(ev.Metric, ev.Value), Time: time.Unix(0, ev.TS).UTC()}
	if !math.IsNaN(ev.Prev) {
		de.Prev = schema.StateName(ev.Metric, ev.Prev)
	}
	if math.IsNaN(ev.Prev) {
		// A series' first value sets its state: the change, if there was
		// one, happened before it was watched (an unused port down since
		// forever is no incident). What comes next is acted on.
		for _, s := range r.eventRules[ev.Metric] {
			if lc := s.lcs.get(ev.Entity); lc.state == "" {
				lc.lastHolds = s.event.holds(ev.Value)
			}
		}
		r.m.eventsBaseline.Inc()
		return
	}
	for _, s := range r.eventRules[ev.Metric] {
		r.ruleEvent(s, ev, de, w)
	}
	for _, s := range r.eventModels {
		r.modelEvent(s, ev, de, w)
	}
}

// ruleEvent evaluates an event rule on ev.
func (r *Runtime) ruleEvent(s *slot, ev *schema.StateEvent, de *schema.DecisionEvent, w *worker) {
	c := s.event
	holds := c.holds(ev.Value)
	res := result{score: 0, features: map[string]float64{stateFeature(ev.Metric): ev.Value}}
	if holds {
		res.score = 1
	}
	op := "=="
	if !c.equals {
		op = "!="
	}
	var b strings.Builder
	b.WriteString(ev.Metric + "=" + de.State)
	if de.Prev != "" {
		b.WriteString(" (was " + de.Prev + ")")
	}
	if !holds {
		b.WriteString(", not")
	}
	b.WriteString(" " + op + " " + c.cfg.State)
	res.reason = b.String()
	lc := s.lcs.get(ev.Entity)
	lc.lastEvent, lc.lastHolds = de, holds
	d := r.eventDecision(s, ev, de, s.set.Load().live.info.Version, &res)
	st := lc.step(&s.life, ev.TS, holds)
	w.schedule(s, ev.Entity, lc)
	r.finish(s, lc, &d, st, w, nil, nil)
}

// modelEvent scores a model bound to events on ev: on the entity's latest
// closed row of the model's view with the state features set to the
// entity's current states.
func (r *Runtime) modelEvent(s *slot, ev *schema.StateEvent, de *schema.DecisionEvent, w *worker) {
	set := s.set.Load()
	if set == nil || set.live == nil {
		return
	}
	e := ev.Entity
	var latest *schema.FeatureRow
	if src := r.latest.Load(); src != nil {
		var ok bool
		if latest, ok = (*src)(s.view, e); !ok && e.Component != "" {
			// A device view: its entity has no component.
			if latest, ok = (*src)(s.view, schema.Entity{Device: e.Device}); ok {
				e = latest.Entity
			}
		}
		if !ok {
			latest = nil
		}
	}
	row := r.eventRow(s.view, e, latest, ev)
	lc := s.lcs.get(e)
	res := result{noWindow: latest == nil}
	ver, fallback, ok := r.scoreLive(s, set, row, lc, &res)
	if !ok {
		return
	}
	d := r.eventDecision(s, ev, de, ver, &res)
	d.Entity, d.View, d.Fallback = e, s.view, fallback
	d.ID = decisionID(s.name, "event:"+ev.Metric, e, ev.TS, 0, "")
	if latest != nil {
		d.Window = schema.Window{Start: time.Unix(0, latest.WindowStart).UTC(), End: time.Unix(0, latest.WindowEnd).UTC()}
	}
	var st stepResult
	if len(res.missing) > 0 {
		d.MissingFeatures = res.missing
	} else {
		holds := s.holds(&res)
		lc.lastEvent, lc.lastHolds = de, holds
		st = lc.step(&s.life, ev.TS, holds)
		w.schedule(s, e, lc)
	}
	r.finish(s, lc, &d, st, w, nil, nil)
}

// eventRow builds the row an event-bound model scores: the view's
// features from the entity's latest closed row (NaN without one), with
// `<state metric>__last_*` features set to the new state, followed by the
// entity's current state features (stateFeatures).
func (r *Runtime) eventRow(view string, e schema.Entity, latest *schema.FeatureRow, ev *schema.StateEvent) *schema.FeatureRow {
	names := r.eventNames(view, latest)
	row := &schema.FeatureRow{View: view, Entity: e, Names: names, Values: make([]float64, len(names)), LastIngestTS: ev.IngestTS}
	n := len(names) - len(stateFeatures)
	for i := range n {
		row.Values[i] = math.NaN()
	}
	if latest != nil && len(latest.Values) == n {
		copy(row.Values, latest.Values)
		row.WindowStart, row.WindowEnd = latest.WindowStart, latest.WindowEnd
	}
	last := stateFeature(ev.Metric) + "__" + string(schema.AggLast) + "_"
	for i := range n {
		if strings.HasPrefix(names[i], last) {
			row.Values[i] = ev.Value
		}
	}
	for i, f := range stateFeatures {
		v, ok := r.states.get(e, f)
		if !ok {
			v = math.NaN()
		}
		row.Values[n+i] = v
	}
	return row
}

// eventNames returns the names of event rows of view: one slice per view,
// kept, so that a model's feature binding stays cached.
func (r *Runtime) eventNames(view string, latest *schema.FeatureRow) []string {
	r.evNamesMu.Lock()
	defer r.evNamesMu.Unlock()
	if names, ok := r.evNames[view]; ok && (latest == nil || len(names) == len(latest.Names)+len(stateFeatures)) {
		return names
	}
	var base []string
	if latest != nil {
		base = latest.Names
	}
	names := append(append([]string(nil), base...), stateFeatures...)
	if latest != nil || r.evNames[view] == nil {
		r.evNames[view] = names
	}
	return names
}

// eventDecision builds the decision of slot s on event ev.
func (r *Runtime) eventDecision(s *slot, ev *schema.StateEvent, de *schema.DecisionEvent, ver string, res *result) schema.Decision {
	now := time.Now()
	lat := (now.UnixNano() - ev.IngestTS) / 1e3
	return schema.Decision{
		SchemaVersion:       schema.DecisionSchemaVersion,
		ID:                  decisionID(s.name, "event:"+ev.Metric, ev.Entity, ev.TS, 0, ""),
		Time:                now.UTC(),
		Entity:              ev.Entity,
		View:                s.view,
		Model:               s.name,
		ModelVersion:        ver,
		Score:               res.score,
		Action:              ActionNone,
		Reason:              res.reason,
		Features:            res.features,
		Window:              schema.Window{Start: time.Unix(0, ev.TS).UTC(), End: time.Unix(0, ev.TS).UTC()},
		IngestToDecisionUS:  lat,
		TriggerToDecisionUS: lat,
		Trigger:             schema.TriggerEvent,
		Event:               de,
	}
}

// stepTimer steps an event lifecycle at its deadline evAt (event time),
// with the condition as the last event left it.
func (r *Runtime) stepTimer(s *slot, e schema.Entity, lc *lifecycle, evAt int64, w *worker) {
	set := s.set.Load()
	if set == nil || set.live == nil {
		return
	}
	st := lc.step(&s.life, evAt, lc.lastHolds)
	prev := lc.shown.Load()
	res := result{score: 0, reason: "deadline"}
	if prev != nil {
		res.score, res.reason = prev.Score, prev.Reason
	}
	now := time.Now()
	d := schema.Decision{
		SchemaVersion: schema.DecisionSchemaVersion,
		ID:            decisionID(s.name, "timer", e, evAt, int64(st.flapCode()), ""),
		Time:          now.UTC(),
		Entity:        e,
		View:          s.view,
		Model:         s.name,
		ModelVersion:  set.live.info.Version,
		Score:         res.score,
		Action:        ActionNone,
		Reason:        res.reason + timerReason(lc, &s.life, st),
		Window:        schema.Window{Start: time.Unix(0, evAt).UTC(), End: time.Unix(0, evAt).UTC()},
		Trigger:       schema.TriggerTimer,
		Event:         lc.lastEvent,
	}
	w.schedule(s, e, lc)
	r.finish(s, lc, &d, st, w, nil, nil)
}

// flapCode distinguishes the decisions one deadline may produce, for ids.
func (st stepResult) flapCode() int {
	switch {
	case st.repeat:
		return 1
	case st.transition:
		return 2
	}
	return 0
}

func timerReason(lc *lifecycle, p *lifeParams, st stepResult) string {
	switch {
	case st.transition && lc.state == schema.StateFiring:
		return "; held for " + time.Duration(p.forDur).String()
	case st.transition && lc.state == schema.StateResolved:
		return "; not held for keep_firing_for " + time.Duration(p.keepFiring).String()
	case st.repeat && lc.flapping:
		return "; flapping"
	case st.repeat:
		return "; still firing (repeat_interval " + time.Duration(p.repeat).String() + ")"
	}
	return ""
}
