package gnmi

import (
	gpb "github.com/openconfig/gnmi/proto/gnmi"

	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/gnmivalue"
	"github.com/netfeat/netfeat/schema"
	"github.com/netfeat/netfeat/yangjson"
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

	// leaf is emitLeaf bound once, the yangjson.LeafFunc that values are
	// decoded into; leafStart, leafTS and leafRecv carry the update they
	// belong to.
	leaf             yangjson.LeafFunc
	leafStart        int
	leafTS, leafRecv int64

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
	d.leaf = d.emitLeaf
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
	pelems := gnmipath.Elems(prefix)
	if len(pelems) > 0 && prefix.GetOrigin() != "" || !updatesHaveOrigin(n) && len(pelems) > 0 {
		// Render the prefix once and append each update's elements to it.
		pathStart, bad := d.beginPath(prefix.GetOrigin(), pelems)
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
			d.key, ok = gnmipath.AppendElems(d.key, gnmipath.Elems(u.GetPath()))
			if !ok {
				d.reject(reasonBadPath)
				continue
			}
			d.value(pathStart, u.GetVal(), ts, recv)
		}
		return
	}
	for _, u := range n.GetUpdate() {
		origin := prefix.GetOrigin()
		if origin == "" {
			origin = u.GetPath().GetOrigin()
		}
		elems := append(append(d.elem[:0], pelems...), gnmipath.Elems(u.GetPath())...)
		d.elem = elems[:0]
		pathStart, bad := d.beginPath(origin, elems)
		if bad != "" {
			d.reject(bad)
			continue
		}
		d.value(pathStart, u.GetVal(), ts, recv)
	}
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
// d.key. It returns where the path starts in d.key and the reason to
// reject the update ("" when it is fine).
func (d *decoder) beginPath(origin string, elems []*gpb.PathElem) (int, string) {
	if len(elems) == 0 {
		return 0, reasonBadPath
	}
	first := elems[0].GetName()
	if module, name := gnmipath.SplitModule(first); module != "" {
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
		return 0, reasonUnknownOrigin
	}
	if first == "" {
		return 0, reasonBadPath
	}
	key := append(d.key[:0], origin...)
	key = append(key, 0)
	pathStart := len(key)
	key = append(key, first...)
	if ks := elems[0].GetKey(); len(ks) > 0 {
		if _, empty := ks[""]; empty {
			d.key = key
			return 0, reasonBadPath
		}
		key = gnmipath.AppendKeys(key, ks)
	}
	key, ok := gnmipath.AppendElems(key, elems[1:])
	d.key = key
	if !ok {
		return 0, reasonBadPath
	}
	return pathStart, ""
}

// value decodes v for the path in d.key (gnmivalue.Decode) and appends
// the observations.
func (d *decoder) value(pathStart int, v *gpb.TypedValue, ts, recv int64) {
	d.leafStart, d.leafTS, d.leafRecv = pathStart, ts, recv
	var err error
	if d.key, err = gnmivalue.Decode(d.key, v, d.leaf); err != nil {
		d.reject(reasonBadValue)
	}
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

// json flattens a JSON or JSON_IETF value into one observation per leaf
// (yangjson.Decode). d.key holds origin NUL path of the update.
func (d *decoder) json(pathStart int, raw []byte, ts, recv int64) {
	d.leafStart, d.leafTS, d.leafRecv = pathStart, ts, recv
	var err error
	if d.key, err = yangjson.Decode(d.key, raw, d.leaf); err != nil {
		d.reject(reasonBadValue)
	}
}

// emitLeaf emits one leaf found by d.value or d.json; it is bound to
// d.leaf once, so that decoding allocates no closure.
func (d *decoder) emitLeaf(path []byte, o schema.Observation, ok bool) {
	if !ok {
		d.reject(reasonBadValue)
		return
	}
	d.key = path
	d.emit(&o, d.leafStart, d.leafTS, d.leafRecv)
}
