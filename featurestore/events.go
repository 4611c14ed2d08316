// State events: the fastest path from a committed sample to inference. They
// are detected on the goroutine that runs the window engine (whoever holds
// winMu), for each committed batch in WAL order and before its windows, so
// a state change reaches its handlers before any row the same batch
// closes. The stateTracker is owned by that goroutine; Start rebuilds it
// from the hot tier before any goroutine runs.

package featurestore

import (
	"math"

	"github.com/netfeat/netfeat/schema"
)

// stateTracker keeps the newest value of every series of a state metric
// (schema.KindStateMetric) and reports the samples that change it.
type stateTracker struct {
	lookup func(sid int32) seriesDef
	// kind is, per series id: 0 not looked up yet, -1 not a state metric,
	// else 1 + the series' index in last.
	kind []int32
	last []stateLast
}

// stateLast is what a state series keeps: its newest value and event time.
type stateLast struct {
	value float64
	ts    int64 // math.MinInt64 before the first sample
}

func newStateTracker(lookup func(int32) seriesDef) *stateTracker {
	return &stateTracker{lookup: lookup}
}

// slot returns the series' index in last, or -1 when it is not a state
// metric; the catalog is looked up once per series.
func (t *stateTracker) slot(sid int32) int32 {
	if int(sid) < len(t.kind) {
		if k := t.kind[sid]; k != 0 {
			return k - 1
		}
	} else {
		t.kind = append(t.kind, make([]int32, int(sid)+1-len(t.kind))...)
	}
	k := int32(-1)
	if m, ok := schema.LookupMetric(t.lookup(sid).metric); ok && m.Kind == schema.KindStateMetric {
		t.last = append(t.last, stateLast{value: math.NaN(), ts: math.MinInt64})
		k = int32(len(t.last))
	}
	t.kind[sid] = k
	return k - 1
}

// observe applies a committed batch and calls emit (when not nil) for each
// sample that is the first of its series or changes its value. A sample
// older than its series' newest changes nothing and emits nothing.
func (t *stateTracker) observe(recs []rec, emit func(sid int32, r *rec, prev float64)) {
	for i := range recs {
		r := &recs[i]
		var k int32
		if int(r.sid) < len(t.kind) && t.kind[r.sid] < 0 {
			continue // the common case: not a state metric
		}
		if k = t.slot(r.sid); k < 0 {
			continue
		}
		st := &t.last[k]
		if r.ts < st.ts {
			continue
		}
		first, prev := st.ts == math.MinInt64, st.value
		st.value, st.ts = r.value, r.ts
		if !first && (prev == r.value || math.IsNaN(prev) && math.IsNaN(r.value)) {
			continue
		}
		if first {
			prev = math.NaN()
		}
		if emit != nil {
			emit(r.sid, r, prev)
		}
	}
}

// restore sets the newest value of every state series from the hot tier's
// per-series statistics (recovery), emitting nothing.
func (t *stateTracker) restore(stats []seriesStat) {
	for sid, st := range stats {
		if st.samples == 0 {
			continue
		}
		if k := t.slot(int32(sid)); k >= 0 {
			t.last[k] = stateLast{value: st.lastValue, ts: st.lastTS}
		}
	}
}

// SubscribeEvents registers h to receive a schema.StateEvent for every
// committed sample of a state metric that is the first of its series or
// changes its value, in WAL order, before the rows of the windows the same
// batch closes. Samples replayed at Start emit nothing. Register before
// Start.
func (s *Store) SubscribeEvents(h schema.StateEventHandler) {
	for {
		old := s.evSubs.Load()
		next := append(append([]schema.StateEventHandler(nil), *old...), h)
		if s.evSubs.CompareAndSwap(old, &next) {
			return
		}
	}
}

// stateEvents runs the state tracker over one committed batch. The caller
// holds winMu.
func (s *Store) stateEvents(recs []rec) {
	s.states.observe(recs, s.emitEvent)
}

// emitEvent delivers one state event to every handler, each its own copy.
func (s *Store) emitEvent(sid int32, r *rec, prev float64) {
	s.m.stateEvents.Inc()
	subs := *s.evSubs.Load()
	if len(subs) == 0 {
		return
	}
	d := s.series.def(sid)
	for _, h := range subs {
		h(&schema.StateEvent{
			Entity: schema.Entity{Device: d.device, Component: d.component}, Metric: d.metric,
			Value: r.value, Prev: prev, TS: r.ts, IngestTS: r.ingest,
		})
	}
}
