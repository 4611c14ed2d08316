//go:build duckdb_arrow

package query

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The point-query fast path answers the online lookup of one entity,
//
//	SELECT * FROM <table> WHERE device = '…' [AND component = '…']
//
// without DuckDB: the source's EntityLookup finds the rows, and the engine
// returns them exactly as DuckDB would — the same rows, and the same
// result schema, which it learns once per table by asking DuckDB to plan
// SELECT * (timestamps become DuckDB's microsecond TIMESTAMPTZ, dictionary
// strings plain strings, every field nullable). DuckDB's fixed cost per
// query (a connection, an Arrow view, planning: about 0.3–0.9 ms here) is
// most of an online lookup's latency; this is what an online feature
// store answers most often. Anything else in the statement (another
// condition, ORDER BY, LIMIT, a column list, a time range) goes to DuckDB.
// TestPointQuerySameAnswers compares the two paths.

// pointQuery is a statement the fast path can answer.
type pointQuery struct {
	table  string // lower-cased, as written
	filter entityFilter
}

// findPointQuery matches the statement's tokens against the one shape
// the fast path answers; anything else is not a point query.
func findPointQuery(s sqlScan) (pointQuery, bool) {
	if s.statements != 1 || s.multiScan {
		return pointQuery{}, false
	}
	toks := s.tokens
	if n := len(toks); n > 0 && toks[n-1].kind == tokSymbol && toks[n-1].text == ";" {
		toks = toks[:n-1]
	}
	word := func(i int, w string) bool { return toks[i].kind == tokWord && toks[i].text == w }
	if len(toks) < 8 || !word(0, "select") || toks[1].kind != tokSymbol || toks[1].text != "*" ||
		!word(2, "from") || toks[3].kind != tokWord || !word(4, "where") {
		return pointQuery{}, false
	}
	q := pointQuery{table: toks[3].text}
	cond := toks[5:]
	seen := map[string]bool{}
	for len(cond) > 0 {
		if len(cond) < 3 || cond[0].kind != tokWord || cond[1].kind != tokSymbol || cond[1].text != "=" || cond[2].kind != tokString {
			return pointQuery{}, false
		}
		col, val := cond[0].text, cond[2].text
		if seen[col] {
			return pointQuery{}, false
		}
		seen[col] = true
		switch col {
		case "device":
			q.filter.device = val
		case "component":
			q.filter.component = val
		default:
			return pointQuery{}, false
		}
		cond = cond[3:]
		if len(cond) > 0 {
			if cond[0].kind != tokWord || cond[0].text != "and" {
				return pointQuery{}, false
			}
			cond = cond[1:]
			if len(cond) == 0 {
				return pointQuery{}, false
			}
		}
	}
	// component = '' must match empty components: only a non-empty one
	// narrows a lookup, so leave that case to DuckDB.
	if !seen["device"] || seen["component"] && q.filter.component == "" {
		return pointQuery{}, false
	}
	return q, true
}

// resultSchemas caches, per table, the schema DuckDB gives SELECT * of it.
type resultSchemas struct {
	mu sync.Mutex
	m  map[string][2]*arrow.Schema // table → {table schema, result schema}
}

// resultSchema returns DuckDB's result schema for SELECT * FROM t, asking
// DuckDB (one planned query, no rows) the first time and whenever the
// table's schema changes.
func (e *Engine) resultSchema(ctx context.Context, t TableInfo) (*arrow.Schema, error) {
	e.schemas.mu.Lock()
	c, ok := e.schemas.m[t.Name]
	e.schemas.mu.Unlock()
	if ok && c[0].Equal(t.Schema) {
		return c[1], nil
	}
	var out *arrow.Schema
	var res *Result
	err := e.execute(ctx, Request{SQL: "SELECT * FROM " + quoteIdent(t.Name), schemaOnly: true}, func(r *Result) error {
		out = r.Schema()
		return nil
	}, &res)
	if err != nil {
		return nil, err
	}
	e.schemas.mu.Lock()
	if e.schemas.m == nil {
		e.schemas.m = map[string][2]*arrow.Schema{}
	}
	e.schemas.m[t.Name] = [2]*arrow.Schema{t.Schema, out}
	e.schemas.mu.Unlock()
	return out, nil
}

