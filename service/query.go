package service

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/query"
	"github.com/netfeat/netfeat/query/frontend"
	"github.com/netfeat/netfeat/schema"
)

// QueryConfig is the `query` section: the SQL engine's limits and its front
// ends. HTTP POST /v1/query is always served on http.listen; the NATS
// responder and the Flight SQL server are configured here.
type QueryConfig struct {
	query.Options `yaml:",inline"`
	// NATSSubject is the request/reply subject of the NATS front end
	// (default netfeat.query); "off" disables it.
	NATSSubject string `yaml:"nats_subject"`
	// FlightListen is the Arrow Flight SQL server's address, e.g.
	// 127.0.0.1:32010. Empty (the default) runs no Flight SQL server.
	FlightListen string `yaml:"flight_listen"`
	// FlightTLS serves Flight SQL over TLS when cert_file is set.
	FlightTLS ServerTLSConfig `yaml:"flight_tls"`
	// FlightAllowUnauthenticated lets Flight SQL bind beyond loopback with
	// no token (logged as a warning at start).
	FlightAllowUnauthenticated bool `yaml:"flight_allow_unauthenticated"`
}

// DefaultQueryConfig returns the `query` section's defaults.
func DefaultQueryConfig() QueryConfig {
	return QueryConfig{Options: query.DefaultOptions(), NATSSubject: frontend.DefaultNATSSubject}
}

// Validate returns every problem with the section as joined
// *schema.FieldError values.
func (c *QueryConfig) Validate() error {
	errs := []error{c.Options.Validate()}
	if c.NATSSubject == "" || strings.ContainsAny(c.NATSSubject, " \t\r\n*>") {
		errs = append(errs, schema.Errorf("nats_subject", "%q: want a literal NATS subject such as netfeat.query, or off", c.NATSSubject))
	}
	if c.FlightListen != "" {
		if err := checkHostPort(c.FlightListen); err != nil {
			errs = append(errs, schema.Errorf("flight_listen", "%v", err))
		}
	}
	return errors.Join(errs...)
}

// Query returns the SQL engine (built by New, started by Start; its Ready
// says whether it runs).
func (s *Service) Query() *query.Engine { return s.pipe.query }

// FlightSQLAddr returns the Flight SQL server's address once started, or ""
// when none is configured or it has not started.
func (s *Service) FlightSQLAddr() string {
	if f := s.pipe.flight; f != nil {
		if a := f.Addr(); a != nil {
			return a.String()
		}
	}
	return ""
}

// buildQuery builds the SQL stage after the collectors and adds it to the
// group: the DuckDB engine over the store, the inference runtime's
// decisions, collector health and the metric catalog ("query"), then its
// NATS responder ("query.nats") and Flight SQL server ("query.flightsql")
// when configured. HTTP is mounted by mountAPIs. Building opens nothing:
// the engine's Start opens its databases, the front ends' subscribe and
// listen. The bearer tokens are read when "query" starts, as before the
// stages were built up front: reading them is I/O, and an unreadable
// token file or unset variable stays a start error of "query".
func (s *Service) buildQuery() error {
	cfg, reg, log := s.cfg, s.reg, s.log
	p := &s.pipe
	src := query.Sources(
		newStoreTables(p.store, cfg.Views),
		decisionTables{p: p},
		query.DeviceStates(deviceStates{p: p}),
		query.Computed(query.TableInfo{Name: "unmapped", Schema: schema.UnmappedSchema, Description: query.DescUnmapped}, p.unmappedRecord),
		query.Catalog(schema.Catalog),
	)
	if s.hub != nil { // a hub serves the fleet tables (service/hubtables.go)
		src = query.Sources(s.hub, query.Catalog(schema.Catalog))
	}
	eng, err := query.New(src, cfg.Query.Options, reg, log)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	p.query = eng
	s.group.Add(ComponentFuncs{
		ComponentName: eng.Name(),
		StartFunc: func(ctx context.Context) error {
			auth, err := loadTokens(cfg)
			if err != nil {
				return err
			}
			if err := eng.Start(ctx); err != nil {
				return err
			}
			p.auth.Store(auth)
			return nil
		},
		StopFunc:  eng.Stop,
		ReadyFunc: eng.Ready,
	})
	// The front ends start after "query", so the tokens are read by then.
	readOK := func(h string) bool { return p.auth.Load().allows(h, scopeRead) }
	if cfg.Query.NATSSubject != "off" {
		responder := frontend.NewNATSResponder(cfg.Query.NATSSubject, s.nats.Conn, eng, log)
		s.group.Add(ComponentFuncs{
			ComponentName: "query.nats",
			StartFunc: func(ctx context.Context) error {
				if p.auth.Load().enabled() {
					responder.Authorize = readOK
				}
				return responder.Start(ctx)
			},
			StopFunc: responder.Stop,
		})
	}
	if cfg.Query.FlightListen != "" {
		flight, err := frontend.NewFlightSQLServer(cfg.Query.FlightListen, "", eng, log)
		if err != nil {
			return fmt.Errorf("query: %w", err)
		}
		flight.Authorize = readOK
		p.flight = flight
		s.group.Add(ComponentFuncs{
			ComponentName: "query.flightsql",
			StartFunc: func(ctx context.Context) error {
				tc, err := serverTLS("query.flight_tls", cfg.Query.FlightTLS)
				if err != nil {
					return err
				}
				flight.TLS = tc
				return flight.Start(ctx)
			},
			StopFunc: flight.Stop,
		})
	}
	return nil
}

