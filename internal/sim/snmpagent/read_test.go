package snmpagent

import (
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/netfeat/netfeat/recording"
)

func TestRead(t *testing.T) {
	recs, err := recording.ReadSNMPRec(strings.NewReader(SyntheticRouter(3)), "synthetic")
	if err != nil {
		t.Fatal(err)
	}
	mib, err := NewMIB(recs)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// The clock says something else: Read goes by the instant it is given.
	d, err := NewDevice(mib, DeviceOptions{Name: "r", Community: "public", Rate: 1000, Start: start,
		Now: func() time.Time { return start.Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if d.SysObjectID() != SyntheticSysObjectID || d.SysDescr() != "netfeat bench simulated router" {
		t.Fatalf("sysObjectID %q, sysDescr %q", d.SysObjectID(), d.SysDescr())
	}
	const hcIn = "1.3.6.1.2.1.31.1.1.1.6"
	read := func(at time.Duration) []gosnmp.SnmpPDU {
		pdus, err := d.Read([]string{"1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.9.0"}, []string{hcIn}, start.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		return pdus
	}
	a, b := read(0), read(10*time.Second)
	if len(a) != 5 || len(b) != 5 {
		t.Fatalf("%d and %d varbinds, want 2 scalars and 3 instances", len(a), len(b))
	}
	if a[0].Type != gosnmp.OctetString || string(a[0].Value.([]byte)) != "sim" || a[1].Type != gosnmp.NoSuchObject {
		t.Fatalf("scalars %+v %+v", a[0], a[1])
	}
	for i := 2; i < 5; i++ {
		if !strings.HasPrefix(a[i].Name, "."+hcIn+".") || a[i].Name != b[i].Name {
			t.Fatalf("instance %d: %s and %s", i, a[i].Name, b[i].Name)
		}
		if inc := gosnmp.ToBigInt(b[i].Value).Uint64() - gosnmp.ToBigInt(a[i].Value).Uint64(); inc != 10_000 {
			t.Errorf("%s advanced by %d in 10 s at 1000 octets/s", a[i].Name, inc)
		}
	}
	if _, err := d.Read([]string{"not.an.oid"}, nil, start); err == nil {
		t.Fatal("a bad OID was read")
	}
}
