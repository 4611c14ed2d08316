package inference

// The scoring workers. Rows and state events are sharded by entity onto
// Config.Workers goroutines, so that one entity's windows and events are
// decided in order by one goroutine, which alone touches that entity's
// lifecycles and detector state. Each worker also owns a heap of timers:
// the deadlines its event lifecycles set for themselves (pending reaching
// `for`, keep_firing_for running out, a repeat, the end of flapping).

import (
	"container/heap"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"runtime"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netfeat/netfeat/schema"
)

// item is one unit of a worker's queue: a closed window or a state event.
type item struct {
	row *schema.FeatureRow
	ev  *schema.StateEvent
}

// shard returns the worker that owns entity e.
func (r *Runtime) shard(e schema.Entity) int {
	if len(r.queues) == 1 {
		return 0
	}
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.WriteString(e.Device)
	h.WriteByte(0)
	h.WriteString(e.Component)
	return int(h.Sum64() % uint64(len(r.queues)))
}

// enqueue hands it to worker i without blocking, and yields the processor
// when the worker was idle (see HandleRow). It reports false when the
// queue is full.
func (r *Runtime) enqueue(i int, it item) bool {
	select {
	case r.queues[i] <- it:
		if r.idle[i].Load() {
			runtime.Gosched()
		}
		return true
	default:
		return false
	}
}

func (r *Runtime) queued() float64 {
	n := 0
	for _, q := range r.queues {
		n += len(q)
	}
	return float64(n)
}

// worker is one scoring goroutine's state.
type worker struct {
	r      *Runtime
	i      int
	sc     *scratch
	timers timerHeap
	tm     *time.Timer
	armed  int64 // wall clock the timer is set for; 0 when stopped
}

func (r *Runtime) work(i int) {
	defer r.workers.Done()
	w := &worker{r: r, i: i, sc: newScratch(), tm: time.NewTimer(time.Hour)}
	w.tm.Stop()
	q := r.queues[i]
	for {
		var it item
		var ok bool
		select {
		case it = <-q:
			ok = true
		default:
			r.idle[i].Store(true)
			var due <-chan time.Time
			if w.arm() {
				due = w.tm.C
			}
			select {
			case it = <-q:
				ok = true
			case <-due:
				w.armed = 0
			case <-r.stopCh:
			}
			r.idle[i].Store(false)
		}
		if ok {
			w.handle(it)
			w.fireDue()
			continue
		}
		if r.stopping.Load() {
			for {
				select {
				case it := <-q:
					w.handle(it)
				default:
					return
				}
			}
		}
		w.fireDue()
	}
}

func (w *worker) handle(it item) {
	if it.row != nil {
		w.r.process(it.row, w)
	}
	if it.ev != nil {
		w.r.processEvent(it.ev, w)
	}
}

// scratch is a worker's reusable state for making and publishing
// decisions, so that the common path (core NATS, publishing directly)
// allocates little.
type scratch struct {
	buf      []byte // the decision's JSON
	msg      nats.Msg
	id       []string // msg's Nats-Msg-Id header value
	subjects map[subjectKey]string
}

type subjectKey struct{ model, device string }

func newScratch() *scratch {
	sc := &scratch{buf: make([]byte, 0, 1024), id: make([]string, 1), subjects: map[subjectKey]string{}}
	sc.msg.Header = nats.Header{jetstream.MsgIDHeader: sc.id}
	return sc
}

// subject returns the decision subject of model and device, cached.
func (sc *scratch) subject(model, device string) string {
	k := subjectKey{model, device}
	if s, ok := sc.subjects[k]; ok {
		return s
	}
	if len(sc.subjects) >= 1<<14 {
		clear(sc.subjects)
	}
	s := schema.DecisionSubject(model, device)
	sc.subjects[k] = s
	return s
}

func (r *Runtime) process(row *schema.FeatureRow, w *worker) {
	if len(row.Names) != len(row.Values) {
		r.m.badRows.WithLabelValues(row.View, row.Device).Inc()
		r.logLimited("bad", "row refused: names and values differ in length",
			"view", row.View, "entity", row.Entity.String(), "names", len(row.Names), "values", len(row.Values))
		return
	}
	for _, s := range r.views[row.View] {
		r.runSlot(s, row, w)
	}
}

