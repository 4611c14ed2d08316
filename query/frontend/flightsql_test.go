package frontend

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/netfeat/netfeat/query"
	"github.com/netfeat/netfeat/schema"
)

func startFlight(t *testing.T, token string) *flightsql.Client {
	t.Helper()
	return startFlightFor(t, newTestEngine(t, testSource(t, 5000, 1000), nil), token)
}

// startFlightFor serves e over Flight SQL and returns a client of it.
func startFlightFor(t *testing.T, e *query.Engine, token string) *flightsql.Client {
	t.Helper()
	srv, err := NewFlightSQLServer("127.0.0.1:0", token, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	cl, err := flightsql.NewClient(srv.Addr().String(), nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// readAll fetches every endpoint of info and returns the rows of column 0
// and 1 as text.
func readAll(ctx context.Context, t *testing.T, cl *flightsql.Client, info *flight.FlightInfo) []string {
	t.Helper()
	var out []string
	for _, ep := range info.Endpoint {
		rd, err := cl.DoGet(ctx, ep.Ticket)
		if err != nil {
			t.Fatalf("DoGet: %v", err)
		}
		for rd.Next() {
			rec := rd.RecordBatch()
			for i := 0; i < int(rec.NumRows()); i++ {
				out = append(out, query.TextValue(rec.Column(0), i)+"="+query.TextValue(rec.Column(1), i))
			}
		}
		if err := rd.Err(); err != nil {
			t.Fatalf("read: %v", err)
		}
		rd.Release()
	}
	return out
}

func TestFlightSQL(t *testing.T) {
	cl := startFlight(t, "")
	ctx := t.Context()
	q := "SELECT device, count(*) FROM samples WHERE metric = 'interface.in.bps' GROUP BY device ORDER BY device"
	want := "r1=417 r2=416 r3=417 r4=417" // i%3 == 0: i%12 in {0,9,6,3} for r1..r4; 5000 = 12×416 + 8

	info, err := cl.Execute(ctx, q)
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if got := strings.Join(readAll(ctx, t, cl, info), " "); got != want {
		t.Fatalf("statement: %s, want %s", got, want)
	}

	prep, err := cl.Prepare(ctx, q)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if sc := prep.DatasetSchema(); sc == nil || sc.NumFields() != 2 || sc.Field(0).Name != "device" {
		t.Fatalf("prepared schema %v", sc)
	}
	info, err = prep.Execute(ctx)
	if err != nil {
		t.Fatalf("prepared Execute: %v", err)
	}
	if got := strings.Join(readAll(ctx, t, cl, info), " "); got != want {
		t.Fatalf("prepared: %s, want %s", got, want)
	}
	if err := prep.Close(ctx); err != nil {
		t.Fatalf("close prepared: %v", err)
	}

	// A bad query comes back as InvalidArgument with DuckDB's message.
	info, err = cl.Execute(ctx, "SELECT * FROM read_csv('/etc/passwd')")
	if err == nil {
		var rd *flight.Reader
		rd, err = cl.DoGet(ctx, info.Endpoint[0].Ticket)
		if err == nil {
			for rd.Next() {
			}
			err = rd.Err()
			rd.Release()
		}
	}
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "cannot read files") {
		t.Fatalf("sandboxed query: %v", err)
	}
	if _, err := cl.Prepare(ctx, "SELEC 1"); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "Parser Error") {
		t.Fatalf("bad prepare: %v", err)
	}
}

func TestFlightSQLToken(t *testing.T) {
	cl := startFlight(t, "s3cret")
	for _, tc := range []struct {
		name, auth string
		code       codes.Code
	}{
		{"none", "", codes.Unauthenticated},
		{"wrong", "Bearer nope", codes.Unauthenticated},
		{"right", "Bearer s3cret", codes.OK},
	} {
		ctx := t.Context()
		if tc.auth != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tc.auth)
		}
		info, err := cl.Execute(ctx, "SELECT count(*), 1 FROM samples")
		if status.Code(err) != tc.code {
			t.Fatalf("%s: Execute error %v, want %v", tc.name, err, tc.code)
		}
		if err != nil {
			continue
		}
		if got := readAll(ctx, t, cl, info); len(got) != 1 || got[0] != "5000=1" {
			t.Fatalf("%s: %v", tc.name, got)
		}
		// DoGet is checked too, not only GetFlightInfo.
		rd, err := cl.DoGet(t.Context(), info.Endpoint[0].Ticket)
		if err == nil {
			for rd.Next() {
			}
			err = rd.Err()
			rd.Release()
		}
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("DoGet without token: %v", err)
		}
	}
}

