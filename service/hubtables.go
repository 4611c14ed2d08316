package service

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/fleet"
	"github.com/netfeat/netfeat/query"
	"github.com/netfeat/netfeat/schema"
)

// withSite returns s with a leading `site` column: the fleet tables are
// the standalone tables with the edge each row comes from.
func withSite(s *arrow.Schema) *arrow.Schema {
	return arrow.NewSchema(append([]arrow.Field{{Name: "site", Type: arrow.BinaryTypes.String}}, s.Fields()...), nil)
}

// Schemas of the hub's tables that differ from their standalone ones.
var (
	// hubSamplesSchema is `samples` on the hub: raw samples the edges
	// forward (fleet.edge.sample_forwarding).
	hubSamplesSchema = arrow.NewSchema([]arrow.Field{
		{Name: "site", Type: arrow.BinaryTypes.String},
		{Name: "ts", Type: schema.TimestampType},
		{Name: "device", Type: arrow.BinaryTypes.String},
		{Name: "component", Type: arrow.BinaryTypes.String},
		{Name: "metric", Type: arrow.BinaryTypes.String},
		{Name: "value", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	// hubDevicesSchema is `devices` on the hub: every device an edge
	// forwarded a state or data of. `site`, then the standalone `devices`
	// columns from the newest state the edge forwarded (all null for a
	// device the hub has data of but no state), state_ts when the edge
	// read that state, then first_seen and last_seen of its data (null
	// for a device known only from its state) and the windows, decisions
	// and samples the hub got of it.
	hubDevicesSchema = arrow.NewSchema([]arrow.Field{
		{Name: "site", Type: arrow.BinaryTypes.String},
		{Name: "device", Type: arrow.BinaryTypes.String},
		{Name: "address", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "protocol", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "profile", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "state", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "last_success", Type: schema.TimestampType, Nullable: true},
		{Name: "last_error", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "last_error_ts", Type: schema.TimestampType, Nullable: true},
		{Name: "last_duration_ms", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "observations", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "errors", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "state_ts", Type: schema.TimestampType, Nullable: true},
		{Name: "first_seen", Type: schema.TimestampType, Nullable: true},
		{Name: "last_seen", Type: schema.TimestampType, Nullable: true},
		{Name: "windows", Type: arrow.PrimitiveTypes.Int64},
		{Name: "decisions", Type: arrow.PrimitiveTypes.Int64},
		{Name: "samples", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
)

// hubRow is one row of a fleet table: its site, its time (for retention)
// and what builds its columns after `site`.
type hubRow struct {
	site string
	ts   int64
	v    any // *schema.FeatureRow, *schema.Decision, *fleet.Action or schema.Sample
}

// hubTable is one fleet table: rows in arrival order, bounded by count and
// age, with the Arrow record of them built once per change.
type hubTable struct {
	info  query.TableInfo
	build func(b *array.RecordBuilder, r *hubRow) // columns 1.. of one row

	mu   sync.Mutex
	rows []hubRow
	rec  arrow.RecordBatch // nil after a change
}

// add appends rows, dropping the oldest beyond max: a sixteenth of max
// more than needed, so that a full table moves its rows once per max/16
// additions, not at each.
func (t *hubTable) add(max int, rows ...hubRow) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = append(t.rows, rows...)
	if over := len(t.rows) - max; over > 0 {
		t.rows = slices.Delete(t.rows, 0, min(len(t.rows), over+max/16))
	}
	t.changed()
}

func (t *hubTable) changed() {
	if t.rec != nil {
		t.rec.Release()
		t.rec = nil
	}
}

// expire removes rows older than cutoff (Unix ns).
func (t *hubTable) expire(cutoff int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.rows)
	t.rows = slices.DeleteFunc(t.rows, func(r hubRow) bool { return r.ts < cutoff })
	if len(t.rows) != n {
		t.changed()
	}
}

// record returns the table's rows as one record, retained for the caller.
func (t *hubTable) record() arrow.RecordBatch {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rec == nil {
		b := array.NewRecordBuilder(memory.DefaultAllocator, t.info.Schema)
		b.Reserve(len(t.rows))
		for i := range t.rows {
			b.Field(0).(*array.StringBuilder).Append(t.rows[i].site)
			t.build(b, &t.rows[i])
		}
		t.rec = b.NewRecordBatch()
		b.Release()
	}
	t.rec.Retain()
	return t.rec
}

// release frees the cached record.
func (t *hubTable) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.changed()
}

// hubSink is the hub's fleet.Sink: it materialises what the edges forward
// as the fleet tables, each with a `site` column: one per feature view
// (the hub's `views` must name the edges' views) and its latest_<view>,
// `decisions`, `actions` (the current state per site and fingerprint),
// `samples`, `series` (of the samples) and `devices` (the newest device
// state each edge forwarded, and what the hub got of each device's data).
//
// Delivery to a sink is at least once; the sink keeps the message ids of
// the rows it holds and accepts an id once. The tables live in memory,
// bounded by fleet.hub.retention and max_rows; the hub streams are the
// durable store, and a hub that starts replays them (hubComponent).
type hubSink struct {
	retention time.Duration
	maxRows   int
	now       func() time.Time

	views     map[string]*hubTable // by view name
	viewNames map[string][]string  // view → feature names in column order
	entity    map[string]string    // view → its entity kind, for descriptions
	decisions *hubTable
	samples   *hubTable

	mu      sync.Mutex
	ids     map[string]int64  // message id → item time, for de-duplication
	actions map[string]hubRow // site NUL fingerprint → latest transition
	devices map[hubDeviceKey]*hubDevice
	series  map[hubSeriesKey]*hubSeries
	latest  map[string]map[hubEntityKey]*schema.FeatureRow // view → newest window per entity
	actRec  arrow.RecordBatch                              // nil after a change

	dups, skipped *prometheus.CounterVec
}

// maxFutureSkew is how far ahead of the hub's clock an edge may stamp a
// device state or a window and still have it taken as the newest.
const maxFutureSkew = 5 * time.Minute

// hubDeviceKey names a device of a site.
type hubDeviceKey struct{ site, device string }

// hubEntityKey names an entity of a site: a row of latest_<view>.
type hubEntityKey struct{ site, device, component string }

// hubSeriesKey names a series of a site: a row of `series`.
type hubSeriesKey struct{ site, device, component, metric string }

// hubSeries is one row of `series`: the forwarded samples of a series
// the hub holds or held within retention.
type hubSeries struct {
	first, last int64
	lastValue   float64
	n           int64
}

// hubDevice is one row of `devices`: the newest state forwarded of the
// device (nil: none) and what the hub got of its data (hasData false:
// nothing).
type hubDevice struct {
	site, device                 string
	state                        *fleet.DeviceState
	stateID                      string // the item id of state
	hasData                      bool
	first, last                  int64
	windows, decisions, nsamples int64
}

// newHubSink prepares the tables of views.
func newHubSink(cfg FleetHubConfig, views []schema.FeatureView, reg prometheus.Registerer) *hubSink {
	s := &hubSink{
		retention: cfg.Retention, maxRows: cfg.MaxRows, now: time.Now,
		views: map[string]*hubTable{}, viewNames: map[string][]string{}, entity: map[string]string{},
		ids: map[string]int64{}, actions: map[string]hubRow{}, devices: map[hubDeviceKey]*hubDevice{},
		series: map[hubSeriesKey]*hubSeries{}, latest: map[string]map[hubEntityKey]*schema.FeatureRow{},
		dups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_hub_duplicates_total",
			Help: "Items the hub delivered again (same message id) that the fleet tables already held, by kind.",
		}, []string{"kind"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_hub_skipped_total",
			Help: "Items the fleet tables did not take, by kind and reason (expired: older than retention; unknown_view: a view the hub's configuration lacks; series_limit, latest_limit: a new series or entity beyond fleet.hub.max_rows, left out of `series` or latest_<view> only; future, future_latest: stamped more than 5 minutes ahead of the hub's clock, a device state refused, a window left out of latest_<view> only; older_state: a device state older than the one `devices` holds).",
		}, []string{"kind", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(s.dups, s.skipped)
	}
	for _, v := range views {
		names := v.FeatureNames()
		s.viewNames[v.Name] = names
		s.latest[v.Name] = map[hubEntityKey]*schema.FeatureRow{}
		s.entity[v.Name] = string(v.Entity)
		s.views[v.Name] = &hubTable{
			info:  query.TableInfo{Name: v.Name, Schema: withSite(schema.FeatureViewSchema(v)), TimeColumn: "window_end", Description: query.ViewDescription(v.Name, string(v.Entity)) + ", from every site"},
			build: buildWindowRow(len(names)),
		}
	}
	s.decisions = &hubTable{info: query.TableInfo{Name: "decisions", Schema: withSite(schema.DecisionsSchema), TimeColumn: "ts", Description: query.DescDecisions + ", from every site"}, build: buildDecisionRow}
	s.samples = &hubTable{info: query.TableInfo{Name: "samples", Schema: hubSamplesSchema, TimeColumn: "ts", Description: "raw samples the edges forward: site, ts, device, component, metric, value"}, build: buildSampleRow}
	return s
}

// accept records id for an item of time ts and reports whether the tables
// should take it: not a repeat, not older than retention.
func (s *hubSink) accept(m fleet.Meta, ts int64) bool {
	if ts < s.now().Add(-s.retention).UnixNano() {
		s.skipped.WithLabelValues(string(m.Kind), "expired").Inc()
		return false
	}
	if _, dup := s.ids[m.ID]; dup {
		s.dups.WithLabelValues(string(m.Kind)).Inc()
		return false
	}
	s.ids[m.ID] = ts
	return true
}

// device returns the `devices` row of (site, device), a new one if
// needed. The caller holds mu.
func (s *hubSink) device(site, device string) *hubDevice {
	k := hubDeviceKey{site, device}
	d := s.devices[k]
	if d == nil {
		d = &hubDevice{site: site, device: device}
		s.devices[k] = d
	}
	return d
}

// seen updates the `devices` row of (site, device) with data of time ts.
func (s *hubSink) seen(site, device string, ts int64, windows, decisions, samples int64) {
	d := s.device(site, device)
	if !d.hasData {
		d.hasData, d.first, d.last = true, ts, ts
	}
	d.first, d.last = min(d.first, ts), max(d.last, ts)
	d.windows += windows
	d.decisions += decisions
	d.nsamples += samples
}

// Window implements fleet.Sink.
func (s *hubSink) Window(_ context.Context, m fleet.Meta, row *schema.FeatureRow) error {
	t := s.views[row.View]
	s.mu.Lock()
	if t == nil {
		s.mu.Unlock()
		s.skipped.WithLabelValues(string(m.Kind), "unknown_view").Inc()
		return nil
	}
	ok := s.accept(m, row.WindowEnd)
	if ok {
		s.seen(m.Site, row.Device, row.WindowEnd, 1, 0, 0)
	}
	s.mu.Unlock()
	if !ok {
		return nil
	}
	// The edge's feature order may differ from the hub's view: place each
	// value by name.
	names := s.viewNames[row.View]
	vals := make([]float64, len(names))
	for i, n := range names {
		vals[i] = math.NaN()
		if j := slices.Index(row.Names, n); j >= 0 && j < len(row.Values) {
			vals[i] = row.Values[j]
		}
	}
	r := *row
	r.Names, r.Values = names, vals
	t.add(s.maxRows, hubRow{site: m.Site, ts: row.WindowEnd, v: &r})
	s.mu.Lock()
	k := hubEntityKey{m.Site, row.Device, row.Component}
	latest := s.latest[row.View]
	switch old, ok := latest[k]; {
	case r.WindowEnd > s.now().Add(maxFutureSkew).UnixNano():
		// Kept in the view's table, but not as the entity's latest: a
		// window from an edge clock that jumped ahead would hide every
		// later one until it aged out.
		s.skipped.WithLabelValues(string(m.Kind), "future_latest").Inc()
	case !ok && len(latest) >= s.maxRows:
		s.skipped.WithLabelValues(string(m.Kind), "latest_limit").Inc()
	case !ok || old.WindowEnd <= r.WindowEnd:
		latest[k] = &r
	}
	s.mu.Unlock()
	return nil
}

// Decision implements fleet.Sink.
func (s *hubSink) Decision(_ context.Context, m fleet.Meta, d *schema.Decision) error {
	ts := d.Time.UnixNano()
	s.mu.Lock()
	ok := s.accept(m, ts)
	if ok {
		s.seen(m.Site, d.Entity.Device, ts, 0, 1, 0)
	}
	s.mu.Unlock()
	if ok {
		s.decisions.add(s.maxRows, hubRow{site: m.Site, ts: ts, v: d})
	}
	return nil
}

// Action implements fleet.Sink: the table keeps the latest transition of
// each (site, fingerprint).
func (s *hubSink) Action(_ context.Context, m fleet.Meta, a *fleet.Action) error {
	ts := a.LastDecision.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.accept(m, ts) {
		return nil
	}
	k := m.Site + "\x00" + a.Fingerprint
	if old, ok := s.actions[k]; ok && old.ts > ts {
		return nil // an older transition than the one held
	}
	s.actions[k] = hubRow{site: m.Site, ts: ts, v: a}
	if len(s.actions) > s.maxRows {
		s.expireActions(math.MaxInt64, len(s.actions)-s.maxRows)
	}
	s.actionsChanged()
	return nil
}

// Samples implements fleet.Sink.
func (s *hubSink) Samples(_ context.Context, m fleet.Meta, batch []schema.Sample) error {
	if len(batch) == 0 {
		return nil
	}
	s.mu.Lock()
	ok := s.accept(m, batch[len(batch)-1].TS)
	if ok {
		limited := 0
		for i := range batch {
			x := &batch[i]
			s.seen(m.Site, x.Device, x.TS, 0, 0, 1)
			k := hubSeriesKey{m.Site, x.Device, x.Component, x.Metric}
			sr := s.series[k]
			if sr == nil {
				if len(s.series) >= s.maxRows {
					limited++
					continue
				}
				sr = &hubSeries{first: x.TS, last: x.TS, lastValue: x.Value}
				s.series[k] = sr
			}
			sr.n++
			sr.first = min(sr.first, x.TS)
			if x.TS >= sr.last {
				sr.last, sr.lastValue = x.TS, x.Value
			}
		}
		if limited > 0 {
			s.skipped.WithLabelValues(string(m.Kind), "series_limit").Add(float64(limited))
		}
	}
	s.mu.Unlock()
	if !ok {
		return nil
	}
	rows := make([]hubRow, len(batch))
	for i := range batch {
		rows[i] = hubRow{site: m.Site, ts: batch[i].TS, v: batch[i]}
	}
	s.samples.add(s.maxRows, rows...)
	return nil
}

// DeviceState implements fleet.Sink: `devices` keeps the newest state of
// each (site, device) by the time the edge read it, so an older state
// delivered late (a redelivery, a replay) never replaces a newer one. A
// repeat cannot count twice, so no id is kept beyond the held state's: a
// heartbeat a minute of every device would otherwise fill the id table.
func (s *hubSink) DeviceState(_ context.Context, m fleet.Meta, st *fleet.DeviceState) error {
	now := s.now()
	if st.TS < now.Add(-s.retention).UnixNano() {
		s.skipped.WithLabelValues(string(m.Kind), "expired").Inc()
		return nil
	}
	if st.TS > now.Add(maxFutureSkew).UnixNano() {
		// An edge clock that jumped ahead: held, such a state would
		// refuse every correctly stamped one after it as older.
		s.skipped.WithLabelValues(string(m.Kind), "future").Inc()
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.device(m.Site, st.Device)
	switch {
	case d.state == nil:
	case d.stateID == m.ID:
		s.dups.WithLabelValues(string(m.Kind)).Inc()
		return nil
	case d.state.TS > st.TS:
		s.skipped.WithLabelValues(string(m.Kind), "older_state").Inc()
		return nil
	}
	d.state, d.stateID = st, m.ID
	return nil
}

func (s *hubSink) actionsChanged() {
	if s.actRec != nil {
		s.actRec.Release()
		s.actRec = nil
	}
}

// expireActions removes actions older than cutoff, and then the n oldest.
// The caller holds mu.
func (s *hubSink) expireActions(cutoff int64, n int) {
	for k, r := range s.actions {
		if r.ts < cutoff {
			delete(s.actions, k)
		}
	}
	if n > 0 {
		keys := make([]string, 0, len(s.actions))
		for k := range s.actions {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return int(min(max(s.actions[a].ts-s.actions[b].ts, -1), 1)) })
		for _, k := range keys[:min(n, len(keys))] {
			delete(s.actions, k)
		}
	}
	s.actionsChanged()
}

// expire drops rows, ids and devices older than retention.
func (s *hubSink) expire() {
	cutoff := s.now().Add(-s.retention).UnixNano()
	for _, t := range s.views {
		t.expire(cutoff)
	}
	s.decisions.expire(cutoff)
	s.samples.expire(cutoff)
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, ts := range s.ids {
		if ts < cutoff {
			delete(s.ids, id)
		}
	}
	for k, d := range s.devices {
		if d.hasData && d.last < cutoff {
			d.hasData, d.first, d.last, d.windows, d.decisions, d.nsamples = false, 0, 0, 0, 0, 0
		}
		if d.state != nil && d.state.TS < cutoff {
			d.state, d.stateID = nil, ""
		}
		if !d.hasData && d.state == nil {
			delete(s.devices, k)
		}
	}
	for k, sr := range s.series {
		if sr.last < cutoff {
			delete(s.series, k)
		}
	}
	for _, rows := range s.latest {
		for k, r := range rows {
			if r.WindowEnd < cutoff {
				delete(rows, k)
			}
		}
	}
	s.expireActions(cutoff, 0)
}

// close releases every cached record.
func (s *hubSink) close() {
	for _, t := range s.views {
		t.release()
	}
	s.decisions.release()
	s.samples.release()
	s.mu.Lock()
	s.actionsChanged()
	s.mu.Unlock()
}

// actionsRecord returns `actions`, ordered by site and fingerprint.
func (s *hubSink) actionsRecord() arrow.RecordBatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.actRec == nil {
		keys := make([]string, 0, len(s.actions))
		for k := range s.actions {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b := array.NewRecordBuilder(memory.DefaultAllocator, actionsTable.Schema)
		for _, k := range keys {
			r := s.actions[k]
			b.Field(0).(*array.StringBuilder).Append(r.site)
			buildActionRow(b, r.v.(*fleet.Action))
		}
		s.actRec = b.NewRecordBatch()
		b.Release()
	}
	s.actRec.Retain()
	return s.actRec
}

// devicesRecord returns `devices`, ordered by site and device.
func (s *hubSink) devicesRecord() arrow.RecordBatch {
	s.mu.Lock()
	devs := make([]hubDevice, 0, len(s.devices))
	for _, d := range s.devices {
		devs = append(devs, *d)
	}
	s.mu.Unlock()
	slices.SortFunc(devs, func(a, b hubDevice) int {
		return strings.Compare(a.site+"\x00"+a.device, b.site+"\x00"+b.device)
	})
	b := array.NewRecordBuilder(memory.DefaultAllocator, hubDevicesSchema)
	defer b.Release()
	str := func(i int, v string) { b.Field(i).(*array.StringBuilder).Append(v) }
	// A time of 0 (never) is null, as in the standalone table.
	ts := func(i int, v int64) {
		if v == 0 {
			b.Field(i).AppendNull()
			return
		}
		b.Field(i).(*array.TimestampBuilder).Append(arrow.Timestamp(v))
	}
	for _, d := range devs {
		str(0, d.site)
		str(1, d.device)
		if st := d.state; st != nil {
			str(2, st.Address)
			str(3, st.Protocol)
			str(4, st.Profile)
			str(5, st.State)
			ts(6, st.LastSuccess)
			str(7, st.LastError)
			ts(8, st.LastErrorTS)
			b.Field(9).(*array.Float64Builder).Append(st.LastDurationMS)
			b.Field(10).(*array.Int64Builder).Append(st.Observations)
			b.Field(11).(*array.Int64Builder).Append(st.Errors)
			ts(12, st.TS)
		} else {
			for i := 2; i <= 12; i++ {
				b.Field(i).AppendNull()
			}
		}
		if d.hasData {
			ts(13, d.first)
			ts(14, d.last)
		} else {
			b.Field(13).AppendNull()
			b.Field(14).AppendNull()
		}
		b.Field(15).(*array.Int64Builder).Append(d.windows)
		b.Field(16).(*array.Int64Builder).Append(d.decisions)
		b.Field(17).(*array.Int64Builder).Append(d.nsamples)
	}
	return b.NewRecordBatch()
}

// seriesRecord returns `series`, ordered by site, device, component and
// metric.
func (s *hubSink) seriesRecord() arrow.RecordBatch {
	type row struct {
		k hubSeriesKey
		v hubSeries
	}
	s.mu.Lock()
	rows := make([]row, 0, len(s.series))
	for k, v := range s.series {
		rows = append(rows, row{k, *v})
	}
	s.mu.Unlock()
	slices.SortFunc(rows, func(a, b row) int {
		return cmpKeys(a.k.site, b.k.site, a.k.device, b.k.device, a.k.component, b.k.component, a.k.metric, b.k.metric)
	})
	b := array.NewRecordBuilder(memory.DefaultAllocator, seriesTable.Schema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.k.site)
		b.Field(1).(*array.StringBuilder).Append(r.k.device)
		b.Field(2).(*array.StringBuilder).Append(r.k.component)
		b.Field(3).(*array.StringBuilder).Append(r.k.metric)
		b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(r.v.first))
		b.Field(5).(*array.TimestampBuilder).Append(arrow.Timestamp(r.v.last))
		b.Field(6).(*array.Float64Builder).Append(r.v.lastValue)
		b.Field(7).(*array.Int64Builder).Append(r.v.n)
	}
	return b.NewRecordBatch()
}

// latestRecord returns latest_<view>: the newest window of each site's
// entity, ordered by site, device and component.
func (s *hubSink) latestRecord(view string) arrow.RecordBatch {
	t := s.views[view]
	s.mu.Lock()
	rows := make([]hubRow, 0, len(s.latest[view]))
	for k, r := range s.latest[view] {
		rows = append(rows, hubRow{site: k.site, ts: r.WindowEnd, v: r})
	}
	s.mu.Unlock()
	slices.SortFunc(rows, func(a, b hubRow) int {
		x, y := a.v.(*schema.FeatureRow), b.v.(*schema.FeatureRow)
		return cmpKeys(a.site, b.site, x.Device, y.Device, x.Component, y.Component)
	})
	b := array.NewRecordBuilder(memory.DefaultAllocator, t.info.Schema)
	defer b.Release()
	for i := range rows {
		b.Field(0).(*array.StringBuilder).Append(rows[i].site)
		t.build(b, &rows[i])
	}
	return b.NewRecordBatch()
}

// cmpKeys compares pairs of strings (a1, b1, a2, b2, ...) in order.
func cmpKeys(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

var (
	actionsTable = query.TableInfo{Name: "actions", Schema: withSite(schema.ActionsSchema), Description: query.DescActions + ", from every site"}
	devicesTable = query.TableInfo{Name: "devices", Schema: hubDevicesSchema, Description: "every device an edge forwarded a state or data of: its collector's newest state (null without one), state_ts, first and last seen of its data, windows, decisions, samples"}
	seriesTable  = query.TableInfo{Name: "series", Schema: withSite(schema.SeriesSchema), Description: "every series of the raw samples the edges forwarded, within retention: first and last sample, last value, samples"}
)

// latestPrefix names the online tables: latest_<view>.
const latestPrefix = "latest_"

// Tables implements query.Source.
func (s *hubSink) Tables() []query.TableInfo {
	out := []query.TableInfo{s.decisions.info, actionsTable, s.samples.info, devicesTable, seriesTable}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range s.views {
			if !yield(n) {
				return
			}
		}
	}) {
		t := s.views[name]
		out = append(out, t.info, query.TableInfo{Name: latestPrefix + name, Schema: t.info.Schema,
			Description: query.LatestDescription(name, s.entity[name]) + ", from every site"})
	}
	return out
}

