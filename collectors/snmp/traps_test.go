package snmp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/internal/testkit"
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
	if n := testutil.ToFloat64(p.m.trapErrors.WithLabelValues("router1", "community")); n != 1 {
		t.Fatalf("trap_errors{community} = %v, want 1", n)
	}
	if n := testutil.ToFloat64(p.m.trapErrors.WithLabelValues("router1", "auth")); n != 1 {
		t.Fatalf("trap_errors{auth} = %v, want 1", n)
	}
}

// startTraps starts a trap receiver on 127.0.0.1 with cfg's trap keys and
// targets (polled once an hour, so never during a test); it stops with the
// test. adjust, if not nil, runs on the receiver before Start.
func startTraps(t *testing.T, cfg Config, sink schema.ObservationSink, log *slog.Logger, adjust func(*trapReceiver)) *Poller {
	t.Helper()
	cfg.TrapListen = "127.0.0.1:0"
	cfg.Defaults.Interval = time.Hour
	p, err := New(cfg, StaticPlan{}, sink, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	if adjust != nil {
		adjust(p.traps)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return p
}

func trapErrs(p *Poller, source, reason string) float64 {
	return testutil.ToFloat64(p.m.trapErrors.WithLabelValues(source, reason))
}

func trapsOK(p *Poller, source string) float64 {
	return testutil.ToFloat64(p.m.traps.WithLabelValues(source, gosnmp.Version2c.String()))
}

// devices returns the Device of every batch the sink got, in order.
func (c *collect) devices() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, b := range c.batches {
		out = append(out, b[0].Device)
	}
	return out
}

func (c *collect) count(device string) int {
	n := 0
	for _, d := range c.devices() {
		if d == device {
			n++
		}
	}
	return n
}

// TestTrapSources: traps are taken from targets' addresses, from
// trap_sources, or from anywhere with trap_accept_any; others are counted
// as unknown_source under source "other" and dropped.
func TestTrapSources(t *testing.T) {
	tests := []struct {
		name       string
		sources    []string
		acceptAny  bool
		from       string
		wantDevice string // "" when refused
	}{
		{"target", nil, false, "127.0.0.1", "pe1"},
		{"unknown", nil, false, "127.0.0.3", ""},
		{"unknown outside trap_sources", []string{"127.0.1.0/24", "127.0.0.4"}, false, "127.0.0.3", ""},
		{"trap_sources prefix", []string{"127.0.0.0/24"}, false, "127.0.0.3", "127.0.0.3"},
		{"trap_sources address", []string{"127.0.0.3"}, false, "127.0.0.3", "127.0.0.3"},
		{"accept_any", nil, true, "127.0.0.3", "127.0.0.3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Targets = []Target{{Name: "pe1", Address: "127.0.0.1"}}
			cfg.TrapSources, cfg.TrapAcceptAny = tc.sources, tc.acceptAny
			sink := &collect{}
			p := startTraps(t, cfg, sink, nil, nil)
			c := udpFrom(t, tc.from, p.TrapAddr())
			c.Write(linkDownMsg(t, "public", 7))
			// A trap from the target after it: once it arrives, the first
			// has been handled (one read loop, in order).
			udpFrom(t, "127.0.0.1", p.TrapAddr()).Write(linkDownMsg(t, "public", 8))
			want := 2
			if tc.wantDevice == "" {
				want = 1
			}
			if tc.from == "127.0.0.1" {
				want = 2
			}
			testkit.Eventually(t, "the target's trap", func() bool { return len(sink.devices()) == want })
			got := sink.devices()[0]
			if tc.wantDevice == "" {
				if got != "pe1" || trapErrs(p, "other", "unknown_source") != 1 {
					t.Fatalf("sink got %v, unknown_source = %v; want the trap refused", sink.devices(), trapErrs(p, "other", "unknown_source"))
				}
				return
			}
			if got != tc.wantDevice {
				t.Fatalf("device %q, want %q", got, tc.wantDevice)
			}
			label := "other"
			if tc.wantDevice == "pe1" {
				label = "pe1"
			}
			if n := trapsOK(p, label); n < 1 {
				t.Fatalf("traps_total{source=%q} = %v", label, n)
			}
		})
	}
}

