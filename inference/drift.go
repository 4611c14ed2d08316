package inference

// Drift: each loaded version whose model file carries a reference profile
// of its training features (learning.Profile: quantile bins) has a
// driftMonitor. The worker that scored a window with the live version
// hands it the window; the monitor keeps the bins of the last
// DriftConfig.Window windows (a ring, shared by the workers under its
// mutex) and, every DriftConfig.Every windows once the ring is full,
// computes each feature's PSI against the profile, exports it as
// netfeat_model_feature_psi, records it for the SQL `drift` table and,
// when it crosses the threshold (or falls back below the clear level),
// returns a drift event that the worker publishes as a decision with
// action "drift".

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/learning"
	"github.com/netfeat/netfeat/schema"
)

// ActionDrift is the action of drift decisions.
const ActionDrift = "drift"

// DriftConfig configures drift monitoring. The service fills it from the
// `learning.drift` section (docs/configuration.md); it is not read from
// `inference:`.
type DriftConfig struct {
	// Window is how many scored windows (of all entities) each version's
	// PSI covers; 0 turns drift monitoring off. Default 1000.
	Window int `yaml:"-"`
	// Every is how many windows pass between two PSI evaluations once the
	// window is full; default Window/10 (at least 1).
	Every int `yaml:"-"`
	// Threshold: a PSI above it makes the feature drifting; default 0.2.
	Threshold float64 `yaml:"-"`
	// Clear: a drifting feature stops drifting once its PSI is below it
	// (hysteresis); default Threshold/2.
	Clear float64 `yaml:"-"`
}

func (c DriftConfig) withDefaults() DriftConfig {
	if c.Every == 0 {
		c.Every = max(1, c.Window/10)
	}
	if c.Threshold == 0 {
		c.Threshold = 0.2
	}
	if c.Clear == 0 {
		c.Clear = c.Threshold / 2
	}
	return c
}

func (c DriftConfig) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, schema.Errorf(field, format, args...)) }
	if c.Window < 0 || c.Window > 1_000_000 {
		bad("drift.window", "must be 0–1000000, got %d", c.Window)
	}
	if c.Every < 0 || (c.Window > 0 && c.Every > c.Window) {
		bad("drift.every", "must be 0–window (%d), got %d", c.Window, c.Every)
	}
	if c.Threshold < 0 || math.IsNaN(c.Threshold) || math.IsInf(c.Threshold, 0) {
		bad("drift.psi_threshold", "must be a positive number, got %v", c.Threshold)
	}
	if c.Clear < 0 || math.IsNaN(c.Clear) || (c.Threshold > 0 && c.Clear > c.Threshold) {
		bad("drift.psi_clear", "must be between 0 and psi_threshold (%v), got %v", c.Threshold, c.Clear)
	}
	return errs
}

// DriftPoint is one PSI evaluation: a row of the SQL `drift` table.
type DriftPoint struct {
	Time     time.Time `json:"ts"`
	Model    string    `json:"model"`
	Version  string    `json:"model_version"`
	View     string    `json:"view"`
	Feature  string    `json:"feature"`
	PSI      float64   `json:"psi"`
	Windows  int       `json:"windows"`
	Start    time.Time `json:"window_start"` // end of the oldest window evaluated
	End      time.Time `json:"window_end"`   // end of the newest
	Drifting bool      `json:"drifting"`
}

// DriftEvent is a feature starting (Drifting) or stopping to drift, as
// published in a drift decision; SetDriftHandler receives them.
type DriftEvent struct {
	DriftPoint
}

// DriftHandler receives drift events on the worker goroutine that
// evaluated them; it must return quickly.
type DriftHandler func(DriftEvent)

// SetDriftHandler sets the handler of drift events (the retraining loop
// retrains on them). Call it before Start.
func (r *Runtime) SetDriftHandler(h DriftHandler) {
	if h != nil {
		r.onDrift.Store(&h)
	}
}

// driftRing bounds the evaluations kept for the `drift` table.
const driftRing = 10_000

