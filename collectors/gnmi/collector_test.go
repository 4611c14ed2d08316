package gnmi_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

func TestMain(m *testing.M) {
	if os.Getenv(blasterEnv) != "" {
		runBlasterProcess()
	}
	// openconfig's subscribe package (inside the simulator) logs through
	// glog: keep its files in a directory removed after the tests.
	dir, err := os.MkdirTemp("", "gnmi-test-glog-")
	if err != nil {
		panic(err)
	}
	_ = flag.Set("log_dir", dir)
	_ = flag.Set("stderrthreshold", "FATAL")
	goleak.VerifyTestMain(m,
		goleak.Cleanup(func(code int) { os.RemoveAll(dir); os.Exit(code) }),
		// openconfig's glog flushes on a timer for the life of the process.
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreAnyFunction("github.com/golang/glog.(*fileSink).flushDaemon"))
}

// startSim runs a simulated target for the test.
func startSim(t testing.TB, opts gnmitarget.Options) *gnmitarget.Server {
	t.Helper()
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	s, err := gnmitarget.New(opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop simulator: %v", err)
		}
	})
	return s
}

// recorder is a sink that keeps every observation.
type recorder struct {
	mu  sync.Mutex
	all []schema.Observation
}

func (r *recorder) Observe(_ context.Context, batch []schema.Observation) error {
	r.mu.Lock()
	r.all = append(r.all, batch...)
	r.mu.Unlock()
	return nil
}

// values returns the values seen at origin:path, in arrival order.
func (r *recorder) values(device, origin, path string) []schema.Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []schema.Observation
	for _, o := range r.all {
		if o.Device == device && o.Origin == origin && o.Path == path {
			out = append(out, o)
		}
	}
	return out
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.all)
}

func startCollector(t testing.TB, cfg gnmi.Config, sink schema.ObservationSink) (*gnmi.Collector, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if cfg.RedialMin == 0 {
		cfg.RedialMin, cfg.RedialMax = 10*time.Millisecond, 50*time.Millisecond
	}
	c, err := gnmi.New(cfg, sink, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stop collector: %v", err)
		}
	})
	return c, reg
}

func waitSynced(t testing.TB, c *gnmi.Collector) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
}

const (
	ocInOctets = "interfaces/interface[name=GigabitEthernet0/0/0/0]/state/counters/in-octets"
	xrBytesRx  = "infra-statistics/interfaces/interface[interface-name=GigabitEthernet0/0/0/0]/latest/generic-counters/bytes-received"
	// recordedBytesRx is bytes-received of GigabitEthernet0/0/0/0 in the
	// IOS-XR capture (testdata/gnmi/cisco-iosxr-mdt-pipeline/dump.json).
	recordedBytesRx = 480002151
)

// TestStreamAdvances subscribes to the simulated IOS-XR router in every
// encoding and checks that counters start at the recording and advance.
func TestStreamAdvances(t *testing.T) {
	for _, enc := range []string{gnmi.EncodingProto, gnmi.EncodingJSONIETF, gnmi.EncodingJSON} {
		t.Run(enc, func(t *testing.T) {
			sim := startSim(t, gnmitarget.Options{Interval: 30 * time.Millisecond})
			rec := &recorder{}
			c, reg := startCollector(t, gnmi.Config{Targets: []gnmi.Target{{
				Name: "xr1", Address: sim.Addr(), Platform: gnmi.PlatformIOSXR, Insecure: true,
				Encoding: enc, SampleInterval: 30 * time.Millisecond,
			}}}, rec)
			waitSynced(t, c)
			testkit.Eventually(t, "in-octets to advance", func() bool {
				v := rec.values("xr1", "openconfig-interfaces", ocInOctets)
				return len(v) >= 3 && v[len(v)-1].Uint > v[0].Uint
			})
			v := rec.values("xr1", "openconfig-interfaces", ocInOctets)
			for i := 1; i < len(v); i++ {
				if v[i].Uint < v[i-1].Uint {
					t.Fatalf("in-octets went backwards: %d then %d", v[i-1].Uint, v[i].Uint)
				}
				if v[i].Kind != schema.KindCounter64 || v[i].DeviceTime == 0 || v[i].RecvTime == 0 {
					t.Fatalf("observation %+v: want counter64 with device and receive times", v[i])
				}
			}
			if v[0].Uint < recordedBytesRx {
				t.Fatalf("first in-octets %d is below the recorded %d", v[0].Uint, recordedBytesRx)
			}
			if got := rec.values("xr1", "Cisco-IOS-XR-wdsysmon-fd-oper", "system-monitoring/cpu-utilization[node-name=0/RP0/CPU0]/total-cpu-one-minute"); len(got) == 0 || got[0].Uint != 3 {
				t.Fatalf("wdsysmon total-cpu-one-minute = %+v, want 3 as recorded", got)
			}
			if got := testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_connected", "xr1")); got != 1 {
				t.Fatalf("netfeat_gnmi_connected = %v, want 1", got)
			}
			st := c.DeviceStates()
			if len(st) != 1 || st[0].State != gnmi.StateUp || st[0].Observations == 0 || st[0].Profile != "cisco-iosxr" {
				t.Fatalf("DeviceStates = %+v", st)
			}
		})
	}
}

