package frontend

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The catalogue a Flight SQL client sees: every query runs in one
// in-memory DuckDB database ("memory") whose main schema holds the tables,
// so `SELECT * FROM memory.main.samples` works as the listing says.
const (
	flightCatalog   = "memory"
	flightSchema    = "main"
	flightTableType = "TABLE"
)

// flightInfo answers a catalogue call's GetFlightInfo: one endpoint whose
// ticket is the command itself, and the result's schema.
func flightInfo(desc *flight.FlightDescriptor, sc *arrow.Schema) *flight.FlightInfo {
	return &flight.FlightInfo{
		Endpoint:         []*flight.FlightEndpoint{{Ticket: &flight.Ticket{Ticket: desc.Cmd}}},
		FlightDescriptor: desc,
		Schema:           flight.SerializeSchema(sc, memory.DefaultAllocator),
		TotalRecords:     -1,
		TotalBytes:       -1,
	}
}

// oneBatch streams a single record batch.
func oneBatch(rec arrow.RecordBatch) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	ch := make(chan flight.StreamChunk, 1)
	ch <- flight.StreamChunk{Data: rec}
	close(ch)
	return rec.Schema(), ch, nil
}

// GetFlightInfoCatalogs implements flightsql.Server.
func (s *FlightSQLServer) GetFlightInfoCatalogs(_ context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return flightInfo(desc, schema_ref.Catalogs), nil
}

// DoGetCatalogs implements flightsql.Server: the one catalogue.
func (s *FlightSQLServer) DoGetCatalogs(context.Context) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema_ref.Catalogs)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append(flightCatalog)
	return oneBatch(b.NewRecordBatch())
}

// GetFlightInfoSchemas implements flightsql.Server.
func (s *FlightSQLServer) GetFlightInfoSchemas(_ context.Context, _ flightsql.GetDBSchemas, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return flightInfo(desc, schema_ref.DBSchemas), nil
}

// DoGetDBSchemas implements flightsql.Server: the main schema, when the
// catalogue and pattern filters let it through.
func (s *FlightSQLServer) DoGetDBSchemas(_ context.Context, cmd flightsql.GetDBSchemas) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema_ref.DBSchemas)
	defer b.Release()
	ok, err := catalogMatches(cmd.GetCatalog(), cmd.GetDBSchemaFilterPattern())
	if err != nil {
		return nil, nil, err
	}
	if ok {
		b.Field(0).(*array.StringBuilder).Append(flightCatalog)
		b.Field(1).(*array.StringBuilder).Append(flightSchema)
	}
	return oneBatch(b.NewRecordBatch())
}

// GetFlightInfoTableTypes implements flightsql.Server.
func (s *FlightSQLServer) GetFlightInfoTableTypes(_ context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return flightInfo(desc, schema_ref.TableTypes), nil
}

// DoGetTableTypes implements flightsql.Server: every table is a TABLE.
func (s *FlightSQLServer) DoGetTableTypes(context.Context) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema_ref.TableTypes)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append(flightTableType)
	return oneBatch(b.NewRecordBatch())
}

// GetFlightInfoTables implements flightsql.Server.
func (s *FlightSQLServer) GetFlightInfoTables(_ context.Context, cmd flightsql.GetTables, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	if cmd.GetIncludeSchema() {
		return flightInfo(desc, schema_ref.TablesWithIncludedSchema), nil
	}
	return flightInfo(desc, schema_ref.Tables), nil
}

// DoGetTables implements flightsql.Server: the engine's tables, filtered
// by catalogue, schema and table-name patterns (SQL LIKE: % and _) and
// table type, with their Arrow schemas when asked.
func (s *FlightSQLServer) DoGetTables(_ context.Context, cmd flightsql.GetTables) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	sc := schema_ref.Tables
	if cmd.GetIncludeSchema() {
		sc = schema_ref.TablesWithIncludedSchema
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	ok, err := catalogMatches(cmd.GetCatalog(), cmd.GetDBSchemaFilterPattern())
	if err != nil {
		return nil, nil, err
	}
	if types := cmd.GetTableTypes(); len(types) > 0 && !slices.ContainsFunc(types, func(t string) bool { return strings.EqualFold(t, flightTableType) }) {
		ok = false
	}
	var name *regexp.Regexp
	if p := cmd.GetTableNameFilterPattern(); p != nil {
		if name, err = likePattern(*p); err != nil {
			return nil, nil, err
		}
	}
	for _, t := range s.engine.Tables() {
		if !ok || name != nil && !name.MatchString(t.Name) {
			continue
		}
		b.Field(0).(*array.StringBuilder).Append(flightCatalog)
		b.Field(1).(*array.StringBuilder).Append(flightSchema)
		b.Field(2).(*array.StringBuilder).Append(t.Name)
		b.Field(3).(*array.StringBuilder).Append(flightTableType)
		if cmd.GetIncludeSchema() {
			b.Field(4).(*array.BinaryBuilder).Append(flight.SerializeSchema(t.Schema, memory.DefaultAllocator))
		}
	}
	return oneBatch(b.NewRecordBatch())
}

// catalogMatches reports whether the catalogue/schema filters of a
// catalogue call admit memory.main.
func catalogMatches(catalog, schemaPattern *string) (bool, error) {
	if catalog != nil && *catalog != "" && *catalog != flightCatalog {
		return false, nil
	}
	if schemaPattern == nil {
		return true, nil
	}
	re, err := likePattern(*schemaPattern)
	if err != nil {
		return false, err
	}
	return re.MatchString(flightSchema), nil
}

// likePattern compiles a Flight SQL filter pattern (SQL LIKE syntax: % any
// run, _ one character, backslash escapes) to an anchored regexp.
func likePattern(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' && i+1 < len(p):
			i++
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		case c == '%':
			b.WriteString("(?s:.*)")
		case c == '_':
			b.WriteString("(?s:.)")
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "filter pattern %q: %v", p, err)
	}
	return re, nil
}
