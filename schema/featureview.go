package schema

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// EntityKind says what a feature view aggregates over.
type EntityKind string

// Entity kinds of a feature view.
const (
	// EntityDevice aggregates all components of a device together.
	EntityDevice EntityKind = "device"
	// EntityComponent keeps one row per device and component.
	EntityComponent EntityKind = "component"
)

// Aggregation names one windowed aggregate.
type Aggregation string

// Aggregations a feature view may ask for. Quantiles are computed from a
// mergeable sketch, so hopping windows merge panes instead of rescanning.
const (
	AggCount  Aggregation = "count"
	AggSum    Aggregation = "sum"
	AggMean   Aggregation = "mean"
	AggMin    Aggregation = "min"
	AggMax    Aggregation = "max"
	AggLast   Aggregation = "last"
	AggRate   Aggregation = "rate"   // (last − first) / (t_last − t_first), per second
	AggStddev Aggregation = "stddev" // population standard deviation
	AggP50    Aggregation = "p50"
	AggP90    Aggregation = "p90"
	AggP95    Aggregation = "p95"
	AggP99    Aggregation = "p99"
	AggEWMA   Aggregation = "ewma" // exponentially weighted moving average across windows
)

// Aggregations lists every supported aggregation, in documentation order.
var Aggregations = []Aggregation{
	AggCount, AggSum, AggMean, AggMin, AggMax, AggLast, AggRate, AggStddev,
	AggP50, AggP90, AggP95, AggP99, AggEWMA,
}

// Quantile returns the quantile (0–1) of a pNN aggregation, and false for
// other aggregations.
func (a Aggregation) Quantile() (float64, bool) {
	switch a {
	case AggP50:
		return 0.50, true
	case AggP90:
		return 0.90, true
	case AggP95:
		return 0.95, true
	case AggP99:
		return 0.99, true
	}
	return 0, false
}

func (a Aggregation) valid() bool {
	for _, b := range Aggregations {
		if a == b {
			return true
		}
	}
	return false
}

// FeatureView declares a set of windowed features, in the spirit of a Feast
// feature view: which entity, which source metrics, which aggregations over
// which window lengths, and how often (the hop) a window closes.
type FeatureView struct {
	// Name identifies the view; it is also its SQL table name, so it must be
	// a lower-case identifier.
	Name string `yaml:"name" json:"name"`
	// Entity is "device" or "component".
	Entity EntityKind `yaml:"entity" json:"entity"`
	// Metrics are canonical metric names (catalog entries).
	Metrics []string `yaml:"metrics" json:"metrics"`
	// Aggregations are applied to every metric.
	Aggregations []Aggregation `yaml:"aggregations" json:"aggregations"`
	// Windows are the window lengths; each must be a multiple of Hop.
	Windows []time.Duration `yaml:"windows" json:"windows"`
	// Hop is how often windows close. Hop equal to the only window length
	// makes tumbling windows; shorter makes hopping windows built from panes
	// of length Hop.
	Hop time.Duration `yaml:"hop" json:"hop"`
	// AllowedLateness is how far behind the watermark (max event time seen)
	// a sample may arrive and still be applied.
	AllowedLateness time.Duration `yaml:"allowed_lateness" json:"allowed_lateness"`
	// IdleTimeout closes an entity's open windows when no sample arrived for
	// it for this long of wall-clock time; 0 means 2 × the longest window.
	IdleTimeout time.Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// EWMAAlpha is the smoothing factor of the ewma aggregation, 0 < α ≤ 1;
	// 0 means 0.3.
	EWMAAlpha float64 `yaml:"ewma_alpha" json:"ewma_alpha,omitempty"`
}

var identRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// ReservedTables are the SQL tables that are not feature views; no view may
// take their names (nor a latest_ prefix, which names the online views).
var ReservedTables = []string{"samples", "series", "decisions", "devices", "metrics", "unmapped"}

