//go:build duckdb_arrow

package query

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/schema"
)

// Errors a query can end with. Front ends map them to status codes.
var (
	// ErrInvalid marks a query DuckDB rejected (syntax, binding, permission)
	// or one the sandbox does not run (not a SELECT, several statements).
	// The message is DuckDB's.
	ErrInvalid = errors.New("invalid query")
	// ErrTimeout marks a query that ran past its time limit.
	ErrTimeout = errors.New("query timed out")
	// ErrMemory marks a query stopped because the process's memory went
	// over what TotalMemory allows (see memWatch).
	ErrMemory = errors.New("query stopped: out of memory")
	// ErrBusy marks a query refused at once because MaxQueued queries
	// already wait: the client should retry after RetryAfter.
	ErrBusy = errors.New("busy, retry later")
	// ErrNotRunning marks a query (or Plan) made before Start or after
	// Stop: the engine's databases are not open. Ready returns it too.
	ErrNotRunning = errors.New("query engine not running")
)

// RetryAfter is how long a client refused with ErrBusy is told to wait.
const RetryAfter = time.Second

// Options configure the SQL engine; the yaml section is `query`.
type Options struct {
	// Timeout bounds each query, from its arrival (the wait for a free
	// database included) to the last row.
	Timeout time.Duration `yaml:"timeout"`
	// MaxRows is the most rows one response carries; more are cut off and
	// the response says it was truncated. A request may ask for fewer.
	MaxRows int `yaml:"max_rows"`
	// MemoryLimit is the memory one query may use ("512MB", "2GB"). A query
	// that needs more fails with DuckDB's Out of Memory error; nothing
	// spills to disk. Strings and lists built by repeat, lpad and rpad are
	// limited to a quarter of it.
	MemoryLimit string `yaml:"memory_limit"`
	// TotalMemory is the memory all running queries may use together; each
	// query reserves MemoryLimit of it while it runs, and waits (counted in
	// the queue) when none is left. Empty means twice MemoryLimit.
	TotalMemory string `yaml:"total_memory"`
	// GoMemoryLimit, when set, is the Go runtime's soft memory limit
	// (GOMEMLIMIT) that Engine.Start sets for the whole process. Empty leaves the
	// runtime's (GOMEMLIMIT from the environment, or none).
	GoMemoryLimit string `yaml:"go_memory_limit"`
	// Threads is the DuckDB worker thread count of each query; 0 means one
	// per CPU.
	Threads int `yaml:"threads"`
	// MaxConcurrent is how many queries run at once, each on its own DuckDB
	// database.
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxQueued is how many queries may wait for a free database or for
	// memory; a query arriving when that many wait fails at once with
	// ErrBusy. Point queries answered without DuckDB never wait.
	MaxQueued int `yaml:"max_queued"`
}

// The largest values Validate accepts: beyond them a typo starts a service
// that cannot work (100000 databases do not open in a minute; a petabyte
// memory limit is no limit).
const (
	MaxTimeout       = time.Hour
	MaxMaxRows       = 10_000_000
	MaxMemoryLimit   = 1 << 40 // 1 TiB, also for TotalMemory
	MaxThreads       = 256
	MaxMaxConcurrent = 64
	MaxMaxQueued     = 10_000
)

// DefaultOptions returns the options the service starts with.
func DefaultOptions() Options {
	return Options{Timeout: 30 * time.Second, MaxRows: 100_000, MemoryLimit: "1GB", MaxConcurrent: 4, MaxQueued: 32}
}

var sizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$`)

var sizeUnits = map[string]float64{
	"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

// ParseSize returns the bytes of a size such as 512MB or 1.5GiB, as
// memory_limit, total_memory and go_memory_limit take them.
func ParseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q: want a size such as 512MB or 2GB", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	b := n * sizeUnits[m[2]]
	if b > MaxMemoryLimit {
		return 0, fmt.Errorf("%q is over the maximum of 1TiB", s)
	}
	return int64(b), nil
}

// minMemoryLimit is the least memory a DuckDB query can work in.
const minMemoryLimit = 16 << 20

// memoryLimitBytes is MemoryLimit in bytes; Validate has checked it.
func (o Options) memoryLimitBytes() int64 {
	n, _ := ParseSize(o.MemoryLimit)
	return n
}

// totalMemoryBytes is TotalMemory in bytes, twice the memory limit when
// unset.
func (o Options) totalMemoryBytes() int64 {
	if o.TotalMemory == "" {
		return 2 * o.memoryLimitBytes()
	}
	n, _ := ParseSize(o.TotalMemory)
	return n
}

// Validate returns every problem with the options, as joined
// *schema.FieldError values.
func (o *Options) Validate() error {
	var errs []error
	if o.Timeout <= 0 || o.Timeout > MaxTimeout {
		errs = append(errs, schema.Errorf("timeout", "must be positive and at most %v, got %v", MaxTimeout, o.Timeout))
	}
	if o.MaxRows <= 0 || o.MaxRows > MaxMaxRows {
		errs = append(errs, schema.Errorf("max_rows", "must be from 1 to %d, got %d", MaxMaxRows, o.MaxRows))
	}
	mem, err := ParseSize(o.MemoryLimit)
	switch {
	case err != nil:
		errs = append(errs, schema.Errorf("memory_limit", "%v", err))
	case mem < minMemoryLimit:
		errs = append(errs, schema.Errorf("memory_limit", "%q: must be at least 16MiB", o.MemoryLimit))
	}
	if o.TotalMemory != "" {
		total, err := ParseSize(o.TotalMemory)
		switch {
		case err != nil:
			errs = append(errs, schema.Errorf("total_memory", "%v", err))
		case mem > 0 && total < mem:
			errs = append(errs, schema.Errorf("total_memory", "%q is less than memory_limit %q: no query could run", o.TotalMemory, o.MemoryLimit))
		}
	}
	if o.GoMemoryLimit != "" {
		n, err := ParseSize(o.GoMemoryLimit)
		switch {
		case err != nil:
			errs = append(errs, schema.Errorf("go_memory_limit", "%v", err))
		case n < 64<<20:
			errs = append(errs, schema.Errorf("go_memory_limit", "%q: must be at least 64MiB", o.GoMemoryLimit))
		}
	}
	if o.Threads < 0 || o.Threads > MaxThreads {
		errs = append(errs, schema.Errorf("threads", "must be from 0 to %d, got %d", MaxThreads, o.Threads))
	}
	if o.MaxConcurrent <= 0 || o.MaxConcurrent > MaxMaxConcurrent {
		errs = append(errs, schema.Errorf("max_concurrent", "must be from 1 to %d, got %d", MaxMaxConcurrent, o.MaxConcurrent))
	}
	if o.MaxQueued < 0 || o.MaxQueued > MaxMaxQueued {
		errs = append(errs, schema.Errorf("max_queued", "must be from 0 to %d, got %d", MaxMaxQueued, o.MaxQueued))
	}
	return errors.Join(errs...)
}

// SetGoMemoryLimit sets the Go runtime's soft memory limit to
// GoMemoryLimit, when set, and returns the previous limit. It acts on the
// whole process: the Go heap then collects harder as it nears the limit
// rather than grow past it. DuckDB's memory is not Go heap and is bounded
// by TotalMemory instead.
func (o Options) SetGoMemoryLimit() (previous int64, err error) {
	if o.GoMemoryLimit == "" {
		return debug.SetMemoryLimit(-1), nil
	}
	n, err := ParseSize(o.GoMemoryLimit)
	if err != nil {
		return 0, fmt.Errorf("go_memory_limit: %w", err)
	}
	return debug.SetMemoryLimit(n), nil
}

// DSN returns the DuckDB connection string of the sandbox. The settings
// must be given when the database opens: issued later as SQL,
// enable_external_access does not stop read_csv, COPY or ATTACH (measured
// with DuckDB 1.5.6), and with the configuration locked nothing can be SET
// afterwards.
func (o Options) DSN() string {
	v := url.Values{}
	v.Set("enable_external_access", "false")
	v.Set("autoinstall_known_extensions", "false")
	v.Set("autoload_known_extensions", "false")
	v.Set("allow_community_extensions", "false")
	// Both optimizers push work into the Arrow scan that DuckDB's C API
	// stream producer silently does not do: with unused_columns on, a query
	// reading a subset of columns gets wrong columns or crashes
	// (duckdb/duckdb-go#24); with filter_pushdown on, WHERE clauses are
	// ignored (measured here with DuckDB 1.5.6: `WHERE device = 'r2'` and
	// `WHERE value < 10` returned every row). See TestColumnSubset.
	v.Set("disabled_optimizers", "unused_columns,filter_pushdown")
	v.Set("memory_limit", o.MemoryLimit)
	v.Set("max_temp_directory_size", "0B") // never spill to disk
	if o.Threads > 0 {
		v.Set("threads", strconv.Itoa(o.Threads))
	}
	v.Set("lock_configuration", "true")
	return "?" + v.Encode()
}

// Request is one query, as the HTTP and NATS front ends receive it.
type Request struct {
	// SQL is one SELECT statement.
	SQL string `json:"sql"`
	// Format is the response format of the front end: "json" (default),
	// "csv" or "arrow" (an Arrow IPC stream). The Engine ignores it.
	Format string `json:"format,omitempty"`
	// From and To, when both are set, make the query read the tables with a
	// time column (samples, feature views, decisions) from history: every
	// row with time in [From, To), durable storage included. Unset, the
	// query reads the hot tier.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
	// MaxRows lowers the engine's row limit for this query; 0 keeps it.
	MaxRows int `json:"max_rows,omitempty"`

	// schemaOnly plans the query for its result schema and returns no rows.
	schemaOnly bool
}

// Ranged reports whether the request asks for history.
func (r Request) Ranged() bool { return !r.From.IsZero() && !r.To.IsZero() }

// Engine runs sandboxed SQL over a Source with embedded DuckDB. It is safe
// for concurrent use.
//
// It keeps MaxConcurrent in-memory DuckDB databases, each with one
// connection, and runs one query at a time on each. Separate databases are
// needed because DuckDB's Arrow scan registers its views in the database's
// main schema, shared by all connections: two queries on one database would
// replace each other's views (measured: wrong counts and catalog
// write-write conflicts). They also make MemoryLimit a per-query limit.
//
// Its life is New (validate, no I/O), Start (open the databases), Stop
// (wait for running queries, close them). Query and Plan fail with
// ErrNotRunning before Start and after Stop; Tables and Options work at
// any time.
type Engine struct {
	src  Source
	opts Options
	dsn  string
	// setGoLimit makes Start apply opts.GoMemoryLimit (New's engines; not
	// an export's local one).
	setGoLimit bool
	log        *slog.Logger
	slots      chan *slot
	// queued counts the queries waiting for a slot.
	queued atomic.Int64
	mem    *memWatch

	// state is stateNew, stateRunning or stateStopped; lifeMu orders
	// Start and Stop. stopping is closed by Stop, so that queries waiting
	// for a database give up.
	state    atomic.Int32
	lifeMu   sync.Mutex
	stopping chan struct{}

	queries  *prometheus.CounterVec
	duration prometheus.Histogram
	rows     prometheus.Counter
	lookups  prometheus.Counter
	points   prometheus.Counter

	schemas resultSchemas // the point-query fast path's result schemas
}

// The engine's states.
const (
	stateNew int32 = iota
	stateRunning
	stateStopped
)

// New validates opts and builds an engine over src, registering its
// metrics; it opens nothing: Start opens the sandboxed DuckDB databases
// and, when opts.GoMemoryLimit is set, sets the process's Go memory limit.
// reg may be nil (no metrics are registered); a nil logger discards.
func New(src Source, opts Options, reg prometheus.Registerer, log *slog.Logger) (*Engine, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("query options: %w", err)
	}
	e, err := newEngineDSN(src, opts, opts.DSN(), reg, log)
	if err != nil {
		return nil, err
	}
	e.setGoLimit = true
	return e, nil
}

// newEngineDSN builds an engine whose databases open with dsn, without
// validating opts or ever setting the Go memory limit.
func newEngineDSN(src Source, opts Options, dsn string, reg prometheus.Registerer, log *slog.Logger) (*Engine, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{
		src: src, opts: opts, dsn: dsn, log: log.With("component", "query"),
		slots:    make(chan *slot, opts.running()),
		stopping: make(chan struct{}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_query_queries_total",
			Help: "SQL queries by outcome: ok, invalid (rejected by DuckDB or the sandbox), timeout, busy, memory (stopped over query.total_memory), error.",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "netfeat_query_duration_seconds",
			Help:    "SQL query time from admission to the last row.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_query_rows_total",
			Help: "Rows returned by SQL queries.",
		}),
		lookups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_query_entity_lookups_total",
			Help: "Table scans answered by an entity point lookup instead of the whole table.",
		}),
		points: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_query_point_queries_total",
			Help: "Queries answered by the point-query fast path (SELECT * of one entity) without DuckDB.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{e.queries, e.duration, e.rows, e.lookups, e.points} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register query metrics: %w", err)
			}
		}
	}
	return e, nil
}

// Name identifies the engine as a service component.
func (e *Engine) Name() string { return "query" }

// Ready returns nil while the engine is running (between Start and Stop),
// ErrNotRunning otherwise.
func (e *Engine) Ready() error {
	if e.state.Load() != stateRunning {
		return ErrNotRunning
	}
	return nil
}

// Start sets the Go memory limit (when GoMemoryLimit is set and the
// engine came from New), opens the MaxConcurrent sandboxed DuckDB
// databases, installs their guard macros and plans the point-query fast
// path's result schemas. A failed Start has closed what it opened; the
// engine may be started again. An engine cannot start twice, nor after
// Stop.
func (e *Engine) Start(context.Context) error {
	e.lifeMu.Lock()
	defer e.lifeMu.Unlock()
	switch e.state.Load() {
	case stateRunning:
		return errors.New("query engine: already started")
	case stateStopped:
		return errors.New("query engine: stopped, cannot start again")
	}
	if e.setGoLimit {
		if _, err := e.opts.SetGoMemoryLimit(); err != nil {
			return err
		}
	}
	e.mem = newMemWatch(memWatchLimit(e.opts.totalMemoryBytes()), e.log)
	for i := range cap(e.slots) {
		s, err := openSlot(e.dsn, e.opts.memoryLimitBytes()/4)
		if err != nil {
			e.mem.close()
			// Close only what opened: Stop would wait for the rest.
			for range i {
				_ = (<-e.slots).close()
			}
			return err
		}
		e.slots <- s
	}
	e.state.Store(stateRunning)
	e.warmPointSchemas()
	return nil
}

// warmPointSchemas plans the result schema of every table the point-query
// fast path may answer, so that a point query need not wait for a DuckDB
// database while all are busy. Tables added later are planned on first use.
func (e *Engine) warmPointSchemas() {
	if _, ok := e.src.(EntityLookup); !ok {
		return
	}
	for _, t := range e.src.Tables() {
		if len(t.Schema.FieldIndices("device")) == 1 {
			if _, err := e.resultSchema(context.Background(), t); err != nil {
				e.log.Debug("point query schema", "table", t.Name, "err", err)
			}
		}
	}
}

// running is how many queries run at once: MaxConcurrent, or fewer when
// TotalMemory does not hold that many MemoryLimits.
func (o Options) running() int {
	n := o.totalMemoryBytes() / max(o.memoryLimitBytes(), 1)
	return int(max(1, min(n, int64(o.MaxConcurrent))))
}

// Stop refuses new queries (ErrNotRunning), waits for running ones to end
// and closes the databases. ctx does not bound the wait: each query is
// bounded by Timeout. Stop before Start, or a second Stop, only marks the
// engine stopped.
func (e *Engine) Stop(context.Context) error {
	e.lifeMu.Lock()
	defer e.lifeMu.Unlock()
	if e.state.Swap(stateStopped) != stateRunning {
		return nil
	}
	close(e.stopping)
	defer e.mem.close()
	var errs []error
	for range cap(e.slots) {
		s := <-e.slots
		if s != nil {
			errs = append(errs, s.close())
		}
	}
	return errors.Join(errs...)
}

// slot is one DuckDB database with its one connection, and the Arrow
// views registered on it, one per table, kept across queries.
type slot struct {
	db    *sql.DB
	conn  *sql.Conn
	views map[string]*armedView
}

// armedView is an Arrow view whose stream is re-armed for each query.
// DuckDB's Arrow scan reads a stream until it ends and, when the view is
// scanned again, asks the same stream for more: so rather than register a
// fresh view per query (a catalog write to create it and another to drop
// it), the view stays and its stream is pointed at the query's batches
// before the query and detached after it.
type armedView struct {
	schema  *arrow.Schema
	rd      *armReader
	release func()
}

// sync gives the slot exactly one view per table: it registers the views
// of new tables, replaces those whose schema changed and drops those of
// tables gone. Registration is what makes a table visible to SHOW TABLES,
// information_schema and DuckDB's name suggestions, so every database
// must hold every table, not only those its past queries named (the views
// were once registered on first use, and each database listed a different
// part of the tables).
func (s *slot) sync(ar *duckdb.Arrow, conn *duckdb.Conn, tables []TableInfo) error {
	for _, t := range tables {
		if _, err := s.view(ar, conn, t.Name, t.Schema); err != nil {
			return fmt.Errorf("table %s: %w", t.Name, err)
		}
	}
	if len(s.views) == len(tables) {
		return nil
	}
	listed := make(map[string]bool, len(tables))
	for _, t := range tables {
		listed[t.Name] = true
	}
	for name := range s.views {
		if !listed[name] {
			if err := s.drop(conn, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// drop removes the view called name and releases its stream.
func (s *slot) drop(conn *duckdb.Conn, name string) error {
	v, ok := s.views[name]
	if !ok {
		return nil
	}
	delete(s.views, name)
	// DROP before release: the view refers to the stream.
	_, err := conn.ExecContext(context.Background(), "DROP VIEW IF EXISTS "+quoteIdent(name), nil)
	v.release()
	if err != nil {
		return fmt.Errorf("drop view %s: %w", name, err)
	}
	return nil
}

// view returns the armed view called name, registering it, or replacing it
// when the table's schema changed.
func (s *slot) view(ar *duckdb.Arrow, conn *duckdb.Conn, name string, sc *arrow.Schema) (*armedView, error) {
	if v, ok := s.views[name]; ok {
		if v.schema == sc || v.schema.Equal(sc) {
			return v, nil
		}
		if err := s.drop(conn, name); err != nil {
			return nil, err
		}
	}
	rd := &armReader{name: name, schema: sc}
	release, err := ar.RegisterView(rd, name)
	if err != nil {
		return nil, err
	}
	v := &armedView{schema: sc, rd: rd, release: release}
	if s.views == nil {
		s.views = make(map[string]*armedView)
	}
	s.views[name] = v
	return v, nil
}

func (v *armedView) arm(rr array.RecordReader) { v.rd.arm(rr) }
func (v *armedView) disarm()                   { v.rd.arm(nil) }

// armReader is the stream behind an armedView: it yields the batches of
// the reader it is armed with, and fails when it is not armed, so that a
// query reaching a table in a way the lexer did not see gets an error
// rather than rows of another query or none. DuckDB may call Next from
// several threads; the mutex serialises them. The exported C stream holds
// it for the slot's lifetime: Retain and Release do nothing.
type armReader struct {
	name   string
	schema *arrow.Schema
	mu     sync.Mutex
	rr     array.RecordReader
	cur    arrow.RecordBatch
	err    error
}

func (a *armReader) arm(rr array.RecordReader) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rr != nil {
		a.rr.Release()
	}
	a.rr, a.cur, a.err = rr, nil, nil
}

func (a *armReader) Retain()                        {}
func (a *armReader) Release()                       {}
func (a *armReader) Schema() *arrow.Schema          { return a.schema }
func (a *armReader) Record() arrow.RecordBatch      { return a.RecordBatch() }
func (a *armReader) RecordBatch() arrow.RecordBatch { a.mu.Lock(); defer a.mu.Unlock(); return a.cur }

func (a *armReader) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *armReader) Next() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cur = nil
	if a.rr == nil {
		a.err = fmt.Errorf("table %s is not available to this query: name it in the SQL text", a.name)
		return false
	}
	if a.rr.Next() {
		a.cur = a.rr.RecordBatch()
		return true
	}
	a.err = a.rr.Err()
	return false
}

// stringGuards replace DuckDB's functions that build a large string or list
// from a small input: DuckDB does not count such a value against
// memory_limit (measured: repeat('x', 2000000000) ran at 4.6 GB RSS under a
// 1 GB limit). Temporary macros are found before the system functions;
// run refuses qualified names (system.main.repeat) that would skip them.
// The check is in the size argument, not a CASE around the call, which
// the optimizer could fold (building the value) before the check runs.
// %[1]d is the largest value in bytes.
const stringGuards = `
CREATE TEMP MACRO repeat(s, n) AS system.main.repeat(s, CASE WHEN length(s)::BIGINT * n > %[1]d
		THEN error('repeat: a value of ' || (length(s)::BIGINT * n)::VARCHAR || ' bytes or elements is over the limit of %[1]d (a quarter of query.memory_limit)')
		ELSE n END);
