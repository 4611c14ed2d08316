package snmp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosnmp/gosnmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/recording"
	"github.com/netfeat/netfeat/schema"
)

func TestMain(m *testing.M) {
	if os.Getenv(loadRoleEnv) == "sim" {
		runLoadSimulator() // the load test's simulator process; never returns
	}
	goleak.VerifyTestMain(m)
}

const testdata = "../../testdata/snmp"

// collect is an ObservationSink that keeps every batch.
type collect struct {
	mu      sync.Mutex
	batches [][]schema.Observation
}

func (c *collect) Observe(_ context.Context, b []schema.Observation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches = append(c.batches, append([]schema.Observation(nil), b...))
	return nil
}

func (c *collect) byDevice() map[string][]schema.Observation {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]schema.Observation{}
	for _, b := range c.batches {
		for _, o := range b {
			out[o.Device] = append(out[o.Device], o)
		}
	}
	return out
}

// simulate serves the recordings on loopback; it returns their addresses.
func simulate(t testing.TB, devs ...snmpagent.DeviceOptions) ([]string, map[string]*snmpagent.MIB) {
	t.Helper()
	sim := snmpagent.NewSimulator(nil)
	mibs := map[string]*snmpagent.MIB{}
	for _, o := range devs {
		rec := strings.SplitN(o.Name, "#", 2)[0]
		m := mibs[rec]
		if m == nil {
			var err error
			if m, err = snmpagent.LoadMIB(filepath.Join(testdata, rec+".snmprec")); err != nil {
				t.Fatal(err)
			}
			mibs[rec] = m
		}
		if o.Now == nil { // a fixed clock: sysUpTime is served exactly as recorded
			at := time.Now()
			o.Now, o.Start = func() time.Time { return at }, at
		}
		d, err := snmpagent.NewDevice(m, o)
		if err != nil {
			t.Fatal(err)
		}
		sim.Add(d, "127.0.0.1:0")
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Stop(context.Background()) })
	var addrs []string
	for _, ep := range sim.Endpoints() {
		addrs = append(addrs, ep.Addr)
	}
	return addrs, mibs
}

