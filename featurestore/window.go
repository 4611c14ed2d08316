// The window engine: per-view, per-entity panes, window closes by
// completeness, watermark and idle deadline. It belongs to whoever holds
// winMu: the committer, running it inline, or the window loop goroutine
// (commit.go says when which).

package featurestore

import (
	"math"
	"slices"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/netfeat/netfeat/schema"
)

// sketchAccuracy is the relative accuracy of the quantile sketches: a
// reported quantile is within 1% of the true value.
const sketchAccuracy = 0.01

// paneAgg is the aggregate state of one metric over one pane (or, merged,
// over a window). Mean and M2 follow Welford so that panes merge exactly.
type paneAgg struct {
	n               int64
	sum, mean, m2   float64
	min, max        float64
	firstTS, lastTS int64
	first, last     float64
	lastIngest      int64
	sk              *ddsketch.DDSketch // nil unless the view has quantiles
}

func (a *paneAgg) reset() {
	sk := a.sk
	*a = paneAgg{sk: sk}
	if sk != nil {
		sk.Clear()
	}
}

func (a *paneAgg) add(ts, ingest int64, v float64) {
	a.n++
	a.sum += v
	d := v - a.mean
	a.mean += d / float64(a.n)
	a.m2 += d * (v - a.mean)
	if a.n == 1 {
		a.min, a.max = v, v
		a.firstTS, a.first, a.lastTS, a.last = ts, v, ts, v
	} else {
		a.min, a.max = min(a.min, v), max(a.max, v)
		if ts < a.firstTS {
			a.firstTS, a.first = ts, v
		}
		if ts >= a.lastTS {
			a.lastTS, a.last = ts, v
		}
	}
	a.lastIngest = max(a.lastIngest, ingest)
	if a.sk != nil {
		_ = a.sk.Add(v) // only fails for values the mapping cannot index (±Inf, NaN); they still count above
	}
}

// merge folds b into a.
func (a *paneAgg) merge(b *paneAgg) {
	if b.n == 0 {
		return
	}
	if a.n == 0 {
		sk := a.sk
		*a = *b
		a.sk = sk
		if sk != nil && b.sk != nil {
			sk.Clear()
			_ = sk.MergeWith(b.sk)
		}
		return
	}
	n := a.n + b.n
	d := b.mean - a.mean
	a.mean += d * float64(b.n) / float64(n)
	a.m2 += b.m2 + d*d*float64(a.n)*float64(b.n)/float64(n)
	a.n = n
	a.sum += b.sum
	a.min, a.max = min(a.min, b.min), max(a.max, b.max)
	if b.firstTS < a.firstTS {
		a.firstTS, a.first = b.firstTS, b.first
	}
	if b.lastTS >= a.lastTS {
		a.lastTS, a.last = b.lastTS, b.last
	}
	a.lastIngest = max(a.lastIngest, b.lastIngest)
	if a.sk != nil && b.sk != nil {
		_ = a.sk.MergeWith(b.sk)
	}
}

// value computes one aggregation from merged state; ewma is handled by the
// caller. A window without data gives count 0 and NaN for the rest.
func (a *paneAgg) value(agg schema.Aggregation) float64 {
	if a.n == 0 {
		if agg == schema.AggCount {
			return 0
		}
		return math.NaN()
	}
	switch agg {
	case schema.AggCount:
		return float64(a.n)
	case schema.AggSum:
		return a.sum
	case schema.AggMean:
		return a.mean
	case schema.AggMin:
		return a.min
	case schema.AggMax:
		return a.max
	case schema.AggLast:
		return a.last
	case schema.AggRate:
		if a.lastTS <= a.firstTS {
			return math.NaN()
		}
		return (a.last - a.first) / (float64(a.lastTS-a.firstTS) / 1e9)
	case schema.AggStddev:
		return math.Sqrt(max(a.m2, 0) / float64(a.n))
	}
	if q, ok := agg.Quantile(); ok && a.sk != nil && !a.sk.IsEmpty() {
		v, err := a.sk.GetValueAtQuantile(q)
		if err == nil {
			return v
		}
	}
	return math.NaN()
}

func newSketch() *ddsketch.DDSketch {
	sk, err := ddsketch.NewDefaultDDSketch(sketchAccuracy)
	if err != nil {
		panic(err) // only for an accuracy outside (0, 1)
	}
	return sk
}

// closeReason says what closed a window; the values are those of
// schema.FeatureRow.CloseReason.
type closeReason string

const (
	closeComplete  closeReason = schema.CloseComplete
	closeWatermark closeReason = schema.CloseWatermark
	closeIdle      closeReason = schema.CloseIdle
)

