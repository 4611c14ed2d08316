package normalize

import (
	"fmt"
	"strings"
)

// pathKey is one list key of a gNMI path element.
type pathKey struct {
	name, value string
}

// parsedPath is a gNMI path split into its schema path (element names
// without keys or module prefixes, "interfaces/interface/state/oper-status")
// and the list keys met on the way.
type parsedPath struct {
	schema string
	keys   []pathKey
	// module is the YANG module prefix of the first element, if it had one
	// ("Cisco-IOS-XE-interfaces-oper:interfaces/...").
	module string
}

// parseGNMIPath parses a path as collectors write it: elements separated by
// "/", list keys in brackets ("interface[name=Gi0/0/0/0]"), "\]" and "\\"
// escaping inside key values, and YANG module prefixes on element names.
// A bracket without "=" ("phys-[eth1/1]", the NX-OS DME form) is a key
// named "id". A pattern from a profile uses the same syntax with key names
// only ("interface[name]").
func parseGNMIPath(s string) (parsedPath, error) {
	var p parsedPath
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
				p.module = name[:j]
			}
			name = name[j+1:]
		}
		if name == "" {
			return parsedPath{}, fmt.Errorf("empty element name in %q", s)
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
				return parsedPath{}, fmt.Errorf("element %q: unterminated key", name)
			}
			k, v := key.String(), val.String()
			if !hasEq {
				// "[value]" in data, "[name]" in a pattern; the caller
				// decides which by context. Record it as key "id" with the
				// text as value and also as a key name.
				k, v = "id", k
			}
			p.keys = append(p.keys, pathKey{name: k, value: v})
		}
		if i < len(s) {
			if s[i] != '/' {
				return parsedPath{}, fmt.Errorf("element %q: unexpected %q after keys", name, s[i])
			}
			i++
		}
		s = s[i:]
		first = false
	}
	if b.Len() == 0 {
		return parsedPath{}, fmt.Errorf("empty path")
	}
	p.schema = b.String()
	return p, nil
}

// key returns the value of the list key name, searching from the innermost
// element outwards.
func (p *parsedPath) key(name string) (string, bool) {
	for i := len(p.keys) - 1; i >= 0; i-- {
		if p.keys[i].name == name {
			return p.keys[i].value, true
		}
	}
	return "", false
}

// originClass folds the ways a device names OpenConfig models ("",
// "openconfig", "openconfig-interfaces", "openconfig-platform") into one
// class, since OpenConfig paths are unique without their origin. Any other
// origin (a native model such as "Cisco-IOS-XR-infra-statsd-oper", or "DME")
// is its own class.
func originClass(origin string) string {
	if origin == "" || origin == "openconfig" || origin == "rfc7951" || strings.HasPrefix(origin, "openconfig-") {
		return "openconfig"
	}
	return origin
}