// TestTrapFlood: a source sending far over its rate is shed and counted,
// under its device name if it is a target and as "other" if not, while a
// trap from another target sent in the middle of the flood reaches the
// sink.
func TestTrapFlood(t *testing.T) {
	const flood = 3000
	for _, tc := range []struct {
		name, label string
		targets     []Target
	}{
		{"target", "flooder", []Target{{Name: "pe1", Address: "127.0.0.1"}, {Name: "flooder", Address: "127.0.0.2"}}},
		{"trap_sources", "other", []Target{{Name: "pe1", Address: "127.0.0.1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Targets = tc.targets
			cfg.TrapSources = []string{"127.0.0.2/32"}
			cfg.TrapRateLimit, cfg.TrapBurst = 50, 100
			sink := &collect{}
			p := startTraps(t, cfg, sink, nil, nil)
			fc := udpFrom(t, "127.0.0.2", p.TrapAddr())
			pc := udpFrom(t, "127.0.0.1", p.TrapAddr())
			msg := linkDownMsg(t, "public", 9)
			for i := range flood {
				if i == flood/2 {
					pc.Write(linkDownMsg(t, "public", 7))
				}
				fc.Write(msg)
			}
			testkit.Eventually(t, "pe1's trap", func() bool { return sink.count("pe1") == 1 })
			// Every flood trap is either accepted or shed (none is lost in a
			// 4 MiB socket buffer).
			testkit.Eventually(t, "every flood trap counted", func() bool {
				return trapsOK(p, tc.label)+trapErrs(p, tc.label, "shed") == flood
			})
			if shed := trapErrs(p, tc.label, "shed"); shed < flood/2 {
				t.Fatalf("shed %v of %d traps over a burst of 100", shed, flood)
			}
			testkit.Eventually(t, "the accepted flood traps at the sink", func() bool {
				return float64(len(sink.devices())-1) == trapsOK(p, tc.label)
			})
		})
	}
}

// TestTrapSlowSink: when the sink is behind, the queue fills and further
// traps are shed; the read loop never waits, and traps flow again once the
// sink catches up.
func TestTrapSlowSink(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Targets = []Target{{Name: "pe1", Address: "127.0.0.1"}}
	cfg.TrapQueueSize = 4
	release := make(chan struct{})
	var calls atomic.Int64
	sink := schema.ObservationSinkFunc(func(ctx context.Context, b []schema.Observation) error {
		if calls.Add(1) == 1 {
			<-release
		}
		return nil
	})
	p := startTraps(t, cfg, sink, nil, nil)
	c := udpFrom(t, "127.0.0.1", p.TrapAddr())
	msg := linkDownMsg(t, "public", 7)
	c.Write(msg)
	testkit.Eventually(t, "the sink to hold the first trap", func() bool { return calls.Load() == 1 })
	for range 20 {
		c.Write(msg)
	}
	// 4 fit in the queue, 16 are shed; the read loop went through all 20.
	testkit.Eventually(t, "20 traps handled", func() bool { return trapsOK(p, "pe1")+trapErrs(p, "pe1", "shed") == 21 })
	if shed := trapErrs(p, "pe1", "shed"); shed != 16 {
		t.Fatalf("shed %v, want 16", shed)
	}
	close(release)
	testkit.Eventually(t, "the queue drained", func() bool { return calls.Load() == 5 })
	c.Write(msg)
	testkit.Eventually(t, "a trap after the sink caught up", func() bool { return calls.Load() == 6 })
}

// rawTrap marshals a notification PDU with gosnmp.
func rawTrap(t testing.TB, version gosnmp.SnmpVersion, community string, pdu gosnmp.PDUType, vbs ...gosnmp.SnmpPDU) []byte {
	t.Helper()
	b, err := (&gosnmp.SnmpPacket{Version: version, Community: community, PDUType: pdu, RequestID: 1, Variables: vbs}).MarshalMsg()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrapRefused: each bad message is counted under its reason and
// dropped, and the receiver goes on; a notification whose snmpTrapOID we
// do not know is passed on.
func TestTrapRefused(t *testing.T) {
	upTime := gosnmp.SnmpPDU{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.TimeTicks, Value: uint32(1)}
	trapOID := func(oid string) gosnmp.SnmpPDU {
		return gosnmp.SnmpPDU{Name: ".1.3.6.1.6.3.1.1.4.1.0", Type: gosnmp.ObjectIdentifier, Value: oid}
	}
	good := linkDownMsg(t, "public", 7)
	many := []gosnmp.SnmpPDU{upTime, trapOID(".1.3.6.1.6.3.1.1.5.3")}
	for i := range trapMaxVarbinds {
		many = append(many, gosnmp.SnmpPDU{Name: ".1.3.6.1.4.1.9.1." + strconv.Itoa(i), Type: gosnmp.Integer, Value: i})
	}
	tests := []struct {
		name, reason string
		msg          []byte
	}{
		{"garbage", "malformed", []byte("GET / HTTP/1.1\r\n\r\n")},
		{"empty", "malformed", []byte{}},
		{"truncated", "malformed", good[:len(good)-5]},
		{"trailing length past the end", "malformed", append([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}, good[2:]...)},
		{"version 7", "malformed", append(append([]byte{0x30, byte(len(good) - 2)}, 0x02, 0x01, 0x07), good[5:]...)},
		{"get request", "malformed", rawTrap(t, gosnmp.Version2c, "public", gosnmp.GetRequest, upTime)},
		{"no snmpTrapOID", "malformed", rawTrap(t, gosnmp.Version2c, "public", gosnmp.SNMPv2Trap, upTime)},
		{"wrong community", "community", linkDownMsg(t, "private", 7)},
		{"v3 without trap_users", "auth", func() []byte {
			b, err := (&gosnmp.SnmpPacket{Version: gosnmp.Version3, MsgFlags: gosnmp.NoAuthNoPriv, MsgID: 1, MsgMaxSize: 65507,
				SecurityModel: gosnmp.UserSecurityModel, PDUType: gosnmp.SNMPv2Trap,
				SecurityParameters: &gosnmp.UsmSecurityParameters{UserName: "u", AuthoritativeEngineID: "\x80\x00\x1f\x88\x04x"},
				Variables:          []gosnmp.SnmpPDU{upTime, trapOID(".1.3.6.1.6.3.1.1.5.3")}}).MarshalMsg()
			if err != nil {
				t.Fatal(err)
			}
			return b
		}()},
		{"too many varbinds", "oversize", rawTrap(t, gosnmp.Version2c, "public", gosnmp.SNMPv2Trap, many...)},
	}
	cfg := DefaultConfig()
	cfg.Targets = []Target{{Name: "pe1", Address: "127.0.0.1"}}
	sink := &collect{}
	p := startTraps(t, cfg, sink, nil, nil)
	c := udpFrom(t, "127.0.0.1", p.TrapAddr())
	want := map[string]float64{}
	for _, tc := range tests {
		c.Write(tc.msg)
		want[tc.reason]++
	}
	// Not ours to judge: an enterprise trap nobody maps goes to the sink.
	c.Write(rawTrap(t, gosnmp.Version2c, "public", gosnmp.SNMPv2Trap, upTime, trapOID(".1.3.6.1.4.1.99999.0.42")))
	testkit.Eventually(t, "the enterprise trap", func() bool { return len(sink.devices()) == 1 })
	b := sink.batches[0]
	if len(b) != 2 || b[1].Str != "1.3.6.1.4.1.99999.0.42" {
		t.Fatalf("enterprise trap = %+v", b)
	}
	for reason, n := range want {
		if got := trapErrs(p, "pe1", reason); got != n {
			t.Errorf("trap_errors{reason=%s} = %v, want %v", reason, got, n)
		}
	}
}

// logCounter is a slog.Handler that counts records by their reason attr.
type logCounter struct {
	mu      sync.Mutex
	reasons map[string]int
	last    map[string]int64 // the suppressed attr of the last record
}

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logCounter) WithGroup(string) slog.Handler            { return h }
func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	reason := ""
	var sup int64
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "reason":
			reason = a.Value.String()
		case "suppressed":
			sup = a.Value.Int64()
		}
		return true
	})
	if reason != "" {
		h.reasons[reason]++
		h.last[reason] = sup
	}
	return nil
}

