//go:build duckdb_arrow

package query

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/netfeat/netfeat/schema"
)

// TableInfo describes one SQL table a Source provides.
type TableInfo struct {
	// Name is the SQL table name: a lower-case identifier such as
	// "samples", "if_traffic" or "latest_if_traffic".
	Name string
	// Schema is the Arrow schema of every batch of the table.
	Schema *arrow.Schema
	// TimeColumn names the timestamp column that a query's time range
	// applies to ("ts" for samples and decisions, "window_end" for feature
	// views). Empty for tables without history (metrics, devices, series,
	// latest_<view>): a time-ranged query reads their current contents.
	TimeColumn string
	// Description is one line that says what a row of the table is, for
	// GET /v1/tables and `netfeat tables`.
	Description string
}

// TableDoc names a table netfeat serves and says in one line what its
// rows are. Name may be a pattern: "<view>" stands for each feature view.
type TableDoc struct {
	Name, Description string
}

// The descriptions of the tables a standalone netfeat serves; the hub's
// tables are these with a leading site column.
const (
	DescSamples   = "normalized samples: ts, device, component, metric, value"
	DescSeries    = "one row per (device, component, metric) seen: first and last time, last value, count"
	DescDecisions = "model decisions: entity, model, score, action, reason, window and features"
	DescActions   = "current state of every action (pending, firing, resolved) per model and entity"
	DescDevices   = "collector targets: address, protocol, state, last success and error, counts"
	DescMetrics   = "the metric catalog: name, kind, unit, entity, description, OpenConfig and SNMP sources"
	DescUnmapped  = "what the normalizer received but could not map: device, path, reason, count"
	DescDrift     = "input drift of live model versions: PSI per model, version and feature over the last scored windows"
)

// ViewDescription and LatestDescription describe the tables of feature
// view v, of entity kind entity ("device" or "component").
func ViewDescription(v, entity string) string {
	return "feature view " + v + ": one row per closed window of each " + entity
}

// LatestDescription describes latest_<v>.
func LatestDescription(v, entity string) string {
	return "newest closed window of each " + entity + " in feature view " + v
}

// StandardTables are the tables of a standalone netfeat, in the order the
// help lists them.
var StandardTables = []TableDoc{
	{"samples", DescSamples},
	{"<view>", ViewDescription("<view>", "entity") + " (one table per view)"},
	{"latest_<view>", LatestDescription("<view>", "entity")},
	{"decisions", DescDecisions},
	{"actions", DescActions},
	{"series", DescSeries},
	{"devices", DescDevices},
	{"metrics", DescMetrics},
	{"unmapped", DescUnmapped},
	{"drift", DescDrift},
}

// Source provides the Arrow data of the SQL tables. The featurestore
// implements it over its hot tier and Badger; tests use MemSource.
//
// Implementations are safe for concurrent use: the Engine calls them from
// several queries at once.
type Source interface {
	// Tables lists the tables available now. The Engine calls it once per
	// query; it must be cheap.
	Tables() []TableInfo
	// Records returns the table's current batches, each retained for the
	// caller, who releases them. They are the store's own immutable batches
	// (zero-copy): the caller does not modify them. An unknown table is an
	// error.
	Records(ctx context.Context, table string) ([]arrow.RecordBatch, error)
	// History returns every row of the table whose TimeColumn is in
	// [from, to) (Unix nanoseconds), from wherever the store keeps them
	// (durable chunks, and the hot tier for the recent part), without
	// duplicates. The caller releases the reader. It is called only for
	// tables with a TimeColumn.
	History(ctx context.Context, table string, from, to int64) (array.RecordReader, error)
}

// MemSource is an in-memory Source: a set of tables, each a list of record
// batches, replaced whole by Set. Its History filters the batches by the
// table's TimeColumn, slicing them without copying. It is safe for
// concurrent use. The zero value is an empty source.
type MemSource struct {
	mu     sync.RWMutex
	tables map[string]memTable
}

