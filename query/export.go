//go:build duckdb_arrow

package query

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/netfeat/netfeat/schema"
)

// TrainingSet builds a point-in-time correct training set: each label row
// (a time, a device, optionally a component, and label columns) gets the
// features of the newest window of each view that had closed by the
// label's time, never a later one, so no future data leaks into training.
//
// It works through a running service's HTTP API, since the sandbox forbids
// COPY: the views' rows for the labels' devices and time span are fetched
// as Arrow streams (history included), in time chunks that halve whenever
// the server's row limit truncates one; the ASOF JOIN then runs in a local
// sandboxed engine and the result is written as Parquet or CSV.
type TrainingSet struct {
	// Client reaches the service.
	Client *Client
	// Labels has a "ts" timestamp column, a "device" string column, an
	// optional "component" string column, and any label columns. See
	// ReadLabelsCSV.
	Labels arrow.RecordBatch
	// Views are the feature views to join, in column order.
	Views []string
	// TTL is how old a feature row may be at the label's time (label time
	// minus window_end); older rows give NULL features. 0 means one hour.
	TTL time.Duration
	// Progress, when set, is called as work advances: stage "fetch <view>"
	// with nanoseconds of the time span fetched out of the total, then
	// stage "write" with rows written out of the label count.
	Progress func(stage string, done, total int64)
}

// Output formats of a training set.
const (
	OutputParquet = "parquet"
	OutputCSV     = "csv"
)

// Write builds the training set and writes it to w as format (parquet or
// csv). It returns the number of rows written: one per label.
func (t *TrainingSet) Write(ctx context.Context, w io.Writer, format string) (int64, error) {
	if format != OutputParquet && format != OutputCSV {
		return 0, fmt.Errorf("training set format %q: want parquet or csv", format)
	}
	if len(t.Views) == 0 {
		return 0, errors.New("training set: no feature views")
	}
	ttl := t.TTL
	if ttl == 0 {
		ttl = time.Hour
	}
	labels := t.Labels
	sc := labels.Schema()
	for _, c := range []string{"ts", "device"} {
		if len(sc.FieldIndices(c)) != 1 {
			return 0, fmt.Errorf("labels: no %q column", c)
		}
	}
	tsCol, ok := labels.Column(sc.FieldIndices("ts")[0]).(*array.Timestamp)
	if !ok {
		return 0, errors.New(`labels: "ts" is not a timestamp column`)
	}
	hasComponent := len(sc.FieldIndices("component")) == 1
	if labels.NumRows() == 0 {
		return 0, errors.New("labels: no rows")
	}
	minTS, maxTS := int64(math.MaxInt64), int64(math.MinInt64)
	unit := tsCol.DataType().(*arrow.TimestampType).Unit
	for i := 0; i < tsCol.Len(); i++ {
		if tsCol.IsNull(i) {
			return 0, fmt.Errorf("labels row %d: ts is empty", i+1)
		}
		ns := tsCol.Value(i).ToTime(unit).UnixNano()
		minTS, maxTS = min(minTS, ns), max(maxTS, ns)
	}
	devices := map[string]bool{}
	devCol := labels.Column(sc.FieldIndices("device")[0])
	for i := 0; i < devCol.Len(); i++ {
		devices[TextValue(devCol, i)] = true
	}

	local := &MemSource{}
	defer local.Close()
	if err := local.Set(TableInfo{Name: "labels", Schema: sc}, labels); err != nil {
		return 0, err
	}
	from, to := time.Unix(0, minTS).Add(-ttl), time.Unix(0, maxTS+1)
	for _, v := range t.Views {
		if !identOK(v) {
			return 0, fmt.Errorf("view %q: not a table name", v)
		}
		recs, vsc, err := t.fetch(ctx, v, devices, from, to)
		if err != nil {
			return 0, err
		}
		err = local.Set(TableInfo{Name: v, Schema: vsc}, recs...)
		for _, r := range recs {
			r.Release()
		}
		if err != nil {
			return 0, fmt.Errorf("view %s: %w", v, err)
		}
	}

	n := labels.NumRows()
	opts := DefaultOptions()
	opts.MaxRows = int(n)
	opts.Timeout = 24 * time.Hour
	opts.MemoryLimit = "4GB"
	opts.MaxConcurrent = 1
	// Not New: an export's row count and time may exceed the maxima that
	// Validate holds the service's configuration to.
	eng, err := newEngineDSN(local, opts, opts.DSN(), nil, nil)
	if err != nil {
		return 0, err
	}
	if err := eng.Start(ctx); err != nil {
		return 0, err
	}
	defer func() { _ = eng.Stop(context.Background()) }()

	joinComponent := map[string]bool{}
	if hasComponent {
		for _, v := range t.Views {
			var componentView bool
			err := eng.Query(ctx, Request{SQL: "SELECT count(*) > 0 FROM " + v + " WHERE component <> ''"}, func(r *Result) error {
				if r.Next() {
					componentView = TextValue(r.RecordBatch().Column(0), 0) == "true"
				}
				return nil
			})
			if err != nil {
				return 0, fmt.Errorf("view %s: %w", v, err)
			}
			joinComponent[v] = componentView
		}
	}
	q, err := t.joinSQL(local, joinComponent, ttl)
	if err != nil {
		return 0, err
	}
	var written int64
	err = eng.Query(ctx, Request{SQL: q}, func(r *Result) error {
		progress := func(rows int64) {
			written += rows
			if t.Progress != nil {
				t.Progress("write", written, n)
			}
		}
		if format == OutputCSV {
			return writeCSV(w, r, progress)
		}
		return writeParquet(w, r, progress)
	})
	if err != nil {
		return written, fmt.Errorf("training set: %w", err)
	}
	return written, nil
}