// entityState is one entity's panes in a view: a ring of panes indexed by
// pane number modulo the ring length, each holding every metric. It also
// says which window the entity closes next and how many of its series
// still hold it (see viewEngine.complete).
type entityState struct {
	id       int32
	ent      schema.Entity
	tags     []int64   // pane number held by each ring slot; math.MinInt64 when empty
	panes    []paneAgg // ring × metrics
	ewma     []float64 // metrics × windows; NaN before the first window with data
	maxPane  int64
	lastWall int64 // wall clock of the last sample, Unix ns

	nextEnd   int64 // end of the next window to close; 0 while no open window holds data
	closedEnd int64 // end of the last window closed; math.MinInt64 before the first
	holders   int32 // series whose newest sample lies in nextEnd's last pane
	maxTS     int64 // newest event time of any of its series
	trigger   int64 // ingest time of the sample that completed nextEnd; 0 until one did
	touched   bool  // in viewEngine.touched
}

// viewEngine runs the windows of one feature view.
type viewEngine struct {
	index    int // in the store's views
	v        schema.FeatureView
	names    []string
	hop      int64
	k        int64   // panes in the longest window
	winPanes []int64 // panes per window, in v.Windows order
	order    []int   // window indexes by increasing length
	ring     int64
	lateness int64
	idle     int64
	alpha    float64
	sketch   bool
	metrics  map[string]int32

	haveTS    bool
	maxTS     int64
	pendMax   int64
	nextClose int64 // next window end the watermark reaches; 0 until the first sample
	closedAny bool
	mark      int64 // windows ending at or before mark were delivered before a restart
	// watermarkOnly (tests) closes windows by the watermark alone, as
	// before completion closes, to compare the two.
	watermarkOnly bool

	entityIDs map[schema.Entity]int32
	ents      []*entityState
	seriesTS  [][]int64 // per entity id: the newest event time of each series routed to it
	touched   []int32   // entities the current batch applied samples to
	batchIng  int64     // newest ingest time of the current batch's samples in this view
	scratch   paneAgg

	// skew is how far (ns) a sample may be ahead of its ingest time and
	// of the wall clock and still move the watermark; 0 disables the check.
	skew int64

	lateApplied, lateDropped, ahead func()
}

