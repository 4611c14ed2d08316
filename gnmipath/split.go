package gnmipath

import (
	"fmt"
	"strings"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
)

// Key is one list key of a path element.
type Key struct {
	Name, Value string
}

// Split is a path taken apart for matching against a schema: its schema
// path (element names without keys or module prefixes,
// "interfaces/interface/state/oper-status") and the list keys met on the
// way, outermost first.
type Split struct {
	Schema string
	Keys   []Key
	// Module is the YANG module prefix of the first element, if it had
	// one ("Cisco-IOS-XE-interfaces-oper:interfaces/...").
	Module string
}

// SplitPath splits a path as collectors write it: elements separated by
// "/", list keys in brackets ("interface[name=Gi0/0/0/0]"), "\]" and "\\"
// escaping inside key values, and YANG module prefixes on element names.
// A bracket without "=" ("phys-[eth1/1]", the NX-OS DME form) is a key
// named "id" with the bracket's text as value. A pattern from a profile
// uses the same syntax with key names only ("interface[name]").
func SplitPath(s string) (Split, error) {
	var p Split
	var b strings.Builder
	s = strings.TrimPrefix(s, "/")
	first := true
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '/' && s[i] != '[' {
			i++
		}
		name := s[:i]
		if j := strings.IndexByte(name, ':'); j >= 0 {
			if first {
				p.Module = name[:j]
			}
			name = name[j+1:]
		}
		if name == "" {
			return Split{}, fmt.Errorf("empty element name in %q", s)
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(name)
		for i < len(s) && s[i] == '[' {
			i++
			var key, val strings.Builder
			inVal, closed, hasEq := false, false, false
			for i < len(s) {
				c := s[i]
				if c == '\\' && i+1 < len(s) {
					if inVal {
						val.WriteByte(s[i+1])
					} else {
						key.WriteByte(s[i+1])
					}
					i += 2
					continue
				}
				i++
				if c == ']' {
					closed = true
					break
				}
				if c == '=' && !inVal {
					inVal, hasEq = true, true
					continue
				}
				if inVal {
					val.WriteByte(c)
				} else {
					key.WriteByte(c)
				}
			}
			if !closed {
				return Split{}, fmt.Errorf("element %q: unterminated key", name)
			}
			k, v := key.String(), val.String()
			if !hasEq {
				// "[value]" in data, "[name]" in a pattern; the caller
				// decides which by context.
				k, v = "id", k
			}
			p.Keys = append(p.Keys, Key{Name: k, Value: v})
		}
		if i < len(s) {
			if s[i] != '/' {
				return Split{}, fmt.Errorf("element %q: unexpected %q after keys", name, s[i])
			}
			i++
		}
		s = s[i:]
		first = false
	}
	if b.Len() == 0 {
		return Split{}, ErrEmpty
	}
	p.Schema = b.String()
	return p, nil
}

// Elems returns p's elements, converting the names in the deprecated
// Path.element field that old targets still send into elements.
func Elems(p *gpb.Path) []*gpb.PathElem {
	//lint:ignore SA1019 old targets (IOS-XR 6.x, early Junos) send only the deprecated string elements.
	names := p.GetElement()
	if len(p.GetElem()) > 0 || len(names) == 0 {
		return p.GetElem()
	}
	out := make([]*gpb.PathElem, len(names))
	for i, name := range names {
		out[i] = &gpb.PathElem{Name: name}
	}
	return out
}