// TestOnceMatchesRecording checks that the first ONCE subscription returns
// the recorded values exactly, and that ONCE repeats every poll interval.
// The simulator does not advance (interval 1h), so every later round
// repeats the same samples with the same timestamps: they are dropped as
// duplicates and counted, not delivered again.
func TestOnceMatchesRecording(t *testing.T) {
	sim := startSim(t, gnmitarget.Options{Interval: time.Hour})
	rec := &recorder{}
	c, reg := startCollector(t, gnmi.Config{Targets: []gnmi.Target{{
		Name: "xr1", Address: sim.Addr(), Platform: gnmi.PlatformIOSXR, Insecure: true,
		Mode: gnmi.ModeOnce, PollInterval: 50 * time.Millisecond, Encoding: gnmi.EncodingProto,
	}}}, rec)
	waitSynced(t, c)
	v := rec.values("xr1", "Cisco-IOS-XR-infra-statsd-oper", xrBytesRx)
	if len(v) == 0 || v[0].Uint != recordedBytesRx {
		t.Fatalf("bytes-received = %+v, want %d", v, recordedBytesRx)
	}
	testkit.Eventually(t, "three ONCE rounds", func() bool {
		return testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_sync_responses_total", "xr1")) >= 3
	})
	if n := len(rec.values("xr1", "Cisco-IOS-XR-infra-statsd-oper", xrBytesRx)); n != 1 {
		t.Fatalf("bytes-received delivered %d times after 3 rounds of the same sample, want 1", n)
	}
	if d := testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_duplicates_dropped_total", "xr1")); d == 0 {
		t.Fatal("netfeat_gnmi_duplicates_dropped_total = 0 after rounds repeating the same samples")
	}
	if r := testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_reconnects_total", "xr1")); r != 0 {
		t.Fatalf("ONCE rounds reconnected %v times, want 0 (same connection)", r)
	}
}

func TestPoll(t *testing.T) {
	sim := startSim(t, gnmitarget.Options{Interval: 20 * time.Millisecond, Platform: gnmi.PlatformIOSXE})
	rec := &recorder{}
	c, reg := startCollector(t, gnmi.Config{Targets: []gnmi.Target{{
		Name: "xe1", Address: sim.Addr(), Platform: gnmi.PlatformIOSXE, Insecure: true,
		Mode: gnmi.ModePoll, PollInterval: 50 * time.Millisecond,
	}}}, rec)
	waitSynced(t, c)
	const p = "interfaces/interface[name=GigabitEthernet0/0/0]/statistics/in-octets"
	testkit.Eventually(t, "three polls", func() bool {
		return testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_sync_responses_total", "xe1")) >= 3
	})
	v := rec.values("xe1", "Cisco-IOS-XE-interfaces-oper", p)
	// 119277205 is the in-octets an IOS-XE C8300 reported (gnmic issue 784).
	if len(v) < 3 || v[0].Uint < 119277205 || v[len(v)-1].Uint <= v[0].Uint {
		t.Fatalf("polled in-octets = %+v, want at least 3 advancing values from 119277205", v)
	}
}

// TestReconnectResumes drops the stream every 40 responses and checks that
// the collector reconnects, resubscribes and keeps receiving.
func TestReconnectResumes(t *testing.T) {
	sim := startSim(t, gnmitarget.Options{Interval: 20 * time.Millisecond, Faults: gnmitarget.Faults{DropAfter: 40}})
	rec := &recorder{}
	_, reg := startCollector(t, gnmi.Config{Targets: []gnmi.Target{{
		Name: "xr1", Address: sim.Addr(), Platform: gnmi.PlatformIOSXR, Insecure: true, Encoding: gnmi.EncodingProto,
	}}}, rec)
	testkit.Eventually(t, "three reconnects", func() bool {
		return testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_reconnects_total", "xr1")) >= 3
	})
	if got := testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_errors_total", "xr1", "stream")); got < 3 {
		t.Fatalf("stream errors = %v, want at least 3", got)
	}
	testkit.Eventually(t, "the simulator to see 4 streams", func() bool { return sim.Stats().Streams >= 4 })
	if d := sim.Stats().Dropped; d < 3 {
		t.Fatalf("simulator dropped %d streams, want at least 3", d)
	}
	before := rec.len()
	testkit.Eventually(t, "more data after reconnects", func() bool { return rec.len() > before+100 })
}

