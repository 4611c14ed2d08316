package snmpagent

import (
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/netfeat/netfeat/internal/sim/scenario"
)

// trapSink is a loopback UDP socket that receives traps.
func trapSink(t *testing.T) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvTrap reads one datagram and decodes it with dec (a v2c decoder
// when nil); it also returns when the datagram arrived.
func recvTrap(t *testing.T, c net.PacketConn, dec *gosnmp.GoSNMP) (*gosnmp.SnmpPacket, time.Time) {
	t.Helper()
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no trap: %v", err)
	}
	at := time.Now()
	if dec == nil {
		dec = &gosnmp.GoSNMP{Version: gosnmp.Version2c}
	}
	pkt, err := dec.UnmarshalTrap(buf[:n], false)
	if err != nil {
		t.Fatalf("decode trap: %v", err)
	}
	return pkt, at
}

// checkLinkTrap checks an RFC 2863 linkDown/linkUp notification.
func checkLinkTrap(t *testing.T, pkt *gosnmp.SnmpPacket, trapOID string, ifIndex, oper int) {
	t.Helper()
	if pkt.PDUType != gosnmp.SNMPv2Trap || len(pkt.Variables) != 5 {
		t.Fatalf("PDU %v with %d varbinds, want an SNMPv2-Trap with 5", pkt.PDUType, len(pkt.Variables))
	}
	v := pkt.Variables
	want := []struct {
		name string
		typ  gosnmp.Asn1BER
	}{
		{".1.3.6.1.2.1.1.3.0", gosnmp.TimeTicks}, {".1.3.6.1.6.3.1.1.4.1.0", gosnmp.ObjectIdentifier},
		{".1.3.6.1.2.1.2.2.1.1." + itoa(ifIndex), gosnmp.Integer}, {".1.3.6.1.2.1.2.2.1.7." + itoa(ifIndex), gosnmp.Integer},
		{".1.3.6.1.2.1.2.2.1.8." + itoa(ifIndex), gosnmp.Integer},
	}
	for i, w := range want {
		if v[i].Name != w.name || v[i].Type != w.typ {
			t.Fatalf("varbind %d = %s %v, want %s %v", i, v[i].Name, v[i].Type, w.name, w.typ)
		}
	}
	if v[1].Value != trapOID || v[2].Value != ifIndex || v[3].Value != 1 || v[4].Value != oper {
		t.Fatalf("trap %v ifIndex %v admin %v oper %v, want %s %d 1 %d", v[1].Value, v[2].Value, v[3].Value, v[4].Value, trapOID, ifIndex, oper)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestSetOperStatus takes a link down and up on demand: each change sends
// its trap with the device's community, polls see ifOperStatus change and
// the counters stop while down; repeating a state changes nothing.
func TestSetOperStatus(t *testing.T) {
	sink := trapSink(t)
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	d, addr := startDevice(t, testRouter(t), DeviceOptions{Name: "r", Community: "c0mm", Rate: 125_000, Now: clk.Now, Start: clk.Now(),
		TrapsTo: sink.LocalAddr().String()})
	g := client(t, addr, func(g *gosnmp.GoSNMP) { g.Community = "c0mm" })
	clk.Add(10 * time.Second)

	at, err := d.SetOperStatus(1, false)
	if err != nil || !at.Equal(clk.Now()) {
		t.Fatalf("SetOperStatus down = %v, %v; want the device's now %v", at, err, clk.Now())
	}
	pkt, _ := recvTrap(t, sink, nil)
	if pkt.Community != "c0mm" {
		t.Fatalf("trap community %q", pkt.Community)
	}
	checkLinkTrap(t, pkt, OIDLinkDown, 1, 2)
	if up := pkt.Variables[0].Value.(uint32); up != 500+1000 {
		t.Fatalf("sysUpTime.0 = %d, want the recorded 500 + 10 s", up)
	}
	if again, err := d.SetOperStatus(1, false); err != nil || !again.IsZero() {
		t.Fatalf("second SetOperStatus down = %v, %v; want no change", again, err)
	}
	downOctets := get(t, g, ifHCInOctets+".1")[ifHCInOctets+".1"]
	clk.Add(20 * time.Second)
	got := get(t, g, ifOperStatus+".1", ifHCInOctets+".1")
	if got[ifOperStatus+".1"] != 2 || got[ifHCInOctets+".1"] != downOctets {
		t.Fatalf("while down: ifOperStatus %d, octets %d (were %d); want 2 and stopped", got[ifOperStatus+".1"], got[ifHCInOctets+".1"], downOctets)
	}

	if _, err := d.SetOperStatus(1, true); err != nil {
		t.Fatal(err)
	}
	pkt, _ = recvTrap(t, sink, nil)
	checkLinkTrap(t, pkt, OIDLinkUp, 1, 1)
	clk.Add(10 * time.Second)
	got = get(t, g, ifOperStatus+".1", ifHCInOctets+".1")
	if got[ifOperStatus+".1"] != 1 || got[ifHCInOctets+".1"] != downOctets+125_000*10 {
		t.Fatalf("back up: ifOperStatus %d, octets %d; want 1 and %d", got[ifOperStatus+".1"], got[ifHCInOctets+".1"], downOctets+125_000*10)
	}
	// port2 is recorded down: bringing it up is not possible, nothing is sent.
	if at, err := d.SetOperStatus(2, true); err != nil || !at.IsZero() {
		t.Fatalf("SetOperStatus up on a recorded-down port = %v, %v", at, err)
	}
	if _, err := d.SetOperStatus(99, false); !errors.Is(err, ErrUnknownInterface) {
		t.Fatalf("unknown ifIndex: %v", err)
	}
	if st := d.Stats(); st.Traps != 2 || st.TrapErrors != 0 {
		t.Fatalf("stats %+v, want 2 traps", st)
	}
}

// TestScenarioLinkTraps: a scripted link-down sends linkDown when it
// begins and linkUp when it ends, on time.
func TestScenarioLinkTraps(t *testing.T) {
	sink := trapSink(t)
	start := time.Now()
	startDevice(t, testRouter(t), DeviceOptions{Name: "r", Community: "public", Start: start, TrapsTo: sink.LocalAddr().String(),
		Scenario: &scenario.Scenario{Events: []scenario.Event{{Kind: scenario.LinkDown, Interface: "port1", At: 200 * time.Millisecond, Until: 400 * time.Millisecond}}}})
	pkt, at := recvTrap(t, sink, nil)
	checkLinkTrap(t, pkt, OIDLinkDown, 1, 2)
	if el := at.Sub(start); el < 200*time.Millisecond || el > 2*time.Second {
		t.Fatalf("linkDown arrived %v after start, want just after 200ms", el)
	}
	pkt, at = recvTrap(t, sink, nil)
	checkLinkTrap(t, pkt, OIDLinkUp, 1, 1)
	if el := at.Sub(start); el < 400*time.Millisecond {
		t.Fatalf("linkUp arrived %v after start, before 400ms", el)
	}
}

// TestV3Trap sends the trap as an authPriv v3 user, decoded by gosnmp
// with the user's keys localized to the device's engine ID.
func TestV3Trap(t *testing.T) {
	sink := trapSink(t)
	u := User{Name: "ops", AuthProtocol: "SHA256", AuthKey: "authsecret", PrivProtocol: "AES", PrivKey: "privsecret"}
	d, _ := startDevice(t, testRouter(t), DeviceOptions{Name: "r", Users: []User{u}, TrapUser: "ops", TrapsTo: sink.LocalAddr().String()})
	if _, err := d.SetOperStatus(1, false); err != nil {
		t.Fatal(err)
	}
	dec := &gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel, MsgFlags: gosnmp.AuthPriv,
		SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: "ops", AuthoritativeEngineID: string(d.EngineID()),
			AuthenticationProtocol: gosnmp.SHA256, AuthenticationPassphrase: "authsecret", PrivacyProtocol: gosnmp.AES, PrivacyPassphrase: "privsecret"}}
	pkt, _ := recvTrap(t, sink, dec)
	checkLinkTrap(t, pkt, OIDLinkDown, 1, 2)
}

func TestTrapOptionErrors(t *testing.T) {
	mib := testRouter(t)
	for _, o := range []DeviceOptions{
		{Name: "r", Community: "public", TrapsTo: "no-port"},
		{Name: "r", Community: "public", TrapsTo: "127.0.0.1:162", TrapUser: "nobody"},
		{Name: "r", Users: []User{{Name: "u"}}, TrapsTo: "127.0.0.1:162"},
	} {
		if _, err := NewDevice(mib, o); err == nil {
			t.Errorf("NewDevice(%+v) succeeded", o)
		}
	}
}
