package service

import (
	"encoding"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// yaml.v3 aborts the whole decode when a value's own UnmarshalYAML or
// UnmarshalText returns an error that is not a *yaml.TypeError (as
// featurestore.ByteSize does for "-1"): the error carries no line or key,
// and every other problem in the file goes unreported. checkScalars finds
// those values first, by walking the node tree alongside the Config type,
// so each is reported at its line and key; blankScalars then neutralises
// them so the decode and validation of everything else can go on.

var (
	yamlUnmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// badScalar is a scalar its type's own unmarshaler refused.
type badScalar struct {
	node *yaml.Node
	key  string
	err  error
}

// checkScalars returns every scalar under n (decoding into t at key path)
// whose type's unmarshaler fails with an error yaml.v3 would abort on.
func checkScalars(n *yaml.Node, t reflect.Type, path string) []badScalar {
	if n == nil {
		return nil
	}
	if n.Kind == yaml.DocumentNode {
		var out []badScalar
		for _, c := range n.Content {
			out = append(out, checkScalars(c, t, path)...)
		}
		return out
	}
	if n.Kind == yaml.AliasNode {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pt := reflect.PointerTo(t)
	switch {
	case pt.Implements(yamlUnmarshalerType):
		err := reflect.New(t).Interface().(yaml.Unmarshaler).UnmarshalYAML(n)
		var te *yaml.TypeError
		if err != nil && !errors.As(err, &te) {
			return []badScalar{{node: n, key: path, err: err}}
		}
		return nil
	case pt.Implements(textUnmarshalerType) && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str":
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			return []badScalar{{node: n, key: path, err: err}}
		}
		return nil
	}
	var out []badScalar
	switch {
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i, c := range n.Content {
			out = append(out, checkScalars(c, t.Elem(), indexPath(path, i))...)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Map:
		for i := 0; i+1 < len(n.Content); i += 2 {
			out = append(out, checkScalars(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value))...)
		}
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := map[string]reflect.Type{}
		collectYAMLFields(t, fields)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if ft, ok := fields[k]; ok {
				out = append(out, checkScalars(n.Content[i+1], ft, joinPath(path, k))...)
			}
		}
	}
	return out
}

// collectYAMLFields maps a struct's yaml keys to their types, following
// ",inline" fields as yaml.v3 does.
func collectYAMLFields(t reflect.Type, into map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectYAMLFields(ft, into)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		into[name] = f.Type
	}
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// blankScalars returns a copy of data in which each bad scalar's text is
// overwritten by "0" and spaces, so that lines and columns stay where they
// were. It reports false when a scalar's text cannot be found (a block
// scalar or one spread over lines).
func blankScalars(data []byte, bad []badScalar) ([]byte, bool) {
	out := append([]byte(nil), data...)
	for _, b := range bad {
		start, end, ok := scalarExtent(out, b.node)
		if !ok {
			return nil, false
		}
		out[start] = '0'
		for i := start + 1; i < end; i++ {
			out[i] = ' '
		}
	}
	return out, true
}

// scalarExtent finds the bytes of a single-line plain or quoted scalar.
func scalarExtent(data []byte, n *yaml.Node) (int, int, bool) {
	if n.Kind != yaml.ScalarNode || n.Line < 1 || n.Column < 1 {
		return 0, 0, false
	}
	off := 0
	for l := 1; l < n.Line; l++ {
		i := strings.IndexByte(string(data[off:]), '\n')
		if i < 0 {
			return 0, 0, false
		}
		off += i + 1
	}
	lineEnd := len(data)
	if i := strings.IndexByte(string(data[off:]), '\n'); i >= 0 {
		lineEnd = off + i
	}
	line := data[off:lineEnd]
	start := 0
	for c := 1; c < n.Column; c++ { // Column counts characters
		if start >= len(line) {
			return 0, 0, false
		}
		_, size := utf8.DecodeRune(line[start:])
		start += size
	}
	rest := line[start:]
	var end int
	switch n.Style &^ yaml.TaggedStyle {
	case 0, yaml.FlowStyle:
		if !strings.HasPrefix(string(rest), n.Value) || n.Value == "" {
			return 0, 0, false
		}
		end = len(n.Value)
	case yaml.DoubleQuotedStyle:
		end = -1
		for i := 1; i < len(rest); i++ {
			if rest[i] == '\\' {
				i++
				continue
			}
			if rest[i] == '"' {
				end = i + 1
				break
			}
		}
	case yaml.SingleQuotedStyle:
		end = -1
		for i := 1; i < len(rest); i++ {
			if rest[i] == '\'' {
				if i+1 < len(rest) && rest[i+1] == '\'' {
					i++
					continue
				}
				end = i + 1
				break
			}
		}
	default:
		return 0, 0, false
	}
	if end <= 0 {
		return 0, 0, false
	}
	return off + start, off + start + end, true
}
