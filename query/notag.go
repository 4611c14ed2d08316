//go:build !duckdb_arrow

package query

// The query package needs DuckDB's Arrow interface, which duckdb-go only
// compiles with the duckdb_arrow build tag. Without the tag the build stops
// here, with this name in the error, instead of deep inside duckdb-go.
var _ = build_with_tags_duckdb_arrow