// TestBadStreamsCounted corrupts every 5th notification in each way the
// simulator knows and checks each is counted while good data flows.
func TestBadStreamsCounted(t *testing.T) {
	for _, enc := range []string{gnmi.EncodingProto, gnmi.EncodingJSONIETF} {
		t.Run(enc, func(t *testing.T) {
			sim := startSim(t, gnmitarget.Options{Interval: 20 * time.Millisecond, Faults: gnmitarget.Faults{MalformedEvery: 5}})
			rec := &recorder{}
			_, reg := startCollector(t, gnmi.Config{Targets: []gnmi.Target{{
				Name: "xr1", Address: sim.Addr(), Platform: gnmi.PlatformIOSXR, Insecure: true, Encoding: enc,
			}}}, rec)
			for _, reason := range []string{"malformed_path", "malformed_value", "unknown_origin", "type_mismatch"} {
				testkit.Eventually(t, reason, func() bool {
					return testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_errors_total", "xr1", reason)) > 0
				})
			}
			testkit.Eventually(t, "good data", func() bool { return len(rec.values("xr1", "openconfig-interfaces", ocInOctets)) > 2 })
			rec.mu.Lock()
			defer rec.mu.Unlock()
			for _, o := range rec.all {
				status := strings.HasSuffix(o.Path, "-status")
				if o.Origin == "Bogus-Unknown-Model" || strings.Contains(o.Path, "//") || o.Str == "garbage" ||
					status && o.Kind != schema.KindEnum || !status && o.Kind == schema.KindString {
					t.Fatalf("bad update reached the sink: %+v", o)
				}
			}
		})
	}
}