// Records implements query.Source.
func (s *hubSink) Records(_ context.Context, table string) ([]arrow.RecordBatch, error) {
	switch table {
	case actionsTable.Name:
		return []arrow.RecordBatch{s.actionsRecord()}, nil
	case devicesTable.Name:
		return []arrow.RecordBatch{s.devicesRecord()}, nil
	case s.decisions.info.Name:
		return []arrow.RecordBatch{s.decisions.record()}, nil
	case s.samples.info.Name:
		return []arrow.RecordBatch{s.samples.record()}, nil
	case seriesTable.Name:
		return []arrow.RecordBatch{s.seriesRecord()}, nil
	}
	if t, ok := s.views[table]; ok {
		return []arrow.RecordBatch{t.record()}, nil
	}
	if v, ok := strings.CutPrefix(table, latestPrefix); ok {
		if _, ok := s.views[v]; ok {
			return []arrow.RecordBatch{s.latestRecord(v)}, nil
		}
	}
	return nil, fmt.Errorf("table %s: no such table", table)
}

// History implements query.Source: the fleet tables hold only the
// retention in memory, so history is their rows cut to [from, to).
func (s *hubSink) History(ctx context.Context, table string, from, to int64) (array.RecordReader, error) {
	var info query.TableInfo
	for _, ti := range s.Tables() {
		if ti.Name == table {
			info = ti
		}
	}
	if info.Name == "" {
		return nil, fmt.Errorf("table %s: no such table", table)
	}
	recs, err := s.Records(ctx, table)
	if err != nil {
		return nil, err
	}
	var m query.MemSource
	defer m.Close()
	err = m.Set(info, recs...)
	for _, r := range recs {
		r.Release()
	}
	if err != nil {
		return nil, err
	}
	return m.History(ctx, table, from, to)
}

