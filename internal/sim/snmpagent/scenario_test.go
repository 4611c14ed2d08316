package snmpagent

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/netfeat/netfeat/internal/sim/scenario"
	"github.com/netfeat/netfeat/recording"
)

// IF-MIB instances of the timos recording used below: to_bng-a is ifIndex
// 4 (10 Gbit/s), 1/1/1 is ifIndex 35684352.
const (
	bngHCOut      = "1.3.6.1.2.1.31.1.1.1.10.4"
	bngHCOutUcast = "1.3.6.1.2.1.31.1.1.1.11.4"
	bngHCIn       = "1.3.6.1.2.1.31.1.1.1.6.4"
	bngOutDisc    = "1.3.6.1.2.1.2.2.1.19.4"
	bngHighSpeed  = "1.3.6.1.2.1.31.1.1.1.15.4"
	p111Oper      = "1.3.6.1.2.1.2.2.1.8.35684352"
	p111InErr     = "1.3.6.1.2.1.2.2.1.14.35684352"
	p111HCIn      = "1.3.6.1.2.1.31.1.1.1.6.35684352"
)

// demoScenario congests to_bng-a from 20s to 80s and takes 1/1/1 down from
// 60s to 100s after its input errors climb from 45s.
func demoScenario(baseline *scenario.Baseline) *scenario.Scenario {
	return &scenario.Scenario{Baseline: baseline, Events: []scenario.Event{
		{Kind: scenario.Congestion, Interface: "to_bng-a", At: 20 * time.Second, Until: 80 * time.Second, Ramp: 10 * time.Second, Utilization: 0.98, DiscardsPerSecond: 1000},
		{Kind: scenario.Errors, Interface: "1/1/1", At: 45 * time.Second, Until: 60 * time.Second, Ramp: 15 * time.Second, ErrorsPerSecond: 200},
		{Kind: scenario.LinkDown, Interface: "35684352", At: 60 * time.Second, Until: 100 * time.Second}, // by ifIndex
	}}
}

// TestScenarioOverSNMP reads scripted counters and states over SNMP at
// simulated times and checks them against the closed-form integrals of the
// scenario's rates (Rate 0 and no baseline, so only the events count).
func TestScenarioOverSNMP(t *testing.T) {
	mib := loadMIB(t, "timos")
	rec := map[string]recording.SNMPRecord{}
	for _, r := range mib.Records() {
		rec[r.OID] = r
	}
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	_, addr := startDevice(t, mib, DeviceOptions{Name: "timos", Community: "public", Now: clk.Now, Start: clk.Now(),
		Scenario: demoScenario(nil)})
	g := client(t, addr, nil)
	const target = 0.98 * 10e9 / 8       // octets/s of to_bng-a at full strength
	errorsAt50 := 200.0 / 15 * 5 * 5 / 2 // 1/1/1's errors ramp from 0 at 45s to 200/s at 60s
	tests := []struct {
		at   time.Duration
		oid  string
		want uint64
	}{
		{0, bngHCOut, rec[bngHCOut].Uint},
		{0, p111Oper, 1},
		{20 * time.Second, bngHCOut, rec[bngHCOut].Uint},
		{25 * time.Second, bngHCOut, rec[bngHCOut].Uint + uint64(target*1.25)},
		{30 * time.Second, bngHCOut, rec[bngHCOut].Uint + uint64(target*5)},
		{30 * time.Second, bngHCOutUcast, rec[bngHCOutUcast].Uint + uint64(target*5/scenario.DefaultPacketSize)},
		{30 * time.Second, bngOutDisc, rec[bngOutDisc].Uint + 5000},
		{30 * time.Second, bngHCIn, rec[bngHCIn].Uint},
		{90 * time.Second, bngHCOut, rec[bngHCOut].Uint + uint64(target*55)},
		{50 * time.Second, p111InErr, rec[p111InErr].Uint + uint64(errorsAt50)},
		{59 * time.Second, p111Oper, 1},
		{60 * time.Second, p111Oper, 2},
		{60 * time.Second, p111InErr, rec[p111InErr].Uint + 1500},
		{99 * time.Second, p111InErr, rec[p111InErr].Uint + 1500},
		{99 * time.Second, p111Oper, 2},
		{100 * time.Second, p111Oper, 1},
		{200 * time.Second, p111InErr, rec[p111InErr].Uint + 1500},
	}
	var now time.Duration
	for _, tc := range tests {
		clk.Add(tc.at - now)
		now = tc.at
		res, err := g.Get([]string{tc.oid})
		if err != nil {
			t.Fatalf("Get %s at %v: %v", tc.oid, tc.at, err)
		}
		got := gosnmp.ToBigInt(res.Variables[0].Value).Uint64()
		if diff := int64(got - tc.want); diff < -1 || diff > 1 {
			t.Errorf("%s at %v = %d, want %d", tc.oid, tc.at, got, tc.want)
		}
	}
}

