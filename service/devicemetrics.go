package service

// GET /metrics/devices: the devices' latest normalized metrics, their
// latest windowed features, the collectors' view of each device and the
// actions' states, in the OpenMetrics text format (or Prometheus text
// 0.0.4 when the scraper asks for it), so that a Prometheus scrapes
// netfeat as it scrapes snmp_exporter. The page is streamed: the store is
// walked in chunks (featurestore.EachLatest), each chunk written to a
// buffered writer on the response; no lock is held while writing.
// docs/metrics.md, "Prometheus: /metrics/devices", describes the names.

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/schema"
)

// DeviceMetricsPath is where the devices' metrics are served.
const DeviceMetricsPath = "/metrics/devices"

// Content types of the two formats /metrics/devices writes.
const (
	ContentTypeOpenMetrics = "application/openmetrics-text; version=1.0.0; charset=utf-8"
	ContentTypeText004     = "text/plain; version=0.0.4; charset=utf-8"
)

// DefaultDeviceMetricsMaxAge is how old a sample (or a window's end) may
// be and still be exposed, unless the request's max_age parameter says
// otherwise. Older samples would be refused by Prometheus as out of bounds
// (its head accepts about the last hour) and are no longer visible to its
// queries (5 minutes of lookback) anyway.
const DefaultDeviceMetricsMaxAge = 10 * time.Minute

// maxDeviceMetricsMaxAge bounds the max_age parameter.
const maxDeviceMetricsMaxAge = 7 * 24 * time.Hour

// expoFamily is one metric family of the page.
type expoFamily struct {
	name string // family name; counters' samples add _total
	typ  string // counter or gauge
	unit string // OpenMetrics unit, a suffix of name; "" for none
	help string
}

// metricFamily is the family of a catalog metric's latest samples: the
// canonical name sanitised, with its unit as suffix; a counter keeps the
// device's counter (samples named with _total), everything else is a
// gauge.
func metricFamily(m schema.Metric) expoFamily {
	unit := schema.PrometheusUnit(m.Unit)
	f := expoFamily{name: m.PrometheusName(), typ: "gauge", unit: unit,
		help: fmt.Sprintf("%s (netfeat metric %s, %s; latest sample)", strings.TrimSuffix(m.Description, "."), m.Name, m.Unit)}
	if m.Kind == schema.KindCounterMetric {
		f.typ = "counter"
	}
	return f
}

// featureFamily is the family of one aggregation of a metric over every
// view and window that compute it (labels view and window): feature_,
// the metric's name, the aggregation (count is _samples, to keep clear of
// the _count suffix of histograms; a sum without unit ends in _sum_value),
// the unit (rate: per second; count: none).
func featureFamily(m schema.Metric, agg schema.Aggregation) expoFamily {
	unit, word := schema.PrometheusUnit(m.Unit), string(agg)
	switch agg {
	case schema.AggCount:
		unit, word = "", "samples"
	case schema.AggRate:
		unit = strings.TrimPrefix(schema.WithUnitSuffix("", unit)+"_per_second", "_")
	}
	name := schema.WithUnitSuffix("feature_"+schema.SanitizeMetricName(m.Name)+"_"+word, unit)
	if unit == "" && agg == schema.AggSum {
		name += "_value" // not _sum, a suffix of histograms and summaries
	}
	return expoFamily{name: name, typ: "gauge", unit: unit,
		help: fmt.Sprintf("Windowed %s of netfeat metric %s (%s) over the latest closed window, by view and window length", agg, m.Name, m.Unit)}
}

// Families that are not catalog metrics.
var (
	deviceUpFamily = expoFamily{name: "device_up", typ: "gauge",
		help: "1 when netfeat's collector reaches the device (state up), 0 otherwise; by protocol"}
	deviceLastSuccessFamily = expoFamily{name: "device_last_success_timestamp_seconds", typ: "gauge", unit: "seconds",
		help: "Unix time of the collector's last successful poll or update of the device"}
	actionFiringFamily = expoFamily{name: "action_firing", typ: "gauge",
		help: "1 while the model's action on the entity is firing, 0 while it is pending or resolved"}
)

