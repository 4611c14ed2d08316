package schema

import (
	"github.com/apache/arrow-go/v18/arrow"
)

// Arrow types shared by the table schemas.
var (
	// TimestampType is the Arrow type of every time column: nanoseconds, UTC.
	TimestampType = &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}
	// DictStringType is a dictionary-encoded string column, used for the
	// low-cardinality label columns of the hot tier.
	DictStringType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
)

// SamplesSchema is the schema of the `samples` table: one row per
// normalized sample.
var SamplesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "ts", Type: TimestampType},
	{Name: "device", Type: DictStringType},
	{Name: "component", Type: DictStringType},
	{Name: "metric", Type: DictStringType},
	{Name: "value", Type: arrow.PrimitiveTypes.Float64},
}, nil)

// FeatureViewSchema returns the schema of a feature view's table (and of its
// `latest_<view>` table): the entity and window columns, then one float64
// column per feature in FeatureNames order.
func FeatureViewSchema(v FeatureView) *arrow.Schema {
	fields := []arrow.Field{
		{Name: "window_start", Type: TimestampType},
		{Name: "window_end", Type: TimestampType},
		{Name: "device", Type: arrow.BinaryTypes.String},
		{Name: "component", Type: arrow.BinaryTypes.String},
	}
	for _, n := range v.FeatureNames() {
		fields = append(fields, arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	}
	return arrow.NewSchema(fields, nil)
}

// DecisionsSchema is the schema of the `decisions` table.
var DecisionsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "ts", Type: TimestampType},
	{Name: "id", Type: arrow.BinaryTypes.String},
	{Name: "device", Type: arrow.BinaryTypes.String},
	{Name: "component", Type: arrow.BinaryTypes.String},
	{Name: "view", Type: arrow.BinaryTypes.String},
	{Name: "model", Type: arrow.BinaryTypes.String},
	{Name: "model_version", Type: arrow.BinaryTypes.String},
	{Name: "shadow", Type: arrow.FixedWidthTypes.Boolean},
	{Name: "score", Type: arrow.PrimitiveTypes.Float64},
	{Name: "action", Type: arrow.BinaryTypes.String},
	{Name: "reason", Type: arrow.BinaryTypes.String},
	{Name: "fallback", Type: arrow.BinaryTypes.String},
	{Name: "window_start", Type: TimestampType},
	{Name: "window_end", Type: TimestampType},
	{Name: "ingest_to_decision_us", Type: arrow.PrimitiveTypes.Int64},
	{Name: "features", Type: arrow.BinaryTypes.String}, // JSON object
	{Name: "state", Type: arrow.BinaryTypes.String},
	{Name: "transition", Type: arrow.FixedWidthTypes.Boolean},
	{Name: "fingerprint", Type: arrow.BinaryTypes.String},
	{Name: "trigger", Type: arrow.BinaryTypes.String},
	{Name: "missing_features", Type: arrow.BinaryTypes.String}, // comma-separated
	{Name: "trigger_to_decision_us", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// ActionsSchema is the schema of the `actions` table: the current state of
// every (model or rule, entity) action that is pending, firing, or resolved
// and not yet forgotten.
var ActionsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "model", Type: arrow.BinaryTypes.String},
	{Name: "model_version", Type: arrow.BinaryTypes.String},
	{Name: "fingerprint", Type: arrow.BinaryTypes.String},
	{Name: "device", Type: arrow.BinaryTypes.String},
	{Name: "component", Type: arrow.BinaryTypes.String},
	{Name: "view", Type: arrow.BinaryTypes.String},
	{Name: "trigger", Type: arrow.BinaryTypes.String},
	{Name: "state", Type: arrow.BinaryTypes.String},
	{Name: "since", Type: TimestampType},
	{Name: "action", Type: arrow.BinaryTypes.String},
	{Name: "score", Type: arrow.PrimitiveTypes.Float64},
	{Name: "reason", Type: arrow.BinaryTypes.String},
	{Name: "last_decision", Type: TimestampType},
	{Name: "last_published", Type: TimestampType, Nullable: true},
	{Name: "flapping", Type: arrow.FixedWidthTypes.Boolean},
	{Name: "suppressed", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// DriftSchema is the schema of the `drift` table: one row per evaluation of
// a feature's population stability index (PSI) against the training
// profile of the model version that scores it, over the last `windows`
// scored windows.
var DriftSchema = arrow.NewSchema([]arrow.Field{
	{Name: "ts", Type: TimestampType},
	{Name: "model", Type: arrow.BinaryTypes.String},
	{Name: "model_version", Type: arrow.BinaryTypes.String},
	{Name: "view", Type: arrow.BinaryTypes.String},
	{Name: "feature", Type: arrow.BinaryTypes.String},
	{Name: "psi", Type: arrow.PrimitiveTypes.Float64},
	{Name: "windows", Type: arrow.PrimitiveTypes.Int64},
	{Name: "window_start", Type: TimestampType},
	{Name: "window_end", Type: TimestampType},
	{Name: "drifting", Type: arrow.FixedWidthTypes.Boolean},
}, nil)

// SeriesSchema is the schema of the `series` table: one row per
// (device, component, metric) the store has seen.
var SeriesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "device", Type: arrow.BinaryTypes.String},
	{Name: "component", Type: arrow.BinaryTypes.String},
	{Name: "metric", Type: arrow.BinaryTypes.String},
	{Name: "first_ts", Type: TimestampType},
	{Name: "last_ts", Type: TimestampType},
	{Name: "last_value", Type: arrow.PrimitiveTypes.Float64},
	{Name: "samples", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// DevicesSchema is the schema of the `devices` table: collector health per
// target.
var DevicesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "device", Type: arrow.BinaryTypes.String},
	{Name: "address", Type: arrow.BinaryTypes.String},
	{Name: "protocol", Type: arrow.BinaryTypes.String},
	{Name: "profile", Type: arrow.BinaryTypes.String},
	{Name: "state", Type: arrow.BinaryTypes.String}, // up, down, auth_failure, connecting, ...
	{Name: "last_success", Type: TimestampType, Nullable: true},
	{Name: "last_error", Type: arrow.BinaryTypes.String},
	{Name: "last_error_ts", Type: TimestampType, Nullable: true},
	{Name: "last_duration_ms", Type: arrow.PrimitiveTypes.Float64},
	{Name: "observations", Type: arrow.PrimitiveTypes.Int64},
	{Name: "errors", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// UnmappedSchema is the schema of the `unmapped` table: what the
// normalizer received but could not turn into a sample, per device, path
// (OID with index, or gNMI origin:path without list keys) and reason.
var UnmappedSchema = arrow.NewSchema([]arrow.Field{
	{Name: "device", Type: arrow.BinaryTypes.String},
	{Name: "path", Type: arrow.BinaryTypes.String},
	{Name: "reason", Type: arrow.BinaryTypes.String},
	{Name: "count", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// MetricsSchema is the schema of the `metrics` table: the catalog.
var MetricsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "name", Type: arrow.BinaryTypes.String},
	{Name: "kind", Type: arrow.BinaryTypes.String},
	{Name: "unit", Type: arrow.BinaryTypes.String},
	{Name: "entity", Type: arrow.BinaryTypes.String},
	{Name: "description", Type: arrow.BinaryTypes.String},
	{Name: "openconfig", Type: arrow.BinaryTypes.String},
	{Name: "snmp", Type: arrow.BinaryTypes.String},
	{Name: "derived_from", Type: arrow.BinaryTypes.String},
}, nil)

// DeviceState is one collector target's health, the row type of the
// `devices` table. Collectors keep it current; the store persists it.
type DeviceState struct {
	Device         string  `json:"device"`
	Address        string  `json:"address"`
	Protocol       string  `json:"protocol"`
	Profile        string  `json:"profile,omitempty"`
	State          string  `json:"state"`
	LastSuccess    int64   `json:"last_success,omitempty"` // Unix ns, 0 if never
	LastError      string  `json:"last_error,omitempty"`
	LastErrorTS    int64   `json:"last_error_ts,omitempty"` // Unix ns, 0 if never
	LastDurationMS float64 `json:"last_duration_ms"`
	Observations   int64   `json:"observations"`
	Errors         int64   `json:"errors"`
}

// DeviceStateSource is implemented by collectors: it reports the current
// health of every target, for the `devices` table and /readyz. It is safe
// for concurrent use and returns a fresh slice.
type DeviceStateSource interface {
	DeviceStates() []DeviceState
}