CREATE TEMP MACRO range(n) AS system.main.range(CASE WHEN n > %[3]d
		THEN error('range: a list of ' || n::VARCHAR || ' elements is over the limit of %[3]d (query.memory_limit / 128); use FROM range(...) for long series')
		ELSE n END),
	(a, b) AS system.main.range(a, CASE WHEN try_cast(b::VARCHAR AS BIGINT) - try_cast(a::VARCHAR AS BIGINT) > %[3]d
		THEN error('range: a list of over %[3]d elements (query.memory_limit / 128); use FROM range(...) for long series')
		ELSE b END),
	(a, b, s) AS system.main.range(a, CASE WHEN (try_cast(b::VARCHAR AS BIGINT) - try_cast(a::VARCHAR AS BIGINT)) / nullif(abs(try_cast(s::VARCHAR AS BIGINT)), 0) > %[3]d
		THEN error('range: a list of over %[3]d elements (query.memory_limit / 128); use FROM range(...) for long series')
		ELSE b END, s);
CREATE TEMP MACRO generate_series(n) AS system.main.generate_series(CASE WHEN n > %[3]d
		THEN error('generate_series: a list of ' || n::VARCHAR || ' elements is over the limit of %[3]d (query.memory_limit / 128); use FROM generate_series(...) for long series')
		ELSE n END),
	(a, b) AS system.main.generate_series(a, CASE WHEN try_cast(b::VARCHAR AS BIGINT) - try_cast(a::VARCHAR AS BIGINT) > %[3]d
		THEN error('generate_series: a list of over %[3]d elements (query.memory_limit / 128); use FROM generate_series(...) for long series')
		ELSE b END),
	(a, b, s) AS system.main.generate_series(a, CASE WHEN (try_cast(b::VARCHAR AS BIGINT) - try_cast(a::VARCHAR AS BIGINT)) / nullif(abs(try_cast(s::VARCHAR AS BIGINT)), 0) > %[3]d
		THEN error('generate_series: a list of over %[3]d elements (query.memory_limit / 128); use FROM generate_series(...) for long series')
		ELSE b END, s);
