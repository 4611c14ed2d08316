package gnmi

import (
	"bytes"
	"errors"
	"math"
	"slices"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/gnmivalue"
	"github.com/netfeat/netfeat/schema"
)

// The collector reads SubscribeResponses in wire format and decodes them
// straight into Observations: generic protobuf unmarshalling (a message,
// a oneof wrapper and a key map per leaf) cost more than half of the
// receive path. decoder.notification, on the generated types, is the
// reference this decoder is tested against.

// reasonBadMessage counts a frame that is not a valid SubscribeResponse.
const reasonBadMessage = "malformed_message"

// rawFrame receives one message's bytes; its buffer is reused.
type rawFrame struct{ b []byte }

// rawCodec sends requests as protobuf and hands responses over as bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, errors.New("gnmi codec: not a protobuf message")
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*rawFrame)
	if !ok {
		return errors.New("gnmi codec: want *rawFrame")
	}
	n := data.Len()
	if cap(f.b) < n {
		f.b = make([]byte, n)
	}
	f.b = f.b[:n]
	data.CopyTo(f.b)
	return nil
}

func (rawCodec) Name() string { return "proto" }

var _ encoding.CodecV2 = rawCodec{}

// Response kinds returned by decoder.response.
const (
	respOther = iota
	respUpdate
	respSync
	respError
)

// wireElem is one path element: a PathElem message, or a bare name from
// the deprecated Path.element field.
type wireElem struct {
	raw  []byte
	name []byte
	bare bool
}

// wirePath is a parsed Path; its slices point into the frame.
type wirePath struct {
	origin []byte
	elems  []wireElem
}

var errWire = errors.New("malformed protobuf")

// parsePath fills p from a Path message, reusing p's slice.
func parsePath(p *wirePath, b []byte) error {
	p.origin = nil
	p.elems = p.elems[:0]
	var bare []wireElem
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return errWire
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		switch num {
		case 1:
			bare = append(bare, wireElem{name: v, bare: true})
		case 2:
			p.origin = v
		case 3:
			p.elems = append(p.elems, wireElem{raw: v})
		}
	}
	if len(p.elems) == 0 && len(bare) > 0 {
		p.elems = append(p.elems, bare...)
	}
	return nil
}

// elemParts returns an element's name and fills d.kv with its keys, sorted
// by key name.
func (d *decoder) elemParts(e wireElem) ([]byte, error) {
	d.kv = d.kv[:0]
	if e.bare {
		return e.name, nil
	}
	var name []byte
	b := e.raw
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, errWire
		}
		b = b[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, errWire
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, errWire
		}
		b = b[n:]
		switch num {
		case 1:
			name = v
		case 2:
			var kv [2][]byte
			for len(v) > 0 {
				num, typ, n := protowire.ConsumeTag(v)
				if n < 0 {
					return nil, errWire
				}
				v = v[n:]
				if typ != protowire.BytesType {
					n = protowire.ConsumeFieldValue(num, typ, v)
					if n < 0 {
						return nil, errWire
					}
					v = v[n:]
					continue
				}
				s, n := protowire.ConsumeBytes(v)
				if n < 0 {
					return nil, errWire
				}
				v = v[n:]
				if num == 1 || num == 2 {
					kv[num-1] = s
				}
			}
			d.kv = append(d.kv, kv)
		}
	}
	if len(d.kv) > 1 {
		slices.SortFunc(d.kv, func(a, b [2][]byte) int { return bytes.Compare(a[0], b[0]) })
	}
	return name, nil
}

// appendWireElem renders one element ("name[k=v]") after a "/" when dst
// already holds part of the path. It reports false for an empty name or
// key name.
func (d *decoder) appendWireElem(dst []byte, name []byte, sep bool) ([]byte, bool) {
	ok := len(name) > 0
	if sep {
		dst = append(dst, '/')
	}
	dst = append(dst, name...)
	for _, kv := range d.kv {
		ok = ok && len(kv[0]) > 0
		dst = gnmipath.AppendKey(dst, kv[0], kv[1])
	}
	return dst, ok
}

