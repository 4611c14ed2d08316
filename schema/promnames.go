package schema

import "strings"

// The Prometheus (OpenMetrics) names of the catalog's metrics, as the
// service's /metrics/devices writes them (docs/metrics.md).

// prometheusUnits maps the catalog's units to OpenMetrics unit suffixes
// (base units, lower case, "_per_" for rates). An enumeration has no unit.
var prometheusUnits = map[string]string{
	"bytes":     "bytes",
	"packets":   "packets",
	"bits/s":    "bits_per_second",
	"packets/s": "packets_per_second",
	"ratio":     "ratio",
	"celsius":   "celsius",
	"dBm":       "dbm",
	"dB":        "db",
	"seconds":   "seconds",
	"enum":      "",
}

// PrometheusUnit returns the OpenMetrics unit of a catalog unit ("bits/s"
// is "bits_per_second", "enum" none); one the catalog does not use is
// sanitised ("X/s" becomes "x_per_second").
func PrometheusUnit(u string) string {
	if p, ok := prometheusUnits[u]; ok {
		return p
	}
	u = strings.ToLower(strings.ReplaceAll(u, "/s", "_per_second"))
	return strings.Trim(SanitizeMetricName(u), "_")
}

// SanitizeMetricName maps s onto [a-zA-Z_:][a-zA-Z0-9_:]*: every other
// byte becomes '_', and a leading digit gets a '_' before it.
func SanitizeMetricName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || c >= '0' && c <= '9' && i > 0) {
			if c >= '0' && c <= '9' {
				return SanitizeMetricName("_" + s)
			}
			b[i] = '_'
		}
	}
	return string(b)
}

// WithUnitSuffix appends "_"+unit to name unless name already ends with it.
func WithUnitSuffix(name, unit string) string {
	if unit == "" || strings.HasSuffix(name, "_"+unit) {
		return name
	}
	return name + "_" + unit
}

// PrometheusName returns the metric family name of m: its canonical name
// sanitised, with its OpenMetrics unit as suffix (interface.in.bps is
// interface_in_bps_bits_per_second). A counter's samples add _total.
func (m Metric) PrometheusName() string {
	return WithUnitSuffix(SanitizeMetricName(m.Name), PrometheusUnit(m.Unit))
}

// PrometheusSampleName is the name of m's samples: PrometheusName, with
// _total for a counter.
func (m Metric) PrometheusSampleName() string {
	if m.Kind == KindCounterMetric {
		return m.PrometheusName() + "_total"
	}
	return m.PrometheusName()
}