CREATE TEMP MACRO list_resize(l, n) AS system.main.list_resize(l, CASE WHEN n > %[3]d
		THEN error('list_resize: a list of ' || n::VARCHAR || ' elements is over the limit of %[3]d (query.memory_limit / 128)')
		ELSE n END),
	(l, n, v) AS system.main.list_resize(l, CASE WHEN n > %[3]d
		THEN error('list_resize: a list of ' || n::VARCHAR || ' elements is over the limit of %[3]d (query.memory_limit / 128)')
		ELSE n END, v);
CREATE TEMP MACRO lpad(s, n, p) AS system.main.lpad(s, CASE WHEN n > %[2]d
		THEN error('lpad: a string of ' || n::VARCHAR || ' characters is over the limit of %[2]d (a quarter of query.memory_limit)')
		ELSE n END, p);
CREATE TEMP MACRO rpad(s, n, p) AS system.main.rpad(s, CASE WHEN n > %[2]d
		THEN error('rpad: a string of ' || n::VARCHAR || ' characters is over the limit of %[2]d (a quarter of query.memory_limit)')
		ELSE n END, p);
`

// formatGuards replace format and printf, whose field widths build a
// string of any length ('{:>2000000000}', '%2000000000d', or a width from
// an argument): a format string with a width of 7 digits or more, or with
// a width from an argument, fails. Macros cannot take a variable number
// of arguments, so each count up to maxFormatArgs has its own overload.
func formatGuards() string {
	var b strings.Builder
	b.WriteString(`CREATE TEMP MACRO ` + internalPrefix + `fmt_ok(f) AS CASE
	WHEN regexp_matches(f, '\{[^}]*([0-9]{7,}|\{)|%[-+ #0-9.]*([0-9]{7,}|\*)')
	THEN error('format and printf: widths of 7 digits or more, and widths taken from an argument, are not allowed here')
	ELSE f END;