// mountQuery serves POST /v1/query and GET /v1/tables to the read scope,
// and wraps the model API in the same bearer tokens: reading (GET, HEAD)
// needs the read scope, changing models (upload, shadow, promote,
// rollback) the admin scope. All answer 503 until the query stage has started (the tokens are read then);
// /v1/query also once the engine has stopped.
func (s *Service) mountQuery(models http.Handler) http.Handler {
	eng := s.pipe.query
	h := frontend.NewHandler("", eng, s.log)
	s.http.Handle("/v1/query", s.withScope(scopeRead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if eng.Ready() != nil {
			http.Error(w, "query engine not started", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})))
	s.http.Handle("/v1/tables", s.withScope(scopeRead, frontend.TablesHandler("", eng, s.log)))
	read, admin := s.withScope(scopeRead, models), s.withScope(scopeAdmin, models)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			read.ServeHTTP(w, r)
			return
		}
		admin.ServeHTTP(w, r)
	})
}

// storeTables serves the store's tables: samples, one per feature view,
// latest_<view> and series.
type storeTables struct {
	store  *featurestore.Store
	tables []query.TableInfo
	kind   map[string]tableKind
	entity map[string]schema.EntityKind
}

type tableKind struct {
	view   string // the feature view, for view and latest tables
	latest bool
}

func newStoreTables(st *featurestore.Store, views []schema.FeatureView) *storeTables {
	t := &storeTables{store: st, kind: map[string]tableKind{}, entity: map[string]schema.EntityKind{}}
	t.tables = []query.TableInfo{
		{Name: featurestore.TableSamples, Schema: schema.SamplesSchema, TimeColumn: "ts", Description: query.DescSamples},
		{Name: "series", Schema: schema.SeriesSchema, Description: query.DescSeries},
	}
	for _, v := range views {
		sc := schema.FeatureViewSchema(v)
		t.tables = append(t.tables,
			query.TableInfo{Name: v.Name, Schema: sc, TimeColumn: "window_end", Description: query.ViewDescription(v.Name, string(v.Entity))},
			query.TableInfo{Name: "latest_" + v.Name, Schema: sc, Description: query.LatestDescription(v.Name, string(v.Entity))})
		t.entity[v.Name] = v.Entity
		t.kind[v.Name] = tableKind{view: v.Name}
		t.kind["latest_"+v.Name] = tableKind{view: v.Name, latest: true}
	}
	return t
}

// Tables implements query.Source.
func (t *storeTables) Tables() []query.TableInfo {
	return t.tables
}

// Records implements query.Source with the store's zero-copy snapshots.
func (t *storeTables) Records(_ context.Context, table string) ([]arrow.RecordBatch, error) {
	switch table {
	case featurestore.TableSamples:
		return t.store.SnapshotSamples(), nil
	case "series":
		return t.store.SnapshotSeries(), nil
	}
	k, ok := t.kind[table]
	switch {
	case !ok:
		return nil, fmt.Errorf("table %s: no such table", table)
	case k.latest:
		return t.store.SnapshotLatest(k.view)
	default:
		return t.store.SnapshotView(k.view)
	}
}

// Lookup implements query.EntityLookup for latest_<view>: one entity's
// row straight from the online view, when the query names the whole entity
// (the device of a device view; device and component of a component view).
func (t *storeTables) Lookup(_ context.Context, table, device, component string) ([]arrow.RecordBatch, bool, error) {
	k, ok := t.kind[table]
	if !ok || !k.latest {
		return nil, false, nil
	}
	e := schema.Entity{Device: device, Component: component}
	if t.entity[k.view] == schema.EntityDevice {
		e.Component = ""
	} else if component == "" {
		return nil, false, nil
	}
	rec, found := t.store.LatestRecord(k.view, e)
	if !found {
		return nil, true, nil
	}
	return []arrow.RecordBatch{rec}, true, nil
}