// deviceLabels are the rendered labels of one device: `device="…"` and
// the `,site="…",role="…"` that follow the component (empty ones left
// out).
type deviceLabels struct {
	device, tail []byte
}

// exposition writes one page. Not safe for concurrent use.
type exposition struct {
	w          *bufio.Writer
	openMetric bool
	buf        []byte
	labels     map[string]*deviceLabels
	info       func(device string) (site, role string)
	series     int
	// The last device's labels: a family's series come device by device.
	lastDev    string
	lastLabels *deviceLabels
}

// label is an extra label of a sample.
type label struct{ name, value string }

// header writes the family's metadata.
func (e *exposition) header(f expoFamily) error {
	name := f.name
	if !e.openMetric && f.typ == "counter" {
		name += "_total"
	}
	b := append(e.buf[:0], "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = appendEscaped(b, f.help, e.openMetric)
	b = append(b, "\n# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, f.typ...)
	b = append(b, '\n')
	if e.openMetric && f.unit != "" {
		b = append(b, "# UNIT "...)
		b = append(b, name...)
		b = append(b, ' ')
		b = append(b, f.unit...)
		b = append(b, '\n')
	}
	e.buf = b
	_, err := e.w.Write(b)
	return err
}

// device returns the device's rendered labels, from the cache.
func (e *exposition) device(dev string) *deviceLabels {
	if e.lastLabels != nil && dev == e.lastDev {
		return e.lastLabels
	}
	if l, ok := e.labels[dev]; ok {
		e.lastDev, e.lastLabels = dev, l
		return l
	}
	l := &deviceLabels{device: appendLabel(nil, "device", dev)}
	site, role := e.info(dev)
	if site != "" {
		l.tail = appendLabel(append(l.tail, ','), "site", site)
	}
	if role != "" {
		l.tail = appendLabel(append(l.tail, ','), "role", role)
	}
	e.labels[dev] = l
	e.lastDev, e.lastLabels = dev, l
	return l
}

// sample writes one sample line; ts is Unix ns, or 0 for none. The line
// is built in the writer's free space, so that it is copied once.
func (e *exposition) sample(f *expoFamily, dev, component string, extra []label, v float64, ts int64) error {
	if e.w.Available() < 1024 {
		if err := e.w.Flush(); err != nil {
			return err
		}
	}
	b := append(e.w.AvailableBuffer(), f.name...)
	if f.typ == "counter" {
		b = append(b, "_total"...)
	}
	l := e.device(dev)
	b = append(b, '{')
	b = append(b, l.device...)
	if component != "" {
		b = append(b, ',')
		b = appendLabel(b, "component", component)
	}
	b = append(b, l.tail...)
	for _, x := range extra {
		b = append(b, ',')
		b = appendLabel(b, x.name, x.value)
	}
	b = append(b, "} "...)
	b = appendValue(b, v)
	if ts != 0 {
		b = append(b, ' ')
		b = e.appendTimestamp(b, ts)
	}
	b = append(b, '\n')
	e.series++
	_, err := e.w.Write(b)
	return err
}

// appendTimestamp appends ts (Unix ns): seconds with milliseconds in
// OpenMetrics, milliseconds in text 0.0.4 (Prometheus keeps milliseconds).
func (e *exposition) appendTimestamp(b []byte, ts int64) []byte {
	ms := ts / int64(time.Millisecond)
	if !e.openMetric {
		return strconv.AppendInt(b, ms, 10)
	}
	if ms < 0 {
		return strconv.AppendFloat(b, float64(ms)/1e3, 'f', 3, 64)
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	frac := ms % 1000
	return append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

// appendValue appends a sample value: integers as such, other values in
// the shortest form that reads back exactly, NaN and ±Inf as spelled by
// both formats.
func appendValue(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendLabel appends name="value" with value escaped.
func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, '=', '"')
	b = appendEscaped(b, value, true)
	return append(b, '"')
}

// appendEscaped appends s with backslash, newline and (when quote) double
// quote escaped, and invalid UTF-8 replaced by U+FFFD: both formats are
// UTF-8. HELP text in format 0.0.4 escapes no quote.
func appendEscaped(b []byte, s string, quote bool) []byte {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '\n' || c == '"' || c >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if clean {
		return append(b, s...)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '"' && quote:
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return b
}

// deviceMetrics serves DeviceMetricsPath from the pipeline's stages.
type deviceMetrics struct {
	store   *featurestore.Store
	info    func(device string) (site, role string)
	devices func() []schema.DeviceState
	// actions returns the actions' states; nil when there is no runtime.
	actions func() []actionState
	now     func() time.Time

	families []expoFamily // one per catalog metric, in catalog order
	rank     map[string]int
	features []featureGroup

	duration prometheus.Histogram
	written  prometheus.Gauge
	errors   prometheus.Counter
}

// actionState is what the page shows of an action.
type actionState struct {
	model  string
	entity schema.Entity
	firing bool
}

// featureGroup is one feature family and where its values are: for each
// view that computes it, the feature's index per window.
type featureGroup struct {
	family expoFamily
	views  []featureSource
}

type featureSource struct {
	view    string
	width   int      // the view's number of features
	windows []string // window labels
	index   []int    // value index per window
}

// newDeviceMetrics builds the handler's tables from the catalog and the
// views, and registers its own metrics.
func newDeviceMetrics(store *featurestore.Store, views []schema.FeatureView, reg prometheus.Registerer) (*deviceMetrics, error) {
	d := &deviceMetrics{store: store, now: time.Now, rank: map[string]int{},
		info:    func(string) (string, string) { return "", "" },
		devices: func() []schema.DeviceState { return nil },
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "netfeat_device_metrics_scrape_seconds",
			Help:    "Time to write the whole " + DeviceMetricsPath + " page, from the request to the last byte handed to the connection.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		written: prometheus.NewGauge(prometheus.GaugeOpts{Name: "netfeat_device_metrics_series",
			Help: "Samples written by the last complete " + DeviceMetricsPath + " page."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "netfeat_device_metrics_write_errors_total",
			Help: DeviceMetricsPath + " pages cut short by a write error (the scraper went away or timed out)."}),
	}
	for _, c := range []prometheus.Collector{d.duration, d.written, d.errors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("device metrics: %w", err)
		}
	}
	for i, m := range schema.Catalog {
		d.rank[m.Name] = i
		d.families = append(d.families, metricFamily(m))
	}
	byName := map[string]int{}
	for _, v := range views {
		names := v.FeatureNames()
		for mi, mname := range v.Metrics {
			m, ok := schema.LookupMetric(mname)
			if !ok {
				continue // Validate refuses it
			}
			for ai, agg := range v.Aggregations {
				f := featureFamily(m, agg)
				gi, ok := byName[f.name]
				if !ok {
					gi = len(d.features)
					byName[f.name] = gi
					d.features = append(d.features, featureGroup{family: f})
				}
				src := featureSource{view: v.Name, width: len(names)}
				for wi, w := range v.Windows {
					ix := (mi*len(v.Windows)+wi)*len(v.Aggregations) + ai
					if names[ix] != schema.FeatureName(mname, agg, w) {
						return nil, fmt.Errorf("device metrics: view %s: feature %d is %s, not %s", v.Name, ix, names[ix], schema.FeatureName(mname, agg, w))
					}
					src.windows = append(src.windows, schema.DurationLabel(w))
					src.index = append(src.index, ix)
				}
				d.features[gi].views = append(d.features[gi].views, src)
			}
		}
	}
	return d, nil
}

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return w
}}

