package bench

import (
	"reflect"
	"strings"
	"testing"
)

const exposition = `# HELP netfeat_store_samples_appended_total Samples accepted.
# TYPE netfeat_store_samples_appended_total counter
netfeat_store_samples_appended_total 1500
# HELP netfeat_store_hot_bytes Bytes.
# TYPE netfeat_store_hot_bytes gauge
netfeat_store_hot_bytes 30000
# HELP netfeat_normalize_unmapped_total Unmapped.
# TYPE netfeat_normalize_unmapped_total counter
netfeat_normalize_unmapped_total{device="a",path="1.3.6",reason="no_mapping"} 2
netfeat_normalize_unmapped_total{device="b",path="1.3.7",reason="no_mapping"} 3
netfeat_normalize_unmapped_total{device="b",path="1.3.8",reason="exception"} 0
# HELP netfeat_snmp_polls_total Polls.
# TYPE netfeat_snmp_polls_total counter
netfeat_snmp_polls_total{device="a",result="ok"} 100
netfeat_snmp_polls_total{device="a",result="timeout"} 4
netfeat_snmp_polls_total{device="b",result="timeout"} 1
# HELP netfeat_query_queries_total Queries.
# TYPE netfeat_query_queries_total counter
netfeat_query_queries_total{outcome="ok"} 9
netfeat_query_queries_total{outcome="busy"} 2
# HELP netfeat_store_late_samples_total Late.
# TYPE netfeat_store_late_samples_total counter
netfeat_store_late_samples_total{outcome="applied",view="v"} 7
# HELP netfeat_inference_rows_dropped_total Dropped.
# TYPE netfeat_inference_rows_dropped_total counter
netfeat_inference_rows_dropped_total{view="v"} 0
# HELP netfeat_store_wal_commits_total Commits.
# TYPE netfeat_store_wal_commits_total counter
netfeat_store_wal_commits_total 12
# HELP netfeat_gnmi_errors_gauge A gauge is never a drop counter.
# TYPE netfeat_gnmi_errors_gauge gauge
netfeat_gnmi_errors_gauge 5
`

func TestMetricsSum(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		match []string
		want  float64
	}{
		{"netfeat_store_samples_appended_total", nil, 1500},
		{"netfeat_store_hot_bytes", nil, 30000},
		{"netfeat_snmp_polls_total", nil, 105},
		{"netfeat_snmp_polls_total", []string{"result", "timeout"}, 5},
		{"netfeat_snmp_polls_total", []string{"result", "timeout", "device", "b"}, 1},
		{"netfeat_absent_total", nil, 0},
	} {
		if got := m.Sum(tc.name, tc.match...); got != tc.want {
			t.Errorf("Sum(%s, %v) = %v, want %v", tc.name, tc.match, got, tc.want)
		}
	}
}

// TestDrops checks that every non-zero drop-like counter is reported,
// summed over the labels that only say where, and nothing else is.
func TestDrops(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	want := []Drop{
		{Metric: "netfeat_normalize_unmapped_total", Labels: "reason=no_mapping", Value: 5, Series: 2, Where: []string{"path=1.3.6", "path=1.3.7"}},
		{Metric: "netfeat_query_queries_total", Labels: "outcome=busy", Value: 2, Series: 1},
		{Metric: "netfeat_snmp_polls_total", Labels: "result=timeout", Value: 5, Series: 2},
		{Metric: "netfeat_store_late_samples_total", Labels: "outcome=applied", Value: 7, Series: 1, Where: []string{"view=v"}},
	}
	got := m.Drops()
	if len(got) != len(want) {
		t.Fatalf("Drops() = %+v\nwant %+v", got, want)
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("drop %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseMetricsRejectsGarbage(t *testing.T) {
	if _, err := ParseMetrics(strings.NewReader("this is { not prometheus\n")); err == nil {
		t.Fatal("want a parse error")
	}
}