// TestTrapLogRateLimit: many refused traps log one line per reason.
func TestTrapLogRateLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Targets = []Target{{Name: "pe1", Address: "127.0.0.1"}}
	sink := &collect{}
	h := &logCounter{reasons: map[string]int{}, last: map[string]int64{}}
	p := startTraps(t, cfg, sink, slog.New(h), func(r *trapReceiver) { r.logs.every = time.Hour })
	c := udpFrom(t, "127.0.0.1", p.TrapAddr())
	u := udpFrom(t, "127.0.0.9", p.TrapAddr())
	for range 200 {
		c.Write([]byte{0x30, 0x00})
		c.Write(linkDownMsg(t, "private", 7))
		u.Write(linkDownMsg(t, "public", 7))
	}
	c.Write(linkDownMsg(t, "public", 7))
	testkit.Eventually(t, "the good trap", func() bool { return len(sink.devices()) == 1 })
	if trapErrs(p, "pe1", "malformed") != 200 || trapErrs(p, "pe1", "community") != 200 {
		t.Fatalf("counted %v malformed, %v community; want 200 each",
			trapErrs(p, "pe1", "malformed"), trapErrs(p, "pe1", "community"))
	}
	testkit.Eventually(t, "the unknown sources counted", func() bool { return trapErrs(p, "other", "unknown_source") == 200 })
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range []string{"malformed", "community", "unknown_source"} {
		if h.reasons[r] != 1 {
			t.Errorf("%d log lines for reason %s, want 1", h.reasons[r], r)
		}
	}
}

