package gnmi

import (
	"bytes"
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"strings"

	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/netfeat/netfeat/schema"
)

// Reasons an update is rejected, used as the "reason" label of
// netfeat_gnmi_errors_total.
const (
	reasonBadPath       = "malformed_path"
	reasonBadValue      = "malformed_value"
	reasonUnknownOrigin = "unknown_origin"
	reasonTypeMismatch  = "type_mismatch"
	reasonRateLimited   = "rate_limited"
)

// valueClass groups value kinds whose change at one path is legitimate
// (an integer leaf may arrive as uint or int) apart from changes that mean
// the target sends garbage (a counter that turns into a string).
type valueClass uint8

const (
	classNone valueClass = iota
	classNumber
	classText
	classBool
	classBytes
	classOther
)

func classOf(k schema.ValueKind) valueClass {
	switch k {
	case schema.KindCounter64, schema.KindCounter32, schema.KindGauge, schema.KindInteger, schema.KindFloat, schema.KindTimeTicks:
		return classNumber
	case schema.KindString, schema.KindEnum:
		return classText
	case schema.KindBool:
		return classBool
	case schema.KindBytes:
		return classBytes
	}
	return classOther
}

// maxSeries bounds the per-target path table, so that a target inventing
// paths cannot grow memory without limit. Paths beyond it are still
// emitted, without interning or type checks.
const maxSeries = 1 << 20

// series is what the decoder remembers about one path of a target.
type series struct {
	key   string // origin + "\x00" + path; Path is the suffix after the NUL
	class valueClass
	// gen is the session that set class: a new session (the target may
	// have been upgraded) learns the type again.
	gen uint64
	// last is the newest notification timestamp decoded for the path, in
	// any session of the target.
	last int64
}

// decoder turns the notifications of one target into Observations. It is
// used by one goroutine at a time.
type decoder struct {
	device string
	// origins holds the origins subscribed to; an update with another
	// non-empty origin is rejected. Empty means accept any origin.
	origins map[string]bool
	// elemOrigin maps a subscription's first element to its origin, to
	// fill in the origin of notifications that leave it out.
	elemOrigin map[string]string
	series     map[string]*series
	// reject counts a rejected update.
	reject func(reason string)
	// gen numbers the session this decoder serves; series (shared by the
	// target's sessions) learn their type again in a new one.
	gen uint64
	// dedup drops an update whose timestamp is not newer than the last
	// one decoded for its path (a re-subscribe's initial state repeating
	// samples already delivered), counting it in dups.
	dedup bool
	dups  int

	key  []byte // scratch: origin NUL path
	elem []*gpb.PathElem
	out  []schema.Observation

	// Scratch for the wire-format decoder (wire.go).
	kv      [][2][]byte
	upd     [][]byte
	pfx, up wirePath
}

func newDecoder(device string, subs []*gpb.Path, reject func(string)) *decoder {
	d := &decoder{
		device:     device,
		origins:    map[string]bool{},
		elemOrigin: map[string]string{},
		series:     map[string]*series{},
		reject:     reject,
	}
	for _, p := range subs {
		if p.GetOrigin() == "" {
			continue
		}
		d.origins[p.GetOrigin()] = true
		if len(p.GetElem()) > 0 {
			d.elemOrigin[p.GetElem()[0].GetName()] = p.GetOrigin()
		}
	}
	if len(d.origins) > 0 {
		d.origins["openconfig"] = true
	}
	return d
}

// deviceTime converts a notification timestamp to Unix nanoseconds. The
// specification says nanoseconds; some targets send seconds, milliseconds or
// microseconds, recognised by magnitude (before the year 5138 in seconds,
// ms and µs alike).
func deviceTime(ts int64) int64 {
	switch {
	case ts <= 0:
		return 0
	case ts < 1e11:
		return ts * 1e9
	case ts < 1e14:
		return ts * 1e6
	case ts < 1e17:
		return ts * 1e3
	}
	return ts
}