// runSlot scores row with slot s, advances the entity's action lifecycle
// and records and publishes the decision.
func (r *Runtime) runSlot(s *slot, row *schema.FeatureRow, w *worker) {
	set := s.set.Load()
	if set == nil || set.live == nil {
		return
	}
	lc := s.lcs.get(row.Entity)
	var res result
	ver, fallback, ok := r.scoreLive(s, set, row, lc, &res)
	if !ok {
		return
	}
	if dm := set.live.drift; dm != nil && fallback == "" && len(res.missing) == 0 {
		for _, ev := range dm.observe(row) {
			r.emitDrift(s, ev, w)
		}
	}
	d := r.decision(s, row, ver, &res, "")
	d.Fallback = fallback
	d.Trigger = schema.TriggerWindow
	if row.TriggerIngestTS > 0 {
		d.TriggerToDecisionUS = (d.Time.UnixNano() - row.TriggerIngestTS) / 1e3
	} else {
		d.TriggerToDecisionUS = d.IngestToDecisionUS
	}
	var st stepResult
	switch {
	case len(res.missing) > 0:
		// Not enough inputs to decide: the lifecycle stays where it is.
		d.MissingFeatures = res.missing
	case row.WindowEnd <= lc.lastWin:
		// A window delivered again (after a crash) or out of order: it
		// was decided already.
	default:
		lc.lastWin = row.WindowEnd
		st = lc.step(&s.life, row.WindowEnd, s.holds(&res))
		d.Reason += lifecycleReason(lc, &s.life, st)
		if lc.lastEvent != nil || s.trigger != TriggerWindow {
			w.schedule(s, row.Entity, lc)
		}
	}
	r.finish(s, lc, &d, st, w, set, row)
}

// lifecycleReason is what the lifecycle adds to a decision's reason.
func lifecycleReason(lc *lifecycle, p *lifeParams, st stepResult) string {
	switch {
	case lc.state == schema.StatePending:
		return "; pending for " + time.Duration(lc.lastT-lc.heldSince).String() + " of " + time.Duration(p.forDur).String()
	case st.transition && lc.state == schema.StateFiring && p.forDur > 0:
		return "; firing after " + time.Duration(lc.lastT-lc.heldSince).String()
	case st.transition && lc.state == schema.StateResolved:
		return "; resolved"
	case lc.state == schema.StateFiring && !lc.holding:
		return "; keep firing for " + time.Duration(p.keepFiring-(lc.lastT-lc.lastHeld)).String()
	}
	return ""
}

// scoreLive scores row with the live version, falling back to the previous
// version or the model's rule when it fails or overruns its budget. It
// returns the version that scored and the Fallback text, or false when
// nothing could score.
func (r *Runtime) scoreLive(s *slot, set *liveSet, row *schema.FeatureRow, lc *lifecycle, res *result) (string, string, bool) {
	ver := set.live.info.Version
	if s.isRule {
		// A rule's hysteresis depends on whether its action fires.
		err := evalRuleSafely(s.rule, row, lc.state == schema.StateFiring, res)
		if err != nil {
			r.m.scoreErrors.WithLabelValues(s.name, ver).Inc()
			r.logLimited(s.name, "rule could not evaluate", "rule", s.name, "entity", row.Entity.String(), "err", err)
			return "", "", false
		}
		return ver, "", true
	}
	var why, reason string
	var err error
	var took time.Duration
	if live := set.live; live.failed.Load() {
		why, reason = fmt.Sprintf("%s disabled: %s", ver, live.whyFailed()), "failed"
	} else {
		start := time.Now()
		err = scoreSafely(live, row, res)
		took = time.Since(start)
		s.scoreObs.Observe(took.Seconds())
		r.judge(s, live, took, err)
		if err == nil && (s.budget == 0 || took <= s.budget) {
			r.countMissing(s, res)
			return ver, "", true
		}
	}
	switch {
	case reason != "":
	case err != nil:
		r.m.scoreErrors.WithLabelValues(s.name, ver).Inc()
		if errors.Is(err, ErrMissingFeature) {
			r.m.missing.WithLabelValues(s.name, missingNotInView).Inc()
		}
		why, reason = fmt.Sprintf("%s failed: %v", ver, err), "error"
	default:
		why, reason = fmt.Sprintf("%s took %v, over the %v budget", ver, took.Round(time.Microsecond), s.budget), "budget"
	}
	ver, fallback, ok := r.fallback(s, set, row, why, res)
	if !ok {
		r.logLimited(s.name, "model could not score and has no working fallback", "model", s.name,
			"entity", row.Entity.String(), "why", why)
		return "", "", false
	}
	r.m.fallbacks.WithLabelValues(s.name, reason).Inc()
	r.countMissing(s, res)
	return ver, fallback, true
}

