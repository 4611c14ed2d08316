//go:build duckdb_arrow

package query

import (
	"context"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestFindEntityFilter(t *testing.T) {
	tests := []struct {
		sql  string
		want entityFilter
		ok   bool
	}{
		{`SELECT * FROM latest_v WHERE device = 'r1'`, entityFilter{device: "r1"}, true},
		{`SELECT * FROM latest_v WHERE device='r1' AND component = 'Gi0/0' ORDER BY 1`, entityFilter{"r1", "Gi0/0"}, true},
		{`select x from latest_v where component = 'a''b' and DEVICE = 'r1' limit 3`, entityFilter{"r1", "a'b"}, true},
		{`SELECT * FROM latest_v WHERE x > 1 AND device = 'r1' -- comment`, entityFilter{device: "r1"}, true},
		{`SELECT * FROM latest_v WHERE component = 'Gi0/0'`, entityFilter{}, false},
		{`SELECT * FROM latest_v WHERE device = 'r1' OR device = 'r2'`, entityFilter{}, false},
		{`SELECT * FROM latest_v WHERE NOT device = 'r1'`, entityFilter{}, false},
		{`SELECT * FROM latest_v WHERE (device = 'r1')`, entityFilter{}, false},
		{`SELECT * FROM latest_v WHERE device = 'r1' || 'x'`, entityFilter{}, false},
		{`SELECT * FROM latest_v WHERE device = 'r1'::VARCHAR`, entityFilter{}, false},
		{`SELECT * FROM latest_v WHERE device == 'r1'`, entityFilter{}, false},
		{`SELECT * FROM latest_v WHERE device != 'r1'`, entityFilter{}, false},
		{`SELECT * FROM latest_v WHERE device <= 'r1'`, entityFilter{}, false},
		{`SELECT * FROM latest_v WHERE "device" = 'r1'`, entityFilter{}, false},
		{`SELECT * FROM latest_v WHERE device = "r1"`, entityFilter{}, false},
		{`SELECT * FROM latest_v WHERE device = E'r1'`, entityFilter{}, false},
		{`SELECT * FROM latest_v t WHERE t.device = 'r1'`, entityFilter{}, false},
		{`SELECT * FROM latest_v WHERE device = 'r1' AND device = 'r2'`, entityFilter{}, false},
		{`SELECT * FROM latest_v WHERE x BETWEEN 1 AND device = 'r1'`, entityFilter{}, false},
		{`SELECT * FROM latest_v WHERE CASE WHEN x THEN 1 END AND device = 'r1'`, entityFilter{}, false},
		{`SELECT * FROM latest_v a, latest_v b WHERE device = 'r1'`, entityFilter{}, false},
		{`SELECT * FROM latest_v JOIN v USING (device) WHERE device = 'r1'`, entityFilter{}, false},
		{`SELECT * FROM (SELECT * FROM latest_v) WHERE device = 'r1'`, entityFilter{}, false},
		{`WITH x AS (SELECT 1) SELECT * FROM latest_v WHERE device = 'r1'`, entityFilter{}, false},
		{`SELECT * FROM latest_v`, entityFilter{}, false},
	}
	for _, tc := range tests {
		got, ok := findEntityFilter(scanSQL(tc.sql))
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("%s: got %+v %v, want %+v %v", tc.sql, got, ok, tc.want, tc.ok)
		}
	}
}

// hideLookup passes a Source on without its EntityLookup.
type hideLookup struct{ Source }

// TestEntityLookupSameAnswers runs queries with and without the point
// lookup and requires identical results, including queries that the
// lookup must leave alone.
func TestEntityLookupSameAnswers(t *testing.T) {
	src := testSource(t, 10_000, 1024)
	with := newTestEngine(t, src, nil)
	without := newTestEngine(t, hideLookup{src}, nil)
	queries := []string{
		`SELECT * FROM latest_if_traffic WHERE device = 'r2' ORDER BY component`,
		`SELECT component, interface_in_bps__max_1m FROM latest_if_traffic WHERE device = 'r2' AND component = 'Gi0/1'`,
		`SELECT count(*) FROM if_traffic WHERE device = 'r3' AND interface_in_bps__mean_1m > 4`,
		`SELECT * FROM latest_if_traffic WHERE device = 'nope'`,
		`SELECT count(*) FROM latest_if_traffic WHERE device = 'r1' OR device = 'r2'`,
		`SELECT device, count(*) FROM latest_if_traffic WHERE component = 'Gi0/0' GROUP BY device ORDER BY device`,
		`SELECT count(*) FROM samples WHERE device = 'r1'`,
	}
	for _, q := range queries {
		a, _, errA := queryRows(context.Background(), with, Request{SQL: q})
		b, _, errB := queryRows(context.Background(), without, Request{SQL: q})
		if errA != nil || errB != nil {
			t.Fatalf("%s: %v / %v", q, errA, errB)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s:\n with lookup    %v\n without lookup %v", q, a, b)
		}
	}
	if n := testutil.ToFloat64(with.lookups); n < 3 {
		t.Errorf("%v lookups used, want at least 3 (the point queries on view tables)", n)
	}
	if n := testutil.ToFloat64(without.lookups); n != 0 {
		t.Errorf("engine without lookup counted %v lookups", n)
	}
}