// TestFlightSQLCatalog checks the catalogue calls that ADBC and JDBC
// clients make when they connect and list tables.
func TestFlightSQLCatalog(t *testing.T) {
	cl := startFlight(t, "")
	ctx := t.Context()
	str := func(s string) *string { return &s }
	tables := func(opts *flightsql.GetTablesOpts) []string {
		t.Helper()
		info, err := cl.GetTables(ctx, opts)
		if err != nil {
			t.Fatalf("GetTables: %v", err)
		}
		var out []string
		for _, ep := range info.Endpoint {
			rd, err := cl.DoGet(ctx, ep.Ticket)
			if err != nil {
				t.Fatalf("DoGet: %v", err)
			}
			for rd.Next() {
				rec := rd.RecordBatch()
				for i := 0; i < int(rec.NumRows()); i++ {
					row := query.TextValue(rec.Column(0), i) + "." + query.TextValue(rec.Column(1), i) + "." + query.TextValue(rec.Column(2), i)
					if rec.NumCols() == 5 {
						sc, err := flight.DeserializeSchema(rec.Column(4).(interface{ Value(int) []byte }).Value(i), nil)
						if err != nil {
							t.Fatalf("table schema: %v", err)
						}
						row += fmt.Sprintf("(%d cols)", sc.NumFields())
					}
					out = append(out, row)
				}
			}
			rd.Release()
		}
		return out
	}
	all := "memory.main.decisions memory.main.devices memory.main.if_traffic memory.main.latest_if_traffic memory.main.metrics memory.main.samples memory.main.series"
	tests := []struct {
		name string
		opts *flightsql.GetTablesOpts
		want string
	}{
		{"all", &flightsql.GetTablesOpts{}, all},
		{"pattern", &flightsql.GetTablesOpts{TableNameFilterPattern: str("%if\\_traffic")}, "memory.main.if_traffic memory.main.latest_if_traffic"},
		{"one char", &flightsql.GetTablesOpts{TableNameFilterPattern: str("sample_")}, "memory.main.samples"},
		{"schema", &flightsql.GetTablesOpts{TableNameFilterPattern: str("series"), IncludeSchema: true}, fmt.Sprintf("memory.main.series(%d cols)", schema.SeriesSchema.NumFields())},
		{"other catalog", &flightsql.GetTablesOpts{Catalog: str("other")}, ""},
		{"other schema", &flightsql.GetTablesOpts{DbSchemaFilterPattern: str("information%")}, ""},
		{"views only", &flightsql.GetTablesOpts{TableTypes: []string{"VIEW"}}, ""},
		{"tables", &flightsql.GetTablesOpts{TableTypes: []string{"TABLE"}, DbSchemaFilterPattern: str("ma%")}, all},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(tables(tc.opts), " "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	for name, get := range map[string]func() (*flight.FlightInfo, error){
		"catalogs":    func() (*flight.FlightInfo, error) { return cl.GetCatalogs(ctx) },
		"schemas":     func() (*flight.FlightInfo, error) { return cl.GetDBSchemas(ctx, &flightsql.GetDBSchemasOpts{}) },
		"table types": func() (*flight.FlightInfo, error) { return cl.GetTableTypes(ctx) },
		"sql info": func() (*flight.FlightInfo, error) {
			return cl.GetSqlInfo(ctx, []flightsql.SqlInfo{flightsql.SqlInfoFlightSqlServerName, flightsql.SqlInfoFlightSqlServerReadOnly})
		},
	} {
		info, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rd, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
		if err != nil {
			t.Fatalf("%s DoGet: %v", name, err)
		}
		var rows []string
		for rd.Next() {
			rec := rd.RecordBatch()
			for i := 0; i < int(rec.NumRows()); i++ {
				var cols []string
				for c := 0; c < int(rec.NumCols()); c++ {
					cols = append(cols, rec.Column(c).ValueStr(i))
				}
				rows = append(rows, strings.Join(cols, "|"))
			}
		}
		rd.Release()
		want := map[string]string{
			"catalogs": "memory", "schemas": "memory|main", "table types": "TABLE",
			"sql info": `0|[0,"netfeat"] 3|[1,true]`,
		}[name]
		got := strings.Join(rows, " ")
		for _, w := range strings.Split(want, " ") {
			if !slices.Contains(rows, w) {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
	}
}
