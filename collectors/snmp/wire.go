package snmp

// The SNMPv2c wire format of the poller's hot path: GET and GETBULK
// requests encoded into a reused buffer, and responses decoded in place
// into varbinds whose names are OID arcs and whose values are already an
// Observation's fields. Nothing here allocates per varbind; the strings a
// poll needs are made once per poll (pollBuf.finish).
//
// SNMPv3 polls go through gosnmp (USM: engine discovery, keys, privacy)
// and are converted to the same varbinds (usmSession).

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"

	"github.com/netfeat/netfeat/collectors/snmp/snmpwire"
	"github.com/netfeat/netfeat/schema"
)

// BER tags of SNMP PDUs and values (RFC 3416, RFC 2578).
const (
	tagInteger        = 0x02
	tagBitString      = 0x03
	tagOctetString    = 0x04
	tagNull           = 0x05
	tagOID            = 0x06
	tagSequence       = 0x30
	tagIPAddress      = 0x40
	tagCounter32      = 0x41
	tagGauge32        = 0x42
	tagTimeTicks      = 0x43
	tagOpaque         = 0x44
	tagCounter64      = 0x46
	tagUinteger32     = 0x47
	tagNoSuchObject   = 0x80
	tagNoSuchInstance = 0x81
	tagEndOfMibView   = 0x82

	// Opaque-wrapped floats (draft-perkins-opaque-01), as gosnmp decodes
	// them: 0x9f 0x78 float, 0x9f 0x79 double.
	tagOpaqueFloat  = 0x78
	tagOpaqueDouble = 0x79

	pduGet         = 0xa0
	pduGetResponse = 0xa2
	pduGetBulk     = 0xa5

	snmpV2c = 1
)

// Error-status values of a response PDU that the poller acts on.
const (
	errNoError = 0
	errTooBig  = 1
)

// errMalformed wraps every decoding failure of a response.
var errMalformed = errors.New("malformed response")

// varbind is one decoded variable binding. name and text point into
// buffers the session reuses: they are valid until its next request.
type varbind struct {
	name []uint32 // OID arcs
	tag  byte     // BER tag of the value (gosnmp's Asn1BER numbering)
	// obs holds Kind and the number (Uint, Int, Float). The gosnmp
	// session also sets Path and Str; the v2c decoder leaves them empty
	// and sets text instead.
	obs  schema.Observation
	text []byte
	hold bool // false for a type no observation can carry (gosnmp's UnknownType)

	nameOff, nameEnd int32 // name's place in response.arcs while decoding
}

// str returns the value as a new string (for the identity scalars).
func (v *varbind) str() string {
	if v.text != nil {
		return string(v.text)
	}
	return v.obs.Str
}

func (v *varbind) isException() bool {
	return v.tag == tagNoSuchObject || v.tag == tagNoSuchInstance || v.tag == tagEndOfMibView
}

// response is a decoded GetResponse.
type response struct {
	reqID     int32
	errStatus int
	errIndex  int
	vbs       []varbind
	arcs      []uint32 // backing store of the varbinds' names
	text      []byte   // formatted OID and IpAddress values
	oid       []uint32 // scratch for OID values

	rx, tx []byte // the v2c session's datagrams
	msg    []byte // the answer decoded (in rx)
}

// parseOID parses a dotted OID (leading dot optional) into arcs.
func parseOID(s string) ([]uint32, error) {
	return appendOIDArcs(make([]uint32, 0, 16), s)
}

// appendOIDArcs appends the arcs of the dotted OID s (leading dot
// optional) to dst.
func appendOIDArcs(dst []uint32, s string) ([]uint32, error) {
	if len(s) > 0 && s[0] == '.' {
		s = s[1:]
	}
	var v uint64
	digits := false
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if !digits {
				return dst, fmt.Errorf("bad OID %q", s)
			}
			dst = append(dst, uint32(v))
			v, digits = 0, false
			continue
		}
		c := s[i]
		if c < '0' || c > '9' {
			return dst, fmt.Errorf("bad OID %q", s)
		}
		v = v*10 + uint64(c-'0')
		if v > math.MaxUint32 {
			return dst, fmt.Errorf("OID %q: sub-identifier out of range", s)
		}
		digits = true
	}
	return dst, nil
}