// Reasons of netfeat_inference_missing_features_total.
const (
	missingNoData    = "no_data"     // the window had no value for a required feature
	missingNotInView = "not_in_view" // the view has no such feature
	missingNoWindow  = "no_window"   // an event came before the entity's first window
)

func (r *Runtime) countMissing(s *slot, res *result) {
	if len(res.missing) > 0 {
		reason := missingNoData
		if res.noWindow {
			reason = missingNoWindow
		}
		r.m.missing.WithLabelValues(s.name, reason).Inc()
	}
}

// holds says whether a score meets the slot's condition.
func (s *slot) holds(res *result) bool {
	if res.ruled || s.isRule {
		return res.score >= 1
	}
	return res.score >= s.threshold
}

// finish completes d with the lifecycle's state, publishes it when the
// step asks for it (or every decision under publish: all), records it,
// and scores the shadow version of a window row.
func (r *Runtime) finish(s *slot, lc *lifecycle, d *schema.Decision, st stepResult, w *worker, set *liveSet, row *schema.FeatureRow) {
	sc := w.sc
	lc.used.Store(time.Now().UnixNano())
	d.Fingerprint = s.fingerprint(d.Entity)
	d.State = lc.state
	if d.State == "" {
		d.State = schema.StateInactive
	}
	if lc.since != 0 {
		d.Since = time.Unix(0, lc.since).UTC()
	} else {
		d.Since = d.Window.End
	}
	d.Transition = st.transition
	d.Flapping = st.flapping
	d.Action = ActionNone
	if len(d.MissingFeatures) == 0 {
		d.Action = lc.actionOf(&s.life)
	}
	if d.Action == ActionNone {
		s.decided[0].Inc()
	} else {
		s.decided[1].Inc()
	}
	if st.suppressed {
		r.m.flapSuppressed.WithLabelValues(s.name).Inc()
	}
	if st.transition {
		r.m.transitions.WithLabelValues(s.name, d.State).Inc()
	}
	// Publish first: the ring, the log and the metrics can wait a few µs,
	// the subscriber should not. The log keeps the published document.
	publish := r.cfg.Publish == PublishAll || st.publish
	if publish || r.dlog != nil {
		sc.buf = appendDecisionJSON(sc.buf[:0], d)
	}
	if publish {
		r.pub.submit(sc.subject(d.Model, d.Entity.Device), d.ID, sc.buf, sc)
	}
	if d.Trigger == schema.TriggerWindow {
		r.m.latency.Observe(float64(d.IngestToDecisionUS) / 1e6)
	}
	if d.Trigger != schema.TriggerTimer {
		r.m.triggerLatency.WithLabelValues(d.Trigger).Observe(float64(d.TriggerToDecisionUS) / 1e6)
	}
	r.rec.add(d, false)
	if r.dlog != nil {
		r.dlog.add(d.Time.UnixNano(), sc.buf, false)
	}
	if h := r.onDecision.Load(); h != nil {
		(*h)(d)
	}
	if obs := r.transitions.Load(); obs != nil && st.transition {
		for _, fn := range *obs {
			fn(d)
		}
	}
	r.show(s, lc, d, st)
	if st.transition || st.publish {
		r.life.save(s.name, d.Entity, lc)
	}
	if set == nil || set.shadow == nil || row == nil || set.shadow.failed.Load() {
		return
	}
	var sres result
	start := time.Now()
	err := scoreSafely(set.shadow, row, &sres)
	r.judge(s, set.shadow, time.Since(start), err)
	if err != nil {
		r.m.scoreErrors.WithLabelValues(s.name, set.shadow.info.Version).Inc()
		r.logLimited(s.name+"/shadow", "shadow version failed", "model", s.name, "version", set.shadow.info.Version, "err", err)
		return
	}
	sd := r.decision(s, row, set.shadow.info.Version, &sres, set.shadow.info.Version)
	sd.Trigger, sd.Fingerprint, sd.MissingFeatures = d.Trigger, d.Fingerprint, sres.missing
	sd.State, sd.Since = schema.StateInactive, d.Since
	if len(sres.missing) == 0 && s.holds(&sres) {
		// The shadow has no lifecycle of its own: its decision says what
		// it would ask for on this window.
		sd.State, sd.Action = schema.StateFiring, s.action
	}
	r.m.shadow.WithLabelValues(s.name).Inc()
	r.rec.add(&sd, true)
	if r.dlog != nil {
		sc.buf = appendDecisionJSON(sc.buf[:0], &sd)
		r.dlog.add(sd.Time.UnixNano(), sc.buf, true)
	}
}