// TestScenarioUtilization polls as a collector would, every 5 s, and checks
// that the congested link's egress reaches over 0.9 of ifHighSpeed and
// that the counters never go backwards.
func TestScenarioUtilization(t *testing.T) {
	mib := loadMIB(t, "timos")
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	_, addr := startDevice(t, mib, DeviceOptions{Name: "timos", Community: "public", Rate: 125000, Now: clk.Now, Start: clk.Now(),
		Scenario: demoScenario(&scenario.Baseline{Utilization: 0.2})})
	g := client(t, addr, nil)
	oids := []string{bngHCOut, bngHighSpeed, p111HCIn, p111InErr, p111Oper}
	prev := map[string]uint64{}
	maxUtil, minUtil := 0.0, 1.0
	for at := time.Duration(0); at <= 120*time.Second; at += 5 * time.Second {
		res, err := g.Get(oids)
		if err != nil {
			t.Fatalf("Get at %v: %v", at, err)
		}
		v := map[string]uint64{}
		for i, p := range res.Variables {
			v[oids[i]] = gosnmp.ToBigInt(p.Value).Uint64()
		}
		for _, o := range []string{bngHCOut, p111HCIn, p111InErr} {
			if v[o] < prev[o] {
				t.Fatalf("at %v: %s went from %d back to %d", at, o, prev[o], v[o])
			}
		}
		if down := v[p111Oper] == 2; down != (at >= 60*time.Second && at < 100*time.Second) {
			t.Fatalf("at %v: ifOperStatus of 1/1/1 = %d", at, v[p111Oper])
		}
		if at > 0 {
			util := float64(v[bngHCOut]-prev[bngHCOut]) * 8 / 5 / (float64(v[bngHighSpeed]) * 1e6)
			if at > 35*time.Second && at <= 80*time.Second {
				minUtil = math.Min(minUtil, util)
			}
			maxUtil = math.Max(maxUtil, util)
			if at <= 20*time.Second && util > 0.31 {
				t.Fatalf("at %v: baseline egress utilisation %.3f, want at most 1.5 × 0.2", at, util)
			}
		}
		prev = v
		clk.Add(5 * time.Second)
	}
	if minUtil < 0.97 || maxUtil > 0.981 {
		t.Fatalf("egress utilisation during the episode between %.4f and %.4f, want 0.98", minUtil, maxUtil)
	}
}

// TestScenarioCounterWidthsAgree serves an interface with both ifInOctets
// (Counter32) and ifHCInOctets (Counter64), as many devices do, and checks
// over SNMP that both advance by the same amount (modulo 2^32) through a
// congestion episode fast enough to wrap the 32-bit one every few seconds.
func TestScenarioCounterWidthsAgree(t *testing.T) {
	recs := []recording.SNMPRecord{
		{OID: "1.3.6.1.2.1.2.2.1.2.7", Tag: recording.TagOctetString, Bytes: []byte("port7")},
		{OID: "1.3.6.1.2.1.2.2.1.8.7", Tag: recording.TagInteger, Int: 1},
		{OID: "1.3.6.1.2.1.2.2.1.10.7", Tag: recording.TagCounter32, Uint: 4_000_000_000},
		{OID: "1.3.6.1.2.1.31.1.1.1.6.7", Tag: recording.TagCounter64, Uint: 123_456_789_000},
		{OID: "1.3.6.1.2.1.31.1.1.1.15.7", Tag: recording.TagGauge32, Uint: 10000},
	}
	mib, err := NewMIB(recs)
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	_, addr := startDevice(t, mib, DeviceOptions{Name: "synthetic", Community: "public", Rate: 125000, Now: clk.Now, Start: clk.Now(),
		Scenario: &scenario.Scenario{Baseline: &scenario.Baseline{Utilization: 0.1}, Events: []scenario.Event{
			{Kind: scenario.Congestion, Interface: "port7", Direction: scenario.In, At: 10 * time.Second, Until: 40 * time.Second, Ramp: 5 * time.Second},
		}}})
	g := client(t, addr, nil)
	oids := []string{".1.3.6.1.2.1.2.2.1.10.7", ".1.3.6.1.2.1.31.1.1.1.6.7"}
	for at := time.Duration(0); at <= 50*time.Second; at += 3 * time.Second {
		res, err := g.Get(oids)
		if err != nil {
			t.Fatalf("Get at %v: %v", at, err)
		}
		c32, c64 := gosnmp.ToBigInt(res.Variables[0].Value).Uint64(), gosnmp.ToBigInt(res.Variables[1].Value).Uint64()
		if res.Variables[0].Type != gosnmp.Counter32 || res.Variables[1].Type != gosnmp.Counter64 {
			t.Fatalf("types %v and %v, want Counter32 and Counter64", res.Variables[0].Type, res.Variables[1].Type)
		}
		if uint32(c32-recs[2].Uint) != uint32(c64-recs[3].Uint) {
			t.Fatalf("at %v: ifInOctets advanced %d, ifHCInOctets %d (mod 2^32)", at, uint32(c32-recs[2].Uint), uint32(c64-recs[3].Uint))
		}
		clk.Add(3 * time.Second)
	}
}

func TestScenarioBindErrors(t *testing.T) {
	mib := loadMIB(t, "timos")
	tests := []struct {
		name string
		ev   scenario.Event
		want string
	}{
		{"unknown interface", scenario.Event{Kind: scenario.LinkDown, Interface: "9/9/9"}, `interface "9/9/9" not found; the device has system, to_nokia-sw-b, to_bng-a, 1/1/1`},
		{"congestion on a speedless interface", scenario.Event{Kind: scenario.Congestion, Interface: "system"}, "congestion on system needs the interface's speed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDevice(mib, DeviceOptions{Name: "timos", Community: "public", Scenario: &scenario.Scenario{Events: []scenario.Event{tc.ev}}})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "device timos: scenario:") {
				t.Fatalf("NewDevice error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
