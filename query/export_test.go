//go:build duckdb_arrow

package query_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/netfeat/netfeat/internal/apiclient"
	"github.com/netfeat/netfeat/query"
	"github.com/netfeat/netfeat/query/frontend"
	"github.com/netfeat/netfeat/query/internal/fixture"
)

// TestTrainingSetPointInTime checks the ASOF JOIN export: each label gets
// the newest window closed at its time, never a later one; windows older
// than the TTL give NULL. The server's row limit is small so that the
// fetch has to split its time range.
func TestTrainingSetPointInTime(t *testing.T) {
	// 12 entities share each window_end: 15 rows per response forces splits.
	e := query.NewTestEngine(t, query.NewTestSource(t, 100, 100), func(o *query.Options) { o.MaxRows = 15 })
	srv := httptest.NewServer(frontend.NewHandler("tok", e, nil))
	defer srv.Close()

	at := func(d time.Duration) string { return fixture.T0.Add(d).Format(time.RFC3339Nano) }
	labelsCSV := "ts,device,component,congested\n" +
		at(5*time.Minute+30*time.Second) + ",r1,Gi0/0,1\n" + // windows m=0..4 closed: m=4
		at(time.Minute) + ",r2,Gi0/1,0\n" + // window m=0 closed exactly at its time
		at(30*time.Second) + ",r3,Gi0/2,0\n" + // nothing closed yet
		at(11*time.Minute) + ",r4,Gi0/0,1\n" + // m=9, 1m old
		at(13*time.Minute) + ",r4,Gi0/1,\n" // m=9 is 3m old: past the TTL
	labels, err := query.ReadLabelsCSV(strings.NewReader(labelsCSV))
	if err != nil {
		t.Fatal(err)
	}
	defer labels.Release()

	var stages []string
	ts := &query.TrainingSet{
		Client: &query.Client{Client: apiclient.Client{BaseURL: srv.URL, Token: "tok"}},
		Labels: labels,
		Views:  []string{"if_traffic"},
		TTL:    2 * time.Minute,
		Progress: func(stage string, done, total int64) {
			if done > total {
				t.Errorf("progress %s %d/%d", stage, done, total)
			}
			if len(stages) == 0 || stages[len(stages)-1] != stage {
				stages = append(stages, stage)
			}
		},
	}
	want := []string{
		"2025-03-01T12:00:30Z r3 Gi0/2 0 |   ",
		"2025-03-01T12:01:00Z r2 Gi0/1 0 | 2025-03-01T12:01:00Z 0 ",
		"2025-03-01T12:05:30Z r1 Gi0/0 1 | 2025-03-01T12:05:00Z 4 40",
		"2025-03-01T12:11:00Z r4 Gi0/0 1 | 2025-03-01T12:10:00Z 9 90",
		"2025-03-01T12:13:00Z r4 Gi0/1  |   ",
	}

	var pq bytes.Buffer
	n, err := ts.Write(context.Background(), &pq, query.OutputParquet)
	if err != nil || n != 5 {
		t.Fatalf("parquet: %d rows, %v", n, err)
	}
	if strings.Join(stages, ",") != "fetch if_traffic,write" {
		t.Fatalf("progress stages %v", stages)
	}
	tbl, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(pq.Bytes()), nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	var names []string
	for _, f := range tbl.Schema().Fields() {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "ts,device,component,congested,if_traffic__window_end,if_traffic__interface_in_bps__mean_1m,if_traffic__interface_in_bps__max_1m" {
		t.Fatalf("columns %s", got)
	}
	tr := array.NewTableReader(tbl, -1)
	defer tr.Release()
	var got []string
	for tr.Next() {
		got = append(got, rowsText(tr.RecordBatch())...)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("parquet rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	var csvOut bytes.Buffer
	if _, err := ts.Write(context.Background(), &csvOut, query.OutputCSV); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(csvOut.String()), "\n")
	if len(lines) != 6 || lines[3] != "2025-03-01T12:05:30Z,r1,Gi0/0,1,2025-03-01T12:05:00Z,4,40" {
		t.Fatalf("csv:\n%s", csvOut.String())
	}

	// A wrong token fails the fetch with the server's message.
	ts.Client.Token = "nope"
	if _, err := ts.Write(context.Background(), &bytes.Buffer{}, query.OutputCSV); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
}

// rowsText renders rows as "label columns | feature columns", values
// separated by one space (so NULL shows as an empty field).
func rowsText(rec arrow.RecordBatch) []string {
	var out []string
	for i := 0; i < int(rec.NumRows()); i++ {
		var parts []string
		for c := 0; c < int(rec.NumCols()); c++ {
			if c == 4 {
				parts = append(parts, "|")
			}
			parts = append(parts, query.TextValue(rec.Column(c), i))
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}