// show publishes the lifecycle's state for the actions table.
func (r *Runtime) show(s *slot, lc *lifecycle, d *schema.Decision, st stepResult) {
	prev := lc.shown.Load()
	a := &ActionState{
		Model: s.name, ModelVersion: d.ModelVersion, Fingerprint: d.Fingerprint, Entity: d.Entity, View: d.View,
		Trigger: d.Trigger, State: d.State, Since: d.Since, Action: lc.actionOf(&s.life), Score: d.Score,
		Reason: d.Reason, LastDecision: d.Time, Flapping: lc.flapping, Suppressed: lc.suppress,
	}
	if isNaNOrInf(a.Score) {
		a.Score = 0
	}
	if len(d.MissingFeatures) > 0 && prev != nil {
		// A decision without its inputs changes nothing of the action.
		a.Score, a.Reason = prev.Score, prev.Reason
	}
	if lc.lastSent != 0 {
		a.LastPublished = time.Unix(0, lc.lastSent).UTC()
	}
	lc.shown.Store(a)
}

// fallback scores row with the previous version, else with the model's
// rule, and returns what scored and the Fallback text.
func (r *Runtime) fallback(s *slot, set *liveSet, row *schema.FeatureRow, why string, res *result) (string, string, bool) {
	if set.prev != nil && !set.prev.failed.Load() {
		*res = result{}
		start := time.Now()
		err := scoreSafely(set.prev, row, res)
		took := time.Since(start)
		r.judge(s, set.prev, took, err)
		if err == nil && (s.budget == 0 || took <= s.budget) {
			return set.prev.info.Version, fmt.Sprintf("previous version %s: %s", set.prev.info.Version, why), true
		}
		if err != nil {
			r.m.scoreErrors.WithLabelValues(s.name, set.prev.info.Version).Inc()
			why += fmt.Sprintf("; previous version %s failed: %v", set.prev.info.Version, err)
		} else {
			why += fmt.Sprintf("; previous version %s over budget too", set.prev.info.Version)
		}
	}
	if s.rule != nil {
		*res = result{}
		err := instantRuleSafely(s.rule, row, res)
		if err == nil {
			// The rule's 1 or 0 decides the model's action, whatever the
			// model's threshold.
			res.ruled = true
			return "rule:" + s.rule.cfg.Name, fmt.Sprintf("rule %s: %s", s.rule.cfg.Name, why), true
		}
		why += fmt.Sprintf("; rule %s: %v", s.rule.cfg.Name, err)
	}
	return "", why, false
}

// decision builds the decision of slot s for row. shadow is the shadow
// version's name, or "" for the live decision. The caller sets the
// lifecycle fields.
func (r *Runtime) decision(s *slot, row *schema.FeatureRow, ver string, res *result, shadow string) schema.Decision {
	now := time.Now()
	var lat int64
	if row.LastIngestTS > 0 {
		lat = (now.UnixNano() - row.LastIngestTS) / 1e3
	}
	return schema.Decision{
		SchemaVersion: schema.DecisionSchemaVersion,
		ID:            decisionID(s.name, row.View, row.Entity, row.WindowStart, row.WindowEnd, shadow),
		Time:          now.UTC(),
		Entity:        row.Entity,
		View:          row.View,
		Model:         s.name,
		ModelVersion:  ver,
		Score:         res.score,
		Action:        ActionNone,
		Reason:        res.reason,
		Features:      res.features,
		Window: schema.Window{
			Start: time.Unix(0, row.WindowStart).UTC(),
			End:   time.Unix(0, row.WindowEnd).UTC(),
		},
		IngestToDecisionUS: lat,
	}
}

