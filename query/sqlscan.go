//go:build duckdb_arrow

package query

import "strings"

// sqlScan is what a lexical pass over a query finds. The lexer follows
// DuckDB's quoting rules (single-quoted strings with doubled quotes, E-strings
// with backslash escapes, double-quoted identifiers, $tag$ dollar quoting,
// -- and /* */ comments) so that it sees the same statement boundaries and
// parentheses as DuckDB's parser.
type sqlScan struct {
	// names counts identifiers, quoted identifiers and string literals,
	// lower-cased: DuckDB resolves names case-insensitively, and table
	// functions such as query_table take names as strings.
	names map[string]int
	// first is the first word, lower-cased.
	first string
	// multiScan is true when the query has constructs that can scan one
	// table twice even if it is named once (CTEs, set operations,
	// subqueries, PIVOT, LATERAL).
	multiScan bool
	// statements is the number of statements (semicolon-separated, empty
	// ones not counted).
	statements int
	// balanced is true when every ')' closes an earlier '(' and none stay
	// open: only then can the query be wrapped in a subquery safely.
	balanced bool
	// end is the offset just past the last token that is neither a comment
	// nor a trailing semicolon.
	end int
	// tokens are the query's tokens in order, comments and whitespace left
	// out; words are lower-cased.
	tokens []sqlToken
}

// sqlToken is one lexical token.
type sqlToken struct {
	kind tokenKind
	text string // lower-cased word, unquoted identifier or literal, or the symbol
}

type tokenKind uint8

const (
	tokWord   tokenKind = iota // keyword or bare identifier
	tokIdent                   // "quoted identifier"
	tokString                  // 'literal' (no E prefix, no dollar quoting)
	tokOther                   // E-strings, dollar-quoted strings
	tokSymbol                  // one punctuation character
)

// multiScanWords are the keywords after which a plan may hold two scans of
// a table named once.
var multiScanWords = map[string]bool{
	"with": true, "union": true, "intersect": true, "except": true,
	"pivot": true, "unpivot": true, "lateral": true, "recursive": true,
}

func scanSQL(q string) sqlScan {
	s := sqlScan{names: make(map[string]int), balanced: true}
	selects, depth := 0, 0
	inStatement := false
	token := func() {
		if !inStatement {
			inStatement = true
			s.statements++
		}
	}
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
			// Block comments nest, as in PostgreSQL.
			nest := 0
			for i < len(q) {
				if q[i] == '/' && i+1 < len(q) && q[i+1] == '*' {
					nest++
					i += 2
					continue
				}
				if q[i] == '*' && i+1 < len(q) && q[i+1] == '/' {
					nest--
					i += 2
					if nest == 0 {
						break
					}
					continue
				}
				i++
			}
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
			continue
		case c == ';':
			inStatement = false
			i++
			continue
		case c == '\'' || c == '"':
			token()
			escapes := c == '\'' && i > 0 && (q[i-1] == 'e' || q[i-1] == 'E') && (i == 1 || !isIdentPart(q[i-2]))
			var b strings.Builder
			j := i + 1
			for j < len(q) {
				if escapes && q[j] == '\\' && j+1 < len(q) {
					b.WriteByte(q[j+1])
					j += 2
					continue
				}
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
			kind := tokIdent
			switch {
			case c == '"':
			case escapes:
				kind = tokOther
			default:
				kind = tokString
			}
			s.tokens = append(s.tokens, sqlToken{kind: kind, text: b.String()})
			i = min(j+1, len(q))
		case c == '$' && dollarTag(q[i:]) != "":
			token()
			tag := dollarTag(q[i:])
			body := q[i+len(tag):]
			j := strings.Index(body, tag)
			if j < 0 {
				add(body)
				i = len(q)
			} else {
				add(body[:j])
				i += len(tag) + j + len(tag)
			}
			s.tokens = append(s.tokens, sqlToken{kind: tokOther})
		case isIdentStart(c):
			token()
			j := i
			for j < len(q) && isIdentPart(q[j]) {
				j++
			}
			word := q[i:j]
			if s.first == "" {
				s.first = strings.ToLower(word)
			}
			add(word)
			s.tokens = append(s.tokens, sqlToken{kind: tokWord, text: strings.ToLower(word)})
			i = j
		default:
			token()
			s.tokens = append(s.tokens, sqlToken{kind: tokSymbol, text: q[i : i+1]})
			switch c {
			case '(':
				depth++
			case ')':
				depth--
				if depth < 0 {
					s.balanced = false
				}
			}
			i++
		}
		s.end = i
	}
	if depth != 0 {
		s.balanced = false
	}
	if selects > 1 {
		s.multiScan = true
	}
	return s
}

// dollarTag returns the opening "$tag$" or "$$" at the start of s, or "".
func dollarTag(s string) string {
	for j := 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '$':
			return s[:j+1]
		case c >= '0' && c <= '9':
			if j == 1 {
				return "" // $1 is a parameter
			}
		case !isIdentStart(c):
			return ""
		}
	}
	return ""
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || c == '$' || c >= '0' && c <= '9' }
