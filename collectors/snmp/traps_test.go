package snmp

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/schema"
)

func TestTraps(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TrapListen = "127.0.0.1:0"
	cfg.TrapCommunities = []string{"traps"}
	cfg.TrapUsers = []V3{{User: "trapper", AuthProtocol: "SHA256", AuthPasswordFile: secretFile(t, "authsecret"),
		PrivProtocol: "AES", PrivPasswordFile: secretFile(t, "privsecret")}}
	cfg.Targets = []Target{{Name: "router1", Address: "127.0.0.1:1"}}
	got := make(chan []schema.Observation, 10)
	sink := schema.ObservationSinkFunc(func(_ context.Context, b []schema.Observation) error {
		got <- append([]schema.Observation(nil), b...)
		return nil
	})
	p, err := New(cfg, StaticPlan{}, sink, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Start polls router1 too (nothing listens there); only traps matter here.
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())
	host, port, _ := strings.Cut(p.TrapAddr(), ":")
	pn, _ := strconv.Atoi(port)

	linkDown := gosnmp.SnmpTrap{Variables: []gosnmp.SnmpPDU{
		{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.TimeTicks, Value: uint32(4242)},
		{Name: ".1.3.6.1.6.3.1.1.4.1.0", Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1.6.3.1.1.5.3"},
		{Name: ".1.3.6.1.2.1.2.2.1.1.7", Type: gosnmp.Integer, Value: 7},
		{Name: ".1.3.6.1.2.1.2.2.1.8.7", Type: gosnmp.Integer, Value: 2},
	}}
	v3 := func(auth string) func(*gosnmp.GoSNMP) {
		return func(g *gosnmp.GoSNMP) {
			g.Version, g.SecurityModel, g.MsgFlags = gosnmp.Version3, gosnmp.UserSecurityModel, gosnmp.AuthPriv
			g.SecurityParameters = &gosnmp.UsmSecurityParameters{UserName: "trapper",
				AuthoritativeEngineID: "\x80\x00\x1f\x88\x04sender", AuthoritativeEngineBoots: 1,
				AuthenticationProtocol: gosnmp.SHA256, AuthenticationPassphrase: auth,
				PrivacyProtocol: gosnmp.AES, PrivacyPassphrase: "privsecret"}
		}
	}
	tests := []struct {
		name      string
		configure func(*gosnmp.GoSNMP)
		inform    bool
		accepted  bool
	}{
		{"v2c trap", func(g *gosnmp.GoSNMP) { g.Community = "traps" }, false, true},
		{"v2c inform", func(g *gosnmp.GoSNMP) { g.Community = "traps" }, true, true},
		{"v2c wrong community", func(g *gosnmp.GoSNMP) { g.Community = "public" }, false, false},
		{"v3 authPriv trap", v3("authsecret"), false, true},
		{"v3 wrong key", v3("wrongsecret"), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &gosnmp.GoSNMP{Target: host, Port: uint16(pn), Version: gosnmp.Version2c, Timeout: time.Second, Retries: 0}
			tc.configure(g)
			if err := g.Connect(); err != nil {
				t.Fatal(err)
			}
			defer g.Conn.Close()
			trap := linkDown
			trap.IsInform = tc.inform
			if _, err := g.SendTrap(trap); err != nil {
				t.Fatalf("SendTrap: %v", err)
			}
			select {
			case b := <-got:
				if !tc.accepted {
					t.Fatalf("refused trap reached the sink: %+v", b)
				}
				if len(b) != 4 || b[0].Device != "127.0.0.1" && b[0].Device != "router1" {
					t.Fatalf("batch = %+v", b)
				}
				if b[1].Path != oidSnmpTrapOID || b[1].Kind != schema.KindOID || b[1].Str != "1.3.6.1.6.3.1.1.5.3" {
					t.Fatalf("snmpTrapOID = %+v", b[1])
				}
				if b[3].Path != "1.3.6.1.2.1.2.2.1.8.7" || b[3].Int != 2 || b[3].Protocol != schema.ProtocolTrap {
					t.Fatalf("ifOperStatus = %+v", b[3])
				}
			case <-time.After(500 * time.Millisecond):
				if tc.accepted {
					t.Fatal("trap did not reach the sink")
				}
			}
		})
	}
	if n := testutil.ToFloat64(p.m.trapErrors.WithLabelValues("127.0.0.1", "community")); n != 1 {
		t.Fatalf("trap_errors{community} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(p.m.trapErrors.WithLabelValues("127.0.0.1", "auth")); n != 1 {
		t.Fatalf("trap_errors{auth} = %v, want 1", n)
	}
}