// decisionNamespace is the UUID namespace of decision ids.
var decisionNamespace = uuid.MustParse("5f0c7e2a-3b1d-4c8e-9a6f-2d4b8e1c7a90")

// decisionID is the id of the decision model makes about entity's window
// of view: a name-based UUID (version 5, SHA-1) of those, plus the version
// for a shadow decision. The same window decided again gets the same id,
// which is the decision's Nats-Msg-Id: the feature store delivers the few
// windows closed after its last persisted mark again after a crash
// (docs/featurestore.md, "Start"), and JetStream drops the repeat within
// its duplicate window. Event and timer decisions use the same scheme
// with the view replaced by what triggered them and the window by its
// time.
func decisionID(model, view string, e schema.Entity, start, end int64, shadow string) string {
	var buf [256]byte
	b := append(buf[:0], decisionNamespace[:]...)
	for _, s := range [...]string{model, view, e.Device, e.Component} {
		b = append(append(b, s...), 0)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(start))
	b = binary.BigEndian.AppendUint64(b, uint64(end))
	if shadow != "" {
		b = append(append(b, 0), shadow...)
	}
	sum := sha1.Sum(b)
	var id uuid.UUID
	copy(id[:], sum[:16])
	id[6] = id[6]&0x0f | 0x50 // version 5
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id.String()
}

// sanitized copies d with non-finite features and score removed: JSON has
// no NaN; a feature without data is left out of the document.
func sanitized(d *schema.Decision) *schema.Decision {
	c := *d
	c.Features = make(map[string]float64, len(d.Features))
	for k, v := range d.Features {
		if !isNaNOrInf(v) {
			c.Features[k] = v
		}
	}
	if isNaNOrInf(c.Score) {
		c.Score = 0
	}
	return &c
}

func isNaNOrInf(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

// timerEntry is a deadline an event lifecycle set: at wall clock at, step
// the lifecycle of (s, e) at event time evAt, if its generation is still
// gen (a newer step re-arms it).
type timerEntry struct {
	at   int64
	evAt int64
	s    *slot
	e    schema.Entity
	gen  uint64
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// maxTimers bounds a worker's pending deadlines; beyond it the oldest
// generation is dropped (each lifecycle has at most one live entry, so
// this only bites with more lifecycles than that waiting at once).
const maxTimers = 1 << 20

// schedule arms lc's next deadline, if it has one. Event time and wall
// clock are taken to advance together from lc's newest evaluation.
func (w *worker) schedule(s *slot, e schema.Entity, lc *lifecycle) {
	lc.timerGen++
	at := lc.nextDeadline(&s.life)
	if at == 0 || len(w.timers) >= maxTimers {
		return
	}
	wall := time.Now().UnixNano() + (at - lc.lastT)
	heap.Push(&w.timers, timerEntry{at: wall, evAt: at, s: s, e: e, gen: lc.timerGen})
}

// arm sets the worker's timer to its earliest deadline and reports
// whether one is set.
func (w *worker) arm() bool {
	if len(w.timers) == 0 {
		return false
	}
	at := w.timers[0].at
	if w.armed == at {
		return true
	}
	if w.armed != 0 {
		w.tm.Stop()
	}
	w.tm.Reset(time.Duration(at - time.Now().UnixNano()))
	w.armed = at
	return true
}

// fireDue steps the lifecycles whose deadlines have passed.
func (w *worker) fireDue() {
	now := time.Now().UnixNano()
	for len(w.timers) > 0 && w.timers[0].at <= now {
		t := heap.Pop(&w.timers).(timerEntry)
		lc := t.s.lcs.lookup(t.e)
		if lc == nil || lc.timerGen != t.gen {
			continue
		}
		w.r.stepTimer(t.s, t.e, lc, t.evAt, w)
	}
	if w.armed != 0 && (len(w.timers) == 0 || w.timers[0].at != w.armed) {
		w.tm.Stop()
		w.armed = 0
	}
}