// ServeHTTP writes the page. ?max_age=DURATION overrides
// DefaultDeviceMetricsMaxAge (0 exposes every sample, however old).
func (d *deviceMetrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	maxAge := DefaultDeviceMetricsMaxAge
	if s := r.URL.Query().Get("max_age"); s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 || v > maxDeviceMetricsMaxAge {
			http.Error(w, fmt.Sprintf("max_age %q: want a duration between 0s and %s", s, maxDeviceMetricsMaxAge), http.StatusBadRequest)
			return
		}
		maxAge = v
	}
	start := d.now()
	om := expfmt.NegotiateAccept(r.Header, expfmt.FmtOpenMetrics_1_0_0, expfmt.FmtOpenMetrics_0_0_1, expfmt.FmtText).FormatType() == expfmt.TypeOpenMetrics
	h := w.Header()
	h.Set("Content-Type", ContentTypeText004)
	if om {
		h.Set("Content-Type", ContentTypeOpenMetrics)
	}
	h.Set("Cache-Control", "no-store")
	h.Add("Vary", "Accept, Accept-Encoding")
	if r.Method == http.MethodHead {
		return
	}
	var out io.Writer = w
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		gz := gzipWriters.Get().(*gzip.Writer)
		gz.Reset(w)
		defer func() {
			_ = gz.Close()
			gz.Reset(io.Discard)
			gzipWriters.Put(gz)
		}()
		out = gz
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	e := &exposition{w: bw, openMetric: om, buf: make([]byte, 0, 512), labels: map[string]*deviceLabels{}, info: d.info}
	cutoff := int64(math.MinInt64)
	if maxAge > 0 {
		cutoff = start.Add(-maxAge).UnixNano()
	}
	err := d.write(r, e, cutoff)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		d.errors.Inc()
		return
	}
	d.written.Set(float64(e.series))
	d.duration.Observe(d.now().Sub(start).Seconds())
}

