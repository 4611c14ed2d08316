//go:build !duckdb_arrow

package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// errNoDuckDB explains why query and export are missing from this build.
var errNoDuckDB = errors.New("this netfeat was built without -tags duckdb_arrow, which query and export need (make build)")

// newQueryCmd, in a build without DuckDB, only says how to get one: the
// query package needs DuckDB's Arrow interface to compile. Building
// without the tag keeps the rest of the binary (and its tests) usable.
func newQueryCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "query [flags] SQL",
		Short: "Run SQL against a running netfeat (needs a duckdb_arrow build)",
		RunE:  func(*cobra.Command, []string) error { return errNoDuckDB },
	}
}

// newExportCmd, in a build without DuckDB, only says how to get one.
func newExportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export --labels FILE --view V --out FILE",
		Short: "Write a point-in-time correct training set (needs a duckdb_arrow build)",
		RunE:  func(*cobra.Command, []string) error { return errNoDuckDB },
	}
}
