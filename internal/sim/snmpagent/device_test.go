package snmpagent

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"go.uber.org/goleak"

	"github.com/netfeat/netfeat/recording"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testdata = "../../../testdata/snmp"

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func loadMIB(t testing.TB, name string) *MIB {
	t.Helper()
	m, err := LoadMIB(filepath.Join(testdata, name+".snmprec"))
	if err != nil {
		t.Fatalf("LoadMIB: %v", err)
	}
	return m
}

// startDevice serves one device on a loopback port for the test's duration.
func startDevice(t testing.TB, mib *MIB, opt DeviceOptions) (*Device, string) {
	t.Helper()
	d, err := NewDevice(mib, opt)
	if err != nil {
		t.Fatalf("NewDevice: %v", err)
	}
	sim := NewSimulator(nil)
	if err := sim.Add(d, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := sim.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return d, sim.Endpoints()[0].Addr
}

func client(t testing.TB, addr string, configure func(*gosnmp.GoSNMP)) *gosnmp.GoSNMP {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	var p uint16
	fmt.Sscan(port, &p)
	g := &gosnmp.GoSNMP{Target: host, Port: p, Version: gosnmp.Version2c, Community: "public",
		Timeout: time.Second, Retries: 1, MaxRepetitions: 25}
	if configure != nil {
		configure(g)
	}
	if err := g.Connect(); err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { g.Conn.Close() })
	return g
}

// recordedPDU renders a record the way gosnmp decodes it, for comparison.
func recordedValue(r recording.SNMPRecord) string {
	switch r.Tag {
	case recording.TagInteger:
		return fmt.Sprint(r.Int)
	case recording.TagOctetString, recording.TagOpaque:
		return fmt.Sprintf("%x", r.Bytes)
	case recording.TagOID:
		return "." + string(r.Bytes)
	case recording.TagIPAddress:
		return fmt.Sprintf("%d.%d.%d.%d", r.Bytes[0], r.Bytes[1], r.Bytes[2], r.Bytes[3])
	case recording.TagNull:
		return "<nil>"
	}
	return fmt.Sprint(r.Uint)
}

func decodedValue(p gosnmp.SnmpPDU) string {
	switch v := p.Value.(type) {
	case []byte:
		return fmt.Sprintf("%x", v)
	case nil:
		return "<nil>"
	}
	if p.Type == gosnmp.Counter64 {
		return gosnmp.ToBigInt(p.Value).String()
	}
	return fmt.Sprint(p.Value)
}

func TestWalkEqualsRecording(t *testing.T) {
	users := []User{{Name: "alice", AuthProtocol: "SHA256", AuthKey: "authpass1", PrivProtocol: "AES", PrivKey: "privpass1"}}
	tests := []struct {
		name      string
		recording string
		configure func(*gosnmp.GoSNMP)
	}{
		{"v2c/timos", "timos", nil},
		{"v2c/ericsson-ml", "ericsson-ml", nil},
		{"v3-authPriv-SHA256-AES/nokia-isam", "nokia-isam", func(g *gosnmp.GoSNMP) {
			g.Version, g.SecurityModel, g.MsgFlags = gosnmp.Version3, gosnmp.UserSecurityModel, gosnmp.AuthPriv
			g.SecurityParameters = &gosnmp.UsmSecurityParameters{UserName: "alice",
				AuthenticationProtocol: gosnmp.SHA256, AuthenticationPassphrase: "authpass1",
				PrivacyProtocol: gosnmp.AES, PrivacyPassphrase: "privpass1"}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mib := loadMIB(t, tc.recording)
			_, addr := startDevice(t, mib, DeviceOptions{Name: tc.recording, Community: "public", Users: users, Rate: 1000})
			g := client(t, addr, tc.configure)
			got, err := g.BulkWalkAll(".1.3")
			if err != nil {
				t.Fatalf("BulkWalkAll: %v", err)
			}
			want := mib.Records()
			if len(got) != len(want) {
				t.Fatalf("walk returned %d varbinds, recording has %d", len(got), len(want))
			}
			for i, r := range want {
				if got[i].Name != "."+r.OID {
					t.Fatalf("varbind %d: OID %s, want .%s", i, got[i].Name, r.OID)
				}
				if int(got[i].Type) != r.Tag {
					t.Fatalf("%s: type 0x%x, want tag %d", r.OID, byte(got[i].Type), r.Tag)
				}
				// Counters and sysUpTime advance with the wall clock; the
				// fixed-clock test below checks their exact values.
				if r.Tag == recording.TagCounter32 || r.Tag == recording.TagCounter64 || r.OID == "1.3.6.1.2.1.1.3.0" {
					continue
				}
				if g, w := decodedValue(got[i]), recordedValue(r); g != w {
					t.Fatalf("%s: value %s, want %s", r.OID, g, w)
				}
			}
		})
	}
}

