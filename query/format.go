//go:build duckdb_arrow

package query

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/netfeat/netfeat/internal/jsonenc"
)

// Response formats.
const (
	FormatJSON  = "json"
	FormatCSV   = "csv"
	FormatArrow = "arrow"
)

// Headers that carry what is known only after a result's last row: HTTP
// trailers of csv and arrow responses, and NATS reply headers.
const (
	// HeaderRows is the number of rows in the response.
	HeaderRows = "Netfeat-Rows"
	// HeaderTruncated is "true" when the row limit cut the result off.
	HeaderTruncated = "Netfeat-Truncated"
	// HeaderError is the error that ended a result part-way, if any.
	HeaderError = "Netfeat-Error"
)

// ContentType returns the media type of a response format.
func ContentType(format string) string {
	switch format {
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatArrow:
		return "application/vnd.apache.arrow.stream"
	}
	return "application/json"
}

// WriteResult streams a result to w in format (json, csv or arrow) and
// returns the first error of the result or of w. For json the document is
//
//	{"columns":[{"name":..,"type":..}],"rows":[[..],..],"row_count":N,"truncated":false}
//
// with an "error" member at the end when the result failed part-way. CSV
// has a header line; timestamps are RFC 3339 in UTC and NULL is an empty
// field. arrow is an Arrow IPC stream. For csv and arrow, truncation and
// late errors are not in the body: front ends report them beside it (HTTP
// trailers, NATS headers).
func WriteResult(w io.Writer, format string, r *Result) error {
	switch format {
	case "", FormatJSON:
		return writeJSON(w, r)
	case FormatCSV:
		return writeCSV(w, r, nil)
	case FormatArrow:
		return writeArrow(w, r)
	}
	return fmt.Errorf("%w: unknown format %q (json, csv or arrow)", ErrInvalid, format)
}

func writeJSON(w io.Writer, r *Result) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	buf := make([]byte, 0, 256)
	buf = append(buf, `{"columns":[`...)
	for i, f := range r.Schema().Fields() {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"name":`...)
		buf = appendJSONString(buf, f.Name)
		buf = append(buf, `,"type":`...)
		buf = appendJSONString(buf, f.Type.String())
		buf = append(buf, '}')
	}
	buf = append(buf, `],"rows":[`...)
	first := true
	for r.Next() {
		rec := r.RecordBatch()
		cols := rec.Columns()
		for i := 0; i < int(rec.NumRows()); i++ {
			if !first {
				buf = append(buf, ',')
			}
			first = false
			buf = append(buf, '[')
			for c, col := range cols {
				if c > 0 {
					buf = append(buf, ',')
				}
				buf = appendJSONValue(buf, col, i)
			}
			buf = append(buf, ']')
			if len(buf) > 16<<10 {
				if _, err := bw.Write(buf); err != nil {
					return fmt.Errorf("write json: %w", err)
				}
				buf = buf[:0]
			}
		}
	}
	buf = append(buf, `],"row_count":`...)
	buf = strconv.AppendInt(buf, r.Rows(), 10)
	buf = append(buf, `,"truncated":`...)
	buf = strconv.AppendBool(buf, r.Truncated())
	err := r.Err()
	if err != nil {
		buf = append(buf, `,"error":`...)
		buf = appendJSONString(buf, err.Error())
	}
	buf = append(buf, "}\n"...)
	if _, werr := bw.Write(buf); werr != nil {
		return fmt.Errorf("write json: %w", werr)
	}
	if ferr := bw.Flush(); ferr != nil {
		return fmt.Errorf("write json: %w", ferr)
	}
	return err
}

// writeCSV writes a header line and the result's rows as CSV, values as
// TextValue renders them. progress, when not nil, is called with the row
// count of each batch once its rows are written.
func writeCSV(w io.Writer, r *Result, progress func(rows int64)) error {
	cw := csv.NewWriter(w)
	fields := r.Schema().Fields()
	row := make([]string, len(fields))
	for i, f := range fields {
		row[i] = f.Name
	}
	if err := cw.Write(row); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	for r.Next() {
		rec := r.RecordBatch()
		for i := 0; i < int(rec.NumRows()); i++ {
			for c, col := range rec.Columns() {
				row[c] = TextValue(col, i)
			}
			if err := cw.Write(row); err != nil {
				return fmt.Errorf("write csv: %w", err)
			}
		}
		if progress != nil {
			progress(rec.NumRows())
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return r.Err()
}

func writeArrow(w io.Writer, r *Result) error {
	iw := ipc.NewWriter(w, ipc.WithSchema(r.Schema()))
	for r.Next() {
		if err := iw.Write(r.RecordBatch()); err != nil {
			_ = iw.Close()
			return fmt.Errorf("write arrow: %w", err)
		}
	}
	if err := iw.Close(); err != nil {
		return fmt.Errorf("write arrow: %w", err)
	}
	return r.Err()
}

// valueAt returns row i of col as a Go value: nil for NULL, int64, float64,
// bool, string, time.Time for timestamps, or Arrow's JSON form for other
// types.
func valueAt(col arrow.Array, i int) any {
	if col.IsNull(i) {
		return nil
	}
	switch a := col.(type) {
	case *array.Float64:
		return a.Value(i)
	case *array.Float32:
		return float64(a.Value(i))
	case *array.Int64:
		return a.Value(i)
	case *array.Int32:
		return int64(a.Value(i))
	case *array.Int16:
		return int64(a.Value(i))
	case *array.Int8:
		return int64(a.Value(i))
	case *array.Uint64:
		return a.Value(i)
	case *array.Uint32:
		return int64(a.Value(i))
	case *array.Boolean:
		return a.Value(i)
	case *array.String: // Value aliases the batch's buffer: copy
		return strings.Clone(a.Value(i))
	case *array.LargeString:
		return strings.Clone(a.Value(i))
	case *array.StringView:
		return strings.Clone(a.Value(i))
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		return a.Value(i).ToTime(unit).UTC()
	case *array.Dictionary:
		return valueAt(a.Dictionary(), a.GetValueIndex(i))
	}
	return col.GetOneForMarshal(i)
}

// TextValue renders row i of col as text, as CSV output and the terminal
// table show it: RFC 3339 timestamps, empty for NULL.
func TextValue(col arrow.Array, i int) string {
	switch v := valueAt(col, i).(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return v.Format(time.RFC3339Nano)
	default:
		return col.ValueStr(i)
	}
}

// appendJSONValue appends row i of col as a JSON value. NaN and ±Inf, which
// JSON cannot carry, become null.
func appendJSONValue(buf []byte, col arrow.Array, i int) []byte {
	switch v := valueAt(col, i).(type) {
	case nil:
		return append(buf, "null"...)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return append(buf, "null"...)
		}
		return strconv.AppendFloat(buf, v, 'g', -1, 64)
	case int64:
		return strconv.AppendInt(buf, v, 10)
	case uint64:
		return strconv.AppendUint(buf, v, 10)
	case bool:
		return strconv.AppendBool(buf, v)
	case string:
		return appendJSONString(buf, v)
	case time.Time:
		buf = append(buf, '"')
		buf = v.AppendFormat(buf, time.RFC3339Nano)
		return append(buf, '"')
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return appendJSONString(buf, col.ValueStr(i))
		}
		return append(buf, b...)
	}
}

// appendJSONString quotes s as json.Marshal does (jsonenc.String): HTML
// characters and U+2028/U+2029 escaped, invalid UTF-8 as U+FFFD, so that a
// label with any bytes still makes valid JSON.
func appendJSONString(buf []byte, s string) []byte { return jsonenc.String(buf, s, true) }