type memTable struct {
	info TableInfo
	recs []arrow.RecordBatch
}

// Set replaces the table info.Name with recs, which must all have
// info.Schema. MemSource retains the batches; the caller keeps its own
// references.
func (m *MemSource) Set(info TableInfo, recs ...arrow.RecordBatch) error {
	for i, r := range recs {
		if !r.Schema().Equal(info.Schema) {
			return fmt.Errorf("table %s: batch %d has schema %s, want %s", info.Name, i, r.Schema(), info.Schema)
		}
	}
	if info.TimeColumn != "" && len(info.Schema.FieldIndices(info.TimeColumn)) != 1 {
		return fmt.Errorf("table %s: time column %q is not in the schema", info.Name, info.TimeColumn)
	}
	for _, r := range recs {
		r.Retain()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tables == nil {
		m.tables = make(map[string]memTable)
	}
	if old, ok := m.tables[info.Name]; ok {
		for _, r := range old.recs {
			r.Release()
		}
	}
	m.tables[info.Name] = memTable{info: info, recs: slices.Clone(recs)}
	return nil
}

// Close releases every batch the source holds.
func (m *MemSource) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, t := range m.tables {
		for _, r := range t.recs {
			r.Release()
		}
	}
	m.tables = nil
}

// Tables implements Source.
func (m *MemSource) Tables() []TableInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]TableInfo, 0, len(m.tables))
	for _, t := range m.tables {
		out = append(out, t.info)
	}
	return out
}

// Records implements Source.
func (m *MemSource) Records(_ context.Context, table string) ([]arrow.RecordBatch, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.tables[table]
	if !ok {
		return nil, fmt.Errorf("table %s: no such table", table)
	}
	for _, r := range t.recs {
		r.Retain()
	}
	return slices.Clone(t.recs), nil
}

// History implements Source: the rows of the table with TimeColumn in
// [from, to), as zero-copy slices of the stored batches.
func (m *MemSource) History(_ context.Context, table string, from, to int64) (array.RecordReader, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.tables[table]
	if !ok {
		return nil, fmt.Errorf("table %s: no such table", table)
	}
	if t.info.TimeColumn == "" {
		return nil, fmt.Errorf("table %s: has no time column", table)
	}
	col := t.info.Schema.FieldIndices(t.info.TimeColumn)[0]
	var out []arrow.RecordBatch
	for _, r := range t.recs {
		ts, ok := r.Column(col).(*array.Timestamp)
		if !ok {
			return nil, fmt.Errorf("table %s: time column %s is %s, not a timestamp", table, t.info.TimeColumn, r.Column(col).DataType())
		}
		start := -1
		for i := 0; i <= ts.Len(); i++ {
			in := i < ts.Len() && ts.IsValid(i) && int64(ts.Value(i)) >= from && int64(ts.Value(i)) < to
			switch {
			case in && start < 0:
				start = i
			case !in && start >= 0:
				out = append(out, r.NewSlice(int64(start), int64(i)))
				start = -1
			}
		}
	}
	rr, err := array.NewRecordReader(t.info.Schema, out)
	for _, r := range out {
		r.Release()
	}
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", table, err)
	}
	return rr, nil
}

// Sources combines several sources into one: a table is served by the first
// source that lists it. The lead wires the store, Catalog and DeviceStates
// together with it.
func Sources(srcs ...Source) Source { return multiSource(srcs) }

type multiSource []Source

func (ms multiSource) Tables() []TableInfo {
	var out []TableInfo
	seen := make(map[string]bool)
	for _, s := range ms {
		for _, t := range s.Tables() {
			if !seen[t.Name] {
				seen[t.Name] = true
				out = append(out, t)
			}
		}
	}
	return out
}

func (ms multiSource) owner(table string) (Source, error) {
	for _, s := range ms {
		for _, t := range s.Tables() {
			if t.Name == table {
				return s, nil
			}
		}
	}
	return nil, fmt.Errorf("table %s: no such table", table)
}

