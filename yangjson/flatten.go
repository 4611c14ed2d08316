// Package yangjson turns YANG-modelled JSON values (gNMI JSON and
// JSON_IETF, RFC 7951) into typed leaves, one schema.Observation value per
// leaf, with the leaf's path in the gnmipath format. The gNMI collector
// and the recording reader both flatten with it, so that golden tests over
// recordings exercise the rules the live collector applies.
//
// The rules: object members become path elements, with their YANG module
// prefix removed and in order of the unqualified name; a non-empty array
// of objects is a YANG list whose entries are keyed by their name-like
// member (ListKey); any other array is one KindJSON leaf, except [null],
// YANG "empty", which is KindNull; scalars are typed by Scalar.
package yangjson

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/schema"
)

// LeafFunc receives one leaf: path is the buffer given to Flatten extended
// by the leaf's elements (valid only during the call) and o the leaf's
// value (Kind and the matching value field). ok is false when the leaf's
// value cannot be represented; the caller decides whether that is an
// error. o is passed by value so that a leaf costs no allocation.
type LeafFunc func(path []byte, o schema.Observation, ok bool)

// Decode flattens the JSON value raw below the path in dst, calling leaf
// for each leaf, and returns dst, possibly grown, with its original
// length. Numbers are kept exact (json.Number). A bare scalar is decoded
// without a JSON decoder. The error is for raw that is not JSON.
func Decode(dst, raw []byte, leaf LeafFunc) ([]byte, error) {
	if o, ok := fastLeaf(bytes.TrimSpace(raw)); ok {
		leaf(dst, o, true)
		return dst, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return dst, err
	}
	return Flatten(dst, v, leaf), nil
}

// Flatten calls leaf for each leaf of v, a value decoded from JSON with
// json.Decoder.UseNumber, with the leaf's elements appended to dst ("/"
// before each element when dst is not empty). It returns dst, possibly
// grown, with its original length.
func Flatten(dst []byte, v any, leaf LeafFunc) []byte {
	at := len(dst)
	return walk(dst, at, v, leaf)[:at]
}

func walk(dst []byte, at int, v any, leaf LeafFunc) []byte {
	dst = dst[:at]
	switch x := v.(type) {
	case map[string]any:
		names := make([]string, 0, len(x))
		for k := range x {
			names = append(names, k)
		}
		sort.Slice(names, func(i, j int) bool {
			_, a := gnmipath.SplitModule(names[i])
			_, b := gnmipath.SplitModule(names[j])
			return a < b
		})
		for _, k := range names {
			_, name := gnmipath.SplitModule(k)
			dst = dst[:at]
			if at > 0 {
				dst = append(dst, '/')
			}
			dst = append(dst, name...)
			elemEnd := len(dst)
			if list, ok := x[k].([]any); ok && len(list) > 0 && isObjectList(list) {
				for _, e := range list {
					obj := e.(map[string]any)
					dst = dst[:elemEnd]
					if kn, kv, ok := ListKey(obj); ok {
						dst = gnmipath.AppendKey(dst, kn, kv)
					}
					dst = walk(dst, len(dst), obj, leaf)
				}
				continue
			}
			dst = walk(dst, elemEnd, x[k], leaf)
		}
	case []any:
		if len(x) == 1 && x[0] == nil {
			// YANG "empty" is encoded as [null].
			leaf(dst, schema.Observation{Kind: schema.KindNull}, true)
			return dst
		}
		b, err := json.Marshal(x)
		if err != nil {
			leaf(dst, schema.Observation{}, false)
			return dst
		}
		leaf(dst, schema.Observation{Kind: schema.KindJSON, Str: string(b)}, true)
	default:
		o, ok := Scalar(x)
		leaf(dst, o, ok)
	}
	return dst
}