func TestCountersAdvanceWrapAndReboot(t *testing.T) {
	mib := loadMIB(t, "timos")
	const (
		hcIn   = "1.3.6.1.2.1.31.1.1.1.6.35684352" // a Counter64 in the recording
		upTime = "1.3.6.1.2.1.1.3.0"
	)
	rec := map[string]recording.SNMPRecord{}
	for _, r := range mib.Records() {
		rec[r.OID] = r
	}
	if _, ok := rec[hcIn]; !ok {
		t.Fatalf("recording lacks %s", hcIn)
	}
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	start := clk.Now()
	tests := []struct {
		name    string
		opt     DeviceOptions
		advance time.Duration
		oid     string
		want    uint64
	}{
		{"first read equals recording", DeviceOptions{Rate: 1e6}, 0, hcIn, rec[hcIn].Uint},
		{"counter64 advances", DeviceOptions{Rate: 1e6}, 10 * time.Second, hcIn, rec[hcIn].Uint + 1e7},
		{"wrap32 narrows counter64", DeviceOptions{Rate: 1e9, Wrap32: true}, 10 * time.Second, hcIn, (rec[hcIn].Uint + 1e10) % (1 << 32)},
		{"sysUpTime advances", DeviceOptions{}, 10 * time.Second, upTime, rec[upTime].Uint + 1000},
		{"reboot resets sysUpTime", DeviceOptions{RebootEvery: time.Minute}, 70 * time.Second, upTime, 1000},
		{"reboot restarts counters", DeviceOptions{Rate: 5, RebootEvery: time.Minute}, 70 * time.Second, hcIn, 50},
		{"error counters stay", DeviceOptions{Rate: 1e9}, time.Hour, "1.3.6.1.2.1.2.2.1.14.35684352", rec["1.3.6.1.2.1.2.2.1.14.35684352"].Uint},
		{"counters outside IF-MIB stay", DeviceOptions{Rate: 1e9}, time.Hour, "1.3.6.1.2.1.4.3.0", rec["1.3.6.1.2.1.4.3.0"].Uint},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: start}
			tc.opt.Name, tc.opt.Community, tc.opt.Now, tc.opt.Start = "timos", "public", clk.Now, start
			_, addr := startDevice(t, mib, tc.opt)
			clk.Add(tc.advance)
			res, err := client(t, addr, nil).Get([]string{tc.oid})
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got := gosnmp.ToBigInt(res.Variables[0].Value).Uint64(); got != tc.want {
				t.Fatalf("%s = %d, want %d", tc.oid, got, tc.want)
			}
		})
	}
}

func TestExceptionsAndBulk(t *testing.T) {
	mib := loadMIB(t, "ericsson-ml")
	_, addr := startDevice(t, mib, DeviceOptions{Name: "ml", Community: "public"})
	g := client(t, addr, nil)
	recs := mib.Records()
	last := recs[len(recs)-1].OID

	res, err := g.Get([]string{".1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.3.1", ".1.3.6.1.2.1.1.99.0", ".1.3.6.1.2.1.1.3", ".1.3.6.1.2.1.31.1.1.1.6.999999"})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	wantTypes := []gosnmp.Asn1BER{gosnmp.OctetString, gosnmp.NoSuchInstance, gosnmp.NoSuchObject, gosnmp.NoSuchObject, gosnmp.NoSuchInstance}
	for i, w := range wantTypes {
		if res.Variables[i].Type != w {
			t.Fatalf("GET varbind %d (%s): type %v, want %v", i, res.Variables[i].Name, res.Variables[i].Type, w)
		}
	}

	res, err = g.GetNext([]string{"." + last, ".1.3.6.1.2.1.1.1"})
	if err != nil {
		t.Fatalf("GetNext: %v", err)
	}
	if v := res.Variables[0]; v.Type != gosnmp.EndOfMibView || v.Name != "."+last {
		t.Fatalf("GETNEXT past the end = %s %v, want %s endOfMibView", v.Name, v.Type, last)
	}
	if v := res.Variables[1]; v.Name != ".1.3.6.1.2.1.1.1.0" {
		t.Fatalf("GETNEXT sysDescr = %s, want .1.3.6.1.2.1.1.1.0", v.Name)
	}

	// One non-repeater and two repeaters, one of which reaches the end.
	res, err = g.GetBulk([]string{".1.3.6.1.2.1.1.1.0", ".1.3.6.1.2.1.1.2", recs[len(recs)-2].OID}, 1, 3)
	if err != nil {
		t.Fatalf("GetBulk: %v", err)
	}
	names := make([]string, len(res.Variables))
	for i, v := range res.Variables {
		names[i] = fmt.Sprintf("%s/%v", v.Name, v.Type)
	}
	want := []string{
		".1.3.6.1.2.1.1.2.0/ObjectIdentifier",
		".1.3.6.1.2.1.1.2.0/ObjectIdentifier", "." + last + "/" + fmt.Sprint(gosnmp.Asn1BER(recs[len(recs)-1].Tag)),
		".1.3.6.1.2.1.1.3.0/TimeTicks", "." + last + "/EndOfMibView",
		".1.3.6.1.2.1.1.4.0/OctetString", "." + last + "/EndOfMibView",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("GETBULK =\n%v\nwant\n%v", names, want)
	}
}