// notification appends the observations of n to d.out.
func (d *decoder) notification(n *gpb.Notification, recv int64) {
	ts := deviceTime(n.GetTimestamp())
	prefix := n.GetPrefix()
	pelems := pathElems(prefix)
	if len(pelems) > 0 && prefix.GetOrigin() != "" || !updatesHaveOrigin(n) && len(pelems) > 0 {
		// Render the prefix once and append each update's elements to it.
		origin, pathStart, bad := d.beginPath(prefix.GetOrigin(), pelems)
		if bad != "" {
			for range n.GetUpdate() {
				d.reject(bad)
			}
			return
		}
		plen := len(d.key)
		for _, u := range n.GetUpdate() {
			d.key = d.key[:plen]
			var ok bool
			d.key, ok = appendElems(d.key, pathElems(u.GetPath()))
			if !ok {
				d.reject(reasonBadPath)
				continue
			}
			d.value(origin, pathStart, u.GetVal(), ts, recv)
		}
		return
	}
	for _, u := range n.GetUpdate() {
		origin := prefix.GetOrigin()
		if origin == "" {
			origin = u.GetPath().GetOrigin()
		}
		elems := append(append(d.elem[:0], pelems...), pathElems(u.GetPath())...)
		d.elem = elems[:0]
		origin, pathStart, bad := d.beginPath(origin, elems)
		if bad != "" {
			d.reject(bad)
			continue
		}
		d.value(origin, pathStart, u.GetVal(), ts, recv)
	}
}

// pathElems returns p's elements, converting the deprecated string
// elements that old targets send.
func pathElems(p *gpb.Path) []*gpb.PathElem {
	if len(p.GetElem()) > 0 || len(p.GetElement()) == 0 {
		return p.GetElem()
	}
	out := make([]*gpb.PathElem, len(p.GetElement()))
	for i, name := range p.GetElement() {
		out[i] = &gpb.PathElem{Name: name}
	}
	return out
}

func updatesHaveOrigin(n *gpb.Notification) bool {
	for _, u := range n.GetUpdate() {
		if u.GetPath().GetOrigin() != "" {
			return true
		}
	}
	return false
}

// beginPath resolves the origin of elems and writes origin NUL path into
// d.key. It returns the origin, where the path starts in d.key, and the
// reason to reject the update ("" when it is fine).
func (d *decoder) beginPath(origin string, elems []*gpb.PathElem) (string, int, string) {
	if len(elems) == 0 {
		return "", 0, reasonBadPath
	}
	first := elems[0].GetName()
	if module, name := splitModule(first); module != "" {
		// IOS-XE puts the module in the first element instead of the
		// origin: "Cisco-IOS-XE-interfaces-oper:interfaces".
		if origin == "" {
			origin = module
		}
		first = name
	}
	if origin == "" {
		origin = d.elemOrigin[first]
	} else if len(d.origins) > 0 && !d.origins[origin] {
		return "", 0, reasonUnknownOrigin
	}
	if first == "" {
		return "", 0, reasonBadPath
	}
	key := append(d.key[:0], origin...)
	key = append(key, 0)
	pathStart := len(key)
	key = append(key, first...)
	if ks := elems[0].GetKey(); len(ks) > 0 {
		if _, empty := ks[""]; empty {
			d.key = key
			return "", 0, reasonBadPath
		}
		key = appendKeys(key, ks)
	}
	key, ok := appendElems(key, elems[1:])
	d.key = key
	if !ok {
		return "", 0, reasonBadPath
	}
	return origin, pathStart, ""
}