func TestAuth(t *testing.T) {
	sim := startSim(t, gnmitarget.Options{Interval: time.Hour, Username: "admin", Password: "s3cret"})
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	if err := os.WriteFile(good, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	c, reg := startCollector(t, gnmi.Config{Targets: []gnmi.Target{
		{Name: "ok", Address: sim.Addr(), Platform: gnmi.PlatformIOSXR, Insecure: true, Username: "admin", PasswordFile: good},
		{Name: "nok", Address: sim.Addr(), Platform: gnmi.PlatformIOSXR, Insecure: true, Username: "admin", PasswordFile: bad},
	}}, rec)
	testkit.Eventually(t, "auth failure counted", func() bool {
		return testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_errors_total", "nok", "auth")) > 0
	})
	testkit.Eventually(t, "good target up", func() bool { return len(rec.values("ok", "openconfig-interfaces", ocInOctets)) > 0 })
	states := map[string]schema.DeviceState{}
	for _, s := range c.DeviceStates() {
		states[s.Device] = s
	}
	if states["nok"].State != gnmi.StateAuthFailure || !strings.Contains(states["nok"].LastError, "Unauthenticated") {
		t.Fatalf("nok state = %+v, want auth_failure", states["nok"])
	}
	if len(rec.values("nok", "openconfig-interfaces", ocInOctets)) != 0 {
		t.Fatal("target with a wrong password delivered data")
	}
}

// TestFloodDoesNotBlockOthers runs a flooding target (1 ms updates, rate
// capped) beside a normal one behind a slow sink.
func TestFloodDoesNotBlockOthers(t *testing.T) {
	flood := startSim(t, gnmitarget.Options{Interval: time.Millisecond})
	calm := startSim(t, gnmitarget.Options{Interval: 20 * time.Millisecond, Platform: gnmi.PlatformNXOS})
	rec := &recorder{}
	_, reg := startCollector(t, gnmi.Config{Targets: []gnmi.Target{
		{Name: "flood", Address: flood.Addr(), Platform: gnmi.PlatformIOSXR, Insecure: true, Encoding: gnmi.EncodingProto, MaxUpdateRate: 200},
		{Name: "calm", Address: calm.Addr(), Platform: gnmi.PlatformNXOS, Insecure: true, Encoding: gnmi.EncodingProto},
	}}, rec)
	testkit.Eventually(t, "flood rate-limited", func() bool {
		return testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_errors_total", "flood", "rate_limited")) > 500
	})
	const dme = "sys/intf/phys-[id=eth1/11]/dbgIfHCIn/octets"
	testkit.Eventually(t, "calm target's DME counters advance", func() bool {
		v := rec.values("calm", "DME", dme)
		return len(v) > 3 && v[len(v)-1].Uint > v[0].Uint
	})
	if v := rec.values("calm", "DME", "sys/intf/phys-[id=eth1/11]/phys/operSt"); len(v) == 0 || v[0].Str != "up" {
		t.Fatalf("NX-OS operSt = %+v, want \"up\" as recorded", v)
	}
}

func TestStartStop(t *testing.T) {
	// A target that never answers: Stop must still return promptly.
	c, err := gnmi.New(gnmi.Config{Targets: []gnmi.Target{{Name: "x", Address: "127.0.0.1:1", Platform: gnmi.PlatformIOSXR, Insecure: true}}},
		schema.ObservationSinkFunc(func(context.Context, []schema.Observation) error { return nil }), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
	// Real TCP dials: wait for the first refused one, not a fixed time.
	testkit.Eventually(t, "a refused connect", func() bool { return c.DeviceStates()[0].Errors > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if s := c.DeviceStates()[0]; s.State != gnmi.StateStopped || s.Errors == 0 {
		t.Fatalf("state after stop = %+v, want stopped with connect errors", s)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		cfg    gnmi.Config
		fields []string
	}{
		{"ok", gnmi.Config{Targets: []gnmi.Target{{Name: "a", Address: "r1:57400", Platform: "iosxr"}}}, nil},
		{"missing", gnmi.Config{Targets: []gnmi.Target{{}}}, []string{"targets[0].name", "targets[0].address", "targets[0].platform"}},
		{"bad values", gnmi.Config{Targets: []gnmi.Target{{Name: "a", Address: "r1", Platform: "junos", Mode: "sometimes", StreamMode: "x", Encoding: "xml"}}},
			[]string{"targets[0].address", "targets[0].platform", "targets[0].mode", "targets[0].stream_mode", "targets[0].encoding"}},
		{"duplicate", gnmi.Config{Targets: []gnmi.Target{{Name: "a", Address: "r1:1", Platform: "nxos"}, {Name: "a", Address: "r2:1", Platform: "nxos"}}}, []string{"targets[1].name"}},
		{"insecure with tls", gnmi.Config{Targets: []gnmi.Target{{Name: "a", Address: "r1:1", Platform: "iosxe", Insecure: true, TLS: gnmi.TLSConfig{SkipVerify: true}}}}, []string{"targets[0].insecure"}},
		{"files", gnmi.Config{Targets: []gnmi.Target{{Name: "a", Address: "r1:1", Platform: "iosxe", TLS: gnmi.TLSConfig{CAFile: filepath.Join(dir, "nope"), CertFile: "x"}, PasswordFile: filepath.Join(dir, "nope")}}},
			[]string{"targets[0].tls.cert_file", "targets[0].tls.ca_file", "targets[0].tls.cert_file", "targets[0].password_file", "targets[0].username"}},
		{"subscriptions", gnmi.Config{Targets: []gnmi.Target{{Name: "a", Address: "r1:1", Subscriptions: []gnmi.Subscription{{Path: "a/b[x"}, {Path: "a", Mode: "often"}}}}},
			[]string{"targets[0].subscriptions[0].path", "targets[0].subscriptions[1].mode"}},
		{"redial", gnmi.Config{RedialMin: time.Minute, RedialMax: time.Second}, []string{"redial_max"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			got := map[string]int{}
			for _, e := range unjoin(err) {
				var fe *schema.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("error %v is not a *schema.FieldError", e)
				}
				got[fe.Field]++
			}
			want := map[string]int{}
			for _, f := range tt.fields {
				want[f]++
			}
			if len(got) != len(want) {
				t.Fatalf("Validate() fields = %v, want %v (err: %v)", got, want, err)
			}
			for f, n := range want {
				if got[f] != n {
					t.Fatalf("Validate() fields = %v, want %v (err: %v)", got, want, err)
				}
			}
		})
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// mustCounter finds the metric of family name with the given label values.
func mustCounter(t testing.TB, reg *prometheus.Registry, name string, labels ...string) prometheus.Collector {
	t.Helper()
	return metricCollector{reg: reg, name: name, labels: labels}
}

// metricCollector exposes one series of a gathered family to testutil.
type metricCollector struct {
	reg    *prometheus.Registry
	name   string
	labels []string
}

func (m metricCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- prometheus.NewDesc(m.name, "test view", nil, nil)
}

func (m metricCollector) Collect(ch chan<- prometheus.Metric) {
	fams, _ := m.reg.Gather()
	for _, f := range fams {
		if f.GetName() != m.name {
			continue
		}
		for _, mt := range f.GetMetric() {
			// Gathered labels are sorted by name; compare values as a set.
			have := map[string]int{}
			for _, l := range mt.GetLabel() {
				have[l.GetValue()]++
			}
			match := len(mt.GetLabel()) == len(m.labels)
			for _, v := range m.labels {
				match = match && have[v] > 0
			}
			if !match {
				continue
			}
			v := mt.GetCounter().GetValue() + mt.GetGauge().GetValue()
			ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(m.name, "test view", nil, nil), prometheus.UntypedValue, v)
			return
		}
	}
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(m.name, "test view", nil, nil), prometheus.UntypedValue, 0)
}