// driftRecorder keeps the most recent PSI evaluations.
type driftRecorder struct {
	mu   sync.Mutex
	ring []DriftPoint
	next int
	full bool
}

func (c *driftRecorder) add(p DriftPoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ring == nil {
		c.ring = make([]DriftPoint, driftRing)
	}
	c.ring[c.next] = p
	c.next++
	if c.next == len(c.ring) {
		c.next, c.full = 0, true
	}
}

func (c *driftRecorder) snapshot() []DriftPoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.full {
		return append([]DriftPoint(nil), c.ring[:c.next]...)
	}
	return append(append(make([]DriftPoint, 0, len(c.ring)), c.ring[c.next:]...), c.ring[:c.next]...)
}

// Drift returns the recent PSI evaluations (the last 10,000), oldest
// first.
func (r *Runtime) Drift() []DriftPoint { return r.drift.snapshot() }

// DriftRecords returns Drift as one record of schema.DriftSchema, for the
// SQL `drift` table. The caller releases it.
func (r *Runtime) DriftRecords() []arrow.RecordBatch {
	all := r.Drift()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema.DriftSchema)
	defer b.Release()
	ts := func(i int) *array.TimestampBuilder { return b.Field(i).(*array.TimestampBuilder) }
	str := func(i int) *array.StringBuilder { return b.Field(i).(*array.StringBuilder) }
	b.Reserve(len(all))
	for _, p := range all {
		ts(0).Append(arrow.Timestamp(p.Time.UnixNano()))
		str(1).Append(p.Model)
		str(2).Append(p.Version)
		str(3).Append(p.View)
		str(4).Append(p.Feature)
		b.Field(5).(*array.Float64Builder).Append(p.PSI)
		b.Field(6).(*array.Int64Builder).Append(int64(p.Windows))
		ts(7).Append(arrow.Timestamp(p.Start.UnixNano()))
		ts(8).Append(arrow.Timestamp(p.End.UnixNano()))
		b.Field(9).(*array.BooleanBuilder).Append(p.Drifting)
	}
	return []arrow.RecordBatch{b.NewRecordBatch()}
}

// driftMonitor measures one loaded version's input drift.
type driftMonitor struct {
	model, version, view string
	names                []string // the features as the row names them
	prof                 *learning.Profile
	bind                 binding
	cfg                  DriftConfig
	rec                  *driftRecorder
	gauge                *prometheus.GaugeVec
	gauges               []prometheus.Gauge

	mu       sync.Mutex
	bins     []uint16 // ring of Window rows × features
	ends     []int64  // ring: each row's window end
	counts   [][]int  // per feature, per bin: rows of the ring in it
	n, next  int      // rows in the ring; next slot
	since    int      // rows since the last evaluation
	drifting []bool
	x        []float64
}

func newDriftMonitor(s *slot, vi VersionInfo, names []string, prof *learning.Profile, cfg DriftConfig, rec *driftRecorder, gauge *prometheus.GaugeVec) *driftMonitor {
	d := len(names)
	m := &driftMonitor{
		model: s.name, version: vi.Version, view: s.view, names: names, prof: prof, bind: binding{names: names},
		cfg: cfg, rec: rec, gauge: gauge, bins: make([]uint16, cfg.Window*d), ends: make([]int64, cfg.Window),
		counts: make([][]int, d), drifting: make([]bool, d), x: make([]float64, d), gauges: make([]prometheus.Gauge, d),
	}
	for j := range d {
		m.counts[j] = make([]int, len(prof.Features[j].Expected))
		m.gauges[j] = gauge.WithLabelValues(s.name, vi.Version, names[j])
	}
	return m
}

// close removes the version's PSI series.
func (m *driftMonitor) close() {
	for _, n := range m.names {
		m.gauge.DeleteLabelValues(m.model, m.version, n)
	}
}

