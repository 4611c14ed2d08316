package snmp

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/schema"
)

// linkDownMsg returns a v2c linkDown trap as an agent sends it.
func linkDownMsg(tb testing.TB, community string, ifIndex int) []byte {
	tb.Helper()
	b, err := (&gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: community, PDUType: gosnmp.SNMPv2Trap, RequestID: 1,
		Variables: []gosnmp.SnmpPDU{
			{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.TimeTicks, Value: uint32(4242)},
			{Name: ".1.3.6.1.6.3.1.1.4.1.0", Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1.6.3.1.1.5.3"},
			{Name: ".1.3.6.1.2.1.2.2.1.1.7", Type: gosnmp.Integer, Value: ifIndex},
			{Name: ".1.3.6.1.2.1.2.2.1.8.7", Type: gosnmp.Integer, Value: 2},
		}}).MarshalMsg()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// udpFrom returns a UDP socket bound to ip on a random port, connected to
// the receiver at to; it is closed when the test ends. It skips the test
// when ip cannot be bound (127.0.0.2 needs the whole of 127.0.0.0/8 on lo,
// as Linux has it).
func udpFrom(tb testing.TB, ip, to string) *net.UDPConn {
	tb.Helper()
	raddr, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)}, raddr)
	if err != nil {
		tb.Skipf("cannot send from %s: %v", ip, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// flood sends msg from c at rate datagrams per second, in bursts every
// millisecond, until ctx ends; it returns how many it sent.
func flood(ctx context.Context, c *net.UDPConn, msg []byte, rate int) int {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	start, sent := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return sent
		case now := <-t.C:
			due := int(now.Sub(start).Seconds() * float64(rate))
			for ; sent < due; sent++ {
				c.Write(msg) // a full socket buffer is the receiver's problem
			}
		}
	}
}

// BenchmarkTrapLatency sends real v2c linkDown traps over loopback UDP from
// device "pe1" (127.0.0.1), one every 5 ms (trap_rate_limit's default of
// 200/s), and measures the time from the send to the sink's call: p50-µs
// and p99-µs, and lost, the traps that did not arrive within 200 ms
// (after 50 lost, the rest are not sent; ns/op is the pacing). load=flood adds 10,000 traps/s from "flooder"
// (127.0.0.2). The sink spins for sink=D per batch (the normalizer's work
// on a trap is some microseconds; 100µs is a busy one). limit=off sets
// trap_rate_limit and trap_burst to 10^6, so that the flood is not shed by
// its source's rate but reaches the queue.
//
//	go test -tags duckdb_arrow -run '^$' -bench TrapLatency -benchtime 2000x -count 3 ./collectors/snmp/
func BenchmarkTrapLatency(b *testing.B) {
	for _, bc := range []struct {
		load     string
		sink     time.Duration
		limitOff bool
	}{
		{"idle", 0, false}, {"idle", 100 * time.Microsecond, false},
		{"flood", 0, false}, {"flood", 100 * time.Microsecond, false},
		{"flood", 0, true}, {"flood", 100 * time.Microsecond, true},
	} {
		load, limit := bc.load, "default"
		if bc.limitOff {
			limit = "off"
		}
		b.Run(fmt.Sprintf("load=%s/sink=%v/limit=%s", bc.load, bc.sink, limit), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.TrapListen = "127.0.0.1:0"
			cfg.Defaults.Interval = time.Hour // the targets are there for their names
			cfg.Targets = []Target{{Name: "pe1", Address: "127.0.0.1:1"}, {Name: "flooder", Address: "127.0.0.2:1"}}
			if bc.limitOff {
				cfg.TrapRateLimit, cfg.TrapBurst = 1e6, 1e6
			}
			arrived := make(chan time.Time, 1)
			sink := schema.ObservationSinkFunc(func(_ context.Context, batch []schema.Observation) error {
				for t := time.Now(); time.Since(t) < bc.sink; {
				}
				if len(batch) > 0 && batch[0].Device == "pe1" {
					select {
					case arrived <- time.Now():
					default:
					}
				}
				return nil
			})
			p, err := New(cfg, StaticPlan{}, sink, prometheus.NewRegistry(), nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { p.Stop(context.Background()) })
			c := udpFrom(b, "127.0.0.1", p.TrapAddr())
			msg := linkDownMsg(b, "public", 7)

			var wg sync.WaitGroup
			ctx, cancel := context.WithCancel(context.Background())
			defer func() { cancel(); wg.Wait() }()
			if load == "flood" {
				fc := udpFrom(b, "127.0.0.2", p.TrapAddr())
				fmsg := linkDownMsg(b, "public", 9)
				wg.Go(func() { flood(ctx, fc, fmsg, 10_000) })
				time.Sleep(500 * time.Millisecond) // past the flooder's burst
			}

			lat := make([]time.Duration, 0, 4096)
			lost := 0
			next := time.Now()
			for b.Loop() {
				if lost > 50 {
					continue
				}
				time.Sleep(time.Until(next))
				next = next.Add(5 * time.Millisecond)
				t0 := time.Now()
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				select {
				case t1 := <-arrived:
					lat = append(lat, t1.Sub(t0))
				case <-time.After(200 * time.Millisecond):
					lost++
				}
			}
			b.StopTimer()
			if len(lat) > 0 {
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
			}
			b.ReportMetric(float64(lost), "lost")
		})
	}
}