// History implements query.Source from the store's durable chunks and
// feature rows.
func (t *storeTables) History(ctx context.Context, table string, from, to int64) (array.RecordReader, error) {
	return t.store.History(ctx, table, from, to)
}

// decisionTables serves the `decisions` table from the inference runtime:
// its recent decisions (inference.history of them, live and shadow), and
// for time-ranged queries its decision log files; the `actions` table:
// the current state of every action; and the `drift` table: the recent
// PSI evaluations of the versions with a training profile.
type decisionTables struct{ p *pipeline }

var (
	decisionsInfo = query.TableInfo{Name: "decisions", Schema: schema.DecisionsSchema, TimeColumn: "ts", Description: query.DescDecisions}
	actionsInfo   = query.TableInfo{Name: "actions", Schema: schema.ActionsSchema, Description: query.DescActions}
	driftInfo     = query.TableInfo{Name: "drift", Schema: schema.DriftSchema, TimeColumn: "ts", Description: query.DescDrift}
)

func (d decisionTables) Tables() []query.TableInfo {
	return []query.TableInfo{decisionsInfo, actionsInfo, driftInfo}
}

func (d decisionTables) Records(_ context.Context, table string) ([]arrow.RecordBatch, error) {
	if table != decisionsInfo.Name && table != actionsInfo.Name && table != driftInfo.Name {
		return nil, fmt.Errorf("table %s: no such table", table)
	}
	rt := d.p.runtime
	if rt == nil {
		return nil, fmt.Errorf("table %s: inference not started", table)
	}
	switch table {
	case actionsInfo.Name:
		return rt.ActionRecords(), nil
	case driftInfo.Name:
		return rt.DriftRecords(), nil
	}
	return rt.DecisionRecords(), nil
}

// History reads the inference decision log (inference.decision_retention
// of it), or the in-memory decisions when the log is off; either way the
// rows are cut to [from, to).
func (d decisionTables) History(ctx context.Context, table string, from, to int64) (array.RecordReader, error) {
	if table == actionsInfo.Name || table == driftInfo.Name {
		// No history: a time-ranged query reads the current states, or
		// the PSI evaluations kept in memory, cut to the range.
		recs, err := d.Records(ctx, table)
		if err != nil {
			return nil, err
		}
		info := actionsInfo
		if table == driftInfo.Name {
			info = driftInfo
		}
		var m query.MemSource
		defer m.Close()
		err = m.Set(info, recs...)
		for _, r := range recs {
			r.Release()
		}
		if err != nil {
			return nil, err
		}
		return m.History(ctx, table, from, to)
	}
	if table != decisionsInfo.Name {
		return nil, fmt.Errorf("table %s: no such table", table)
	}
	rt := d.p.runtime
	if rt == nil {
		return nil, errors.New("table decisions: inference not started")
	}
	recs, err := rt.DecisionHistory(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("table decisions: %w", err)
	}
	var m query.MemSource
	defer m.Close()
	err = m.Set(decisionsInfo, recs...)
	for _, r := range recs {
		r.Release()
	}
	if err != nil {
		return nil, err
	}
	return m.History(ctx, table, from, to)
}

// deviceStates joins the collectors' per-device health for the `devices`
// table.
type deviceStates struct{ p *pipeline }

func (d deviceStates) DeviceStates() []schema.DeviceState {
	var out []schema.DeviceState
	if s := d.p.snmp; s != nil {
		out = append(out, s.DeviceStates()...)
	}
	if g := d.p.gnmi; g != nil {
		out = append(out, g.DeviceStates()...)
	}
	return out
}

// unmappedRecord builds the `unmapped` table from the normalizer's counts.
func (p *pipeline) unmappedRecord() arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema.UnmappedSchema)
	defer b.Release()
	if n := p.normalizer; n != nil {
		for _, u := range n.Unmapped() {
			b.Field(0).(*array.StringBuilder).Append(u.Device)
			b.Field(1).(*array.StringBuilder).Append(u.Path)
			b.Field(2).(*array.StringBuilder).Append(u.Reason)
			b.Field(3).(*array.Int64Builder).Append(int64(min(u.Count, math.MaxInt64)))
		}
	}
	return b.NewRecordBatch()
}
