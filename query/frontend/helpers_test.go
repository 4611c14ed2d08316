package frontend

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/netfeat/netfeat/query"
	"github.com/netfeat/netfeat/query/internal/fixture"
	"github.com/netfeat/netfeat/schema"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// database/sql's connection opener lives until the DB is closed;
		// nats.go and grpc leave short-lived goroutines after Close.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreAnyFunction("google.golang.org/grpc/internal/grpcsync.(*CallbackSerializer).run"),
	)
}

// testSource is a source with every table the service serves (see
// fixture.Tables): n samples in batches of batch rows, 10 minutes of
// fixture.View, 20 decisions, series, devices and metrics.
func testSource(tb testing.TB, n, batch int) query.Source {
	tb.Helper()
	mem := &query.MemSource{}
	tb.Cleanup(mem.Close)
	for _, t := range fixture.Tables(tb, n, batch) {
		err := mem.Set(query.TableInfo{Name: t.Name, Schema: t.Schema, TimeColumn: t.TimeColumn}, t.Records...)
		for _, r := range t.Records {
			r.Release()
		}
		if err != nil {
			tb.Fatalf("set %s: %v", t.Name, err)
		}
	}
	return query.Sources(mem, query.Catalog(schema.Catalog), query.DeviceStates(fixture.States))
}

// newTestEngine opens an engine over src with a 512MB memory limit, closed
// at the end of the test.
func newTestEngine(tb testing.TB, src query.Source, mod func(*query.Options)) *query.Engine {
	tb.Helper()
	opts := query.DefaultOptions()
	opts.MemoryLimit = "512MB"
	if mod != nil {
		mod(&opts)
	}
	e, err := query.New(src, opts, nil, nil)
	if err != nil {
		tb.Fatalf("new engine: %v", err)
	}
	if err := e.Start(context.Background()); err != nil {
		tb.Fatalf("start engine: %v", err)
	}
	tb.Cleanup(func() { _ = e.Stop(context.Background()) })
	return e
}