`)
	for _, fn := range []string{"format", "printf"} {
		b.WriteString("CREATE TEMP MACRO " + fn)
		for n := 0; n <= maxFormatArgs; n++ {
			args := ""
			for i := range n {
				args += fmt.Sprintf(", a%d", i)
			}
			if n > 0 {
				b.WriteString(",\n\t")
			}
			// The check is in the argument: a CASE around the call would
			// let the optimizer fold the call itself, and build the
			// string, before the check runs.
			fmt.Fprintf(&b, "(f%[1]s) AS system.main.%[3]s(%[2]sfmt_ok(f)%[1]s)", args, internalPrefix, fn)
		}
		b.WriteString(";\n")
	}
	return b.String()
}

// maxFormatArgs is the most arguments format and printf take here, beside
// the format string.
const maxFormatArgs = 12

// guardedFuncs are the functions stringGuards and formatGuards replace.
var guardedFuncs = map[string]bool{"repeat": true, "lpad": true, "rpad": true, "range": true, "generate_series": true, "list_resize": true, "format": true, "printf": true}

func openSlot(dsn string, maxValue int64) (*slot, error) {
	connector, err := duckdb.NewConnector(dsn, nil)
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(context.Background())
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("connect duckdb: %w", err)
	}
	if _, err := conn.ExecContext(context.Background(), fmt.Sprintf(stringGuards, maxValue, maxValue/4, maxValue/32)+formatGuards()); err != nil {
		_ = errors.Join(conn.Close(), db.Close())
		return nil, fmt.Errorf("duckdb string limits: %w", err)
	}
	return &slot{db: db, conn: conn}, nil
}

func (s *slot) close() error {
	for _, v := range s.views {
		v.release()
	}
	s.views = nil
	if err := errors.Join(s.conn.Close(), s.db.Close()); err != nil {
		return fmt.Errorf("close duckdb: %w", err)
	}
	return nil
}

// Tables lists the tables queries can read now, sorted by name.
func (e *Engine) Tables() []TableInfo { return sortedTables(e.src.Tables()) }

// sortedTables returns a copy of ts sorted by name.
func sortedTables(ts []TableInfo) []TableInfo {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b TableInfo) int { return strings.Compare(a.Name, b.Name) })
	return ts
}

// Plan plans sql without reading any rows and returns its result's schema,
// as Query would return it (Flight SQL's prepared statements need it). It
// is a query like any other: it counts in the metrics, waits for a free
// database and fails with the same errors.
func (e *Engine) Plan(ctx context.Context, sql string) (*arrow.Schema, error) {
	var sc *arrow.Schema
	err := e.Query(ctx, Request{SQL: sql, schemaOnly: true}, func(r *Result) error {
		sc = r.Schema()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sc, nil
}

// Options returns the engine's options.
func (e *Engine) Options() Options { return e.opts }

// Query runs req and calls fn with its result, which is valid only during
// the call. It returns fn's error, or an error wrapping ErrInvalid (with
// DuckDB's message), ErrTimeout or ErrBusy; before Start and after Stop
// it returns ErrNotRunning.
func (e *Engine) Query(ctx context.Context, req Request, fn func(*Result) error) (err error) {
	if e.state.Load() != stateRunning {
		return ErrNotRunning
	}
	start := time.Now()
	ctx, cancel := context.WithTimeoutCause(ctx, e.opts.Timeout, ErrTimeout)
	defer cancel()
	var res *Result
	defer func() {
		outcome := "ok"
		switch {
		case err == nil:
		case errors.Is(err, ErrInvalid):
			outcome = "invalid"
		case errors.Is(err, ErrTimeout):
			outcome = "timeout"
		case errors.Is(err, ErrBusy):
			outcome = "busy"
		case errors.Is(err, ErrMemory):
			outcome = "memory"
		default:
			outcome = "error"
		}
		e.queries.WithLabelValues(outcome).Inc()
		e.duration.Observe(time.Since(start).Seconds())
		if res != nil {
			e.rows.Add(float64(res.rows))
		}
		if err != nil {
			e.log.Debug("query failed", "outcome", outcome, "err", err, "sql", req.SQL)
		}
	}()
	if strings.TrimSpace(req.SQL) == "" {
		return fmt.Errorf("%w: empty query", ErrInvalid)
	}
	if req.Ranged() && !req.From.Before(req.To) {
		return fmt.Errorf("%w: time range from %v is not before to %v", ErrInvalid, req.From, req.To)
	}
	if !req.Ranged() && !req.schemaOnly {
		if pq, ok := findPointQuery(scanSQL(req.SQL)); ok {
			var answered bool
			res, answered, err = e.answerPoint(ctx, pq, e.limit(req))
			if err != nil {
				return err
			}
			if answered {
				defer res.release()
				e.points.Inc()
				if err := fn(res); err != nil {
					return err
				}
				return res.Err()
			}
		}
	}
	return e.execute(ctx, req, fn, &res)
}

// limit is the row limit of req.
func (e *Engine) limit(req Request) int {
	if req.MaxRows > 0 && req.MaxRows < e.opts.MaxRows {
		return req.MaxRows
	}
	return e.opts.MaxRows
}

// execute runs req through DuckDB on a free slot; *res is set to the
// result for Query's metrics.
func (e *Engine) execute(ctx context.Context, req Request, fn func(*Result) error, res **Result) (err error) {
	s, err := e.acquire(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if errors.Is(err, driver.ErrBadConn) {
			// The clean-up failed: replace the database rather than keep
			// one with stale views.
			e.log.Warn("replacing the query database", "err", err)
			_ = s.close()
			fresh, oerr := openSlot(e.dsn, e.opts.memoryLimitBytes()/4)
			if oerr != nil {
				e.log.Error("reopening the query database failed; one fewer query runs at a time", "err", oerr)
				fresh = nil
			}
			s = fresh
		}
		if s != nil {
			e.slots <- s
		} else {
			go e.reopen()
		}
	}()

	ctx, unwatch := e.mem.watch(ctx)
	defer unwatch()
	err = s.conn.Raw(func(dc any) error {
		c, ok := dc.(*duckdb.Conn)
		if !ok {
			return fmt.Errorf("duckdb connection is %T", dc)
		}
		var runErr error
		*res, runErr = e.run(ctx, s, c, req, fn)
		return runErr
	})
	return e.classify(ctx, err)
}

// acquire returns a free slot: at once, or after waiting in the queue
// within ctx; when MaxQueued queries already wait, it fails at once with
// ErrBusy.
func (e *Engine) acquire(ctx context.Context) (*slot, error) {
	select {
	case s := <-e.slots:
		return s, nil
	default:
	}
	if n := e.queued.Add(1); n > int64(e.opts.MaxQueued) {
		e.queued.Add(-1)
		return nil, fmt.Errorf("%w: %d queries running and %d waiting (query.max_concurrent, query.max_queued)", ErrBusy, cap(e.slots), e.opts.MaxQueued)
	}
	defer e.queued.Add(-1)
	select {
	case s := <-e.slots:
		return s, nil
	case <-e.stopping:
		return nil, ErrNotRunning
	case <-ctx.Done():
		if errors.Is(context.Cause(ctx), ErrTimeout) {
			return nil, fmt.Errorf("%w after %v waiting for one of the %d running queries to end", ErrTimeout, e.opts.Timeout, cap(e.slots))
		}
		return nil, fmt.Errorf("waiting for a free database: %w", context.Cause(ctx))
	}
}

// reopen retries opening a database until it succeeds, then returns it to
// the pool.
func (e *Engine) reopen() {
	for {
		time.Sleep(time.Second)
		s, err := openSlot(e.dsn, e.opts.memoryLimitBytes()/4)
		if err == nil {
			e.slots <- s
			return
		}
		e.log.Error("reopening the query database failed", "err", err)
	}
}

// classify turns a context cancelled by the timeout into ErrTimeout.
func (e *Engine) classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, ErrTimeout):
		return fmt.Errorf("%w after %v: %w", ErrTimeout, e.opts.Timeout, err)
	case errors.Is(cause, ErrMemory):
		return cause
	}
	return err
}

// run executes one query on a slot's connection. The streams it arms are
// disarmed and temporary tables dropped before it returns; when that fails,
// the error includes driver.ErrBadConn so that the slot is replaced.
func (e *Engine) run(ctx context.Context, s *slot, conn *duckdb.Conn, req Request, fn func(*Result) error) (_ *Result, err error) {
	scan := scanSQL(req.SQL)
	switch {
	case scan.statements == 0:
		return nil, fmt.Errorf("%w: empty query", ErrInvalid)
	case scan.statements > 1:
		return nil, fmt.Errorf("%w: one statement per query", ErrInvalid)
	case scan.first == "explain" && scan.names["analyze"]+scan.names["analyse"] > 0:
		return nil, fmt.Errorf("%w: EXPLAIN ANALYZE does not run here", ErrInvalid)
	}
	if err := checkNames(scan); err != nil {
		return nil, err
	}
	ar, err := duckdb.NewArrowFromConn(conn)
	if err != nil {
		return nil, fmt.Errorf("duckdb arrow: %w", err)
	}
	tables := e.src.Tables()
	// Every table has its (unarmed) view on every database, so that SHOW
	// TABLES, information_schema and DuckDB's "did you mean" see them all,
	// whichever database runs the query.
	if err := s.sync(ar, conn, tables); err != nil {
		return nil, err
	}
	defer func() {
		if errors.Is(err, ErrInvalid) {
			err = tidyMessage(err, sortedTables(tables))
		}
	}()
	var used []TableInfo
	multiScan := scan.multiScan
	for _, t := range tables {
		switch scan.names[strings.ToLower(t.Name)] {
		case 0:
			continue
		case 1:
		default:
			multiScan = true
		}
		used = append(used, t)
	}

	var cleanup []func() error
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			if cerr := cleanup[i](); cerr != nil {
				err = errors.Join(err, cerr, driver.ErrBadConn)
			}
		}
	}()
	var filter *entityFilter
	if f, ok := findEntityFilter(scan); ok && len(used) == 1 {
		filter = &f
	}
	register := func(t TableInfo, as string) error {
		v, err := s.view(ar, conn, as, t.Schema)
		if err != nil {
			return fmt.Errorf("table %s: %w", t.Name, err)
		}
		rr, err := e.open(ctx, req, t, filter)
		if err != nil {
			return err
		}
		v.arm(rr)
		cleanup = append(cleanup, func() error { v.disarm(); return nil })
		if as != t.Name {
			// A materialization source lives for this query only, so that
			// SHOW TABLES never lists it.
			cleanup = append(cleanup, func() error { return s.drop(conn, as) })
		}
		return nil
	}
	for _, t := range used {
		if err := register(t, t.Name); err != nil {
			return nil, err
		}
	}

	// DuckDB reads an Arrow stream once: a plan with two scans of one view
	// would see the rows in only one of them. When the query might scan a
	// table twice, count the Arrow scans in its plan and, if some table is
	// scanned twice, materialize the tables for this query (a copy, but a
	// correct one).
	materialized := false
	guard := func(q string) error {
		if !multiScan || len(used) == 0 || materialized {
			return nil
		}
		// PIVOT without an IN list reads the table while binding, to find
		// the pivot values, so even EXPLAIN would use up the stream: copy
		// without asking.
		if scan.names["pivot"]+scan.names["unpivot"] == 0 {
			scans, err := e.arrowScans(ctx, ar, q)
			if err != nil || scans <= len(used) {
				return err
			}
		}
		materialized = true
		for _, t := range used {
			// The temporary table shadows the view of the same name: DuckDB
			// looks names up in the temp schema first.
			src := internalPrefix + "src_" + t.Name
			if err := register(t, src); err != nil {
				return err
			}
			if _, err := conn.ExecContext(ctx, "CREATE TEMP TABLE "+quoteIdent(t.Name)+" AS SELECT * FROM "+quoteIdent(src), nil); err != nil {
				return fmt.Errorf("materialize %s: %w", t.Name, err)
			}
			cleanup = append(cleanup, e.dropper(conn, "TABLE", t.Name))
		}
		return nil
	}

	limit := e.limit(req)
	if req.schemaOnly {
		limit = -1
	}
	var rr array.RecordReader
	if scan.balanced {
		// Fast path: one statement with balanced parentheses is wrapped
		// in a subquery, which only parses if it is a query, so it cannot
		// write, and DuckDB stops at the limit instead of materializing
		// everything. One plan, no separate statement check.
		q := "SELECT * FROM (\n" + req.SQL[:scan.end] + "\n) AS " + internalPrefix + "result LIMIT " + strconv.Itoa(limit+1)
		err := guard(q)
		if err == nil {
			rr, err = ar.QueryContext(ctx, q)
		}
		if err != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("run query: %w", err)
		}
	}
	if rr == nil {
		// Slow path: statements that cannot be wrapped (DESCRIBE, SHOW,
		// PIVOT, EXPLAIN) and errors. Prepare the query as written, which
		// gives DuckDB's message for the user's own text, check that it
		// only reads, then run it and cut the rows off here.
		kind, err := statementType(conn, req.SQL)
		if err != nil {
			return nil, err
		}
		if kind == duckdb.STATEMENT_TYPE_SELECT {
			if err := guard(req.SQL); err != nil {
				return nil, err
			}
		}
		rr, err = ar.QueryContext(ctx, req.SQL)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("run query: %w", err)
			}
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if req.schemaOnly {
			limit = 0
		}
	}
	if limit < 0 {
		limit = 0
	}
	res := &Result{rr: rr, limit: int64(limit)}
	defer res.release()
	if err := fn(res); err != nil {
		return res, err
	}
	if err := res.Err(); err != nil {
		return res, fmt.Errorf("read result: %w", err)
	}
	return res, nil
}

// open returns a reader over the table's rows for this request: the hot
// batches, or history when the request has a time range and the table a
// time column. With a filter, a source that can look entities up returns
// only their rows (a superset of what the query's WHERE keeps).
func (e *Engine) open(ctx context.Context, req Request, t TableInfo, filter *entityFilter) (array.RecordReader, error) {
	if req.Ranged() && t.TimeColumn != "" {
		rr, err := e.src.History(ctx, t.Name, req.From.UnixNano(), req.To.UnixNano())
		if err != nil {
			return nil, fmt.Errorf("table %s history: %w", t.Name, err)
		}
		return rr, nil
	}
	var (
		recs []arrow.RecordBatch
		ok   bool
		err  error
	)
	if l, can := e.src.(EntityLookup); can && filter != nil {
		recs, ok, err = l.Lookup(ctx, t.Name, filter.device, filter.component)
		if err != nil {
			return nil, fmt.Errorf("table %s lookup: %w", t.Name, err)
		}
		if ok {
			e.lookups.Inc()
		}
	}
	if !ok {
		recs, err = e.src.Records(ctx, t.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.Name, err)
	}
	rr, err := array.NewRecordReader(t.Schema, recs)
	for _, r := range recs {
		r.Release()
	}
	if err != nil {
		return nil, fmt.Errorf("table %s: %w", t.Name, err)
	}
	return rr, nil
}

func (e *Engine) dropper(conn *duckdb.Conn, kind, name string) func() error {
	return func() error {
		// A fresh context: the query's may be cancelled, the clean-up must run.
		if _, err := conn.ExecContext(context.Background(), "DROP "+kind+" IF EXISTS "+quoteIdent(name), nil); err != nil {
			return fmt.Errorf("drop %s %s: %w", strings.ToLower(kind), name, err)
		}
		return nil
	}
}

// arrowScans counts the Arrow scans in the plan of q.
func (e *Engine) arrowScans(ctx context.Context, ar *duckdb.Arrow, q string) (int, error) {
	rr, err := ar.QueryContext(ctx, "EXPLAIN (FORMAT json) "+q)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	defer rr.Release()
	n := 0
	for rr.Next() {
		rec := rr.RecordBatch()
		for c := 0; c < int(rec.NumCols()); c++ {
			if col, ok := rec.Column(c).(*array.String); ok {
				for i := 0; i < col.Len(); i++ {
					n += strings.Count(col.Value(i), `"ARROW_SCAN`)
				}
			}
		}
	}
	if err := rr.Err(); err != nil {
		return 0, fmt.Errorf("explain: %w", err)
	}
	return n, nil
}

