// Package query runs sandboxed SQL over netfeat's Arrow tables with DuckDB.
// Its network front ends (HTTP, NATS request/reply, Arrow Flight SQL) are in
// query/frontend and use only this package's exported API; Client is the
// HTTP client of the front end, and TrainingSet builds training sets with
// it.
//
// The tables (samples, one per feature view, latest_<view>, decisions,
// series, devices, metrics) come from a Source as Arrow record batches. For
// every query the Engine hands the batches of the tables the SQL names to
// DuckDB through the Arrow C stream interface: DuckDB reads the store's own
// buffers and nothing is copied on the Go side. A stream is read once, so
// each query arms its views with fresh readers (see armedView).
//
// The DuckDB database is opened with external access disabled, extension
// autoload/autoinstall off, the unused_columns optimizer disabled
// (duckdb/duckdb-go#24) and its configuration locked, so SQL cannot read or
// write files, attach databases, load extensions or change settings. Only
// SELECT-like statements (SELECT, DESCRIBE, SUMMARIZE, EXPLAIN) run; every
// query has a timeout, and its result a row limit.
//
// An Engine's life is New (validate options, register metrics; no I/O),
// Start (set the Go memory limit, open the DuckDB databases) and Stop
// (wait for running queries, close the databases); Query returns
// ErrNotRunning outside it.
//
// The package needs DuckDB's Arrow interface: build and test it with
// -tags duckdb_arrow (the Makefile and scripts/test.sh do). Without the tag
// the build fails with one error, in notag.go, whose identifier names it.
package query
