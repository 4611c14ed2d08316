//go:build duckdb_arrow

package query

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// EntityLookup is an optional interface of a Source: it answers a point
// lookup on the entity columns without handing DuckDB the whole table.
//
// The engine disables DuckDB's filter pushdown into Arrow scans (see
// Options.DSN), so without it a query for one entity's latest features
// scans every entity. When a query reads one table and its WHERE clause is
// a plain conjunction that includes `device = '…'` (and possibly
// `component = '…'`), the engine asks Lookup for the rows with those
// values; DuckDB still applies the whole WHERE clause to them, so a
// superset is always correct.
type EntityLookup interface {
	// Lookup returns the rows of table whose device column is device and,
	// when component is not empty, whose component column is component, as
	// batches of the table's schema that the caller releases. ok is false
	// when the source cannot look this table up that way; the engine then
	// reads the whole table.
	Lookup(ctx context.Context, table, device, component string) (recs []arrow.RecordBatch, ok bool, err error)
}

// entityFilter is a point lookup found in a query.
type entityFilter struct {
	device, component string
}

// clauseEnd are the keywords that end a WHERE clause.
var clauseEnd = map[string]bool{
	"group": true, "order": true, "limit": true, "offset": true, "having": true,
	"qualify": true, "window": true, "using": true,
}

// findEntityFilter looks for `device = '…'` (and `component = '…'`) among
// the top-level conjuncts of the only WHERE clause of a single-SELECT query.
// It is deliberately narrow: any OR, NOT, CASE, BETWEEN, parenthesis or
// subquery in the
// WHERE clause, a qualified or quoted column, a join, or a literal that is
// followed by anything but AND or the end of the clause, and it finds
// nothing, so the engine reads the whole table.
func findEntityFilter(s sqlScan) (entityFilter, bool) {
	if s.multiScan || s.names["select"] != 1 || s.names["where"] != 1 || s.names["join"] > 0 {
		return entityFilter{}, false
	}
	toks := s.tokens
	w := -1
	for i, t := range toks {
		if t.kind == tokWord && t.text == "where" {
			w = i
			break
		}
	}
	if w < 0 {
		return entityFilter{}, false
	}
	for i := 0; i < w; i++ { // FROM a, b is a join too
		if toks[i].kind == tokWord && toks[i].text == "from" {
			for _, t := range toks[i+1 : w] {
				if t.kind == tokSymbol && t.text == "," {
					return entityFilter{}, false
				}
			}
		}
	}
	end := len(toks)
	for i := w + 1; i < len(toks); i++ {
		t := toks[i]
		if t.kind == tokWord && clauseEnd[t.text] {
			end = i
			break
		}
		if t.kind == tokSymbol && t.text == ";" {
			end = i
			break
		}
		if t.kind == tokWord && (t.text == "or" || t.text == "not" || t.text == "case" || t.text == "between") || t.kind == tokSymbol && (t.text == "(" || t.text == ")") {
			return entityFilter{}, false
		}
	}
	var f entityFilter
	found := false
	// Conjuncts are the runs between ANDs (BETWEEN x AND y has an AND
	// too; such a run just does not match the pattern).
	start := w + 1
	for i := w + 1; i <= end; i++ {
		if i < end && !(toks[i].kind == tokWord && toks[i].text == "and") {
			continue
		}
		c := toks[start:i]
		start = i + 1
		if len(c) != 3 || c[0].kind != tokWord || c[1].kind != tokSymbol || c[1].text != "=" || c[2].kind != tokString {
			continue
		}
		switch c[0].text {
		case "device":
			if found && f.device != c[2].text {
				return entityFilter{}, false // contradictory: leave it to DuckDB
			}
			f.device, found = c[2].text, true
		case "component":
			if f.component != "" && f.component != c[2].text {
				return entityFilter{}, false
			}
			f.component = c[2].text
		}
	}
	return f, found
}

// Lookup forwards to the source that owns the table, when it can look up.
func (ms multiSource) Lookup(ctx context.Context, table, device, component string) ([]arrow.RecordBatch, bool, error) {
	s, err := ms.owner(table)
	if err != nil {
		return nil, false, err
	}
	if l, ok := s.(EntityLookup); ok {
		return l.Lookup(ctx, table, device, component)
	}
	return nil, false, nil
}

// Lookup implements EntityLookup for tables whose device (and component)
// columns are plain strings: the matching rows as zero-copy slices.
func (m *MemSource) Lookup(_ context.Context, table, device, component string) ([]arrow.RecordBatch, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.tables[table]
	if !ok {
		return nil, false, fmt.Errorf("table %s: no such table", table)
	}
	dc, cc := t.info.Schema.FieldIndices("device"), t.info.Schema.FieldIndices("component")
	if len(dc) != 1 || len(cc) != 1 {
		return nil, false, nil
	}
	var out []arrow.RecordBatch
	for _, r := range t.recs {
		dev, ok1 := r.Column(dc[0]).(*array.String)
		comp, ok2 := r.Column(cc[0]).(*array.String)
		if !ok1 || !ok2 {
			for _, o := range out {
				o.Release()
			}
			return nil, false, nil
		}
		start := -1
		for i := 0; i <= dev.Len(); i++ {
			in := i < dev.Len() && dev.IsValid(i) && dev.Value(i) == device &&
				(component == "" || comp.IsValid(i) && comp.Value(i) == component)
			switch {
			case in && start < 0:
				start = i
			case !in && start >= 0:
				out = append(out, r.NewSlice(int64(start), int64(i)))
				start = -1
			}
		}
	}
	return out, true, nil
}
