package snmp

import (
	"errors"
	"fmt"
)

// A minimal BER reader for the parts of an SNMP message the trap receiver
// must see before gosnmp decodes it: the version, and for v3 the header
// and USM user, to answer engine discovery (RFC 3414 4).

var errTruncated = errors.New("truncated BER element")

func readTLV(b []byte) (tag byte, content, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errTruncated
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
		return 0, nil, nil, errTruncated
	}
	return tag, b[off : off+n], b[off+n:], nil
}

func expectTLV(b []byte, want byte, what string) (content, rest []byte, err error) {
	tag, content, rest, err := readTLV(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if tag != want {
		return nil, nil, fmt.Errorf("%s: tag 0x%02x, want 0x%02x", what, tag, want)
	}
	return content, rest, nil
}

func expectInt(b []byte, what string) (int64, []byte, error) {
	c, rest, err := expectTLV(b, 0x02, what)
	if err != nil {
		return 0, nil, err
	}
	if len(c) == 0 || len(c) > 8 {
		return 0, nil, fmt.Errorf("%s: INTEGER of %d bytes", what, len(c))
	}
	v := int64(int8(c[0]))
	for _, x := range c[1:] {
		v = v<<8 | int64(x)
	}
	return v, rest, nil
}

// v3Peek is the header of an SNMPv3 message.
type v3Peek struct {
	flags    byte
	engineID string
	user     string
}

// peekMessage returns the version of msg and, for v3, its header.
func peekMessage(msg []byte) (version int64, h v3Peek, err error) {
	body, _, err := expectTLV(msg, 0x30, "message")
	if err != nil {
		return 0, h, err
	}
	version, body, err = expectInt(body, "version")
	if err != nil || version != 3 {
		return version, h, err
	}
	hdr, body, err := expectTLV(body, 0x30, "msgGlobalData")
	if err != nil {
		return version, h, err
	}
	if _, hdr, err = expectInt(hdr, "msgID"); err != nil {
		return version, h, err
	}
	if _, hdr, err = expectInt(hdr, "msgMaxSize"); err != nil {
		return version, h, err
	}
	flags, _, err := expectTLV(hdr, 0x04, "msgFlags")
	if err != nil || len(flags) != 1 {
		return version, h, fmt.Errorf("msgFlags: %v", err)
	}
	h.flags = flags[0]
	sp, _, err := expectTLV(body, 0x04, "msgSecurityParameters")
	if err != nil {
		return version, h, err
	}
	usm, _, err := expectTLV(sp, 0x30, "UsmSecurityParameters")
	if err != nil {
		return version, h, err
	}
	eid, usm, err := expectTLV(usm, 0x04, "msgAuthoritativeEngineID")
	if err != nil {
		return version, h, err
	}
	h.engineID = string(eid)
	if _, usm, err = expectInt(usm, "msgAuthoritativeEngineBoots"); err != nil {
		return version, h, err
	}
	if _, usm, err = expectInt(usm, "msgAuthoritativeEngineTime"); err != nil {
		return version, h, err
	}
	user, _, err := expectTLV(usm, 0x04, "msgUserName")
	if err != nil {
		return version, h, err
	}
	h.user = string(user)
	return version, h, nil
}
