package inference

// The in-memory decision ring (recorder, written by the workers and read by
// any goroutine under its mutex) and the Arrow records of the SQL
// `decisions` table, built on the caller's goroutine.

import (
	"context"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/netfeat/netfeat/internal/jsonenc"
	"github.com/netfeat/netfeat/schema"
)

// recorder keeps the most recent decisions, live and shadow, in a ring for
// the SQL `decisions` table.
type recorder struct {
	mu   sync.Mutex
	ring []recorded
	next int
	full bool
}

// recorded is one ring entry, by value: recording a decision copies it
// into its slot without allocating.
type recorded struct {
	d      schema.Decision
	shadow bool
}

func newRecorder(n int) *recorder { return &recorder{ring: make([]recorded, n)} }

func (c *recorder) add(d *schema.Decision, shadow bool) {
	if len(c.ring) == 0 {
		return
	}
	c.mu.Lock()
	c.ring[c.next] = recorded{d: *d, shadow: shadow}
	c.next++
	if c.next == len(c.ring) {
		c.next, c.full = 0, true
	}
	c.mu.Unlock()
}

// snapshot returns the decisions oldest first.
func (c *recorder) snapshot() []recorded {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.full {
		return append([]recorded(nil), c.ring[:c.next]...)
	}
	out := make([]recorded, 0, len(c.ring))
	out = append(out, c.ring[c.next:]...)
	return append(out, c.ring[:c.next]...)
}

// RecentDecisions returns up to n of the most recent decisions (live and
// shadow), newest last, with whether each came from a shadow version.
func (r *Runtime) RecentDecisions(n int) ([]schema.Decision, []bool) {
	all := r.rec.snapshot()
	if n > 0 && len(all) > n {
		all = all[len(all)-n:]
	}
	ds := make([]schema.Decision, len(all))
	sh := make([]bool, len(all))
	for i, x := range all {
		ds[i], sh[i] = x.d, x.shadow
	}
	return ds, sh
}

// DecisionRecords returns the recent decisions (Config.History of them,
// live and shadow) as Arrow records of schema.DecisionsSchema, oldest
// first, for the SQL `decisions` table. The caller releases the records.
func (r *Runtime) DecisionRecords() []arrow.RecordBatch {
	return []arrow.RecordBatch{decisionsRecord(r.rec.snapshot())}
}

// DecisionHistory returns the decisions (live and shadow) made in [from,
// to) (Unix ns), oldest first, as records of schema.DecisionsSchema that
// the caller releases: from the decision log files, which keeps them for
// Config.DecisionRetention, after writing what is queued; with the log
// off (retention 0), the in-memory ring, unfiltered.
func (r *Runtime) DecisionHistory(ctx context.Context, from, to int64) ([]arrow.RecordBatch, error) {
	if r.dlog == nil {
		return r.DecisionRecords(), nil
	}
	return r.dlog.history(ctx, from, to)
}

// decisionsRecord builds one record of schema.DecisionsSchema.
func decisionsRecord(all []recorded) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema.DecisionsSchema)
	defer b.Release()
	ts := b.Field(0).(*array.TimestampBuilder)
	id := b.Field(1).(*array.StringBuilder)
	dev := b.Field(2).(*array.StringBuilder)
	comp := b.Field(3).(*array.StringBuilder)
	view := b.Field(4).(*array.StringBuilder)
	model := b.Field(5).(*array.StringBuilder)
	ver := b.Field(6).(*array.StringBuilder)
	shadow := b.Field(7).(*array.BooleanBuilder)
	score := b.Field(8).(*array.Float64Builder)
	action := b.Field(9).(*array.StringBuilder)
	reason := b.Field(10).(*array.StringBuilder)
	fb := b.Field(11).(*array.StringBuilder)
	ws := b.Field(12).(*array.TimestampBuilder)
	we := b.Field(13).(*array.TimestampBuilder)
	lat := b.Field(14).(*array.Int64Builder)
	feat := b.Field(15).(*array.StringBuilder)
	state := b.Field(16).(*array.StringBuilder)
	trans := b.Field(17).(*array.BooleanBuilder)
	fp := b.Field(18).(*array.StringBuilder)
	trig := b.Field(19).(*array.StringBuilder)
	miss := b.Field(20).(*array.StringBuilder)
	tlat := b.Field(21).(*array.Int64Builder)
	b.Reserve(len(all))
	var buf []byte
	for i := range all {
		x := &all[i]
		d := &x.d
		ts.Append(arrow.Timestamp(d.Time.UnixNano()))
		id.Append(d.ID)
		dev.Append(d.Entity.Device)
		comp.Append(d.Entity.Component)
		view.Append(d.View)
		model.Append(d.Model)
		ver.Append(d.ModelVersion)
		shadow.Append(x.shadow)
		score.Append(d.Score)
		action.Append(d.Action)
		reason.Append(d.Reason)
		fb.Append(d.Fallback)
		ws.Append(arrow.Timestamp(d.Window.Start.UnixNano()))
		we.Append(arrow.Timestamp(d.Window.End.UnixNano()))
		lat.Append(d.IngestToDecisionUS)
		buf = jsonenc.Features(buf[:0], d.Features)
		feat.Append(string(buf))
		state.Append(d.State)
		trans.Append(d.Transition)
		fp.Append(d.Fingerprint)
		trig.Append(d.Trigger)
		miss.Append(strings.Join(d.MissingFeatures, ","))
		tlat.Append(d.TriggerToDecisionUS)
	}
	return b.NewRecordBatch()
}