// acceptsGzip reports whether an Accept-Encoding value allows gzip.
func acceptsGzip(v string) bool {
	for part := range strings.SplitSeq(v, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// errClientGone stops the walk when the request's context ends.
var errClientGone = errors.New("client gone")

// write writes every family, then # EOF in OpenMetrics.
func (d *deviceMetrics) write(r *http.Request, e *exposition, cutoff int64) error {
	ctx := r.Context()
	cur := -1
	err := d.store.EachLatest(func(metric string) int {
		if i, ok := d.rank[metric]; ok {
			return i
		}
		return -1 // not a catalog metric: no canonical name or unit
	}, func(chunk []featurestore.LatestSample) error {
		if ctx.Err() != nil {
			return errClientGone
		}
		r := d.rank[chunk[0].Metric] // a chunk holds one metric
		f := &d.families[r]
		for i := range chunk {
			x := &chunk[i]
			if x.TS < cutoff {
				continue
			}
			if r != cur {
				cur = r
				if err := e.header(*f); err != nil {
					return err
				}
			}
			if err := e.sample(f, x.Device, x.Component, nil, x.Value, x.TS); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := d.writeFeatures(ctx, e, cutoff); err != nil {
		return err
	}
	if err := d.writeDevices(e); err != nil {
		return err
	}
	if err := d.writeActions(e); err != nil {
		return err
	}
	if e.openMetric {
		_, err = e.w.WriteString("# EOF\n")
	}
	return err
}

// viewColumns are a view's latest rows in columns, feature-major
// (vals[ix*len(ents)+n] is feature ix of row n): one pass over the rows,
// which are scattered in memory, instead of one per family.
type viewColumns struct {
	ents []schema.Entity
	ends []int64
	vals []float64
}

// columnsOf copies the rows whose window ended at or after cutoff.
func columnsOf(rows []*schema.FeatureRow, width int, cutoff int64) viewColumns {
	c := viewColumns{ents: make([]schema.Entity, 0, len(rows)), ends: make([]int64, 0, len(rows))}
	for _, r := range rows {
		if r.WindowEnd >= cutoff && len(r.Values) == width {
			c.ents = append(c.ents, r.Entity)
			c.ends = append(c.ends, r.WindowEnd)
		}
	}
	c.vals = make([]float64, width*len(c.ents))
	n := 0
	for _, r := range rows {
		if r.WindowEnd >= cutoff && len(r.Values) == width {
			for ix, v := range r.Values {
				c.vals[ix*len(c.ents)+n] = v
			}
			n++
		}
	}
	return c
}

// writeFeatures writes one family per (metric, aggregation), each over
// the views that compute it and their windows. A NaN feature (no data in
// the window) is left out.
func (d *deviceMetrics) writeFeatures(ctx interface{ Err() error }, e *exposition, cutoff int64) error {
	cols := map[string]viewColumns{}
	for _, g := range d.features {
		for _, src := range g.views {
			if _, ok := cols[src.view]; !ok {
				rows, _ := d.store.LatestRows(src.view)
				cols[src.view] = columnsOf(rows, src.width, cutoff)
			}
		}
	}
	extra := make([]label, 2)
	for gi := range d.features {
		g := &d.features[gi]
		wrote := false
		for _, src := range g.views {
			c := cols[src.view]
			extra[0] = label{"view", src.view}
			for wi, ix := range src.index {
				extra[1] = label{"window", src.windows[wi]}
				vals := c.vals[ix*len(c.ents) : (ix+1)*len(c.ents)]
				for n, v := range vals {
					if n%1024 == 0 && ctx.Err() != nil {
						return errClientGone
					}
					if math.IsNaN(v) {
						continue
					}
					if !wrote {
						if err := e.header(g.family); err != nil {
							return err
						}
						wrote = true
					}
					if err := e.sample(&g.family, c.ents[n].Device, c.ents[n].Component, extra, v, c.ends[n]); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// writeDevices writes device_up and device_last_success_timestamp_seconds
// for every target this node collects from (a cluster node leaves out the
// targets another node owns).
func (d *deviceMetrics) writeDevices(e *exposition) error {
	states := d.devices()
	extra := make([]label, 1)
	for _, fam := range []*expoFamily{&deviceUpFamily, &deviceLastSuccessFamily} {
		wrote := false
		for _, st := range states {
			if st.State == "not_owned" {
				continue
			}
			v := 0.0
			switch {
			case fam == &deviceLastSuccessFamily && st.LastSuccess == 0:
				continue
			case fam == &deviceLastSuccessFamily:
				v = float64(st.LastSuccess) / 1e9
			case st.State == "up":
				v = 1
			}
			if !wrote {
				if err := e.header(*fam); err != nil {
					return err
				}
				wrote = true
			}
			extra[0] = label{"protocol", st.Protocol}
			if err := e.sample(fam, st.Device, "", extra, v, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeActions writes action_firing for every action that is not inactive.
func (d *deviceMetrics) writeActions(e *exposition) error {
	if d.actions == nil {
		return nil
	}
	acts := d.actions()
	if len(acts) == 0 {
		return nil
	}
	if err := e.header(actionFiringFamily); err != nil {
		return err
	}
	extra := make([]label, 1)
	for _, a := range acts {
		v := 0.0
		if a.firing {
			v = 1
		}
		extra[0] = label{"model", a.model}
		if err := e.sample(&actionFiringFamily, a.entity.Device, a.entity.Component, extra, v, 0); err != nil {
			return err
		}
	}
	return nil
}

// mountDeviceMetrics serves DeviceMetricsPath with the read scope, as
// /v1/query. A hub has no store of its own and does not serve it.
func (s *Service) mountDeviceMetrics() error {
	p := &s.pipe
	if p.store == nil {
		return nil
	}
	d, err := newDeviceMetrics(p.store, s.cfg.Views, s.reg)
	if err != nil {
		return err
	}
	if n := p.normalizer; n != nil {
		site := s.cfg.Site
		d.info = func(dev string) (string, string) {
			inv, _ := n.Inventory(dev)
			return cmp.Or(inv.Site, site), inv.Role
		}
	}
	d.devices = deviceStates{p: p}.DeviceStates
	if rt := p.runtime; rt != nil {
		d.actions = func() []actionState {
			if rt.Ready() != nil {
				return nil
			}
			all := rt.Actions()
			out := make([]actionState, len(all))
			for i, a := range all {
				out[i] = actionState{model: a.Model, entity: a.Entity, firing: a.State == schema.StateFiring}
			}
			return out
		}
	}
	ready := p.store.Ready
	s.http.Handle(DeviceMetricsPath, s.withScope(scopeRead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ready() != nil {
			http.Error(w, "store not started", http.StatusServiceUnavailable)
			return
		}
		d.ServeHTTP(w, r)
	})))
	return nil
}
