package snmpwire

import (
	"errors"
	"testing"

	"github.com/gosnmp/gosnmp"
)

// marshal builds a real message with gosnmp.
func marshal(t *testing.T, p *gosnmp.SnmpPacket) []byte {
	t.Helper()
	b, err := p.MarshalMsg()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPeek(t *testing.T) {
	v2 := marshal(t, &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: "public", PDUType: gosnmp.GetRequest, RequestID: 7,
		Variables: []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.Null}}})
	v3 := marshal(t, &gosnmp.SnmpPacket{
		Version: gosnmp.Version3, MsgFlags: gosnmp.NoAuthNoPriv | gosnmp.Reportable, MsgID: 42, MsgMaxSize: 65507,
		SecurityModel: gosnmp.UserSecurityModel, PDUType: gosnmp.GetRequest, RequestID: 99,
		SecurityParameters: &gosnmp.UsmSecurityParameters{
			UserName: "ops", AuthoritativeEngineID: "\x80\x00\x1f\x88\x04nf", AuthoritativeEngineBoots: 3, AuthoritativeEngineTime: 1234,
		},
		Variables: []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.Null}},
	})
	if v, err := PeekVersion(v2); err != nil || v != int64(gosnmp.Version2c) {
		t.Fatalf("v2c version = %d, %v", v, err)
	}
	if v, err := PeekVersion(v3); err != nil || v != 3 {
		t.Fatalf("v3 version = %d, %v", v, err)
	}
	h, err := PeekV3(v3)
	if err != nil {
		t.Fatal(err)
	}
	want := V3Header{MsgID: 42, MaxSize: 65507, Flags: byte(gosnmp.Reportable), SecModel: 3,
		EngineID: "\x80\x00\x1f\x88\x04nf", Boots: 3, Time: 1234, User: "ops", RequestID: 99}
	if h != want {
		t.Fatalf("PeekV3 = %+v, want %+v", h, want)
	}

	bad := []struct {
		name  string
		msg   []byte
		trunc bool
	}{
		{"empty", nil, true},
		{"one byte", []byte{0x30}, true},
		{"short content", []byte{0x30, 0x05, 0x02, 0x01}, true},
		{"indefinite length", []byte{0x30, 0x80, 0x00, 0x00}, false},
		{"length of 4 bytes", []byte{0x30, 0x84, 0, 0, 0, 1, 0}, false},
		{"not a sequence", []byte{0x04, 0x01, 0x00}, false},
		{"empty integer", []byte{0x30, 0x02, 0x02, 0x00}, false},
		{"9-byte integer", []byte{0x30, 0x0b, 0x02, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9}, false},
		{"cut v3", v3[:len(v3)/2], true},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PeekV3(tc.msg)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.trunc != errors.Is(err, ErrTruncated) {
				t.Fatalf("err %v: truncated = %v, want %v", err, errors.Is(err, ErrTruncated), tc.trunc)
			}
		})
	}
}

func TestInt(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want int64
	}{
		{[]byte{0x00}, 0}, {[]byte{0x7f}, 127}, {[]byte{0x00, 0x80}, 128}, {[]byte{0xff}, -1},
		{[]byte{0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, -1 << 63},
	} {
		if got, err := Int(tc.in); err != nil || got != tc.want {
			t.Errorf("Int(% x) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestProtocolNames(t *testing.T) {
	for _, tc := range []struct {
		in   string
		auth gosnmp.SnmpV3AuthProtocol
		ok   bool
	}{{"", gosnmp.NoAuth, true}, {"sha", gosnmp.SHA, true}, {"SHA1", gosnmp.SHA, true}, {"Sha256", gosnmp.SHA256, true}, {"SHA-256", 0, false}} {
		got, err := AuthProtocol(tc.in)
		if (err == nil) != tc.ok || got != tc.auth {
			t.Errorf("AuthProtocol(%q) = %v, %v", tc.in, got, err)
		}
	}
	for _, tc := range []struct {
		in   string
		priv gosnmp.SnmpV3PrivProtocol
		ok   bool
	}{{"none", gosnmp.NoPriv, true}, {"aes", gosnmp.AES, true}, {"AES128", gosnmp.AES, true}, {"aes256c", gosnmp.AES256C, true}, {"3DES", 0, false}} {
		got, err := PrivProtocol(tc.in)
		if (err == nil) != tc.ok || got != tc.priv {
			t.Errorf("PrivProtocol(%q) = %v, %v", tc.in, got, err)
		}
	}
}