func (ms multiSource) Records(ctx context.Context, table string) ([]arrow.RecordBatch, error) {
	s, err := ms.owner(table)
	if err != nil {
		return nil, err
	}
	return s.Records(ctx, table)
}

func (ms multiSource) History(ctx context.Context, table string, from, to int64) (array.RecordReader, error) {
	s, err := ms.owner(table)
	if err != nil {
		return nil, err
	}
	return s.History(ctx, table, from, to)
}

// funcSource is a Source of one table without history, built on demand.
type funcSource struct {
	info  TableInfo
	build func() arrow.RecordBatch
}

func (f funcSource) Tables() []TableInfo { return []TableInfo{f.info} }

func (f funcSource) Records(_ context.Context, table string) ([]arrow.RecordBatch, error) {
	if table != f.info.Name {
		return nil, fmt.Errorf("table %s: no such table", table)
	}
	return []arrow.RecordBatch{f.build()}, nil
}

func (f funcSource) History(_ context.Context, table string, _, _ int64) (array.RecordReader, error) {
	return nil, fmt.Errorf("table %s: has no history", table)
}

// Computed returns a Source of one table without history whose single
// batch build makes afresh for every query that reads it (the caller of
// build gets the batch and releases it).
func Computed(info TableInfo, build func() arrow.RecordBatch) Source {
	return funcSource{info: info, build: build}
}

// Catalog returns a Source with the `metrics` table: one row per catalog
// metric (pass schema.Catalog).
func Catalog(catalog []schema.Metric) Source {
	return funcSource{
		info:  TableInfo{Name: "metrics", Schema: schema.MetricsSchema, Description: DescMetrics},
		build: func() arrow.RecordBatch { return CatalogRecord(memory.DefaultAllocator, catalog) },
	}
}

// DeviceStates returns a Source with the `devices` table, built from
// src.DeviceStates() at every query that reads it.
func DeviceStates(src schema.DeviceStateSource) Source {
	return funcSource{
		info:  TableInfo{Name: "devices", Schema: schema.DevicesSchema, Description: DescDevices},
		build: func() arrow.RecordBatch { return DevicesRecord(memory.DefaultAllocator, src.DeviceStates()) },
	}
}

// CatalogRecord builds the `metrics` table (schema.MetricsSchema) from a
// metric catalog. The caller releases it.
func CatalogRecord(mem memory.Allocator, catalog []schema.Metric) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, schema.MetricsSchema)
	defer b.Release()
	for _, m := range catalog {
		for i, v := range []string{m.Name, string(m.Kind), m.Unit, m.Entity, m.Description, m.OpenConfig, m.SNMP, m.DerivedFrom} {
			b.Field(i).(*array.StringBuilder).Append(v)
		}
	}
	return b.NewRecordBatch()
}

// DevicesRecord builds the `devices` table (schema.DevicesSchema) from
// collector health. Zero times become NULL. The caller releases it.
func DevicesRecord(mem memory.Allocator, states []schema.DeviceState) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, schema.DevicesSchema)
	defer b.Release()
	str := func(i int, v string) { b.Field(i).(*array.StringBuilder).Append(v) }
	tsOrNull := func(i int, v int64) {
		tb := b.Field(i).(*array.TimestampBuilder)
		if v == 0 {
			tb.AppendNull()
			return
		}
		tb.Append(arrow.Timestamp(v))
	}
	for _, s := range states {
		str(0, s.Device)
		str(1, s.Address)
		str(2, s.Protocol)
		str(3, s.Profile)
		str(4, s.State)
		tsOrNull(5, s.LastSuccess)
		str(6, s.LastError)
		tsOrNull(7, s.LastErrorTS)
		b.Field(8).(*array.Float64Builder).Append(s.LastDurationMS)
		b.Field(9).(*array.Int64Builder).Append(s.Observations)
		b.Field(10).(*array.Int64Builder).Append(s.Errors)
	}
	return b.NewRecordBatch()
}
