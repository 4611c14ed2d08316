package snmpagent

import (
	"strings"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/netfeat/netfeat/internal/sim/scenario"
	"github.com/netfeat/netfeat/recording"
)

// IF-MIB columns (ifEntry .2.2.1.N, ifXEntry .31.1.1.1.N) read below.
const (
	ifInOctets         = "1.3.6.1.2.1.2.2.1.10"
	ifInUcastPkts      = "1.3.6.1.2.1.2.2.1.11"
	ifInNUcastPkts     = "1.3.6.1.2.1.2.2.1.12"
	ifInDiscards       = "1.3.6.1.2.1.2.2.1.13"
	ifInErrors         = "1.3.6.1.2.1.2.2.1.14"
	ifOutOctets        = "1.3.6.1.2.1.2.2.1.16"
	ifOutErrors        = "1.3.6.1.2.1.2.2.1.20"
	ifOperStatus       = "1.3.6.1.2.1.2.2.1.8"
	ifHCInOctets       = "1.3.6.1.2.1.31.1.1.1.6"
	ifHCInUcastPkts    = "1.3.6.1.2.1.31.1.1.1.7"
	ifHCInMulticastPkt = "1.3.6.1.2.1.31.1.1.1.8"
	ifHCInBroadcastPkt = "1.3.6.1.2.1.31.1.1.1.9"
	ifHighSpeed        = "1.3.6.1.2.1.31.1.1.1.15"
)

// testRouter is a small IF-MIB device: port1 up at 10 Gbit/s, port2
// admin-up but oper-down, lo a softwareLoopback, port4 up without a speed;
// every counter column starts at 1000.
func testRouter(t *testing.T) *MIB {
	t.Helper()
	var recs []recording.SNMPRecord
	add := func(oid string, tag int, v uint64) {
		r := recording.SNMPRecord{OID: oid, Tag: tag}
		if tag == recording.TagInteger {
			r.Int = int64(v)
		} else {
			r.Uint = v
		}
		recs = append(recs, r)
	}
	for _, p := range []struct {
		idx         string
		name        string
		ifType      uint64
		oper, speed uint64
	}{{"1", "port1", 6, 1, 10000}, {"2", "port2", 6, 2, 10000}, {"3", "lo", 24, 1, 10000}, {"4", "port4", 6, 1, 0}} {
		recs = append(recs, recording.SNMPRecord{OID: "1.3.6.1.2.1.31.1.1.1.1." + p.idx, Tag: recording.TagOctetString, Bytes: []byte(p.name)})
		add("1.3.6.1.2.1.2.2.1.1."+p.idx, recording.TagInteger, 0)
		add("1.3.6.1.2.1.2.2.1.3."+p.idx, recording.TagInteger, p.ifType)
		add("1.3.6.1.2.1.2.2.1.7."+p.idx, recording.TagInteger, 1)
		add(ifOperStatus+"."+p.idx, recording.TagInteger, p.oper)
		add(ifHighSpeed+"."+p.idx, recording.TagGauge32, p.speed)
		for _, col := range []string{ifInOctets, ifInUcastPkts, ifInNUcastPkts, ifInDiscards, ifInErrors, ifOutOctets, ifOutErrors} {
			add(col+"."+p.idx, recording.TagCounter32, 1000)
		}
		for _, col := range []string{ifHCInOctets, ifHCInUcastPkts, ifHCInMulticastPkt, ifHCInBroadcastPkt} {
			add(col+"."+p.idx, recording.TagCounter64, 1000)
		}
	}
	add("1.3.6.1.2.1.4.3.0", recording.TagCounter32, 1000) // ipInReceives: not an interface
	add("1.3.6.1.2.1.1.3.0", recording.TagTimeTicks, 500)
	mib, err := NewMIB(recs)
	if err != nil {
		t.Fatal(err)
	}
	return mib
}

func get(t *testing.T, g *gosnmp.GoSNMP, oids ...string) map[string]uint64 {
	t.Helper()
	res, err := g.Get(oids)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	out := map[string]uint64{}
	for _, v := range res.Variables {
		if v.Type == gosnmp.NoSuchInstance || v.Type == gosnmp.NoSuchObject {
			t.Fatalf("%s: %v", v.Name, v.Type)
		}
		out[strings.TrimPrefix(v.Name, ".")] = gosnmp.ToBigInt(v.Value).Uint64()
	}
	return out
}