// joinSQL is the point-in-time join: one ASOF LEFT JOIN per view on the
// entity and label time >= window_end, features NULLed past the TTL.
func (t *TrainingSet) joinSQL(local *MemSource, joinComponent map[string]bool, ttl time.Duration) (string, error) {
	tables := map[string]TableInfo{}
	for _, ti := range local.Tables() {
		tables[ti.Name] = ti
	}
	var cols, joins []string
	cols = append(cols, "l.*")
	for i, v := range t.Views {
		alias := fmt.Sprintf("v%d", i)
		fresh := fmt.Sprintf("l.ts - %s.window_end <= to_microseconds(%d)", alias, ttl.Microseconds())
		for _, f := range tables[v].Schema.Fields() {
			switch f.Name {
			case "device", "component", "window_start":
				continue
			}
			cols = append(cols, fmt.Sprintf("CASE WHEN %s THEN %s.%s END AS %s", fresh, alias, quoteIdent(f.Name), quoteIdent(v+"__"+f.Name)))
		}
		on := fmt.Sprintf("l.device = %s.device", alias)
		if joinComponent[v] {
			on += fmt.Sprintf(" AND l.component = %s.component", alias)
		}
		joins = append(joins, fmt.Sprintf("ASOF LEFT JOIN %s %s ON %s AND l.ts >= %s.window_end", quoteIdent(v), alias, on, alias))
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM labels l " + strings.Join(joins, " ") + " ORDER BY l.ts, l.device", nil
}

// fetch reads a view's rows for the devices over [from, to), in time
// chunks small enough to pass the server's row limit.
func (t *TrainingSet) fetch(ctx context.Context, view string, devices map[string]bool, from, to time.Time) ([]arrow.RecordBatch, *arrow.Schema, error) {
	q := "SELECT * FROM " + view
	if len(devices) <= 1000 {
		names := make([]string, 0, len(devices))
		for d := range devices {
			names = append(names, "'"+strings.ReplaceAll(d, "'", "''")+"'")
		}
		slices.Sort(names)
		q += " WHERE device IN (" + strings.Join(names, ", ") + ")"
	}
	var out []arrow.RecordBatch
	var sc *arrow.Schema
	total := to.Sub(from).Nanoseconds()
	var done int64
	var get func(a, b time.Time) error
	get = func(a, b time.Time) error {
		rd, resp, err := t.Client.Arrow(ctx, Request{SQL: q, From: a, To: b})
		if err != nil {
			return fmt.Errorf("fetch %s: %w", view, err)
		}
		defer resp.Body.Close()
		var got []arrow.RecordBatch
		for rd.Next() {
			r := rd.RecordBatch()
			r.Retain()
			got = append(got, r)
		}
		rerr := rd.Err()
		if sc == nil {
			sc = rd.Schema()
		}
		rd.Release()
		_, _ = io.Copy(io.Discard, resp.Body) // reach the trailers
		release := func() {
			for _, r := range got {
				r.Release()
			}
		}
		if rerr == nil {
			rerr = TrailerError(resp)
		}
		if rerr != nil {
			release()
			return fmt.Errorf("fetch %s: %w", view, rerr)
		}
		if resp.Trailer.Get(HeaderTruncated) == "true" {
			release()
			mid := a.Add(b.Sub(a) / 2)
			if !mid.After(a) {
				return fmt.Errorf("fetch %s: more rows at %v than the server's row limit", view, a)
			}
			if err := get(a, mid); err != nil {
				return err
			}
			return get(mid, b)
		}
		out = append(out, got...)
		done += b.Sub(a).Nanoseconds()
		if t.Progress != nil {
			t.Progress("fetch "+view, done, total)
		}
		return nil
	}
	if err := get(from, to); err != nil {
		for _, r := range out {
			r.Release()
		}
		return nil, nil, err
	}
	return out, sc, nil
}

func identOK(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIdentPart(s[i]) || s[i] == '$' {
			return false
		}
	}
	return true
}

