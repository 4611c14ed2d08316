package main

import (
	"math"
	"strconv"
	"strings"

	"github.com/netfeat/netfeat/schema"
)

// unitStyle is how a catalog unit prints in a table.
type unitStyle struct {
	symbol string  // printed after the number
	scale  float64 // the value is multiplied by it first (ratio → %)
	si     bool    // k, M, G... prefixes for large values
	small  bool    // m, µ, n prefixes for values below 1 (seconds)
	plain  bool    // the number as it is, no symbol (enum)
}

// unitStyles maps the catalog's units (schema.Catalog) to how they print.
var unitStyles = map[string]unitStyle{
	"bits/s":    {symbol: "b/s", scale: 1, si: true},
	"bytes":     {symbol: "B", scale: 1, si: true},
	"bytes/s":   {symbol: "B/s", scale: 1, si: true},
	"packets":   {symbol: "pkt", scale: 1, si: true},
	"packets/s": {symbol: "pkt/s", scale: 1, si: true},
	"ratio":     {symbol: "%", scale: 100},
	"celsius":   {symbol: "°C", scale: 1},
	"dBm":       {symbol: "dBm", scale: 1},
	"dB":        {symbol: "dB", scale: 1},
	"seconds":   {symbol: "s", scale: 1, si: true, small: true},
	"enum":      {plain: true},
}

var (
	largePrefixes = []string{"", "k", "M", "G", "T", "P", "E"}
	smallPrefixes = []string{"", "m", "µ", "n"}
)

// formatQuantity prints v in unit for a human: three significant digits,
// an SI prefix and the unit's symbol ("1.2 Gb/s", "73 %", "480 MB"). An
// empty unit prints the number alone (integers in full); JSON output never
// goes through here and keeps the raw value.
func formatQuantity(v float64, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	st, known := unitStyles[unit]
	switch {
	case unit == "" || st.plain:
		return formatPlain(v)
	case !known:
		return formatPlain(v) + " " + unit
	}
	v *= st.scale
	prefix := ""
	a := math.Abs(v)
	switch {
	case st.si && a >= 999.5:
		i := 0
		for a >= 999.5 && i < len(largePrefixes)-1 {
			v, a = v/1000, a/1000
			i++
		}
		prefix = largePrefixes[i]
	case st.small && a > 0 && a < 1:
		i := 0
		for a < 0.9995 && i < len(smallPrefixes)-1 {
			v, a = v*1000, a*1000
			i++
		}
		prefix = smallPrefixes[i]
	}
	return significant(v) + " " + prefix + st.symbol
}

// formatMetricValue prints a value of a catalog metric: a counter in full
// with its unit's symbol (a counter's last digits are what changes between
// two samples), anything else as formatQuantity does.
func formatMetricValue(v float64, metric string) string {
	md, ok := schema.LookupMetric(metric)
	if !ok {
		return formatPlain(v)
	}
	if st, known := unitStyles[md.Unit]; md.Kind == schema.KindCounterMetric && known && !st.plain {
		return formatPlain(v) + " " + st.symbol
	}
	return formatQuantity(v, md.Unit)
}

// significant prints v with three significant digits, without an exponent
// for values from 0.001 up and without trailing zeros.
func significant(v float64) string {
	a := math.Abs(v)
	var s string
	switch {
	case a == 0:
		return "0"
	case a >= 100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	default:
		s = strconv.FormatFloat(v, 'g', 3, 64)
	}
	if strings.Contains(s, ".") && !strings.ContainsAny(s, "eE") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// formatPlain prints a number without a unit and, from 0.0001 to 10^15,
// without an exponent: integers in full, others with at least six
// significant digits.
func formatPlain(v float64) string {
	a := math.Abs(v)
	switch {
	case v == math.Trunc(v) && a < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a < 1e-4 || a >= 1e15:
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	decimals := max(0, 6-int(math.Floor(math.Log10(a)))-1)
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// metricsByColumn maps a metric's column spelling (dots as underscores,
// as feature names use it) to the metric.
var metricsByColumn = func() map[string]schema.Metric {
	m := make(map[string]schema.Metric, len(schema.Catalog))
	for _, md := range schema.Catalog {
		m[strings.ReplaceAll(md.Name, ".", "_")] = md
	}
	return m
}()

// featureUnit is the unit of a feature column <metric>__<agg>_<window>
// (schema.FeatureName), and whether the name is one: a count has no unit,
// a rate of a counter is its unit per second, the other aggregations keep
// the metric's unit.
func featureUnit(column string) (string, bool) {
	metric, rest, ok := strings.Cut(column, "__")
	if !ok {
		return "", false
	}
	md, ok := metricsByColumn[metric]
	if !ok {
		return "", false
	}
	agg, _, _ := strings.Cut(rest, "_")
	switch schema.Aggregation(agg) {
	case schema.AggCount:
		return "", true
	case schema.AggRate:
		if md.Unit == "bytes" || md.Unit == "packets" {
			return md.Unit + "/s", true
		}
		return "", true
	}
	return md.Unit, true
}

// headerLines splits long feature column names at "__" over two header
// lines (metric, then aggregation and window), so that a table of
// features is not as wide as their full names. ok is false when no column
// has the form.
func headerLines(names []string) (first, second []string, ok bool) {
	first, second = make([]string, len(names)), make([]string, len(names))
	for i, n := range names {
		a, b, cut := strings.Cut(n, "__")
		if cut && a != "" && b != "" {
			first[i], second[i], ok = a, b, true
			continue
		}
		first[i] = n
	}
	return first, second, ok
}