// appendDotted appends arcs as a dotted OID without a leading dot.
func appendDotted(dst []byte, arcs []uint32) []byte {
	for i, a := range arcs {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = strconv.AppendUint(dst, uint64(a), 10)
	}
	return dst
}

func compareOID(a, b []uint32) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}

func equalOID(a, b []uint32) bool { return compareOID(a, b) == 0 }

// under reports whether name lies strictly under root (root plus at least
// one arc).
func under(name, root []uint32) bool {
	return len(name) > len(root) && compareOID(name[:len(root)], root) == 0
}

// Encoding. An element's length is not known until its content is
// written: beginTLV reserves three bytes for it and endTLV writes the
// shortest form (X.690 8.1.3), moving the content back. Elements are
// closed innermost first.

func beginTLV(dst []byte, tag byte) ([]byte, int) {
	dst = append(dst, tag, 0, 0, 0)
	return dst, len(dst)
}

func endTLV(dst []byte, start int) []byte {
	n := len(dst) - start
	switch {
	case n < 0x80:
		dst[start-3] = byte(n)
		copy(dst[start-2:], dst[start:])
		return dst[:len(dst)-2]
	case n < 0x100:
		dst[start-3], dst[start-2] = 0x81, byte(n)
		copy(dst[start-1:], dst[start:])
		return dst[:len(dst)-1]
	}
	dst[start-3], dst[start-2], dst[start-1] = 0x82, byte(n>>8), byte(n)
	return dst
}

func appendInt(dst []byte, v int64) []byte {
	n := 1
	for x := v; x > 127 || x < -128; x >>= 8 {
		n++
	}
	dst = append(dst, tagInteger, byte(n))
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}

func appendBase128(dst []byte, v uint64) []byte {
	n := 1
	for x := v >> 7; x > 0; x >>= 7 {
		n++
	}
	for i := n - 1; i > 0; i-- {
		dst = append(dst, byte(v>>(7*i))|0x80)
	}
	return append(dst, byte(v&0x7f))
}

// appendOID appends an OBJECT IDENTIFIER element. OIDs have at least two
// arcs, the first 0, 1 or 2 (the plan and the walk only send such OIDs).
func appendOID(dst []byte, arcs []uint32) []byte {
	dst, start := beginTLV(dst, tagOID)
	if len(arcs) < 2 {
		dst = appendBase128(dst, 0)
	} else {
		dst = appendBase128(dst, uint64(arcs[0])*40+uint64(arcs[1]))
		for _, a := range arcs[2:] {
			dst = appendBase128(dst, uint64(a))
		}
	}
	return endTLV(dst, start)
}

// appendRequest encodes an SNMPv2c GetRequest (pduGet) or GetBulkRequest
// (pduGetBulk, with non-repeaters 0 and maxRep repetitions) for oids.
func appendRequest(dst []byte, community string, pdu byte, reqID int32, maxRep uint32, oids [][]uint32) []byte {
	dst, msg := beginTLV(dst, tagSequence)
	dst = appendInt(dst, snmpV2c)
	dst, c := beginTLV(dst, tagOctetString)
	dst = endTLV(append(dst, community...), c)
	dst, body := beginTLV(dst, pdu)
	dst = appendInt(dst, int64(reqID))
	if pdu == pduGetBulk {
		dst = appendInt(dst, 0) // non-repeaters
		dst = appendInt(dst, int64(maxRep))
	} else {
		dst = appendInt(dst, 0) // error-status
		dst = appendInt(dst, 0) // error-index
	}
	dst, list := beginTLV(dst, tagSequence)
	for _, o := range oids {
		var vb int
		dst, vb = beginTLV(dst, tagSequence)
		dst = appendOID(dst, o)
		dst = append(dst, tagNull, 0)
		dst = endTLV(dst, vb)
	}
	dst = endTLV(dst, list)
	dst = endTLV(dst, body)
	return endTLV(dst, msg)
}

// Decoding.

// peekRequestID returns the request-id of an SNMPv2c response message
// without decoding its varbinds, so that stale answers are skipped
// cheaply.
func peekRequestID(msg []byte) (int32, error) {
	pdu, err := responsePDU(msg)
	if err != nil {
		return 0, err
	}
	id, _, err := snmpwire.ExpectInt(pdu, "request-id")
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return int32(id), nil
}