func TestBulkTruncatedToMessageSize(t *testing.T) {
	mib := loadMIB(t, "timos")
	_, addr := startDevice(t, mib, DeviceOptions{Name: "timos", Community: "public", MaxMessageSize: 1400})
	g := client(t, addr, nil)
	res, err := g.GetBulk([]string{".1.3.6.1.2.1.2.2.1"}, 0, 500)
	if err != nil {
		t.Fatalf("GetBulk: %v", err)
	}
	if n := len(res.Variables); n == 0 || n >= 500 {
		t.Fatalf("GETBULK returned %d varbinds, want a truncated non-empty response", n)
	}
	// GET that cannot fit answers tooBig.
	oids := make([]string, 60)
	for i := range oids {
		oids[i] = ".1.3.6.1.2.1.1.1.0" // sysDescr is ~300 bytes
	}
	res, err = g.Get(oids)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if res.Error != gosnmp.TooBig || len(res.Variables) != 0 {
		t.Fatalf("oversized GET: error %v with %d varbinds, want tooBig and none", res.Error, len(res.Variables))
	}
}

func TestBadRequests(t *testing.T) {
	mib := loadMIB(t, "ericsson-ml")
	users := []User{{Name: "alice", AuthProtocol: "SHA256", AuthKey: "authpass1", PrivProtocol: "AES", PrivKey: "privpass1"}}
	d, addr := startDevice(t, mib, DeviceOptions{Name: "ml", Community: "public", Users: users})
	v3 := func(user, auth, priv string, flags gosnmp.SnmpV3MsgFlags) func(*gosnmp.GoSNMP) {
		return func(g *gosnmp.GoSNMP) {
			g.Version, g.SecurityModel, g.MsgFlags = gosnmp.Version3, gosnmp.UserSecurityModel, flags
			g.Retries = 0
			g.SecurityParameters = &gosnmp.UsmSecurityParameters{UserName: user,
				AuthenticationProtocol: gosnmp.SHA256, AuthenticationPassphrase: auth,
				PrivacyProtocol: gosnmp.AES, PrivacyPassphrase: priv}
		}
	}
	tests := []struct {
		name      string
		configure func(*gosnmp.GoSNMP)
		stat      func(Stats) uint64
	}{
		{"wrong community", func(g *gosnmp.GoSNMP) { g.Community = "private"; g.Timeout = 200 * time.Millisecond; g.Retries = 0 },
			func(s Stats) uint64 { return s.BadCommunity }},
		{"unknown user", v3("mallory", "authpass1", "privpass1", gosnmp.AuthPriv), func(s Stats) uint64 { return s.UnknownUser }},
		{"wrong auth key", v3("alice", "wrongpass", "privpass1", gosnmp.AuthPriv), func(s Stats) uint64 { return s.WrongDigest }},
		{"wrong level", v3("alice", "authpass1", "privpass1", gosnmp.AuthNoPriv), func(s Stats) uint64 { return s.BadSecLevel }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.stat(d.Stats())
			_, err := client(t, addr, tc.configure).Get([]string{".1.3.6.1.2.1.1.1.0"})
			if err == nil {
				t.Fatalf("Get succeeded, want an error")
			}
			if after := tc.stat(d.Stats()); after <= before {
				t.Fatalf("stat did not count the request (still %d); err was %v", after, err)
			}
		})
	}
	// Garbage is dropped and counted without disturbing service.
	before := d.Stats().Malformed
	if out, err := d.Handle([]byte{0x30, 0x03, 0x02, 0x01}); out != nil || err == nil {
		t.Fatalf("Handle(garbage) = %x, %v; want nil and an error", out, err)
	}
	if d.Stats().Malformed != before+1 {
		t.Fatalf("malformed message not counted")
	}
	if _, err := client(t, addr, nil).Get([]string{".1.3.6.1.2.1.1.1.0"}); err != nil {
		t.Fatalf("Get after garbage: %v", err)
	}
}
