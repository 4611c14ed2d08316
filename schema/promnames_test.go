package schema

import (
	"regexp"
	"testing"
)

// TestPrometheusNames: every catalog unit has an OpenMetrics unit, every
// metric a distinct valid name ending with it; sanitising and unknown
// units behave as documented.
func TestPrometheusNames(t *testing.T) {
	valid := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	seen := map[string]string{}
	for _, m := range Catalog {
		if _, ok := prometheusUnits[m.Unit]; !ok {
			t.Errorf("%s: unit %q has no OpenMetrics unit", m.Name, m.Unit)
		}
		n := m.PrometheusName()
		if !valid.MatchString(n) {
			t.Errorf("%s: %q is not a valid name", m.Name, n)
		}
		if prev, ok := seen[n]; ok {
			t.Errorf("%s and %s are both %s", prev, m.Name, n)
		}
		seen[n] = m.Name
	}
	for _, tc := range []struct{ metric, name, sample string }{
		{"interface.in.octets", "interface_in_octets_bytes", "interface_in_octets_bytes_total"},
		{"interface.in.bps", "interface_in_bps_bits_per_second", "interface_in_bps_bits_per_second"},
		{"interface.oper_status", "interface_oper_status", "interface_oper_status"},
		{"system.uptime", "system_uptime_seconds", "system_uptime_seconds"},
		{"radio.snr", "radio_snr_db", "radio_snr_db"},
	} {
		m, _ := LookupMetric(tc.metric)
		if m.PrometheusName() != tc.name || m.PrometheusSampleName() != tc.sample {
			t.Errorf("%s: %s / %s, want %s / %s", tc.metric, m.PrometheusName(), m.PrometheusSampleName(), tc.name, tc.sample)
		}
	}
	for in, want := range map[string]string{"a.b-c": "a_b_c", "9lives": "_9lives", "ok_name:x": "ok_name:x", "é": "__"} {
		if got := SanitizeMetricName(in); got != want {
			t.Errorf("SanitizeMetricName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"bits/s": "bits_per_second", "volts": "volts", "Amps/s": "amps_per_second", "enum": ""} {
		if got := PrometheusUnit(in); got != want {
			t.Errorf("PrometheusUnit(%q) = %q, want %q", in, got, want)
		}
	}
}