// beginWire writes origin NUL path for the elements of a followed by b
// into d.key, resolving the origin as beginPath does. It returns where the
// path starts and the reason to reject ("" when fine).
func (d *decoder) beginWire(origin []byte, a, b []wireElem) (int, string) {
	total := len(a) + len(b)
	if total == 0 {
		return 0, reasonBadPath
	}
	at := func(i int) wireElem {
		if i < len(a) {
			return a[i]
		}
		return b[i-len(a)]
	}
	name, err := d.elemParts(at(0))
	if err != nil {
		return 0, reasonBadMessage
	}
	var resolved string
	if i := bytes.IndexByte(name, ':'); i > 0 {
		// IOS-XE puts the module in the first element.
		if len(origin) == 0 {
			origin = name[:i]
		}
		name = name[i+1:]
	}
	if len(origin) == 0 {
		resolved = d.elemOrigin[string(name)]
	} else if len(d.origins) > 0 && !d.origins[string(origin)] {
		return 0, reasonUnknownOrigin
	}
	d.key = append(d.key[:0], origin...)
	d.key = append(d.key, resolved...)
	d.key = append(d.key, 0)
	pathStart := len(d.key)
	var ok bool
	if d.key, ok = d.appendWireElem(d.key, name, false); !ok {
		return 0, reasonBadPath
	}
	for i := 1; i < total; i++ {
		n, err := d.elemParts(at(i))
		if err != nil {
			return 0, reasonBadMessage
		}
		if d.key, ok = d.appendWireElem(d.key, n, true); !ok {
			return 0, reasonBadPath
		}
	}
	return pathStart, ""
}

// response decodes a SubscribeResponse frame, appending the observations
// of an update to d.out. It returns the response kind; for respError the
// deprecated error message's text.
func (d *decoder) response(b []byte, recv int64) (int, string) {
	kind := respOther
	var msg string
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			d.reject(reasonBadMessage)
			return respOther, ""
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				d.reject(reasonBadMessage)
				return respOther, ""
			}
			b = b[n:]
			d.wireNotification(v, recv)
			kind = respUpdate
		case num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				d.reject(reasonBadMessage)
				return respOther, ""
			}
			b = b[n:]
			if v != 0 {
				kind = respSync
			}
		case num == 4 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				d.reject(reasonBadMessage)
				return respOther, ""
			}
			b = b[n:]
			//lint:ignore SA1019 the error field is deprecated for a gRPC status, but older targets still report failures in it.
			e := &gpb.Error{}
			if proto.Unmarshal(v, e) == nil {
				msg = e.GetMessage()
			}
			kind = respError
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				d.reject(reasonBadMessage)
				return respOther, ""
			}
			b = b[n:]
		}
	}
	return kind, msg
}

// wireNotification decodes a Notification message.
func (d *decoder) wireNotification(b []byte, recv int64) {
	var ts int64
	var prefix []byte
	d.upd = d.upd[:0]
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			d.reject(reasonBadMessage)
			return
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				d.reject(reasonBadMessage)
				return
			}
			b, ts = b[n:], int64(v)
		case (num == 2 || num == 4) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				d.reject(reasonBadMessage)
				return
			}
			b = b[n:]
			if num == 2 {
				prefix = v
			} else {
				d.upd = append(d.upd, v)
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				d.reject(reasonBadMessage)
				return
			}
			b = b[n:]
		}
	}
	ts = deviceTime(ts)
	if err := parsePath(&d.pfx, prefix); err != nil {
		d.rejectAll(reasonBadMessage)
		return
	}
	shared := len(d.pfx.elems) > 0
	if shared && len(d.pfx.origin) == 0 {
		// The prefix can be rendered once unless an update names its own
		// origin, which then comes first in the key.
		for _, u := range d.upd {
			path, _, err := updateParts(u)
			if err != nil || parsePath(&d.up, path) != nil || len(d.up.origin) > 0 {
				shared = false
				break
			}
		}
	}
	if shared {
		pathStart, bad := d.beginWire(d.pfx.origin, d.pfx.elems, nil)
		if bad != "" {
			d.rejectAll(bad)
			return
		}
		plen := len(d.key)
		for _, u := range d.upd {
			d.key = d.key[:plen]
			path, val, err := updateParts(u)
			if err != nil || parsePath(&d.up, path) != nil {
				d.reject(reasonBadMessage)
				continue
			}
			bad := ""
			for _, e := range d.up.elems {
				n, err := d.elemParts(e)
				if err != nil {
					bad = reasonBadMessage
					break
				}
				var ok bool
				if d.key, ok = d.appendWireElem(d.key, n, true); !ok {
					bad = reasonBadPath
					break
				}
			}
			if bad != "" {
				d.reject(bad)
				continue
			}
			d.wireValue(pathStart, val, ts, recv)
		}
		return
	}
	for _, u := range d.upd {
		path, val, err := updateParts(u)
		if err != nil || parsePath(&d.up, path) != nil {
			d.reject(reasonBadMessage)
			continue
		}
		origin := d.pfx.origin
		if len(origin) == 0 {
			origin = d.up.origin
		}
		pathStart, bad := d.beginWire(origin, d.pfx.elems, d.up.elems)
		if bad != "" {
			d.reject(bad)
			continue
		}
		d.wireValue(pathStart, val, ts, recv)
	}
}