// value decodes v for the path in d.key and appends the observations.
func (d *decoder) value(origin string, pathStart int, v *gpb.TypedValue, ts, recv int64) {
	if v == nil {
		d.reject(reasonBadValue)
		return
	}
	var o schema.Observation
	switch tv := v.GetValue().(type) {
	case *gpb.TypedValue_JsonIetfVal:
		d.json(origin, pathStart, tv.JsonIetfVal, ts, recv)
		return
	case *gpb.TypedValue_JsonVal:
		d.json(origin, pathStart, tv.JsonVal, ts, recv)
		return
	case *gpb.TypedValue_UintVal:
		o.Kind, o.Uint = schema.KindCounter64, tv.UintVal
	case *gpb.TypedValue_IntVal:
		o.Kind, o.Int = schema.KindInteger, tv.IntVal
	case *gpb.TypedValue_StringVal:
		o.Kind, o.Str = stringKind(tv.StringVal)
	case *gpb.TypedValue_BoolVal:
		o.Kind = schema.KindBool
		if tv.BoolVal {
			o.Int = 1
		}
	case *gpb.TypedValue_FloatVal:
		o.Kind, o.Float = schema.KindFloat, float64(tv.FloatVal)
	case *gpb.TypedValue_DoubleVal:
		o.Kind, o.Float = schema.KindFloat, tv.DoubleVal
	case *gpb.TypedValue_DecimalVal:
		o.Kind = schema.KindFloat
		o.Float = float64(tv.DecimalVal.GetDigits()) / math.Pow10(int(tv.DecimalVal.GetPrecision()))
	case *gpb.TypedValue_AsciiVal:
		o.Kind, o.Str = schema.KindString, tv.AsciiVal
	case *gpb.TypedValue_BytesVal:
		o.Kind, o.Str = schema.KindBytes, string(tv.BytesVal)
	case *gpb.TypedValue_ProtoBytes:
		o.Kind, o.Str = schema.KindBytes, string(tv.ProtoBytes)
	case *gpb.TypedValue_AnyVal:
		o.Kind, o.Str = schema.KindBytes, string(tv.AnyVal.GetValue())
	case *gpb.TypedValue_LeaflistVal:
		o.Kind, o.Str = schema.KindJSON, leafListJSON(tv.LeaflistVal)
	default:
		d.reject(reasonBadValue)
		return
	}
	d.emit(&o, pathStart, ts, recv)
}

// emit completes o with the path in d.key and appends it, after the type
// check. d.key holds origin NUL path.
func (d *decoder) emit(o *schema.Observation, pathStart int, ts, recv int64) {
	s := d.series[string(d.key)]
	c := classOf(o.Kind)
	switch {
	case s != nil:
		if s.gen != d.gen {
			s.gen, s.class = d.gen, c
		} else if s.class != c {
			d.reject(reasonTypeMismatch)
			return
		}
		if ts != 0 && ts <= s.last {
			if d.dedup {
				d.dups++
				return
			}
		} else {
			s.last = ts
		}
		o.Origin = s.key[:pathStart-1]
		o.Path = s.key[pathStart:]
	case len(d.series) < maxSeries:
		k := string(d.key)
		d.series[k] = &series{key: k, class: c, gen: d.gen, last: ts}
		o.Origin = k[:pathStart-1]
		o.Path = k[pathStart:]
	default:
		k := string(d.key)
		o.Origin = k[:pathStart-1]
		o.Path = k[pathStart:]
	}
	o.Device = d.device
	o.Protocol = schema.ProtocolGNMI
	o.DeviceTime = ts
	o.RecvTime = recv
	d.out = append(d.out, *o)
}

func appendKeys(dst []byte, keys map[string]string) []byte {
	if len(keys) == 1 {
		for k, v := range keys {
			return appendKey(dst, k, v)
		}
	}
	ks := make([]string, 0, len(keys))
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		dst = appendKey(dst, k, keys[k])
	}
	return dst
}

