package main

import (
	"math"
	"strings"
	"testing"
)

func TestFormatQuantity(t *testing.T) {
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{1.2e9, "bits/s", "1.2 Gb/s"},
		{5.680098420082678e+15, "bits/s", "5.68 Pb/s"},
		{999.6, "bits/s", "1 kb/s"},
		{8000, "bits/s", "8 kb/s"},
		{0, "bits/s", "0 b/s"},
		{-2500, "bits/s", "-2.5 kb/s"},
		{0.73, "ratio", "73 %"},
		{0.000008, "ratio", "0.0008 %"},
		{480002151, "bytes", "480 MB"},
		{12.34, "packets/s", "12.3 pkt/s"},
		{0.5, "packets/s", "0.5 pkt/s"},
		{0.0123, "seconds", "12.3 ms"},
		{90, "seconds", "90 s"},
		{41.5, "celsius", "41.5 °C"},
		{-3.25, "dBm", "-3.25 dBm"},
		{2, "enum", "2"},
		{123456789, "", "123456789"},
		{0.1, "", "0.1"},
		{3832500000.123, "", "3832500000"},
		{12.3456789, "", "12.3457"},
		{0.123456789, "", "0.123457"},
		{0.00001234, "", "1.234e-05"},
		{1e21, "", "1e+21"},
		{3, "furlongs", "3 furlongs"},
		{math.NaN(), "bits/s", "NaN"},
	}
	for _, tc := range tests {
		if got := formatQuantity(tc.v, tc.unit); got != tc.want {
			t.Errorf("formatQuantity(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}

func TestFormatMetricValue(t *testing.T) {
	tests := []struct {
		v      float64
		metric string
		want   string
	}{
		{480002151, "interface.in.octets", "480002151 B"}, // a counter in full
		{1.2e9, "interface.in.bps", "1.2 Gb/s"},
		{0.42, "system.cpu.utilization", "42 %"},
		{7, "no.such.metric", "7"},
	}
	for _, tc := range tests {
		if got := formatMetricValue(tc.v, tc.metric); got != tc.want {
			t.Errorf("formatMetricValue(%v, %q) = %q, want %q", tc.v, tc.metric, got, tc.want)
		}
	}
}

func TestFeatureUnit(t *testing.T) {
	tests := []struct {
		column, unit string
		feature      bool
	}{
		{"interface_in_bps__mean_1m", "bits/s", true},
		{"interface_in_bps__count_1m", "", true},
		{"interface_in_octets__rate_5m", "bytes/s", true},
		{"interface_in_utilization__p95_1h30m", "ratio", true},
		{"value", "", false},
		{"nosuch_metric__mean_1m", "", false},
	}
	for _, tc := range tests {
		unit, feature := featureUnit(tc.column)
		if unit != tc.unit || feature != tc.feature {
			t.Errorf("featureUnit(%q) = %q, %v; want %q, %v", tc.column, unit, feature, tc.unit, tc.feature)
		}
	}
}

func TestHeaderLines(t *testing.T) {
	tests := []struct {
		names         []string
		first, second string
		split         bool
	}{
		{[]string{"device", "interface_out_octets__rate_1m"}, "device,interface_out_octets", ",rate_1m", true},
		{[]string{"device", "m"}, "device,m", ",", false},
		{[]string{"__x", "a__"}, "__x,a__", ",", false},
	}
	for _, tc := range tests {
		first, second, split := headerLines(tc.names)
		if strings.Join(first, ",") != tc.first || strings.Join(second, ",") != tc.second || split != tc.split {
			t.Errorf("headerLines(%q) = %q %q %v, want %q %q %v", tc.names, first, second, split, tc.first, tc.second, tc.split)
		}
	}
}