func TestLogLimiter(t *testing.T) {
	l := logLimiter{every: 10 * time.Second}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		key       string
		at        time.Duration
		ok        bool
		suppessed int
	}{
		{"a", 0, true, 0},
		{"a", time.Second, false, 0},
		{"b", time.Second, true, 0},
		{"a", 9 * time.Second, false, 0},
		{"a", 10 * time.Second, true, 2},
		{"a", 20 * time.Second, true, 0},
	}
	for i, s := range steps {
		ok, n := l.allow(s.key, t0.Add(s.at))
		if ok != s.ok || n != s.suppessed {
			t.Fatalf("step %d: allow(%s, +%v) = %v, %d; want %v, %d", i, s.key, s.at, ok, n, s.ok, s.suppessed)
		}
	}
}

func TestTokenBucket(t *testing.T) {
	const rate, burst = 10, 3
	b := tokenBucket{tokens: burst}
	var now int64
	got := ""
	for _, step := range []int64{0, 0, 0, 0, 50e6, 100e6, 100e6, 1e9, 0, 0, 0} {
		now += step
		if b.take(now, rate, burst) {
			got += "y"
		} else {
			got += "n"
		}
	}
	// 3 at once, then one per 100 ms, and after a long pause no more than
	// the burst.
	if want := "yyynnyyyyyn"; got != want {
		t.Fatalf("takes %s, want %s", got, want)
	}
}

func TestTrapConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		fields []string
	}{
		{"ok", func(c *Config) {
			c.TrapSources = []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::ffff:198.51.100.0/120"}
			c.TrapRateLimit, c.TrapBurst, c.TrapQueueSize, c.TrapReadBuffer = 0.5, 1, 1, 1<<20
		}, nil},
		{"bad sources", func(c *Config) { c.TrapSources = []string{"10.0.0.0/33", "pe1.example"} },
			[]string{"trap_sources[0]", "trap_sources[1]"}},
		{"negative", func(c *Config) {
			c.TrapRateLimit, c.TrapBurst, c.TrapQueueSize, c.TrapReadBuffer = -1, -1, -1, -1
		}, []string{"trap_rate_limit", "trap_burst", "trap_queue_size", "trap_read_buffer"}},
		{"too large", func(c *Config) {
			c.TrapRateLimit, c.TrapBurst, c.TrapQueueSize, c.TrapReadBuffer = 2e6, 2e6, 2e6, 2<<30
		}, []string{"trap_rate_limit", "trap_burst", "trap_queue_size", "trap_read_buffer"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			var got []string
			for _, e := range flatten(c.Validate()) {
				var fe *schema.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("error %v is not a *schema.FieldError", e)
				}
				got = append(got, fe.Field)
			}
			if strings.Join(sorted(got), ",") != strings.Join(sorted(tc.fields), ",") {
				t.Fatalf("fields %v, want %v", got, tc.fields)
			}
		})
	}
}