// TestCountersFollowTraffic reads a device without a scenario over an
// hour: octets advance at Rate, unicast packets at Rate ÷ 800 with a
// little multicast and broadcast; errors, discards, counters of
// interfaces that are down, loopbacks or without a speed, counters outside
// IF-MIB and gauges never move.
func TestCountersFollowTraffic(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	_, addr := startDevice(t, testRouter(t), DeviceOptions{Name: "r", Community: "public", Rate: 125_000, Now: clk.Now, Start: clk.Now()})
	g := client(t, addr, nil)
	still := []string{ifInDiscards + ".1", ifInErrors + ".1", ifOutErrors + ".1", ifHighSpeed + ".1", "1.3.6.1.2.1.4.3.0"}
	for _, idx := range []string{"2", "3", "4"} {
		still = append(still, ifInOctets+"."+idx, ifHCInOctets+"."+idx, ifHCInUcastPkts+"."+idx, ifOutOctets+"."+idx)
	}
	for _, at := range []time.Duration{0, 10 * time.Second, time.Minute, time.Hour} {
		clk.mu.Lock()
		clk.t = time.Unix(1_700_000_000, 0).Add(at)
		clk.mu.Unlock()
		sec := at.Seconds()
		want := map[string]uint64{
			ifHCInOctets + ".1":       1000 + uint64(125_000*sec),
			ifInOctets + ".1":         uint64(uint32(1000 + uint64(125_000*sec))),
			ifOutOctets + ".1":        uint64(uint32(1000 + uint64(125_000*sec))),
			ifHCInUcastPkts + ".1":    1000 + uint64(125_000/800.0*sec),
			ifInUcastPkts + ".1":      1000 + uint64(125_000/800.0*sec),
			ifHCInMulticastPkt + ".1": 1000 + uint64(125_000/800.0*0.01*sec),
			ifHCInBroadcastPkt + ".1": 1000 + uint64(125_000/800.0*0.001*sec),
			ifInNUcastPkts + ".1":     1000 + uint64(125_000/800.0*0.011*sec),
		}
		for _, o := range still {
			want[o] = 1000
		}
		want[ifHighSpeed+".1"] = 10000
		var oids []string
		for o := range want {
			oids = append(oids, o)
		}
		for start := 0; start < len(oids); start += 10 {
			got := get(t, g, oids[start:min(start+10, len(oids))]...)
			for o, v := range got {
				if d := int64(v) - int64(want[o]); d < -1 || d > 1 {
					t.Errorf("at %v: %s = %d, want %d", at, o, v, want[o])
				}
			}
		}
	}
}

// TestErrorsMoveWithScenario: the same error counter that stays still
// without a scenario climbs while an errors event holds, and stops after.
func TestErrorsMoveWithScenario(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	_, addr := startDevice(t, testRouter(t), DeviceOptions{Name: "r", Community: "public", Rate: 125_000, Now: clk.Now, Start: clk.Now(),
		Scenario: &scenario.Scenario{Events: []scenario.Event{{Kind: scenario.Errors, Interface: "port1", At: 10 * time.Second, Until: 20 * time.Second, ErrorsPerSecond: 50}}}})
	g := client(t, addr, nil)
	for _, tc := range []struct {
		at   time.Duration
		want uint64
	}{{5 * time.Second, 1000}, {15 * time.Second, 1250}, {20 * time.Second, 1500}, {time.Hour, 1500}} {
		clk.mu.Lock()
		clk.t = time.Unix(1_700_000_000, 0).Add(tc.at)
		clk.mu.Unlock()
		got := get(t, g, ifInErrors+".1", ifOutErrors+".1")
		if got[ifInErrors+".1"] != tc.want || got[ifOutErrors+".1"] != 1000 {
			t.Fatalf("at %v: ifInErrors %d, ifOutErrors %d; want %d and 1000", tc.at, got[ifInErrors+".1"], got[ifOutErrors+".1"], tc.want)
		}
	}
}
