package query

import (
	"context"
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
)

func startFlight(t *testing.T, token string) *flightsql.Client {
	t.Helper()
	e := newTestEngine(t, testSource(t, 5000, 1000), nil)
	srv, err := NewFlightSQLServer(e, "127.0.0.1:0", token, nil)
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
				out = append(out, TextValue(rec.Column(0), i)+"="+TextValue(rec.Column(1), i))
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
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "Permission Error") {
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