// buildWindowRow appends a window's columns after site.
func buildWindowRow(features int) func(b *array.RecordBuilder, r *hubRow) {
	return func(b *array.RecordBuilder, r *hubRow) {
		row := r.v.(*schema.FeatureRow)
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(row.WindowStart))
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(row.WindowEnd))
		b.Field(3).(*array.StringBuilder).Append(row.Device)
		b.Field(4).(*array.StringBuilder).Append(row.Component)
		for i := range features {
			fb := b.Field(5 + i).(*array.Float64Builder)
			if v := row.Values[i]; math.IsNaN(v) {
				fb.AppendNull()
			} else {
				fb.Append(v)
			}
		}
	}
}

// buildDecisionRow appends a decision's columns after site, as the
// standalone `decisions` table has them (shadow decisions are not
// forwarded).
func buildDecisionRow(b *array.RecordBuilder, r *hubRow) {
	d := r.v.(*schema.Decision)
	str := func(i int, v string) { b.Field(i).(*array.StringBuilder).Append(v) }
	ts := func(i int, t time.Time) { b.Field(i).(*array.TimestampBuilder).Append(arrow.Timestamp(t.UnixNano())) }
	ts(1, d.Time)
	str(2, d.ID)
	str(3, d.Entity.Device)
	str(4, d.Entity.Component)
	str(5, d.View)
	str(6, d.Model)
	str(7, d.ModelVersion)
	b.Field(8).(*array.BooleanBuilder).Append(false)
	b.Field(9).(*array.Float64Builder).Append(d.Score)
	str(10, d.Action)
	str(11, d.Reason)
	str(12, d.Fallback)
	ts(13, d.Window.Start)
	ts(14, d.Window.End)
	b.Field(15).(*array.Int64Builder).Append(d.IngestToDecisionUS)
	feats := map[string]float64{}
	for k, v := range d.Features {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			feats[k] = v
		}
	}
	fj, err := json.Marshal(feats)
	if err != nil {
		fj = []byte("{}")
	}
	str(16, string(fj))
	str(17, d.State)
	b.Field(18).(*array.BooleanBuilder).Append(d.Transition)
	str(19, d.Fingerprint)
	str(20, d.Trigger)
	str(21, strings.Join(d.MissingFeatures, ","))
	b.Field(22).(*array.Int64Builder).Append(d.TriggerToDecisionUS)
}