// Validate checks the view and returns every problem found, joined.
func (v *FeatureView) Validate() error {
	var errs []error
	if !identRE.MatchString(v.Name) {
		errs = append(errs, fmt.Errorf("name %q: must match %s", v.Name, identRE))
	} else if slices.Contains(ReservedTables, v.Name) || strings.HasPrefix(v.Name, "latest_") {
		errs = append(errs, fmt.Errorf("name %q: a view is an SQL table of that name, and %s and latest_* are taken", v.Name, strings.Join(ReservedTables, ", ")))
	}
	if v.Entity != EntityDevice && v.Entity != EntityComponent {
		errs = append(errs, fmt.Errorf("entity %q: must be %q or %q", v.Entity, EntityDevice, EntityComponent))
	}
	if len(v.Metrics) == 0 {
		errs = append(errs, errors.New("metrics: at least one metric is required"))
	}
	for _, m := range v.Metrics {
		if _, ok := LookupMetric(m); !ok {
			errs = append(errs, fmt.Errorf("metrics: %q is not in the metric catalog", m))
		}
	}
	if len(v.Aggregations) == 0 {
		errs = append(errs, errors.New("aggregations: at least one aggregation is required"))
	}
	for _, a := range v.Aggregations {
		if !a.valid() {
			errs = append(errs, fmt.Errorf("aggregations: unknown aggregation %q", a))
		}
	}
	if v.Hop <= 0 {
		errs = append(errs, fmt.Errorf("hop %v: must be positive", v.Hop))
	}
	if len(v.Windows) == 0 {
		errs = append(errs, errors.New("windows: at least one window length is required"))
	}
	for _, w := range v.Windows {
		if w <= 0 || (v.Hop > 0 && w%v.Hop != 0) {
			errs = append(errs, fmt.Errorf("windows: %v must be a positive multiple of hop %v", w, v.Hop))
		}
	}
	if v.AllowedLateness < 0 {
		errs = append(errs, fmt.Errorf("allowed_lateness %v: must not be negative", v.AllowedLateness))
	}
	if v.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("idle_timeout %v: must not be negative (0 means 2 × the longest window)", v.IdleTimeout))
	}
	if v.EWMAAlpha < 0 || v.EWMAAlpha > 1 {
		errs = append(errs, fmt.Errorf("ewma_alpha %v: must be in (0, 1]", v.EWMAAlpha))
	}
	return errors.Join(errs...)
}

// MaxWindow returns the longest window length of the view.
func (v FeatureView) MaxWindow() time.Duration {
	var m time.Duration
	for _, w := range v.Windows {
		m = max(m, w)
	}
	return m
}

// FeatureNames returns the view's feature column names in the order of
// FeatureRow.Values: for each metric, each window, each aggregation,
// "<metric with dots as underscores>__<agg>_<window>", for example
// "interface_in_bps__mean_1m".
func (v FeatureView) FeatureNames() []string {
	names := make([]string, 0, len(v.Metrics)*len(v.Windows)*len(v.Aggregations))
	for _, m := range v.Metrics {
		for _, w := range v.Windows {
			for _, a := range v.Aggregations {
				names = append(names, FeatureName(m, a, w))
			}
		}
	}
	return names
}

// FeatureName builds one feature column name; see FeatureView.FeatureNames.
func FeatureName(metric string, agg Aggregation, window time.Duration) string {
	return strings.ReplaceAll(metric, ".", "_") + "__" + string(agg) + "_" + DurationLabel(window)
}

// DurationLabel renders a window length compactly for column names:
// 10s, 1m, 90s, 1h, 1h30m, 500ms.
func DurationLabel(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	if s == "" {
		return "0s"
	}
	if strings.HasSuffix(s, "m") || strings.HasSuffix(s, "h") || strings.HasSuffix(s, "s") {
		return s
	}
	return d.String()
}

// FeatureRow is the feature vector of one entity for one closed window of a
// view. Values line up with Names, which is the view's FeatureNames slice,
// shared and read-only.
type FeatureRow struct {
	// View is the feature view's name.
	View string `json:"view"`
	// Entity is the device (and component, for component views).
	Entity
	// WindowStart and WindowEnd bound the longest window of the view, in
	// Unix nanoseconds, [start, end).
	WindowStart int64 `json:"window_start"`
	WindowEnd   int64 `json:"window_end"`
	// Names are the feature names, shared with the view; do not modify.
	Names []string `json:"-"`
	// Values are the features; NaN where a window had no data.
	Values []float64 `json:"-"`
	// LastIngestTS is the ingest time of the last sample that went into the
	// window, in Unix nanoseconds: decision latency is measured from it.
	LastIngestTS int64 `json:"last_ingest_ts"`
	// ClosedAt is when the window engine closed the window (Unix ns).
	ClosedAt int64 `json:"closed_at"`
	// CloseReason says what closed the window: CloseComplete,
	// CloseWatermark or CloseIdle.
	CloseReason string `json:"close_reason,omitempty"`
	// TriggerIngestTS is the ingest time (Unix ns) of the sample whose
	// arrival closed the window: the sample that completed it, or the one
	// that moved the watermark past its end; 0 for an idle close.
	// Trigger-to-decision latency is measured from it.
	TriggerIngestTS int64 `json:"trigger_ingest_ts,omitempty"`
}

// Close reasons of FeatureRow.CloseReason.
const (
	// CloseComplete: every series of the entity that reported into the
	// window's last pane delivered a sample at or after the window's end.
	CloseComplete = "complete"
	// CloseWatermark: the view's watermark (newest event time less
	// allowed_lateness) passed the window's end while a series was silent.
	CloseWatermark = "watermark"
	// CloseIdle: the entity sent nothing for the view's idle timeout.
	CloseIdle = "idle"
)

// Feature returns the value of a named feature and whether it exists.
func (r *FeatureRow) Feature(name string) (float64, bool) {
	for i, n := range r.Names {
		if n == name {
			return r.Values[i], true
		}
	}
	return 0, false
}

// FeatureRowHandler receives closed windows. It is called from the window
// engine's goroutine and must not block: hand the row to a bounded queue
// and count what does not fit. The row is owned by the handler after the
// call.
type FeatureRowHandler func(row *FeatureRow)
