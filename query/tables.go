//go:build duckdb_arrow

package query

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
)

// TableList is the answer of GET /v1/tables: every table a query can read,
// sorted by name.
type TableList struct {
	Tables []TableDesc `json:"tables"`
}

// TableDesc is one table of a TableList.
type TableDesc struct {
	// Name is the SQL name.
	Name string `json:"name"`
	// Description says in one line what a row is.
	Description string `json:"description"`
	// Columns are the table's columns in order, with DuckDB's type names
	// (as DESCRIBE gives them).
	Columns []Column `json:"columns"`
}

// Column is one column of a TableDesc.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Describe returns the TableList of tables, in their order.
func Describe(tables []TableInfo) TableList {
	out := TableList{Tables: make([]TableDesc, 0, len(tables))}
	for _, t := range tables {
		d := TableDesc{Name: t.Name, Description: t.Description, Columns: make([]Column, 0, len(t.Schema.Fields()))}
		for _, f := range t.Schema.Fields() {
			d.Columns = append(d.Columns, Column{Name: f.Name, Type: SQLType(f.Type)})
		}
		out.Tables = append(out.Tables, d)
	}
	return out
}

// SQLType is the name DuckDB gives the SQL type an Arrow column of type dt
// reads as (DESCRIBE's column_type).
func SQLType(dt arrow.DataType) string {
	switch t := dt.(type) {
	case *arrow.TimestampType:
		if t.TimeZone != "" {
			return "TIMESTAMP WITH TIME ZONE"
		}
		switch t.Unit {
		case arrow.Second:
			return "TIMESTAMP_S"
		case arrow.Millisecond:
			return "TIMESTAMP_MS"
		case arrow.Nanosecond:
			return "TIMESTAMP_NS"
		}
		return "TIMESTAMP"
	case *arrow.ListType:
		return SQLType(t.Elem()) + "[]"
	case *arrow.LargeListType:
		return SQLType(t.Elem()) + "[]"
	case *arrow.DictionaryType:
		return SQLType(t.ValueType)
	case *arrow.StructType:
		parts := make([]string, len(t.Fields()))
		for i, f := range t.Fields() {
			parts[i] = f.Name + " " + SQLType(f.Type)
		}
		return "STRUCT(" + strings.Join(parts, ", ") + ")"
	}
	switch dt.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return "VARCHAR"
	case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW, arrow.FIXED_SIZE_BINARY:
		return "BLOB"
	case arrow.BOOL:
		return "BOOLEAN"
	case arrow.INT8:
		return "TINYINT"
	case arrow.INT16:
		return "SMALLINT"
	case arrow.INT32:
		return "INTEGER"
	case arrow.INT64:
		return "BIGINT"
	case arrow.UINT8:
		return "UTINYINT"
	case arrow.UINT16:
		return "USMALLINT"
	case arrow.UINT32:
		return "UINTEGER"
	case arrow.UINT64:
		return "UBIGINT"
	case arrow.FLOAT16, arrow.FLOAT32:
		return "FLOAT"
	case arrow.FLOAT64:
		return "DOUBLE"
	case arrow.DATE32, arrow.DATE64:
		return "DATE"
	case arrow.DURATION, arrow.INTERVAL_MONTH_DAY_NANO:
		return "INTERVAL"
	}
	return strings.ToUpper(dt.Name())
}

// Tables fetches GET /v1/tables.
func (c *Client) Tables(ctx context.Context) (TableList, error) {
	var out TableList
	hr, err := c.NewRequest(ctx, http.MethodGet, "/v1/tables", nil)
	if err != nil {
		return out, fmt.Errorf("tables request: %w", err)
	}
	resp, err := c.Client.Do(hr)
	if err != nil {
		return out, fmt.Errorf("tables %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return out, fmt.Errorf("tables %s: decode: %w", c.BaseURL, err)
	}
	return out, nil
}