// fileFuncs are DuckDB's functions that read files. The sandbox disables
// file access, but DuckDB still allows its temporary directory and the
// write-ahead log paths of the in-memory database (<cwd>/.tmp/, <cwd>/.wal,
// measured with DuckDB 1.5.6) and these settings cannot be changed once
// external access is off: so queries naming them are refused here.
var fileFuncs = map[string]bool{
	"read_text": true, "read_blob": true, "glob": true,
	"read_csv": true, "read_csv_auto": true, "sniff_csv": true,
	"read_json": true, "read_json_auto": true, "read_json_objects": true, "read_json_objects_auto": true,
	"read_ndjson": true, "read_ndjson_auto": true, "read_ndjson_objects": true,
	"read_parquet": true, "parquet_scan": true, "parquet_metadata": true, "parquet_schema": true,
	"parquet_file_metadata": true, "parquet_kv_metadata": true, "parquet_bloom_probe": true,
	"read_duckdb": true, "read_xlsx": true,
}

// qualifiers are the schema and catalog names that reach DuckDB's own
// functions.
var qualifiers = map[string]bool{"main": true, "system": true, "pg_catalog": true, "temp": true}

// checkNames refuses reserved names, file access, and qualified calls of
// the functions stringGuards replace.
func checkNames(scan sqlScan) error {
	for name := range scan.names {
		if strings.HasPrefix(name, internalPrefix) {
			return fmt.Errorf("%w: names starting with %s are reserved", ErrInvalid, internalPrefix)
		}
	}
	toks := scan.tokens
	for i, t := range toks {
		switch {
		case (t.kind == tokWord || t.kind == tokIdent) && fileFuncs[strings.ToLower(t.text)]:
			return fmt.Errorf("%w: %s: queries cannot read files", ErrInvalid, t.text)
		case t.kind == tokString && i > 0 && toks[i-1].kind == tokWord && (toks[i-1].text == "from" || toks[i-1].text == "join"):
			// FROM 'file.csv' is a replacement scan that reads a file.
			return fmt.Errorf("%w: FROM '%s': queries cannot read files", ErrInvalid, t.text)
		case (t.kind == tokWord || t.kind == tokIdent) && guardedFuncs[strings.ToLower(t.text)] && i > 0 && toks[i-1].kind == tokSymbol && toks[i-1].text == "." &&
			i > 1 && (toks[i-2].kind == tokWord || toks[i-2].kind == tokIdent) && qualifiers[strings.ToLower(toks[i-2].text)]:
			return fmt.Errorf("%w: %s.%s: call %s unqualified", ErrInvalid, toks[i-2].text, t.text, t.text)
		}
	}
	return nil
}

