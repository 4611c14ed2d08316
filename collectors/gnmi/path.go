package gnmi

import (
	"fmt"
	"sort"
	"strings"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
)

// ParsePath parses a subscription path written the way operators and Cisco
// documentation write them: an optional origin before the first colon
// ("openconfig-interfaces:interfaces/interface/state/counters"), elements
// separated by "/", and list keys in brackets ("interface[name=Gi0/0/0/0]").
// Slashes inside brackets belong to the key value; "\]" escapes a bracket
// inside a value. The origin is only recognised in the first element, before
// any bracket, so "interface[name=a:b]" keeps its colon.
func ParsePath(s string) (*gpb.Path, error) {
	p := &gpb.Path{}
	s = strings.TrimPrefix(s, "/")
	if s == "" {
		return nil, fmt.Errorf("empty path")
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

// FormatPath renders p in the form ParsePath reads, origin included.
func FormatPath(p *gpb.Path) string {
	var b []byte
	if p.GetOrigin() != "" {
		b = append(b, p.GetOrigin()...)
		b = append(b, ':')
	}
	b, _ = appendElems(b, p.GetElem())
	return string(b)
}

// appendElems appends elems to dst as "a/b[k=v]/c" (with a leading "/" when
// dst is not empty) and reports false if an element is malformed (empty
// name or empty key name). Keys are written in name order so that a path
// always renders the same way.
func appendElems(dst []byte, elems []*gpb.PathElem) ([]byte, bool) {
	ok := true
	var names [4]string
	for _, e := range elems {
		if len(dst) > 0 {
			dst = append(dst, '/')
		}
		if e.GetName() == "" {
			ok = false
		}
		dst = append(dst, e.GetName()...)
		keys := e.GetKey()
		switch len(keys) {
		case 0:
			continue
		case 1:
			for k, v := range keys {
				if k == "" {
					ok = false
				}
				dst = appendKey(dst, k, v)
			}
			continue
		}
		ks := names[:0]
		for k := range keys {
			if k == "" {
				ok = false
			}
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			dst = appendKey(dst, k, keys[k])
		}
	}
	return dst, ok
}

func appendKey(dst []byte, k, v string) []byte {
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

// splitModule splits a YANG-qualified name "module:name" into its parts;
// a name without a colon has an empty module.
func splitModule(s string) (module, name string) {
	if i := strings.IndexByte(s, ':'); i > 0 {
		return s[:i], s[i+1:]
	}
	return "", s
}
