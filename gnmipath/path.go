// Package gnmipath owns the string form of a gNMI path that every stage
// of netfeat writes and reads: elements separated by "/", list keys in
// brackets in key-name order ("interface[name=Gi0/0/0/0]"), "\]" and "\\"
// escaping inside key values, and an optional origin before the first
// colon ("openconfig-interfaces:interfaces/interface"). The collector
// formats paths with Append*, configuration is read with Parse, and the
// normalizer splits observation paths with Split.
package gnmipath

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
)

// ErrEmpty is returned by Parse and Split for a path without elements.
var ErrEmpty = errors.New("empty path")

// Parse parses a subscription path written the way operators and Cisco
// documentation write them: an optional origin before the first colon
// ("openconfig-interfaces:interfaces/interface/state/counters"), elements
// separated by "/", and list keys in brackets ("interface[name=Gi0/0/0/0]").
// Slashes inside brackets belong to the key value; "\]" escapes a bracket
// inside a value. The origin is only recognised in the first element, before
// any bracket, so "interface[name=a:b]" keeps its colon.
func Parse(s string) (*gpb.Path, error) {
	p := &gpb.Path{}
	s = strings.TrimPrefix(s, "/")
	if s == "" {
		return nil, ErrEmpty
	}
	if i := strings.IndexByte(s, ':'); i > 0 {
		if j := strings.IndexAny(s, "/["); j < 0 || i < j {
			p.Origin, s = s[:i], s[i+1:]
		}
	}
	for len(s) > 0 {
		elem, rest, err := parseElem(s)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", s, err)
		}
		p.Elem = append(p.Elem, elem)
		s = rest
	}
	if len(p.Elem) == 0 {
		return nil, fmt.Errorf("path has no elements")
	}
	return p, nil
}

// parseElem reads one element and returns the input after it and its "/".
func parseElem(s string) (*gpb.PathElem, string, error) {
	e := &gpb.PathElem{}
	i := 0
	for i < len(s) && s[i] != '/' && s[i] != '[' {
		i++
	}
	e.Name = s[:i]
	if e.Name == "" {
		return nil, "", fmt.Errorf("empty element name")
	}
	for i < len(s) && s[i] == '[' {
		i++
		eq := strings.IndexByte(s[i:], '=')
		if eq <= 0 {
			return nil, "", fmt.Errorf("element %q: key without name or '='", e.Name)
		}
		name := s[i : i+eq]
		i += eq + 1
		var val strings.Builder
		closed := false
		for i < len(s) {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				val.WriteByte(s[i+1])
				i += 2
				continue
			}
			i++
			if c == ']' {
				closed = true
				break
			}
			val.WriteByte(c)
		}
		if !closed {
			return nil, "", fmt.Errorf("element %q: unterminated key %q", e.Name, name)
		}
		if e.Key == nil {
			e.Key = map[string]string{}
		}
		e.Key[name] = val.String()
	}
	if i < len(s) {
		if s[i] != '/' {
			return nil, "", fmt.Errorf("element %q: unexpected %q after keys", e.Name, s[i])
		}
		i++
	}
	return e, s[i:], nil
}

// Format renders p in the form Parse reads, origin included.
func Format(p *gpb.Path) string {
	var b []byte
	if p.GetOrigin() != "" {
		b = append(b, p.GetOrigin()...)
		b = append(b, ':')
	}
	b, _ = AppendElems(b, p.GetElem())
	return string(b)
}

// AppendElems appends elems to dst as "a/b[k=v]/c" (with a leading "/"
// when dst is not empty) and reports false if an element is malformed
// (empty name or empty key name). Keys are written in name order so that
// a path always renders the same way.
func AppendElems(dst []byte, elems []*gpb.PathElem) ([]byte, bool) {
	ok := true
	for _, e := range elems {
		if len(dst) > 0 {
			dst = append(dst, '/')
		}
		if e.GetName() == "" {
			ok = false
		}
		dst = append(dst, e.GetName()...)
		keys := e.GetKey()
		if len(keys) == 0 {
			continue
		}
		if _, empty := keys[""]; empty {
			ok = false
		}
		dst = AppendKeys(dst, keys)
	}
	return dst, ok
}

// AppendKeys appends keys to dst as "[k=v]" in key-name order.
func AppendKeys(dst []byte, keys map[string]string) []byte {
	if len(keys) == 1 {
		for k, v := range keys {
			return AppendKey(dst, k, v)
		}
	}
	var names [4]string
	ks := names[:0]
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		dst = AppendKey(dst, k, keys[k])
	}
	return dst
}

// AppendKey appends one list key to dst as "[k=v]", escaping "]" and "\"
// in the value with a backslash.
func AppendKey[S ~string | ~[]byte](dst []byte, k, v S) []byte {
	dst = append(dst, '[')
	dst = append(dst, k...)
	dst = append(dst, '=')
	for i := 0; i < len(v); i++ {
		if v[i] == ']' || v[i] == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, v[i])
	}
	return append(dst, ']')
}

// SplitModule splits a YANG-qualified name "module:name" into its parts;
// a name without a colon has an empty module.
func SplitModule(s string) (module, name string) {
	if i := strings.IndexByte(s, ':'); i > 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}

// SplitOrigin splits "origin:a/b/c" into the origin and the rest. A colon
// counts only before the first "/" or "[", so "a/b[name=x:y]" has none.
func SplitOrigin(s string) (origin, rest string) {
	if i := strings.IndexByte(s, ':'); i > 0 && !strings.ContainsAny(s[:i], "/[") {
		return s[:i], s[i+1:]
	}
	return "", s
}