// buildActionRow appends an action's columns after site, as the
// standalone `actions` table has them; last_published and suppressed are
// the edge's own bookkeeping and not forwarded (null and 0).
func buildActionRow(b *array.RecordBuilder, a *fleet.Action) {
	str := func(i int, v string) { b.Field(i).(*array.StringBuilder).Append(v) }
	ts := func(i int, t time.Time) { b.Field(i).(*array.TimestampBuilder).Append(arrow.Timestamp(t.UnixNano())) }
	str(1, a.Model)
	str(2, a.ModelVersion)
	str(3, a.Fingerprint)
	str(4, a.Entity.Device)
	str(5, a.Entity.Component)
	str(6, a.View)
	str(7, a.Trigger)
	str(8, a.State)
	ts(9, a.Since)
	str(10, a.Action)
	b.Field(11).(*array.Float64Builder).Append(a.Score)
	str(12, a.Reason)
	ts(13, a.LastDecision)
	b.Field(14).(*array.TimestampBuilder).AppendNull()
	b.Field(15).(*array.BooleanBuilder).Append(a.Flapping)
	b.Field(16).(*array.Int64Builder).Append(0)
}

// buildSampleRow appends a sample's columns after site.
func buildSampleRow(b *array.RecordBuilder, r *hubRow) {
	s := r.v.(schema.Sample)
	b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(s.TS))
	b.Field(2).(*array.StringBuilder).Append(s.Device)
	b.Field(3).(*array.StringBuilder).Append(s.Component)
	b.Field(4).(*array.StringBuilder).Append(s.Metric)
	b.Field(5).(*array.Float64Builder).Append(s.Value)
}