// observe adds a scored row and returns the drift events it caused. Rows
// without a value for one of the features are left out.
func (m *driftMonitor) observe(row *schema.FeatureRow) []DriftEvent {
	idx, err := m.bind.indexes(row)
	if err != nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for j, i := range idx {
		v := row.Values[i]
		if math.IsNaN(v) {
			return nil
		}
		m.x[j] = v
	}
	d := len(m.names)
	slot := m.bins[m.next*d : m.next*d+d]
	if m.n == m.cfg.Window {
		for j, b := range slot {
			m.counts[j][b]--
		}
	} else {
		m.n++
	}
	for j, v := range m.x {
		b := uint16(m.prof.Features[j].Bin(v))
		slot[j] = b
		m.counts[j][b]++
	}
	m.ends[m.next] = row.WindowEnd
	m.next = (m.next + 1) % m.cfg.Window
	m.since++
	if m.n < m.cfg.Window || m.since < m.cfg.Every {
		return nil
	}
	m.since = 0
	now := time.Now().UTC()
	oldest := m.ends[m.next%m.cfg.Window]
	var evs []DriftEvent
	for j := range d {
		psi := learning.PSI(m.prof.Features[j].Expected, m.counts[j], m.n)
		m.gauges[j].Set(psi)
		changed := false
		switch {
		case !m.drifting[j] && psi > m.cfg.Threshold:
			m.drifting[j], changed = true, true
		case m.drifting[j] && psi < m.cfg.Clear:
			m.drifting[j], changed = false, true
		}
		p := DriftPoint{
			Time: now, Model: m.model, Version: m.version, View: m.view, Feature: m.names[j], PSI: psi,
			Windows: m.n, Start: time.Unix(0, oldest).UTC(), End: time.Unix(0, row.WindowEnd).UTC(), Drifting: m.drifting[j],
		}
		m.rec.add(p)
		if changed {
			evs = append(evs, DriftEvent{p})
		}
	}
	return evs
}

// emitDrift publishes and records the decision of a drift event: action
// "drift", state firing when the feature starts drifting and resolved when
// it stops, entity (no device, the feature as component).
func (r *Runtime) emitDrift(s *slot, ev DriftEvent, w *worker) {
	e := schema.Entity{Component: ev.Feature}
	d := schema.Decision{
		SchemaVersion: schema.DecisionSchemaVersion,
		ID:            decisionID(s.name, "drift", e, ev.Start.UnixNano(), ev.End.UnixNano(), ev.Version),
		Time:          time.Now().UTC(),
		Entity:        e,
		View:          s.view,
		Model:         s.name,
		ModelVersion:  ev.Version,
		Score:         ev.PSI,
		Action:        ActionDrift,
		Features:      map[string]float64{},
		Window:        schema.Window{Start: ev.Start, End: ev.End},
		Trigger:       schema.TriggerDrift,
		Transition:    true,
		Fingerprint:   fingerprint(s.name+"/drift", e),
		Since:         ev.Time,
	}
	dr := r.cfg.Drift.withDefaults()
	if ev.Drifting {
		d.State = schema.StateFiring
		d.Reason = fmt.Sprintf("drift: PSI of %s over the last %d windows is %.4g > %.4g", ev.Feature, ev.Windows, ev.PSI, dr.Threshold)
	} else {
		d.State = schema.StateResolved
		d.Reason = fmt.Sprintf("drift resolved: PSI of %s over the last %d windows is %.4g < %.4g", ev.Feature, ev.Windows, ev.PSI, dr.Clear)
	}
	r.m.decisions.WithLabelValues(s.name, ActionDrift).Inc()
	r.m.transitions.WithLabelValues(s.name, d.State).Inc()
	sc := w.sc
	sc.buf = appendDecisionJSON(sc.buf[:0], &d)
	r.pub.submit(sc.subject(d.Model, d.Entity.Device), d.ID, sc.buf, sc)
	r.rec.add(&d, false)
	if r.dlog != nil {
		r.dlog.add(d.Time.UnixNano(), sc.buf, false)
	}
	if h := r.onDecision.Load(); h != nil {
		(*h)(&d)
	}
	if h := r.onDrift.Load(); h != nil {
		(*h)(ev)
	}
	r.log.Info("feature drift", "model", s.name, "version", ev.Version, "feature", ev.Feature, "psi", ev.PSI, "drifting", ev.Drifting)
}
