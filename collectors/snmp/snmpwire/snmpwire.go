// Package snmpwire reads the outer layers of an SNMP message in BER — the
// version, and for SNMPv3 the RFC 3412 header and RFC 3414 USM security
// parameters — which an agent or trap receiver must see before gosnmp can
// decode the rest (to pick a user, answer engine discovery, or report an
// unknown user). It reads definite lengths only, as SNMP requires.
package snmpwire

import (
	"errors"
	"fmt"
)

// ErrTruncated is returned for data that ends inside a BER element.
var ErrTruncated = errors.New("truncated BER element")

// BER tags used by SNMP's outer layers.
const (
	TagInteger     = 0x02
	TagOctetString = 0x04
	TagSequence    = 0x30
)

// ReadTLV splits one definite-length BER element off b: its tag, content
// and the bytes after it.
func ReadTLV(b []byte) (tag byte, content, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, ErrTruncated
	}
	tag, n, off := b[0], int(b[1]), 2
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 || k > 3 || len(b) < 2+k {
			return 0, nil, nil, fmt.Errorf("bad BER length form 0x%02x", b[1])
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		off += k
	}
	if len(b)-off < n {
		return 0, nil, nil, ErrTruncated
	}
	return tag, b[off : off+n], b[off+n:], nil
}

// Expect reads one element that must have tag want; what names it in
// errors.
func Expect(b []byte, want byte, what string) (content, rest []byte, err error) {
	tag, content, rest, err := ReadTLV(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if tag != want {
		return nil, nil, fmt.Errorf("%s: tag 0x%02x, want 0x%02x", what, tag, want)
	}
	return content, rest, nil
}

// Int decodes a BER INTEGER's content (at most 8 bytes, two's complement).
func Int(c []byte) (int64, error) {
	if len(c) == 0 || len(c) > 8 {
		return 0, fmt.Errorf("INTEGER of %d bytes", len(c))
	}
	v := int64(int8(c[0]))
	for _, b := range c[1:] {
		v = v<<8 | int64(b)
	}
	return v, nil
}

// ExpectInt reads one INTEGER element.
func ExpectInt(b []byte, what string) (int64, []byte, error) {
	c, rest, err := Expect(b, TagInteger, what)
	if err != nil {
		return 0, nil, err
	}
	v, err := Int(c)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", what, err)
	}
	return v, rest, nil
}

// PeekVersion returns the version field of a message: 0 for v1, 1 for
// v2c, 3 for v3.
func PeekVersion(msg []byte) (int64, error) {
	body, _, err := Expect(msg, TagSequence, "message")
	if err != nil {
		return 0, err
	}
	v, _, err := ExpectInt(body, "version")
	return v, err
}

// V3Header is the RFC 3412 header and RFC 3414 USM parameters of an SNMPv3
// message.
type V3Header struct {
	MsgID    int64
	MaxSize  int64
	Flags    byte // msgFlags: 1 auth, 2 priv, 4 reportable
	SecModel int64
	EngineID string // msgAuthoritativeEngineID
	Boots    int64
	Time     int64
	User     string
	// RequestID is the PDU's request-id when the scoped PDU is in plain
	// text (no privacy), else -1.
	RequestID int64
}

// PeekV3 decodes the header and security parameters of an SNMPv3 message.
func PeekV3(msg []byte) (V3Header, error) {
	h := V3Header{RequestID: -1}
	body, _, err := Expect(msg, TagSequence, "message")
	if err != nil {
		return h, err
	}
	if _, body, err = ExpectInt(body, "version"); err != nil {
		return h, err
	}
	hdr, body, err := Expect(body, TagSequence, "msgGlobalData")
	if err != nil {
		return h, err
	}
	if h.MsgID, hdr, err = ExpectInt(hdr, "msgID"); err != nil {
		return h, err
	}
	if h.MaxSize, hdr, err = ExpectInt(hdr, "msgMaxSize"); err != nil {
		return h, err
	}
	flags, hdr, err := Expect(hdr, TagOctetString, "msgFlags")
	if err != nil {
		return h, err
	}
	if len(flags) != 1 {
		return h, fmt.Errorf("msgFlags of %d bytes", len(flags))
	}
	h.Flags = flags[0]
	if h.SecModel, _, err = ExpectInt(hdr, "msgSecurityModel"); err != nil {
		return h, err
	}
	sp, body, err := Expect(body, TagOctetString, "msgSecurityParameters")
	if err != nil {
		return h, err
	}
	usm, _, err := Expect(sp, TagSequence, "UsmSecurityParameters")
	if err != nil {
		return h, err
	}
	eid, usm, err := Expect(usm, TagOctetString, "msgAuthoritativeEngineID")
	if err != nil {
		return h, err
	}
	h.EngineID = string(eid)
	if h.Boots, usm, err = ExpectInt(usm, "msgAuthoritativeEngineBoots"); err != nil {
		return h, err
	}
	if h.Time, usm, err = ExpectInt(usm, "msgAuthoritativeEngineTime"); err != nil {
		return h, err
	}
	user, _, err := Expect(usm, TagOctetString, "msgUserName")
	if err != nil {
		return h, err
	}
	h.User = string(user)
	// A plain-text scoped PDU: SEQUENCE { contextEngineID, contextName, PDU }.
	if scoped, _, err := Expect(body, TagSequence, "scopedPDU"); err == nil {
		if _, scoped, err = Expect(scoped, TagOctetString, "contextEngineID"); err != nil {
			return h, nil
		}
		if _, scoped, err = Expect(scoped, TagOctetString, "contextName"); err != nil {
			return h, nil
		}
		if _, pdu, _, err := ReadTLV(scoped); err == nil {
			if id, _, err := ExpectInt(pdu, "request-id"); err == nil {
				h.RequestID = id
			}
		}
	}
	return h, nil
}