// answerPoint answers q without DuckDB. ok is false when it cannot (no
// such table, a source without lookups, a column type it does not
// convert); the caller then runs the query through DuckDB.
func (e *Engine) answerPoint(ctx context.Context, q pointQuery, limit int) (_ *Result, ok bool, err error) {
	l, can := e.src.(EntityLookup)
	if !can {
		return nil, false, nil
	}
	var t TableInfo
	for _, ti := range e.src.Tables() {
		if strings.ToLower(ti.Name) == q.table {
			t, ok = ti, true
			break
		}
	}
	if !ok {
		return nil, false, nil
	}
	dev, comp := t.Schema.FieldIndices("device"), t.Schema.FieldIndices("component")
	if len(dev) != 1 || (q.filter.component != "" && len(comp) != 1) {
		return nil, false, nil
	}
	out, err := e.resultSchema(ctx, t)
	if err != nil {
		return nil, false, nil // DuckDB will say what is wrong
	}
	if !convertible(t.Schema, out) {
		return nil, false, nil
	}
	recs, ok, err := l.Lookup(ctx, t.Name, q.filter.device, q.filter.component)
	if err != nil || !ok {
		return nil, false, err
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for _, rec := range recs {
		if !rec.Schema().Equal(t.Schema) {
			return nil, false, nil // not what the table declares: let DuckDB read it
		}
	}
	e.lookups.Inc()
	b := array.NewRecordBuilder(memory.DefaultAllocator, out)
	defer b.Release()
	rows := 0
	for _, rec := range recs {
		for i := range int(rec.NumRows()) {
			if rows > limit {
				break
			}
			if textAt(rec.Column(dev[0]), i) != q.filter.device ||
				q.filter.component != "" && textAt(rec.Column(comp[0]), i) != q.filter.component {
				continue
			}
			for c := range out.NumFields() {
				appendConverted(b.Field(c), rec.Column(c), i)
			}
			rows++
		}
	}
	res := b.NewRecordBatch()
	rr, err := array.NewRecordReader(out, []arrow.RecordBatch{res})
	res.Release()
	if err != nil {
		return nil, false, fmt.Errorf("point query: %w", err)
	}
	return &Result{rr: rr, limit: int64(limit)}, true, nil
}

// convertible reports whether appendConverted turns every column of in
// into the type DuckDB gives it in out.
func convertible(in, out *arrow.Schema) bool {
	if in.NumFields() != out.NumFields() {
		return false
	}
	for i, f := range in.Fields() {
		o := out.Field(i)
		if f.Name != o.Name {
			return false
		}
		switch t := f.Type.(type) {
		case *arrow.TimestampType:
			ot, ok := o.Type.(*arrow.TimestampType)
			if !ok || t.Unit < ot.Unit {
				return false
			}
		case *arrow.DictionaryType:
			if !arrow.TypeEqual(t.ValueType, arrow.BinaryTypes.String) || !arrow.TypeEqual(o.Type, arrow.BinaryTypes.String) {
				return false
			}
		case *arrow.StringType, *arrow.Float64Type, *arrow.Int64Type, *arrow.BooleanType:
			if !arrow.TypeEqual(f.Type, o.Type) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// textAt is the string value of a string or dictionary-of-string column.
func textAt(col arrow.Array, i int) string {
	if col.IsNull(i) {
		return "\x00null" // matches no literal: DuckDB's = never matches NULL
	}
	switch a := col.(type) {
	case *array.String:
		return a.Value(i)
	case *array.Dictionary:
		return textAt(a.Dictionary(), a.GetValueIndex(i))
	}
	return "\x00other"
}

// appendConverted appends row i of col to b, converted as convertible
// allows.
func appendConverted(b array.Builder, col arrow.Array, i int) {
	if col.IsNull(i) {
		b.AppendNull()
		return
	}
	switch a := col.(type) {
	case *array.Timestamp:
		in := a.DataType().(*arrow.TimestampType).Unit
		tb := b.(*array.TimestampBuilder)
		out := tb.Type().(*arrow.TimestampType).Unit
		v := int64(a.Value(i))
		for u := in; u > out; u-- {
			v /= 1000 // toward zero, as DuckDB converts
		}
		tb.Append(arrow.Timestamp(v))
	case *array.Dictionary:
		b.(*array.StringBuilder).Append(textAt(a, i))
	case *array.String:
		b.(*array.StringBuilder).Append(a.Value(i))
	case *array.Float64:
		b.(*array.Float64Builder).Append(a.Value(i))
	case *array.Int64:
		b.(*array.Int64Builder).Append(a.Value(i))
	case *array.Boolean:
		b.(*array.BooleanBuilder).Append(a.Value(i))
	}
}