// stringKind classifies a string value: OpenConfig enumerations
// ("UP", "openconfig-if-types:IF_ETHERNET" identityrefs) become KindEnum
// with the module prefix removed, anything else KindString.
func stringKind(s string) (schema.ValueKind, string) {
	_, name := splitModule(s)
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

// json flattens a JSON or JSON_IETF value into one observation per leaf.
// d.key holds origin NUL path of the update; members become path elements,
// arrays of objects become list entries keyed by their name-like member.
func (d *decoder) json(origin string, pathStart int, raw []byte, ts, recv int64) {
	if o, ok := jsonLeaf(bytes.TrimSpace(raw)); ok {
		d.emit(&o, pathStart, ts, recv)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		d.reject(reasonBadValue)
		return
	}
	base := len(d.key)
	d.flatten(v, pathStart, base, ts, recv)
	d.key = d.key[:base]
}

func (d *decoder) flatten(v any, pathStart, at int, ts, recv int64) {
	d.key = d.key[:at]
	switch x := v.(type) {
	case map[string]any:
		names := make([]string, 0, len(x))
		for k := range x {
			names = append(names, k)
		}
		sort.Slice(names, func(i, j int) bool {
			_, a := splitModule(names[i])
			_, b := splitModule(names[j])
			return a < b
		})
		for _, k := range names {
			_, name := splitModule(k)
			d.key = d.key[:at]
			d.key = append(d.key, '/')
			d.key = append(d.key, name...)
			elemEnd := len(d.key)
			if list, ok := x[k].([]any); ok && len(list) > 0 && isObjectList(list) {
				for _, e := range list {
					obj := e.(map[string]any)
					d.key = d.key[:elemEnd]
					if kn, kv, ok := listKey(obj); ok {
						d.key = appendKey(d.key, kn, kv)
					}
					d.flatten(obj, pathStart, len(d.key), ts, recv)
				}
				continue
			}
			d.flatten(x[k], pathStart, elemEnd, ts, recv)
		}
	case []any:
		if len(x) == 1 && x[0] == nil {
			// YANG "empty" is encoded as [null].
			d.emit(&schema.Observation{Kind: schema.KindNull}, pathStart, ts, recv)
			return
		}
		b, err := json.Marshal(x)
		if err != nil {
			d.reject(reasonBadValue)
			return
		}
		d.emit(&schema.Observation{Kind: schema.KindJSON, Str: string(b)}, pathStart, ts, recv)
	default:
		o, ok := jsonScalar(x)
		if !ok {
			d.reject(reasonBadValue)
			return
		}
		d.emit(&o, pathStart, ts, recv)
	}
}

// jsonLeaf decodes the common scalar values (an unescaped string, a
// number, true, false, null) without a JSON decoder; ok is false for
// anything else, which then takes the general path.
func jsonLeaf(raw []byte) (schema.Observation, bool) {
	if len(raw) == 0 {
		return schema.Observation{}, false
	}
	switch c := raw[0]; {
	case c == '"':
		if len(raw) < 2 || raw[len(raw)-1] != '"' || bytes.IndexByte(raw[1:len(raw)-1], '\\') >= 0 || bytes.IndexByte(raw[1:len(raw)-1], '"') >= 0 {
			return schema.Observation{}, false
		}
		return jsonScalar(string(raw[1 : len(raw)-1]))
	case c == '-' || c >= '0' && c <= '9':
		return numberObs(string(raw))
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

// listKey picks the member of a JSON list entry that identifies it. Without
// the YANG schema at hand it prefers "name", then a member ending in
// "-name", then "id"/"index"/"-id"/"-index", in name order.
func listKey(obj map[string]any) (string, string, bool) {
	best, rank := "", 9
	for k, v := range obj {
		switch v.(type) {
		case string, json.Number:
		default:
			continue
		}
		_, n := splitModule(k)
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
	_, n := splitModule(best)
	switch v := obj[best].(type) {
	case string:
		return n, v, true
	case json.Number:
		return n, v.String(), true
	}
	return "", "", false
}

// jsonScalar converts a JSON scalar. RFC 7951 writes 64-bit integers and
// decimal64 as strings, so a string that is a plain decimal number is taken
// as that number.
func jsonScalar(v any) (schema.Observation, bool) {
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
		return numberObs(string(x))
	case string:
		if n, ok := numberObs(x); ok && looksNumeric(x) {
			return n, true
		}
		o.Kind, o.Str = stringKind(x)
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

func numberObs(s string) (schema.Observation, bool) {
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

// leafListJSON renders a leaf-list of scalars as a JSON array.
func leafListJSON(l *gpb.ScalarArray) string {
	vals := make([]any, 0, len(l.GetElement()))
	for _, e := range l.GetElement() {
		switch x := e.GetValue().(type) {
		case *gpb.TypedValue_StringVal:
			vals = append(vals, x.StringVal)
		case *gpb.TypedValue_UintVal:
			vals = append(vals, x.UintVal)
		case *gpb.TypedValue_IntVal:
			vals = append(vals, x.IntVal)
		case *gpb.TypedValue_BoolVal:
			vals = append(vals, x.BoolVal)
		case *gpb.TypedValue_DoubleVal:
			vals = append(vals, x.DoubleVal)
		case *gpb.TypedValue_FloatVal:
			vals = append(vals, x.FloatVal)
		default:
			vals = append(vals, e.String())
		}
	}
	b, _ := json.Marshal(vals)
	return string(b)
}