func (d *decoder) rejectAll(reason string) {
	for range d.upd {
		d.reject(reason)
	}
}

// updateParts returns an Update's path and val (TypedValue) messages; val
// is nil when absent.
func updateParts(b []byte) (path, val []byte, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, nil, errWire
		}
		b = b[n:]
		if typ == protowire.BytesType && (num == 1 || num == 3) {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, nil, errWire
			}
			b = b[n:]
			if num == 1 {
				path = v
			} else if v == nil {
				val = []byte{} // present but empty
			} else {
				val = v
			}
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, nil, errWire
		}
		b = b[n:]
	}
	return path, val, nil
}

// wireValue decodes a TypedValue for the path in d.key.
func (d *decoder) wireValue(pathStart int, b []byte, ts, recv int64) {
	if b == nil {
		d.reject(reasonBadValue)
		return
	}
	var o schema.Observation
	var jsonRaw []byte
	have := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			d.reject(reasonBadMessage)
			return
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var y uint32
			y, n = protowire.ConsumeFixed32(b)
			x = uint64(y)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			d.reject(reasonBadMessage)
			return
		}
		b = b[n:]
		// The value is a oneof: the last value field wins.
		known := true
		next := schema.Observation{}
		switch {
		case num == 1 && typ == protowire.BytesType:
			next = gnmivalue.String(string(v))
		case num == 2 && typ == protowire.VarintType:
			next = gnmivalue.Int(int64(x))
		case num == 3 && typ == protowire.VarintType:
			next = gnmivalue.Uint(x)
		case num == 4 && typ == protowire.VarintType:
			next = gnmivalue.Bool(x != 0)
		case (num == 5 || num == 13) && typ == protowire.BytesType:
			next = gnmivalue.Bytes(v)
		case num == 6 && typ == protowire.Fixed32Type:
			next = gnmivalue.Float(float64(math.Float32frombits(uint32(x))))
		case num == 14 && typ == protowire.Fixed64Type:
			next = gnmivalue.Float(math.Float64frombits(x))
		case num == 7 && typ == protowire.BytesType:
			//lint:ignore SA1019 decimal_val is deprecated for double_val, but older targets still send it.
			dec := &gpb.Decimal64{}
			if proto.Unmarshal(v, dec) != nil {
				d.reject(reasonBadMessage)
				return
			}
			next = gnmivalue.Decimal(dec.GetDigits(), dec.GetPrecision())
		case num == 8 && typ == protowire.BytesType:
			l := &gpb.ScalarArray{}
			if proto.Unmarshal(v, l) != nil {
				d.reject(reasonBadMessage)
				return
			}
			next = gnmivalue.LeafList(l)
		case num == 9 && typ == protowire.BytesType:
			val, err := anyValue(v)
			if err != nil {
				d.reject(reasonBadMessage)
				return
			}
			next = gnmivalue.Bytes(val)
		case (num == 10 || num == 11) && typ == protowire.BytesType:
			jsonRaw = v
			have = false
			continue
		case num == 12 && typ == protowire.BytesType:
			next = gnmivalue.ASCII(string(v))
		default:
			known = false
		}
		if known {
			o, have, jsonRaw = next, true, nil
		}
	}
	switch {
	case jsonRaw != nil:
		d.json(pathStart, jsonRaw, ts, recv)
	case have:
		d.emit(&o, pathStart, ts, recv)
	default:
		d.reject(reasonBadValue)
	}
}

// anyValue returns the value field of a google.protobuf.Any.
func anyValue(b []byte) ([]byte, error) {
	var val []byte
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, errWire
		}
		b = b[n:]
		if num == 2 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, errWire
			}
			b, val = b[n:], v
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return nil, errWire
		}
		b = b[n:]
	}
	return val, nil
}