func writeParquet(w io.Writer, r *Result, progress func(int64)) error {
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
	// The file writer closes a writer that is an io.Closer; the caller owns w.
	fw, err := pqarrow.NewFileWriter(r.Schema(), struct{ io.Writer }{w}, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return fmt.Errorf("parquet writer: %w", err)
	}
	for r.Next() {
		rec := r.RecordBatch()
		if err := fw.WriteBuffered(rec); err != nil {
			_ = fw.Close()
			return fmt.Errorf("write parquet: %w", err)
		}
		progress(rec.NumRows())
	}
	if err := r.Err(); err != nil {
		_ = fw.Close()
		return err
	}
	if err := fw.Close(); err != nil {
		return fmt.Errorf("close parquet: %w", err)
	}
	return nil
}

// ReadLabelsCSV reads a labels file: a header line, then rows. The "ts"
// column is RFC 3339 or Unix nanoseconds; "device" and "component" are
// strings; every other column is float64 when all its values parse as
// numbers (empty means NULL), else a string. The caller releases the
// batch.
func ReadLabelsCSV(r io.Reader) (arrow.RecordBatch, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	if len(rows) < 2 {
		return nil, errors.New("labels: want a header line and at least one row")
	}
	header := rows[0]
	rows = rows[1:]
	fields := make([]arrow.Field, len(header))
	for c, name := range header {
		name = strings.TrimSpace(name)
		switch {
		case name == "ts":
			fields[c] = arrow.Field{Name: name, Type: schema.TimestampType}
		case name == "device" || name == "component":
			fields[c] = arrow.Field{Name: name, Type: arrow.BinaryTypes.String}
		default:
			numeric := true
			for _, row := range rows {
				if v := strings.TrimSpace(row[c]); v != "" {
					if _, err := strconv.ParseFloat(v, 64); err != nil {
						numeric = false
						break
					}
				}
			}
			typ := arrow.DataType(arrow.BinaryTypes.String)
			if numeric {
				typ = arrow.PrimitiveTypes.Float64
			}
			fields[c] = arrow.Field{Name: name, Type: typ, Nullable: true}
		}
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil))
	defer b.Release()
	for i, row := range rows {
		for c, f := range fields {
			v := strings.TrimSpace(row[c])
			switch fb := b.Field(c).(type) {
			case *array.TimestampBuilder:
				ts, err := parseLabelTime(v)
				if err != nil {
					return nil, fmt.Errorf("labels line %d: ts %q: %w", i+2, v, err)
				}
				fb.Append(arrow.Timestamp(ts))
			case *array.StringBuilder:
				fb.Append(v)
			case *array.Float64Builder:
				if v == "" {
					fb.AppendNull()
					continue
				}
				x, _ := strconv.ParseFloat(v, 64)
				fb.Append(x)
			default:
				return nil, fmt.Errorf("labels: column %s has unexpected type %s", f.Name, f.Type)
			}
		}
	}
	return b.NewRecordBatch(), nil
}

func parseLabelTime(v string) (int64, error) {
	if ns, err := strconv.ParseInt(v, 10, 64); err == nil {
		return ns, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, errors.New("want RFC 3339 or Unix nanoseconds")
	}
	return t.UnixNano(), nil
}
