//go:build !duckdb_arrow

package query

// The query package needs DuckDB's Arrow interface, which duckdb-go only
// compiles with the duckdb_arrow build tag; every other file of the
// package has that tag. Without it the build stops here, with one error
// whose identifier names the fix, instead of deep inside the engine.
var _ = rebuild_with__go_build_tags_duckdb_arrow