// statementType prepares q as exactly one statement and checks that it only
// reads.
func statementType(conn *duckdb.Conn, q string) (duckdb.StmtType, error) {
	st, err := conn.Prepare(q)
	if err != nil {
		if strings.Contains(err.Error(), "multi-statement") {
			return 0, fmt.Errorf("%w: one statement per query", ErrInvalid)
		}
		return 0, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	defer st.Close()
	ds, ok := st.(*duckdb.Stmt)
	if !ok {
		return 0, fmt.Errorf("duckdb statement is %T", st)
	}
	kind, err := ds.StatementType()
	if err != nil {
		return 0, fmt.Errorf("statement type: %w", err)
	}
	switch kind {
	case duckdb.STATEMENT_TYPE_SELECT, duckdb.STATEMENT_TYPE_EXPLAIN:
		return kind, nil
	}
	return 0, fmt.Errorf("%w: only SELECT, DESCRIBE, SUMMARIZE and EXPLAIN run here (statement type %d)", ErrInvalid, kind)
}

// internalPrefix starts the names the engine creates; queries may not use
// them.
const internalPrefix = "__netfeat_"

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// Result is a query's result: a stream of Arrow record batches with the row
// limit applied. It is valid only inside the function given to
// Engine.Query; batches are valid until the next call to Next.
type Result struct {
	rr        array.RecordReader
	limit     int64
	rows      int64
	truncated bool
	cur       arrow.RecordBatch
	sliced    bool
}

// Schema is the result's schema.
func (r *Result) Schema() *arrow.Schema { return r.rr.Schema() }

// Next advances to the next batch; false at the end, at the row limit or on
// an error (see Err).
func (r *Result) Next() bool {
	r.dropSlice()
	if r.rows >= r.limit {
		if !r.truncated && r.rr.Next() && r.rr.RecordBatch().NumRows() > 0 {
			r.truncated = true
		}
		return false
	}
	for r.rr.Next() {
		rec := r.rr.RecordBatch()
		n := rec.NumRows()
		if n == 0 {
			continue
		}
		if r.rows+n > r.limit {
			keep := r.limit - r.rows
			r.cur = rec.NewSlice(0, keep)
			r.sliced = true
			r.truncated = true
			r.rows += keep
			return true
		}
		r.cur = rec
		r.rows += n
		return true
	}
	return false
}

// RecordBatch is the current batch.
func (r *Result) RecordBatch() arrow.RecordBatch { return r.cur }

// Err is the error that stopped Next, if any.
func (r *Result) Err() error { return r.rr.Err() }

// Truncated reports whether the row limit cut the result off. It is
// final once Next has returned false.
func (r *Result) Truncated() bool { return r.truncated }

// Rows is the number of rows returned so far.
func (r *Result) Rows() int64 { return r.rows }

func (r *Result) dropSlice() {
	if r.sliced {
		r.cur.Release()
		r.sliced = false
	}
	r.cur = nil
}

func (r *Result) release() {
	r.dropSlice()
	r.rr.Release()
}
