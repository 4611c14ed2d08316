package query

import "strings"

// sqlScan is what a lexical pass over a query finds: how often each name
// occurs (identifiers, quoted identifiers and string literals, lower-cased,
// since DuckDB resolves names case-insensitively and table functions such
// as query_table take names as strings), whether the query might scan a
// table more than once, and where its last significant token ends.
type sqlScan struct {
	names map[string]int
	// multiScan is true when the query has constructs that can scan one
	// table twice even if it is named once (CTEs, set operations,
	// subqueries, PIVOT, LATERAL).
	multiScan bool
	// end is the offset just past the last token that is neither a comment
	// nor a trailing semicolon.
	end int
}

// multiScanWords are the keywords after which a plan may hold two scans of
// a table named once.
var multiScanWords = map[string]bool{
	"with": true, "union": true, "intersect": true, "except": true,
	"pivot": true, "unpivot": true, "lateral": true, "recursive": true,
}

func scanSQL(q string) sqlScan {
	s := sqlScan{names: make(map[string]int)}
	selects := 0
	add := func(name string) {
		name = strings.ToLower(name)
		s.names[name]++
		if multiScanWords[name] {
			s.multiScan = true
		}
		if name == "select" {
			selects++
		}
	}
	i := 0
	for i < len(q) {
		c := q[i]
		switch {
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			for i < len(q) && q[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				i = len(q)
			} else {
				i += j + 4
			}
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
			continue
		case c == ';':
			i++
			continue
		case c == '\'' || c == '"':
			j := i + 1
			var b strings.Builder
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c {
						b.WriteByte(c)
						j += 2
						continue
					}
					break
				}
				b.WriteByte(q[j])
				j++
			}
			add(b.String())
			i = min(j+1, len(q))
		case isIdentStart(c):
			j := i
			for j < len(q) && isIdentPart(q[j]) {
				j++
			}
			add(q[i:j])
			i = j
		default:
			i++
		}
		s.end = i
	}
	if selects > 1 {
		s.multiScan = true
	}
	return s
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c == '$' || c >= '0' && c <= '9' }