// responsePDU checks the message's outer layers (SEQUENCE, version v2c,
// community, GetResponse) and returns the PDU's content.
func responsePDU(msg []byte) ([]byte, error) {
	body, _, err := snmpwire.Expect(msg, tagSequence, "message")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	v, body, err := snmpwire.ExpectInt(body, "version")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if v != snmpV2c {
		return nil, fmt.Errorf("%w: version %d, want 1 (v2c)", errMalformed, v)
	}
	if _, body, err = snmpwire.Expect(body, tagOctetString, "community"); err != nil {
		return nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	tag, pdu, _, err := snmpwire.ReadTLV(body)
	if err != nil {
		return nil, fmt.Errorf("%w: PDU: %v", errMalformed, err)
	}
	if tag != pduGetResponse {
		return nil, fmt.Errorf("%w: PDU type 0x%02x, want GetResponse", errMalformed, tag)
	}
	return pdu, nil
}

// decode decodes an SNMPv2c GetResponse message into r.
func (r *response) decode(msg []byte) error {
	pdu, err := responsePDU(msg)
	if err != nil {
		return err
	}
	id, pdu, err := snmpwire.ExpectInt(pdu, "request-id")
	if err != nil {
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	es, pdu, err := snmpwire.ExpectInt(pdu, "error-status")
	if err != nil {
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	ei, pdu, err := snmpwire.ExpectInt(pdu, "error-index")
	if err != nil {
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	list, _, err := snmpwire.Expect(pdu, tagSequence, "varbind list")
	if err != nil {
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	r.reqID, r.errStatus, r.errIndex = int32(id), int(es), int(ei)
	r.vbs, r.arcs, r.text = r.vbs[:0], r.arcs[:0], r.text[:0]
	for len(list) > 0 {
		tag, vb, rest, err := snmpwire.ReadTLV(list)
		if err != nil || tag != tagSequence {
			return fmt.Errorf("%w: varbind %d", errMalformed, len(r.vbs))
		}
		list = rest
		tag, name, vb, err := snmpwire.ReadTLV(vb)
		if err != nil || tag != tagOID {
			return fmt.Errorf("%w: varbind %d name", errMalformed, len(r.vbs))
		}
		start := len(r.arcs)
		if r.arcs, err = appendBEROID(r.arcs, name); err != nil {
			return fmt.Errorf("%w: varbind %d name: %v", errMalformed, len(r.vbs), err)
		}
		tag, val, _, err := snmpwire.ReadTLV(vb)
		if err != nil {
			return fmt.Errorf("%w: varbind %d value: %v", errMalformed, len(r.vbs), err)
		}
		r.vbs = append(r.vbs, varbind{tag: tag, nameOff: int32(start), nameEnd: int32(len(r.arcs))})
		if err := r.decodeValue(&r.vbs[len(r.vbs)-1], tag, val); err != nil {
			return fmt.Errorf("%w: varbind %d value: %v", errMalformed, len(r.vbs)-1, err)
		}
	}
	// r.arcs has stopped growing: point the names into it.
	for i := range r.vbs {
		v := &r.vbs[i]
		v.name = r.arcs[v.nameOff:v.nameEnd:v.nameEnd]
	}
	return nil
}

// appendBEROID appends the arcs of an OBJECT IDENTIFIER's content. An
// empty content is 0.0, as net-snmp and gosnmp read it.
func appendBEROID(dst []uint32, c []byte) ([]uint32, error) {
	if len(c) == 0 {
		return append(dst, 0, 0), nil
	}
	first := true
	var v uint64
	for i, b := range c {
		v = v<<7 | uint64(b&0x7f)
		if v > math.MaxUint32 {
			return dst, errors.New("OID sub-identifier out of range")
		}
		if b&0x80 != 0 {
			if i == len(c)-1 {
				return dst, errors.New("truncated OID")
			}
			continue
		}
		if first {
			first = false
			if v < 80 {
				dst = append(dst, uint32(v/40), uint32(v%40))
			} else {
				dst = append(dst, 2, uint32(v-80))
			}
		} else {
			dst = append(dst, uint32(v))
		}
		v = 0
	}
	return dst, nil
}

// decodeValue fills v from a value's tag and content, with gosnmp's
// conversions (so that v2c and v3 polls give identical observations):
// INTEGER and Unsigned32 must fit 8 bytes; Counter32, Gauge32 and
// Counter64 must fit 64 bits (a value that does not leaves the varbind
// without a value, as gosnmp does); TimeTicks is cut to 32 bits;
// IpAddress is text (IPv4 or IPv6, empty for no bytes); Opaque carries a
// float, a double or raw bytes.
func (r *response) decodeValue(v *varbind, tag byte, c []byte) error {
	o := &v.obs
	v.hold = true
	switch tag {
	case tagInteger, tagUinteger32:
		if len(c) == 0 || len(c) > 8 {
			return fmt.Errorf("INTEGER of %d bytes", len(c))
		}
		i := int64(int8(c[0]))
		for _, b := range c[1:] {
			i = i<<8 | int64(b)
		}
		if tag == tagInteger {
			o.Kind, o.Int = schema.KindInteger, i
		} else {
			o.Kind, o.Uint = schema.KindGauge, uint64(uint32(i))
		}
	case tagCounter32, tagGauge32, tagCounter64, tagTimeTicks:
		u, ok := berUint(c)
		if !ok {
			v.hold = false
			return nil
		}
		switch tag {
		case tagCounter32:
			o.Kind = schema.KindCounter32
		case tagGauge32:
			o.Kind = schema.KindGauge
		case tagCounter64:
			o.Kind = schema.KindCounter64
		default:
			o.Kind, u = schema.KindTimeTicks, uint64(uint32(u))
		}
		o.Uint = u
	case tagOctetString:
		o.Kind, v.text = schema.KindString, c[:len(c):len(c)]
	case tagOID:
		var err error
		if r.oid, err = appendBEROID(r.oid[:0], c); err != nil {
			return err
		}
		start := len(r.text)
		r.text = appendDotted(r.text, r.oid)
		o.Kind, v.text = schema.KindOID, r.text[start:len(r.text):len(r.text)]
	case tagIPAddress:
		start := len(r.text)
		switch len(c) {
		case 0:
		case 4:
			r.text = netip.AddrFrom4([4]byte(c)).AppendTo(r.text)
		case 16:
			r.text = netip.AddrFrom16([16]byte(c)).Unmap().AppendTo(r.text)
		default:
			return fmt.Errorf("IpAddress of %d bytes, want 4 or 16", len(c))
		}
		o.Kind, v.text = schema.KindString, r.text[start:len(r.text):len(r.text)]
	case tagOpaque:
		return decodeOpaque(v, c)
	case tagNull:
		o.Kind = schema.KindNull
	case tagNoSuchObject:
		o.Kind = schema.KindNoSuchObject
	case tagNoSuchInstance:
		o.Kind = schema.KindNoSuchInstance
	case tagEndOfMibView:
		o.Kind = schema.KindEndOfMibView
	default:
		v.hold = false
	}
	return nil
}

// berUint decodes an unsigned BER integer of at most 64 bits (9 bytes
// with a leading zero).
func berUint(c []byte) (uint64, bool) {
	if len(c) > 9 || (len(c) == 9 && c[0] != 0) {
		return 0, false
	}
	var u uint64
	for _, b := range c {
		u = u<<8 | uint64(b)
	}
	return u, true
}

func decodeOpaque(v *varbind, c []byte) error {
	o := &v.obs
	if len(c) == 0 {
		return errors.New("empty Opaque")
	}
	if len(c) > 2 && c[0] == 0x9f && (c[1] == tagOpaqueFloat || c[1] == tagOpaqueDouble) {
		_, f, _, err := snmpwire.ReadTLV(c[1:])
		if err != nil {
			return fmt.Errorf("opaque float: %w", err)
		}
		if c[1] == tagOpaqueFloat {
			if len(f) != 4 {
				return fmt.Errorf("opaque float of %d bytes", len(f))
			}
			v.tag, o.Kind = tagOpaqueFloat, schema.KindFloat
			o.Float = float64(math.Float32frombits(uint32(f[0])<<24 | uint32(f[1])<<16 | uint32(f[2])<<8 | uint32(f[3])))
			return nil
		}
		if len(f) != 8 {
			return fmt.Errorf("opaque double of %d bytes", len(f))
		}
		var u uint64
		for _, b := range f {
			u = u<<8 | uint64(b)
		}
		v.tag, o.Kind, o.Float = tagOpaqueDouble, schema.KindFloat, math.Float64frombits(u)
		return nil
	}
	o.Kind, v.text = schema.KindBytes, c[:len(c):len(c)]
	return nil
}
