package snmpagent

import (
	"errors"
	"fmt"
)

// errTruncated is returned for BER data that ends inside an element.
var errTruncated = errors.New("truncated BER element")

// readTLV splits one definite-length BER element off b.
func readTLV(b []byte) (tag byte, content, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errTruncated
	}
	tag = b[0]
	n := int(b[1])
	off := 2
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

// berInt decodes a BER INTEGER's content (at most 8 bytes, two's complement).
func berInt(c []byte) (int64, error) {
	if len(c) == 0 || len(c) > 8 {
		return 0, fmt.Errorf("INTEGER of %d bytes", len(c))
	}
	v := int64(int8(c[0]))
	for _, b := range c[1:] {
		v = v<<8 | int64(b)
	}
	return v, nil
}

// expect reads one element of the wanted tag.
func expect(b []byte, want byte, what string) (content, rest []byte, err error) {
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
	c, rest, err := expect(b, 0x02, what)
	if err != nil {
		return 0, nil, err
	}
	v, err := berInt(c)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", what, err)
	}
	return v, rest, nil
}

// v3Header is what the agent needs from an SNMPv3 message before it
// chooses a user and decrypts: RFC 3412 header and RFC 3414 USM parameters.
type v3Header struct {
	msgID     int64
	maxSize   int64
	flags     byte
	secModel  int64
	engineID  string
	boots     int64
	time      int64
	user      string
	requestID int64 // only when the scoped PDU is in plain text; else -1
}

// peekVersion returns the SNMP version field of a message.
func peekVersion(msg []byte) (int64, error) {
	body, _, err := expect(msg, 0x30, "message")
	if err != nil {
		return 0, err
	}
	v, _, err := expectInt(body, "version")
	return v, err
}

// peekV3 decodes the header and security parameters of an SNMPv3 message.
func peekV3(msg []byte) (v3Header, error) {
	h := v3Header{requestID: -1}
	body, _, err := expect(msg, 0x30, "message")
	if err != nil {
		return h, err
	}
	if _, body, err = expectInt(body, "version"); err != nil {
		return h, err
	}
	hdr, body, err := expect(body, 0x30, "msgGlobalData")
	if err != nil {
		return h, err
	}
	if h.msgID, hdr, err = expectInt(hdr, "msgID"); err != nil {
		return h, err
	}
	if h.maxSize, hdr, err = expectInt(hdr, "msgMaxSize"); err != nil {
		return h, err
	}
	flags, hdr, err := expect(hdr, 0x04, "msgFlags")
	if err != nil {
		return h, err
	}
	if len(flags) != 1 {
		return h, fmt.Errorf("msgFlags of %d bytes", len(flags))
	}
	h.flags = flags[0]
	if h.secModel, _, err = expectInt(hdr, "msgSecurityModel"); err != nil {
		return h, err
	}
	sp, body, err := expect(body, 0x04, "msgSecurityParameters")
	if err != nil {
		return h, err
	}
	usm, _, err := expect(sp, 0x30, "UsmSecurityParameters")
	if err != nil {
		return h, err
	}
	eid, usm, err := expect(usm, 0x04, "msgAuthoritativeEngineID")
	if err != nil {
		return h, err
	}
	h.engineID = string(eid)
	if h.boots, usm, err = expectInt(usm, "msgAuthoritativeEngineBoots"); err != nil {
		return h, err
	}
	if h.time, usm, err = expectInt(usm, "msgAuthoritativeEngineTime"); err != nil {
		return h, err
	}
	user, _, err := expect(usm, 0x04, "msgUserName")
	if err != nil {
		return h, err
	}
	h.user = string(user)
	// A plain-text scoped PDU: SEQUENCE { contextEngineID, contextName, PDU }.
	if scoped, _, err := expect(body, 0x30, "scopedPDU"); err == nil {
		if _, scoped, err = expect(scoped, 0x04, "contextEngineID"); err != nil {
			return h, nil
		}
		if _, scoped, err = expect(scoped, 0x04, "contextName"); err != nil {
			return h, nil
		}
		if _, pdu, _, err := readTLV(scoped); err == nil {
			if id, _, err := expectInt(pdu, "request-id"); err == nil {
				h.requestID = id
			}
		}
	}
	return h, nil
}