func newViewEngine(v schema.FeatureView) *viewEngine {
	hop := int64(v.Hop)
	ve := &viewEngine{
		v: v, names: v.FeatureNames(), hop: hop, k: int64(v.MaxWindow()) / hop,
		lateness: int64(v.AllowedLateness), alpha: v.EWMAAlpha, metrics: map[string]int32{},
		entityIDs: map[schema.Entity]int32{}, idle: int64(v.IdleTimeout),
	}
	if ve.alpha == 0 {
		ve.alpha = 0.3
	}
	if ve.idle == 0 {
		ve.idle = 2 * int64(v.MaxWindow())
	}
	for _, w := range v.Windows {
		ve.winPanes = append(ve.winPanes, int64(w)/hop)
	}
	ve.order = make([]int, len(v.Windows))
	for i := range ve.order {
		ve.order[i] = i
	}
	slices.SortStableFunc(ve.order, func(a, b int) int { return int(ve.winPanes[a] - ve.winPanes[b]) })
	ve.ring = ve.k + (ve.lateness+hop-1)/hop + 3
	for i, m := range v.Metrics {
		ve.metrics[m] = int32(i)
	}
	for _, a := range v.Aggregations {
		if _, ok := a.Quantile(); ok {
			ve.sketch = true
		}
	}
	if ve.sketch {
		ve.scratch.sk = newSketch()
	}
	ve.lateApplied, ve.lateDropped, ve.ahead = func() {}, func() {}, func() {}
	return ve
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func (ve *viewEngine) entityID(e schema.Entity) int32 {
	if id, ok := ve.entityIDs[e]; ok {
		return id
	}
	id := int32(len(ve.ents))
	ve.entityIDs[e] = id
	ve.ents = append(ve.ents, nil)
	ve.seriesTS = append(ve.seriesTS, nil)
	return id
}

// addSeries registers one more series reporting into entity id and
// returns its slot in seriesTS[id].
func (ve *viewEngine) addSeries(id int32) int32 {
	ve.seriesTS[id] = append(ve.seriesTS[id], math.MinInt64)
	return int32(len(ve.seriesTS[id]) - 1)
}

func (ve *viewEngine) state(id int32, e schema.Entity) *entityState {
	if es := ve.ents[id]; es != nil {
		return es
	}
	nm := len(ve.v.Metrics)
	es := &entityState{
		id:        id,
		ent:       e,
		tags:      make([]int64, ve.ring),
		panes:     make([]paneAgg, int(ve.ring)*nm),
		ewma:      make([]float64, nm*len(ve.v.Windows)),
		maxPane:   math.MinInt64,
		closedEnd: math.MinInt64,
		maxTS:     math.MinInt64,
	}
	for i := range es.tags {
		es.tags[i] = math.MinInt64
	}
	for i := range es.ewma {
		es.ewma[i] = math.NaN()
	}
	if ve.sketch {
		for i := range es.panes {
			es.panes[i].sk = newSketch()
		}
	}
	ve.ents[id] = es
	return es
}

// add applies one sample of the entity's series (its index in seriesTS[id]) to the
// entity's pane, and moves the series' newest event time. The watermark
// (newest event time minus allowed lateness) used is the one before the
// current batch: a batch is applied as a whole, then windows close
// (finish).
func (ve *viewEngine) add(id int32, e schema.Entity, metric, series int32, r *rec, wall int64) {
	p := floorDiv(r.ts, ve.hop)
	if ve.haveTS {
		// Too late when the first window holding the sample's pane has
		// closed (the watermark passed its end); late but applied while it
		// is still open.
		if (p+1)*ve.hop <= ve.maxTS-ve.lateness {
			ve.lateDropped()
			return
		}
		if p < floorDiv(ve.maxTS, ve.hop) {
			ve.lateApplied()
		}
	}
	es := ve.state(id, e)
	slot := p % ve.ring
	if slot < 0 {
		slot += ve.ring
	}
	nm := int64(len(ve.v.Metrics))
	if t := es.tags[slot]; t != p {
		if t > p {
			ve.lateDropped()
			return
		}
		for i := slot * nm; i < (slot+1)*nm; i++ {
			es.panes[i].reset()
		}
		es.tags[slot] = p
	}
	es.panes[slot*nm+int64(metric)].add(r.ts, r.ingest, r.value)
	es.maxPane = max(es.maxPane, p)
	es.lastWall = wall
	ve.track(es, series, p, r)
	if ve.skew > 0 && r.ts-r.ingest > ve.skew && r.ts-wall > ve.skew {
		// Ahead of its ingest time and of the store's clock: a device clock
		// in the future. It counts for its own entity (above) but must not
		// move the view's watermark, which would close every other
		// entity's windows and make their samples late.
		ve.ahead()
		return
	}
	if !ve.closedAny {
		if end := (p + 1) * ve.hop; ve.nextClose == 0 || end < ve.nextClose {
			ve.nextClose = end
		}
	}
	if !ve.haveTS {
		ve.pendMax = r.ts
		ve.haveTS = true
		ve.maxTS = r.ts
		return
	}
	ve.pendMax = max(ve.pendMax, r.ts)
}

// emitFunc receives each closed row: what closed it, and whether it was
// delivered before a restart (suppressed).
type emitFunc func(row *schema.FeatureRow, reason closeReason, suppressed bool)

// holds reports (as 0 or 1) whether a series whose newest sample is at ts
// holds the window ending at end: it reported into the window's last pane
// [end−hop, end) and has not yet delivered a sample at or after end. A
// series whose newest sample is older did not report into that pane
// (a slower cadence, or an ON_CHANGE series) and does not hold it.
func (ve *viewEngine) holds(ts, end int64) int32 {
	if ts >= end-ve.hop && ts < end {
		return 1
	}
	return 0
}

// track moves the newest event time of the entity's series and keeps the
// entity's holder count of nextEnd up to date, in O(1). It runs for every
// applied sample.
func (ve *viewEngine) track(es *entityState, series int32, pane int64, r *rec) {
	tss := ve.seriesTS[es.id]
	if old := tss[series]; r.ts > old {
		tss[series] = r.ts
		if es.nextEnd != 0 {
			es.holders += ve.holds(r.ts, es.nextEnd) - ve.holds(old, es.nextEnd)
		}
		es.maxTS = max(es.maxTS, r.ts)
	}
	switch end := (pane + 1) * ve.hop; {
	case es.nextEnd == 0:
		// No open window holds data: the first one that holds this sample
		// is next (never one the entity closed already).
		ve.setNext(es, max(end, es.closedEnd+ve.hop))
	case es.closedEnd == math.MinInt64 && end < es.nextEnd:
		// Before its first close, an entity's first window is the one
		// ending after its oldest pane.
		ve.setNext(es, end)
	}
	if es.trigger == 0 && ve.complete(es) {
		es.trigger = r.ingest
	}
	if !es.touched {
		es.touched = true
		ve.touched = append(ve.touched, es.id)
	}
	ve.batchIng = max(ve.batchIng, r.ingest)
}

// setNext makes end the entity's next window and counts its holders:
// O(series of the entity), once per window.
func (ve *viewEngine) setNext(es *entityState, end int64) {
	es.nextEnd, es.holders = end, 0
	for _, ts := range ve.seriesTS[es.id] {
		es.holders += ve.holds(ts, end)
	}
}

// complete reports whether the entity's next window may close before the
// watermark reaches it: no series holds it, and at least one series has a
// sample at or after its end (so that a window is never closed before
// time has reached its end).
func (ve *viewEngine) complete(es *entityState) bool {
	return !ve.watermarkOnly && es.nextEnd != 0 && es.holders == 0 && es.maxTS >= es.nextEnd
}

// closeNext closes the entity's next window and moves on to the one after
// it, or to none when no later window holds data yet.
func (ve *viewEngine) closeNext(es *entityState, reason closeReason, trigger int64, emit emitFunc) {
	end := es.nextEnd
	if row := ve.compute(es, end/ve.hop); row != nil {
		row.CloseReason, row.TriggerIngestTS = string(reason), trigger
		emit(row, reason, end <= ve.mark)
	}
	es.closedEnd = end
	// The next window that holds data: the one after, or past a gap in
	// event time the first that holds the oldest pane after it.
	first := int64(math.MaxInt64)
	for _, t := range es.tags {
		if t >= end/ve.hop+1-ve.k && t < first {
			first = t
		}
	}
	if first == math.MaxInt64 {
		es.nextEnd, es.holders, es.trigger = 0, 0, 0 // none until a sample comes
		return
	}
	ve.setNext(es, max(end+ve.hop, (first+1)*ve.hop))
}

// closeComplete closes every complete window of the entity, in order.
// Windows after the first one completed carry the same trigger: their
// last holder had already moved on, so the same arrival completed them.
func (ve *viewEngine) closeComplete(es *entityState, emit emitFunc) {
	trigger := es.trigger
	if trigger == 0 {
		trigger = ve.batchIng
	}
	for ve.complete(es) {
		ve.closeNext(es, closeComplete, trigger, emit)
	}
	es.trigger = 0
}

// finish runs after a batch is applied: it closes the complete windows of
// the entities the batch touched (no scan over the others), then moves the
// watermark.
func (ve *viewEngine) finish(emit emitFunc, mark func(end int64)) {
	for _, id := range ve.touched {
		if es := ve.ents[id]; es != nil {
			es.touched = false
			ve.closeComplete(es, emit)
		}
	}
	ve.touched = ve.touched[:0]
	ve.advance(emit, mark)
	ve.batchIng = 0
}

// advance moves the watermark to the newest event time seen less the
// allowed lateness. When it passes a hop boundary, every entity closes
// each window that ends at or before it (the windows a silent series
// held), then whatever that made complete; mark then receives the
// boundary: every entity has closed every window ending at or before it.
func (ve *viewEngine) advance(emit emitFunc, mark func(end int64)) {
	if !ve.haveTS {
		return
	}
	ve.maxTS = max(ve.maxTS, ve.pendMax)
	wm := ve.maxTS - ve.lateness
	if ve.nextClose == 0 || ve.nextClose > wm {
		return
	}
	to := floorDiv(wm, ve.hop) * ve.hop
	for _, es := range ve.ents {
		if es == nil || es.nextEnd == 0 || es.nextEnd > to {
			continue
		}
		for es.nextEnd != 0 && es.nextEnd <= to {
			ve.closeNext(es, closeWatermark, ve.batchIng, emit)
		}
		es.trigger = 0
		ve.closeComplete(es, emit)
	}
	ve.closedAny = true
	ve.nextClose = to + ve.hop
	mark(to)
}

// compute builds the feature row of es for the windows ending at endPane,
// or nil when the longest window holds no data.
func (ve *viewEngine) compute(es *entityState, endPane int64) *schema.FeatureRow {
	nm := int64(len(ve.v.Metrics))
	has := false
	for p := endPane - ve.k; p < endPane; p++ {
		if es.tags[((p%ve.ring)+ve.ring)%ve.ring] == p {
			has = true
			break
		}
	}
	if !has {
		return nil
	}
	nw, na := len(ve.v.Windows), len(ve.v.Aggregations)
	vals := make([]float64, len(ve.names))
	var lastIngest int64
	s := &ve.scratch
	for m := range nm {
		s.reset()
		p := endPane - 1
		for _, w := range ve.order {
			for ; p >= endPane-ve.winPanes[w]; p-- {
				slot := ((p % ve.ring) + ve.ring) % ve.ring
				if es.tags[slot] == p {
					s.merge(&es.panes[slot*nm+m])
				}
			}
			base := (int(m)*nw + w) * na
			for a, agg := range ve.v.Aggregations {
				if agg == schema.AggEWMA {
					e := &es.ewma[int(m)*nw+w]
					if s.n > 0 {
						if math.IsNaN(*e) {
							*e = s.mean
						} else {
							*e = ve.alpha*s.mean + (1-ve.alpha)**e
						}
					}
					vals[base+a] = *e
					continue
				}
				vals[base+a] = s.value(agg)
			}
		}
		lastIngest = max(lastIngest, s.lastIngest)
	}
	return &schema.FeatureRow{
		View: ve.v.Name, Entity: es.ent,
		WindowStart: (endPane - ve.k) * ve.hop, WindowEnd: endPane * ve.hop,
		Names: ve.names, Values: vals, LastIngestTS: lastIngest,
	}
}

// sweepIdle closes every open window of entities that received nothing for
// the idle timeout (wall clock) and forgets them.
func (ve *viewEngine) sweepIdle(wall int64, emit emitFunc) {
	for id, es := range ve.ents {
		if es == nil || wall-es.lastWall < ve.idle {
			continue
		}
		for es.nextEnd != 0 {
			ve.closeNext(es, closeIdle, 0, emit)
		}
		for i := range ve.seriesTS[id] {
			ve.seriesTS[id][i] = math.MinInt64
		}
		ve.ents[id] = nil
	}
}

// route sends samples of one series to one view.
type route struct {
	view   int32
	metric int32
	entity int32
	series int32 // index in the view's seriesTS[entity]
	ent    schema.Entity
}

// windowEngine runs every view. It is owned by one goroutine.
type windowEngine struct {
	views  []*viewEngine
	routes [][]route
	routed []bool
	lookup func(sid int32) seriesDef
	emit   func(ve *viewEngine, row *schema.FeatureRow, reason closeReason, suppressed bool)
	// mark receives, after a watermark advance, the window end up to which
	// every entity of the view has closed its windows.
	mark func(ve *viewEngine, end int64)
}

func newWindowEngine(views []schema.FeatureView, lookup func(int32) seriesDef) *windowEngine {
	w := &windowEngine{lookup: lookup, mark: func(*viewEngine, int64) {}}
	for i, v := range views {
		ve := newViewEngine(v)
		ve.index = i
		w.views = append(w.views, ve)
	}
	return w
}

func (w *windowEngine) routesOf(sid int32) []route {
	if int(sid) < len(w.routed) && w.routed[sid] {
		return w.routes[sid]
	}
	if int(sid) >= len(w.routed) {
		n := int(sid) + 1 - len(w.routed)
		w.routed = append(w.routed, make([]bool, n)...)
		w.routes = append(w.routes, make([][]route, n)...)
	}
	d := w.lookup(sid)
	var rs []route
	for i, ve := range w.views {
		m, ok := ve.metrics[d.metric]
		if !ok {
			continue
		}
		e := schema.Entity{Device: d.device}
		if ve.v.Entity == schema.EntityComponent {
			e.Component = d.component
		}
		id := ve.entityID(e)
		rs = append(rs, route{view: int32(i), metric: m, entity: id, series: ve.addSeries(id), ent: e})
	}
	w.routes[sid], w.routed[sid] = rs, true
	return rs
}

// process applies one committed batch and closes the windows it completes
// or its event times pass.
func (w *windowEngine) process(recs []rec, wall time.Time) {
	if len(w.views) == 0 {
		return
	}
	wn := wall.UnixNano()
	for i := range recs {
		r := &recs[i]
		for _, rt := range w.routesOf(r.sid) {
			w.views[rt.view].add(rt.entity, rt.ent, rt.metric, rt.series, r, wn)
		}
	}
	for _, ve := range w.views {
		ve.finish(func(row *schema.FeatureRow, reason closeReason, sup bool) { w.emit(ve, row, reason, sup) },
			func(end int64) { w.mark(ve, end) })
	}
}

func (w *windowEngine) sweepIdle(wall time.Time) {
	for _, ve := range w.views {
		ve.sweepIdle(wall.UnixNano(), func(row *schema.FeatureRow, reason closeReason, sup bool) { w.emit(ve, row, reason, sup) })
	}
}