// fastLeaf decodes the common scalar values (an unescaped string, a
// number, true, false, null) without a JSON decoder; ok is false for
// anything else, which then takes the general path.
func fastLeaf(raw []byte) (schema.Observation, bool) {
	if len(raw) == 0 {
		return schema.Observation{}, false
	}
	switch c := raw[0]; {
	case c == '"':
		if len(raw) < 2 || raw[len(raw)-1] != '"' || bytes.IndexByte(raw[1:len(raw)-1], '\\') >= 0 || bytes.IndexByte(raw[1:len(raw)-1], '"') >= 0 {
			return schema.Observation{}, false
		}
		return Scalar(string(raw[1 : len(raw)-1]))
	case c == '-' || c >= '0' && c <= '9':
		return Number(string(raw))
	case string(raw) == "true":
		return schema.Observation{Kind: schema.KindBool, Int: 1}, true
	case string(raw) == "false":
		return schema.Observation{Kind: schema.KindBool}, true
	case string(raw) == "null":
		return schema.Observation{Kind: schema.KindNull}, true
	}
	return schema.Observation{}, false
}

func isObjectList(list []any) bool {
	for _, e := range list {
		if _, ok := e.(map[string]any); !ok {
			return false
		}
	}
	return true
}

// ListKey picks the member of a JSON list entry that identifies it and
// returns its unqualified name and its value. Without the YANG schema at
// hand it prefers "name", then a member ending in "-name", then
// "id"/"index", then one ending in "-id"/"-index", the first in name order
// among equals; only string and number members count. ok is false when no
// member qualifies, and the entry is then not keyed.
func ListKey(obj map[string]any) (name, value string, ok bool) {
	best, rank := "", 9
	for k, v := range obj {
		switch v.(type) {
		case string, json.Number:
		default:
			continue
		}
		_, n := gnmipath.SplitModule(k)
		r := 9
		switch {
		case n == "name":
			r = 0
		case strings.HasSuffix(n, "-name"):
			r = 1
		case n == "id" || n == "index":
			r = 2
		case strings.HasSuffix(n, "-id") || strings.HasSuffix(n, "-index"):
			r = 3
		}
		if r < rank || r == rank && r < 9 && k < best {
			best, rank = k, r
		}
	}
	if rank == 9 {
		return "", "", false
	}
	_, n := gnmipath.SplitModule(best)
	switch v := obj[best].(type) {
	case string:
		return n, v, true
	case json.Number:
		return n, v.String(), true
	}
	return "", "", false
}

// Scalar types a JSON scalar decoded with UseNumber. RFC 7951 writes
// 64-bit integers and decimal64 as strings, so a string that is a plain
// decimal number is taken as that number; other strings are typed by
// StringKind. ok is false for a value that is not a JSON scalar.
func Scalar(v any) (schema.Observation, bool) {
	var o schema.Observation
	switch x := v.(type) {
	case nil:
		o.Kind = schema.KindNull
	case bool:
		o.Kind = schema.KindBool
		if x {
			o.Int = 1
		}
	case json.Number:
		return Number(string(x))
	case string:
		if n, ok := Number(x); ok && looksNumeric(x) {
			return n, true
		}
		o.Kind, o.Str = StringKind(x)
	default:
		return o, false
	}
	return o, true
}

func looksNumeric(s string) bool {
	if s == "" {
		return false
	}
	i := 0
	if s[0] == '-' {
		i = 1
	}
	digits, dot := 0, false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// Number types a JSON number: KindCounter64 when it is a non-negative
// integer, KindInteger when a negative one, else KindFloat. ok is false
// when s is not a number.
func Number(s string) (schema.Observation, bool) {
	var o schema.Observation
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		o.Kind, o.Uint = schema.KindCounter64, u
		return o, true
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		o.Kind, o.Int = schema.KindInteger, i
		return o, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		o.Kind, o.Float = schema.KindFloat, f
		return o, true
	}
	return o, false
}

// StringKind classifies a string value: OpenConfig enumerations
// ("UP", "openconfig-if-types:IF_ETHERNET" identityrefs) become KindEnum
// with the module prefix removed, anything else KindString.
func StringKind(s string) (schema.ValueKind, string) {
	_, name := gnmipath.SplitModule(s)
	if isEnumName(name) {
		return schema.KindEnum, name
	}
	return schema.KindString, s
}

func isEnumName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
