//go:build duckdb_arrow

package query

import (
	"regexp"
	"strings"
)

// didYouMeanRE finds DuckDB's suggestion after an unknown table name:
// `Table with name X does not exist!\nDid you mean "Y"?`.
var didYouMeanRE = regexp.MustCompile(`(Table with name (\S+) does not exist!)\s*\nDid you mean "([^"]+)"\?`)

// tidyError is an error whose message was rewritten for the user; it
// still unwraps to the original (ErrInvalid and DuckDB's error).
type tidyError struct {
	msg string
	err error
}

func (t *tidyError) Error() string { return t.msg }
func (t *tidyError) Unwrap() error { return t.err }

// tidyMessage keeps DuckDB's message for a misspelt table name but not its
// suggestion of an internal catalog object (pg_description, pg_tables,
// duckdb_settings...): it suggests the nearest netfeat table instead, or
// lists the tables when none is near.
func tidyMessage(err error, tables []TableInfo) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	m := didYouMeanRE.FindStringSubmatchIndex(msg)
	if m == nil {
		if strings.Contains(msg, "Table with name ") && strings.Contains(msg, " does not exist!") {
			return &tidyError{msg: strings.Replace(msg, " does not exist!", " does not exist!\n"+tableHint("", tables), 1), err: err}
		}
		return err
	}
	suggestion := msg[m[6]:m[7]]
	for _, t := range tables {
		if strings.EqualFold(t.Name, suggestion) {
			return err
		}
	}
	name := strings.Trim(msg[m[4]:m[5]], `"`)
	out := msg[:m[2]] + msg[m[2]:m[3]] + "\n" + tableHint(name, tables) + msg[m[1]:]
	return &tidyError{msg: out, err: err}
}

// tableHint suggests the netfeat table nearest to name, when one is within
// a third of its length in edits, or else lists the tables.
func tableHint(name string, tables []TableInfo) string {
	best, bestD := "", -1
	for _, t := range tables {
		if d := editDistance(strings.ToLower(name), t.Name); bestD < 0 || d < bestD {
			best, bestD = t.Name, d
		}
	}
	if name != "" && bestD >= 0 && bestD <= max(1, len(name)/3) {
		return `Did you mean "` + best + `"?`
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.Name
	}
	return "Tables: " + strings.Join(names, ", ") + "."
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