func secretFile(t testing.TB, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func intp(i int) *int { return &i }

func TestPollMatchesRecording(t *testing.T) {
	users := []snmpagent.User{{Name: "ops", AuthProtocol: "SHA256", AuthKey: "authsecret", PrivProtocol: "AES", PrivKey: "privsecret"}}
	addrs, mibs := simulate(t,
		snmpagent.DeviceOptions{Name: "timos", Community: "public"},
		snmpagent.DeviceOptions{Name: "ericsson-ml", Users: users},
	)
	cfg := DefaultConfig()
	cfg.Targets = []Target{
		{Name: "timos", Address: addrs[0]},
		{Name: "ericsson-ml", Address: addrs[1], Params: Params{Version: "3", V3: &V3{User: "ops",
			AuthProtocol: "SHA256", AuthPasswordFile: secretFile(t, "authsecret"),
			PrivProtocol: "AES", PrivPasswordFile: secretFile(t, "privsecret")}}},
	}
	sink := &collect{}
	plan := IFMIBPlan
	plan.Scalars = []string{"1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.99.0"} // sysName, and one that does not exist
	p, err := New(cfg, plan, sink, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PollOnce(context.Background()); err != nil {
		t.Fatalf("PollOnce: %v", err)
	}
	got := sink.byDevice()
	for _, dev := range []string{"timos", "ericsson-ml"} {
		obs := map[string]schema.Observation{}
		for _, o := range got[dev] {
			if _, dup := obs[o.Path]; dup {
				t.Fatalf("%s: %s observed twice", dev, o.Path)
			}
			obs[o.Path] = o
		}
		want := 0
		for _, r := range mibs[dev].Records() {
			inPlan := r.OID == oidSysDescr || r.OID == oidSysObjectID || r.OID == oidSysUpTime || r.OID == "1.3.6.1.2.1.1.5.0"
			for _, c := range plan.Columns {
				inPlan = inPlan || strings.HasPrefix(r.OID, c+".")
			}
			if !inPlan {
				continue
			}
			want++
			o, ok := obs[r.OID]
			if !ok {
				t.Fatalf("%s: %s not polled", dev, r.OID)
			}
			w := r.Observation(dev, o.RecvTime)
			if o != w {
				t.Fatalf("%s: %s = %+v, want %+v", dev, r.OID, o, w)
			}
		}
		if o := obs["1.3.6.1.2.1.1.99.0"]; o.Kind != schema.KindNoSuchObject {
			t.Fatalf("%s: missing scalar observed as %v, want noSuchObject", dev, o.Kind)
		}
		if len(obs) != want+1 {
			t.Fatalf("%s: %d observations, want %d", dev, len(obs), want+1)
		}
	}
	for _, s := range p.DeviceStates() {
		if s.State != StateUp || s.Profile != "if-mib" || s.Observations == 0 || s.LastSuccess == 0 {
			t.Fatalf("state after a good poll: %+v", s)
		}
	}
}

// fakeAgent answers each request with reply(req); nil drops it.
func fakeAgent(t testing.TB, reply func(req *gosnmp.SnmpPacket, raw []byte) []byte) string {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		dec := &gosnmp.GoSNMP{Version: gosnmp.Version2c}
		for {
			n, addr, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			req, err := dec.SnmpDecodePacket(append([]byte(nil), buf[:n]...))
			if err != nil {
				continue
			}
			if out := reply(req, buf[:n]); out != nil {
				conn.WriteTo(out, addr)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return conn.LocalAddr().String()
}

func respond(req *gosnmp.SnmpPacket, vars []gosnmp.SnmpPDU) []byte {
	out := &gosnmp.SnmpPacket{Version: gosnmp.Version2c, Community: req.Community, PDUType: gosnmp.GetResponse,
		RequestID: req.RequestID, Variables: vars}
	b, err := out.MarshalMsg()
	if err != nil {
		panic(err)
	}
	return b
}

// identityVars answers the identify GET correctly.
func identityVars(req *gosnmp.SnmpPacket) []gosnmp.SnmpPDU {
	var vars []gosnmp.SnmpPDU
	for _, v := range req.Variables {
		switch v.Name {
		case "." + oidSysDescr:
			vars = append(vars, gosnmp.SnmpPDU{Name: v.Name, Type: gosnmp.OctetString, Value: []byte("fake")})
		case "." + oidSysObjectID:
			vars = append(vars, gosnmp.SnmpPDU{Name: v.Name, Type: gosnmp.ObjectIdentifier, Value: ".1.3.6.1.4.1.99999"})
		case "." + oidSysUpTime:
			vars = append(vars, gosnmp.SnmpPDU{Name: v.Name, Type: gosnmp.TimeTicks, Value: uint32(100)})
		default:
			vars = append(vars, gosnmp.SnmpPDU{Name: v.Name, Type: gosnmp.NoSuchObject})
		}
	}
	return vars
}

func TestBadAgents(t *testing.T) {
	users := []snmpagent.User{{Name: "ops", AuthProtocol: "SHA256", AuthKey: "authsecret", PrivProtocol: "AES", PrivKey: "privsecret"}}
	addrs, _ := simulate(t,
		snmpagent.DeviceOptions{Name: "timos", Community: "public"},
		snmpagent.DeviceOptions{Name: "timos#community", Community: "secret"},
		snmpagent.DeviceOptions{Name: "timos#v3", Users: users},
	)
	silent := fakeAgent(t, func(*gosnmp.SnmpPacket, []byte) []byte { return nil })
	garbage := fakeAgent(t, func(req *gosnmp.SnmpPacket, _ []byte) []byte {
		b := respond(req, identityVars(req))
		return b[:len(b)-3] // truncated: the length fields lie
	})
	wrongType := fakeAgent(t, func(req *gosnmp.SnmpPacket, _ []byte) []byte {
		vars := identityVars(req)
		for i := range vars {
			if vars[i].Name == "."+oidSysObjectID {
				vars[i] = gosnmp.SnmpPDU{Name: vars[i].Name, Type: gosnmp.OctetString, Value: []byte("not an OID")}
			}
		}
		return respond(req, vars)
	})
	// An agent whose table never ends: every GETBULK row is one more index.
	endless := fakeAgent(t, func(req *gosnmp.SnmpPacket, _ []byte) []byte {
		if req.PDUType != gosnmp.GetBulkRequest {
			return respond(req, identityVars(req))
		}
		var vars []gosnmp.SnmpPDU
		for rep := range int(req.MaxRepetitions) {
			for _, v := range req.Variables {
				arcs := strings.Split(v.Name, ".")
				idx := 0
				if len(arcs) > 11 { // ".1.3.6.1.2.1.2.2.1.10.N" splits into 12
					fmt.Sscan(arcs[11], &idx)
				}
				name := strings.Join(arcs[:11], ".") + "." + fmt.Sprint(idx+rep+1)
				vars = append(vars, gosnmp.SnmpPDU{Name: name, Type: gosnmp.Counter32, Value: uint32(1)})
			}
		}
		return respond(req, vars)
	})
	// An agent that loops: the walk gets the same OID back.
	loops := fakeAgent(t, func(req *gosnmp.SnmpPacket, _ []byte) []byte {
		if req.PDUType != gosnmp.GetBulkRequest {
			return respond(req, identityVars(req))
		}
		return respond(req, []gosnmp.SnmpPDU{{Name: ".1.3.6.1.2.1.2.2.1.10.5", Type: gosnmp.Counter32, Value: uint32(1)}})
	})
	refused := func() string { // a port with nothing listening
		c, _ := net.ListenPacket("udp", "127.0.0.1:0")
		a := c.LocalAddr().String()
		c.Close()
		return a
	}()

	cfg := DefaultConfig()
	cfg.Defaults.Timeout = 200 * time.Millisecond
	cfg.Defaults.Retries = intp(0)
	cfg.MaxTableRows = 500
	v3 := func(pass string) *V3 {
		return &V3{User: "ops", AuthProtocol: "SHA256", AuthPasswordFile: secretFile(t, pass),
			PrivProtocol: "AES", PrivPasswordFile: secretFile(t, "privsecret")}
	}
	cfg.Targets = []Target{
		{Name: "good", Address: addrs[0]},
		{Name: "wrong-community", Address: addrs[1]},
		{Name: "wrong-password", Address: addrs[2], Params: Params{Version: "3", V3: v3("wrongsecret")}},
		{Name: "silent", Address: silent},
		{Name: "garbage", Address: garbage},
		{Name: "wrong-type", Address: wrongType},
		{Name: "endless", Address: endless, Params: Params{MaxRepetitions: 50}},
		{Name: "loops", Address: loops},
		{Name: "refused", Address: refused},
	}
	want := map[string][2]string{ // device → reason, state
		"wrong-community": {ReasonTimeout, StateDown},
		"wrong-password":  {ReasonAuth, StateAuthFailure},
		"silent":          {ReasonTimeout, StateDown},
		"garbage":         {ReasonBadResponse, StateError},
		"wrong-type":      {ReasonBadResponse, StateError},
		"endless":         {ReasonTableSize, StateError},
		"loops":           {ReasonBadResponse, StateError},
		"refused":         {ReasonUnreachable, StateDown},
	}
	reg := prometheus.NewRegistry()
	sink := &collect{}
	p, err := New(cfg, IFMIBPlan, sink, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = p.PollOnce(context.Background())
	if err == nil {
		t.Fatal("PollOnce: no error from bad agents")
	}
	states := map[string]schema.DeviceState{}
	for _, s := range p.DeviceStates() {
		states[s.Device] = s
	}
	if s := states["good"]; s.State != StateUp {
		t.Fatalf("good device: %+v", s)
	}
	if len(sink.byDevice()["good"]) == 0 {
		t.Fatal("good device produced no observations")
	}
	for dev, w := range want {
		s := states[dev]
		if s.State != w[1] || s.Errors != 1 || s.LastError == "" {
			t.Fatalf("%s: state %+v, want state %s with one error", dev, s, w[1])
		}
		if !strings.HasPrefix(s.LastError, w[0]+":") {
			t.Fatalf("%s: last error %q, want reason %s", dev, s.LastError, w[0])
		}
		if n := testutil.ToFloat64(p.m.polls.WithLabelValues(dev, w[0])); n != 1 {
			t.Fatalf("%s: netfeat_snmp_polls_total{result=%q} = %v, want 1", dev, w[0], n)
		}
		if len(sink.byDevice()[dev]) != 0 {
			t.Fatalf("%s: a failed poll emitted observations", dev)
		}
		t.Logf("%s: %s", dev, s.LastError)
	}
}

func TestScheduleOverrunAndBackoff(t *testing.T) {
	// A slow agent: every answer takes 120 ms, a poll needs several
	// requests, so a 100 ms interval always overruns.
	slow := fakeAgent(t, func(req *gosnmp.SnmpPacket, _ []byte) []byte {
		time.Sleep(120 * time.Millisecond)
		return respond(req, identityVars(req))
	})
	refused := func() string {
		c, _ := net.ListenPacket("udp", "127.0.0.1:0")
		a := c.LocalAddr().String()
		c.Close()
		return a
	}()
	cfg := DefaultConfig()
	cfg.Defaults.Interval = 100 * time.Millisecond
	cfg.Defaults.Timeout = time.Second
	cfg.MaxBackoff = 10 * time.Second
	cfg.Targets = []Target{{Name: "slow", Address: slow}, {Name: "refused", Address: refused}}
	reg := prometheus.NewRegistry()
	p, err := New(cfg, StaticPlan{Profile: "none"}, &collect{}, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The agents are real UDP sockets: wait for what the test checks, not
	// a fixed time, and bound the refused device's attempts by the time
	// that actually passed.
	skipped := func() float64 { return testutil.ToFloat64(p.m.skipped.WithLabelValues("slow")) }
	overruns := func() float64 { return testutil.ToFloat64(p.m.polls.WithLabelValues("slow", ReasonOverrun)) }
	attempts := func() float64 { return testutil.ToFloat64(p.m.polls.WithLabelValues("refused", ReasonUnreachable)) }
	testkit.Eventually(t, "3 skipped slots and 3 overruns of the slow device, 2 attempts at the refused one", func() bool {
		return skipped() >= 3 && overruns() >= 3 && attempts() >= 2
	})
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(started)
	// Backoff: 100, 200, 400, 800 ms between attempts → in elapsed time T
	// at most 1+log2(T/100ms+1) polls (5 in 1.5 s instead of 15), plus one
	// for scheduling jitter.
	maxAttempts := 2 + math.Floor(math.Log2(float64(elapsed)/float64(100*time.Millisecond)+1))
	if n := attempts(); n < 2 || n > maxAttempts {
		t.Fatalf("refused device polled %v times in %v, want 2..%v with backoff", n, elapsed, maxAttempts)
	}
	if b := testutil.ToFloat64(p.m.backoff.WithLabelValues("refused")); b < 0.2 {
		t.Fatalf("backoff gauge = %v s, want ≥ 0.2", b)
	}
	if v := testutil.ToFloat64(p.m.state.WithLabelValues("refused", StateDown)); v != 1 {
		t.Fatalf("device_state{refused,down} = %v", v)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	var mu sync.Mutex
	inFlight, peak := 0, 0
	agent := fakeAgent(t, func(req *gosnmp.SnmpPacket, _ []byte) []byte {
		return respond(req, identityVars(req))
	})
	cfg := DefaultConfig()
	for i := range 12 {
		cfg.Targets = append(cfg.Targets, Target{Name: fmt.Sprint("d", i), Address: agent})
	}
	cfg.MaxConcurrency = 3
	sink := schema.ObservationSinkFunc(func(context.Context, []schema.Observation) error {
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return nil
	})
	p, err := New(cfg, StaticPlan{}, sink, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PollOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if peak != 3 {
		t.Fatalf("peak concurrent polls = %d, want 3", peak)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Setenv("SNMP_TEST_AUTH", "authsecret")
	good := secretFile(t, "authsecret")
	tf := filepath.Join(t.TempDir(), "targets.yaml")
	os.WriteFile(tf, []byte("targets:\n  - name: a\n    address: 10.0.0.1\n  - name: b\n    address: 10.0.0.2:1161\n    interval: 10s\n"), 0o600)
	badTF := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(badTF, []byte("targets:\n  - name: a\n    adress: 10.0.0.1\n"), 0o600)
	tests := []struct {
		name   string
		mutate func(*Config)
		fields []string // FieldError fields expected, in any order
	}{
		{"ok", func(c *Config) { c.Targets = []Target{{Address: "10.0.0.1"}} }, nil},
		{"ok v3 env and targets file", func(c *Config) {
			c.Defaults.Version = "3"
			c.Defaults.V3 = &V3{User: "u", AuthProtocol: "SHA256", AuthPasswordEnv: "SNMP_TEST_AUTH"}
			c.TargetsFile = tf
		}, nil},
		{"missing address and bad version", func(c *Config) { c.Targets = []Target{{Name: "x", Params: Params{Version: "1"}}} },
			[]string{"targets[0].address", "targets[0].version"}},
		{"duplicate names", func(c *Config) { c.Targets = []Target{{Address: "a"}, {Address: "a"}} }, []string{"targets[1].name"}},
		{"v3 without user or secret", func(c *Config) {
			c.Targets = []Target{{Address: "a", Params: Params{Version: "3", V3: &V3{AuthProtocol: "SHA256"}}}}
		}, []string{"targets[0].v3.user", "targets[0].v3.auth_password_file"}},
		{"unset env and unknown protocol", func(c *Config) {
			c.Targets = []Target{{Address: "a", Params: Params{Version: "3", V3: &V3{User: "u", AuthProtocol: "SHA256",
				AuthPasswordEnv: "SNMP_TEST_UNSET", PrivProtocol: "ROT13", PrivPasswordFile: good}}}}
		}, []string{"targets[0].v3.auth_password_env", "targets[0].v3.priv_protocol"}},
		{"bad numbers", func(c *Config) {
			c.Targets = []Target{{Address: "a:99999", Params: Params{Interval: -time.Second, Retries: intp(11), MaxRepetitions: 5000}}}
			c.MaxConcurrency = -1
		}, []string{"max_concurrency", "targets[0].address", "targets[0].interval", "targets[0].retries", "targets[0].max_repetitions"}},
		{"strict targets file", func(c *Config) { c.TargetsFile = badTF }, []string{"targets_file"}},
		{"community twice", func(c *Config) {
			c.Targets = []Target{{Address: "a", Params: Params{Community: "x", CommunityEnv: "SNMP_TEST_AUTH"}}}
		}, []string{"targets[0].community"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			err := c.Validate()
			var got []string
			for _, e := range flatten(err) {
				var fe *schema.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("error %v is not a *schema.FieldError", e)
				}
				got = append(got, fe.Field)
			}
			if strings.Join(sorted(got), ",") != strings.Join(sorted(tc.fields), ",") {
				t.Fatalf("fields %v, want %v (err: %v)", got, tc.fields, err)
			}
		})
	}
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

var _ = recording.TagInteger