// FuzzTrapReceive feeds arbitrary datagrams from a target's address to the
// read loop's handling (admission, decoding, the answer to informs and
// discovery, the hand-off): nothing may panic out of it, and what it
// queues must be a well-formed notification batch.
func FuzzTrapReceive(f *testing.F) {
	upTime := gosnmp.SnmpPDU{Name: ".1.3.6.1.2.1.1.3.0", Type: gosnmp.TimeTicks, Value: uint32(1)}
	trapOID := gosnmp.SnmpPDU{Name: ".1.3.6.1.6.3.1.1.4.1.0", Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1.6.3.1.1.5.3"}
	f.Add(linkDownMsg(f, "public", 7))
	f.Add(rawTrap(f, gosnmp.Version2c, "public", gosnmp.InformRequest, upTime, trapOID,
		gosnmp.SnmpPDU{Name: ".1.3.6.1.2.1.2.2.1.2.7", Type: gosnmp.OctetString, Value: []byte("ge-0/0/7")},
		gosnmp.SnmpPDU{Name: ".1.3.6.1.2.1.31.1.1.1.6.7", Type: gosnmp.Counter64, Value: uint64(1) << 40},
		gosnmp.SnmpPDU{Name: ".1.3.6.1.2.1.4.20.1.1.7", Type: gosnmp.IPAddress, Value: "192.0.2.7"}))
	v1, err := (&gosnmp.SnmpPacket{Version: gosnmp.Version1, Community: "public", PDUType: gosnmp.Trap,
		SnmpTrap: gosnmp.SnmpTrap{Enterprise: ".1.3.6.1.4.1.9", AgentAddress: "192.0.2.1", GenericTrap: 2, Timestamp: 42,
			Variables: []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.2.2.1.1.7", Type: gosnmp.Integer, Value: 7}}}}).MarshalMsg()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v1)
	for _, sp := range []*gosnmp.UsmSecurityParameters{
		{}, // engine discovery
		{UserName: "trapper", AuthoritativeEngineID: "\x80\x00\x1f\x88\x04sender", AuthoritativeEngineBoots: 1},
	} {
		b, err := (&gosnmp.SnmpPacket{Version: gosnmp.Version3, MsgFlags: gosnmp.NoAuthNoPriv | gosnmp.Reportable, MsgID: 9,
			MsgMaxSize: 65507, SecurityModel: gosnmp.UserSecurityModel, SecurityParameters: sp, PDUType: gosnmp.SNMPv2Trap,
			Variables: []gosnmp.SnmpPDU{upTime, trapOID}}).MarshalMsg()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	cfg := DefaultConfig()
	cfg.TrapUsers = []V3{{User: "trapper", AuthProtocol: "SHA256", AuthPasswordFile: secretFile(f, "authsecret"),
		PrivProtocol: "AES", PrivPasswordFile: secretFile(f, "privsecret")}}
	m, err := newMetrics(nil)
	if err != nil {
		f.Fatal(err)
	}
	r, err := newTrapReceiver(cfg, map[string]string{"127.0.0.1": "pe1"}, schema.ObservationSinkFunc(nil), m,
		slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	r.rate, r.burst = 1e12, 1e12 // no input is shed
	// Answers to informs and discovery go from one socket of ours to
	// another that nobody reads.
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { c.Close() })
		return c
	}
	r.conn = listen()
	from := listen().LocalAddr().(*net.UDPAddr).AddrPort()
	f.Fuzz(func(t *testing.T, msg []byte) {
		r.receive(msg, from, time.Now())
		select {
		case it := <-r.queue:
			if len(it.batch) < 2 || it.source != "pe1" {
				t.Fatalf("queued %d observations from %q", len(it.batch), it.source)
			}
			trapOID := false
			for _, o := range it.batch {
				if o.Device != "pe1" || o.Protocol != schema.ProtocolTrap || o.Path == "" {
					t.Fatalf("observation %+v", o)
				}
				trapOID = trapOID || o.Path == oidSnmpTrapOID && o.Kind == schema.KindOID
			}
			if !trapOID {
				t.Fatalf("batch without snmpTrapOID.0: %+v", it.batch)
			}
		default:
		}
	})
}
