package integration

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

func init() {
	// The in-process simulator uses openconfig's subscribe package, which
	// logs through glog; send that to stderr instead of files in $TMPDIR.
	_ = flag.Set("logtostderr", "true")
}

// gnmiTools builds openconfig's fake_server and gnmi_cli (pinned at
// v0.14.1 by go.mod's tool directive) once per test binary.
var gnmiTools = struct {
	once                sync.Once
	dir                 string
	fakeServer, gnmiCLI string
	err                 error
}{}

func buildGNMITools(t *testing.T) (fakeServer, gnmiCLI string) {
	t.Helper()
	gnmiTools.once.Do(func() {
		dir, err := os.MkdirTemp("", "netfeat-gnmi-tools-")
		if err != nil {
			gnmiTools.err = err
			return
		}
		gnmiTools.dir = dir
		for bin, pkg := range map[string]string{
			"fake_server": "github.com/openconfig/gnmi/testing/fake/gnmi/cmd/fake_server",
			"gnmi_cli":    "github.com/openconfig/gnmi/cmd/gnmi_cli",
		} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(dir, bin), pkg).CombinedOutput()
			if err != nil {
				gnmiTools.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
		gnmiTools.fakeServer, gnmiTools.gnmiCLI = filepath.Join(dir, "fake_server"), filepath.Join(dir, "gnmi_cli")
	})
	if gnmiTools.err != nil {
		t.Fatal(gnmiTools.err)
	}
	return gnmiTools.fakeServer, gnmiTools.gnmiCLI
}

// fakeConfig is a fixed-response fake_server configuration: an IOS-XR style
// notification with a PROTO counter, an enum and a JSON_IETF container, the
// sync, then one more counter update.
const fakeConfig = `
target: "xr-fake"
client_type: GRPC_GNMI
disable_eof: true
fixed: {
  responses: {
    update: {
      timestamp: 1700000000000000000
      prefix: { origin: "openconfig-interfaces" elem: { name: "interfaces" } elem: { name: "interface" key: { key: "name" value: "HundredGigE0/0/0/1" } } elem: { name: "state" } }
      update: { path: { elem: { name: "counters" } elem: { name: "in-octets" } } val: { uint_val: 123456789 } }
      update: { path: { elem: { name: "oper-status" } } val: { string_val: "UP" } }
      update: { path: { elem: { name: "counters" } } val: { json_ietf_val: "{\"out-octets\":\"987654321\",\"in-errors\":\"3\"}" } }
    }
  }
  responses: { sync_response: true }
  responses: {
    update: {
      timestamp: 1700000010000000000
      prefix: { origin: "openconfig-interfaces" elem: { name: "interfaces" } elem: { name: "interface" key: { key: "name" value: "HundredGigE0/0/0/1" } } elem: { name: "state" } }
      update: { path: { elem: { name: "counters" } elem: { name: "in-octets" } } val: { uint_val: 123999999 } }
    }
  }
}
`

var fakeAddrRE = regexp.MustCompile(`Starting RPC server on address: \S+:(\d+)`)

// startFakeServer runs fake_server with TLS; requireClientCert makes it
// demand a client certificate signed by the CA (mTLS).
func startFakeServer(t *testing.T, bin string, certs gnmitarget.CertFiles, requireClientCert bool) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "fake.pb.txt")
	if err := os.WriteFile(cfg, []byte(fakeConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", cfg, "--text", "--port", "0", "--server_crt", certs.ServerCert, "--server_key", certs.ServerKey,
		"--ca_crt", certs.CA, "--logtostderr"}
	if !requireClientCert {
		args = append(args, "--allow_no_client_auth")
	}
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := fakeAddrRE.FindStringSubmatch(sc.Text()); m != nil {
				port <- m[1]
			}
		}
	}()
	select {
	case p := <-port:
		return "127.0.0.1:" + p
	case <-time.After(20 * time.Second):
		t.Fatal("fake_server did not report its address")
	}
	return ""
}

type obsRecorder struct {
	mu  sync.Mutex
	all []schema.Observation
}

func (r *obsRecorder) Observe(_ context.Context, b []schema.Observation) error {
	r.mu.Lock()
	r.all = append(r.all, b...)
	r.mu.Unlock()
	return nil
}

func (r *obsRecorder) find(path string) []schema.Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []schema.Observation
	for _, o := range r.all {
		if o.Path == path {
			out = append(out, o)
		}
	}
	return out
}

func runCollector(t *testing.T, targets ...gnmi.Target) (*gnmi.Collector, *obsRecorder) {
	t.Helper()
	rec := &obsRecorder{}
	c, err := gnmi.New(gnmi.Config{Targets: targets, RedialMin: 50 * time.Millisecond, RedialMax: 200 * time.Millisecond, Timeout: 5 * time.Second}, rec, nil, nil)
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
	return c, rec
}

// TestGNMICollectorAgainstFakeServer runs our collector against openconfig's
// own fake target, over TLS and over mTLS.
func TestGNMICollectorAgainstFakeServer(t *testing.T) {
	fakeServer, _ := buildGNMITools(t)
	certs, err := gnmitarget.WriteLabCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const base = "interfaces/interface[name=HundredGigE0/0/0/1]/state/"
	for _, mtls := range []bool{false, true} {
		t.Run(fmt.Sprintf("mtls=%v", mtls), func(t *testing.T) {
			addr := startFakeServer(t, fakeServer, certs, mtls)
			tc := gnmi.TLSConfig{CAFile: certs.CA}
			if mtls {
				tc.CertFile, tc.KeyFile = certs.ClientCert, certs.ClientKey
			}
			c, rec := runCollector(t, gnmi.Target{Name: "xr-fake", Address: addr, Platform: gnmi.PlatformIOSXR, TLS: tc, Encoding: gnmi.EncodingProto})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := c.WaitSynced(ctx); err != nil {
				t.Fatalf("%v (state %+v)", err, c.DeviceStates())
			}
			testkit.Eventually(t, "the update after the sync", func() bool { return len(rec.find(base+"counters/in-octets")) >= 2 })
			in := rec.find(base + "counters/in-octets")
			if in[0].Uint != 123456789 || in[1].Uint != 123999999 || in[0].Kind != schema.KindCounter64 ||
				in[0].Origin != "openconfig-interfaces" || in[0].DeviceTime != 1700000000000000000 {
				t.Fatalf("in-octets = %+v", in)
			}
			if o := rec.find(base + "oper-status"); len(o) == 0 || o[0].Kind != schema.KindEnum || o[0].Str != "UP" {
				t.Fatalf("oper-status = %+v", o)
			}
			if o := rec.find(base + "counters/out-octets"); len(o) == 0 || o[0].Uint != 987654321 {
				t.Fatalf("JSON_IETF out-octets = %+v", o)
			}
			if o := rec.find(base + "counters/in-errors"); len(o) == 0 || o[0].Uint != 3 {
				t.Fatalf("JSON_IETF in-errors = %+v", o)
			}
			if st := c.DeviceStates()[0]; st.State != gnmi.StateUp || st.Errors != 0 {
				t.Fatalf("state = %+v, want up without errors", st)
			}
		})
	}
	t.Run("mtls without client certificate", func(t *testing.T) {
		addr := startFakeServer(t, fakeServer, certs, true)
		c, rec := runCollector(t, gnmi.Target{Name: "nocert", Address: addr, Platform: gnmi.PlatformIOSXR, TLS: gnmi.TLSConfig{CAFile: certs.CA}})
		testkit.Eventually(t, "a refused connection", func() bool { return c.DeviceStates()[0].Errors > 0 })
		if len(rec.find(base+"counters/in-octets")) != 0 {
			t.Fatal("data arrived without a client certificate")
		}
	})
}

// TestGNMICLIAgainstSimulator drives our simulator with openconfig's
// gnmi_cli over mTLS: Capabilities, ONCE, POLL and STREAM.
func TestGNMICLIAgainstSimulator(t *testing.T) {
	_, cli := buildGNMITools(t)
	certs, err := gnmitarget.WriteLabCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sim, err := gnmitarget.New(gnmitarget.Options{Listen: "127.0.0.1:0", Interval: 100 * time.Millisecond,
		CertFile: certs.ServerCert, KeyFile: certs.ServerKey, ClientCAFile: certs.CA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sim.Stop(ctx)
	})
	tlsArgs := []string{"-a", sim.Addr(), "-ca_crt", certs.CA, "-client_crt", certs.ClientCert, "-client_key", certs.ClientKey}
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, cli, append(append([]string{}, tlsArgs...), args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		// With -streaming_duration gnmi_cli ends the stream by its own
		// deadline and exits 1 reporting DeadlineExceeded.
		if err != nil && !(slices.Contains(args, "-sd") && strings.Contains(out.String(), "code = DeadlineExceeded")) {
			t.Fatalf("gnmi_cli %v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"capabilities", []string{"-capabilities"}, []string{`name: "openconfig-interfaces"`, `name: "Cisco-IOS-XR-infra-statsd-oper"`, "JSON_IETF", "PROTO"}},
		{"once", []string{"-qt", "once", "-dt", "single", "-q", "interfaces/interface[name=GigabitEthernet0/0/0/0]/state/counters"},
			[]string{"sim/openconfig-interfaces/interfaces/interface/GigabitEthernet0/0/0/0/state/counters/in-octets", "out-discards"}},
		{"once native", []string{"-qt", "once", "-dt", "single", "-q", "system-monitoring/cpu-utilization"},
			[]string{"sim/Cisco-IOS-XR-wdsysmon-fd-oper/system-monitoring/cpu-utilization/0/RP0/CPU0/total-cpu-one-minute"}},
		{"poll", []string{"-qt", "p", "-pi", "200ms", "-c", "2", "-dt", "single", "-q", "system/memory/state"},
			[]string{"sim/openconfig-system/system/memory/state/physical"}},
		{"stream", []string{"-qt", "s", "-sd", "1s", "-dt", "single", "-q", "interfaces/interface[name=GigabitEthernet0/0/0/0]/state/counters/in-octets"},
			[]string{"state/counters/in-octets"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := run(t, tt.args...)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Fatalf("gnmi_cli output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	t.Run("stream advances", func(t *testing.T) {
		out := run(t, "-qt", "s", "-sd", "1500ms", "-dt", "single", "-q", "interfaces/interface[name=GigabitEthernet0/0/0/0]/state/counters/in-octets")
		if n := strings.Count(out, "in-octets"); n < 3 {
			t.Fatalf("streamed %d in-octets updates in 1.5 s at a 100 ms interval, want several:\n%s", n, out)
		}
	})
	t.Run("without client certificate", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, cli, "-a", sim.Addr(), "-ca_crt", certs.CA, "-capabilities", "-timeout", "3s").CombinedOutput()
		if err == nil {
			t.Fatalf("gnmi_cli without a client certificate succeeded against mTLS:\n%s", out)
		}
	})
}

// TestGNMITLSDefault shows that TLS is the default: a target configured
// without insecure does not talk to a plaintext simulator, and does with
// insecure set.
func TestGNMITLSDefault(t *testing.T) {
	sim, err := gnmitarget.New(gnmitarget.Options{Listen: "127.0.0.1:0", Interval: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Stop(context.Background()) })
	c, rec := runCollector(t,
		gnmi.Target{Name: "tls", Address: sim.Addr(), Platform: gnmi.PlatformIOSXR},
		gnmi.Target{Name: "plain", Address: sim.Addr(), Platform: gnmi.PlatformIOSXR, Insecure: true})
	testkit.Eventually(t, "the plaintext target", func() bool {
		return len(rec.find("interfaces/interface[name=GigabitEthernet0/0/0/0]/state/counters/in-octets")) > 0
	})
	testkit.Eventually(t, "the TLS target's handshake failure", func() bool {
		for _, s := range c.DeviceStates() {
			if s.Device == "tls" {
				return s.Errors > 0 && strings.Contains(s.LastError, "handshake")
			}
		}
		return false
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, o := range rec.all {
		if o.Device == "tls" {
			t.Fatal("the TLS target received data from a plaintext server")
		}
	}
}

// TestGNMIProbeBinary runs `netfeat sim gnmi --tls` and `netfeat probe gnmi`
// as processes: TLS end to end, through the normalizer.
func TestGNMIProbeBinary(t *testing.T) {
	dir := t.TempDir()
	sim := exec.Command(netfeatBin, "sim", "gnmi", "--listen", "127.0.0.1:0", "--interval", "1h", "--tls", "--cert-dir", dir)
	stdout, err := sim.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sim.Stderr = io.Discard
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Process.Signal(os.Interrupt); sim.Wait() })
	addrRE := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var a string
	select {
	case a = <-addr:
	case <-time.After(20 * time.Second):
		t.Fatal("netfeat sim gnmi did not report its address")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, netfeatBin, "probe", "gnmi", a, "--ca-file", filepath.Join(dir, "ca.pem"), "--format", "jsonl").CombinedOutput()
	if err != nil {
		t.Fatalf("probe gnmi: %v\n%s", err, out)
	}
	// The first in-octets of GigabitEthernet0/0/0/0 is the capture's
	// bytes-received (the simulator does not advance with --interval 1h).
	want := `"component":"GigabitEthernet0/0/0/0","metric":"interface.in.octets","value":480002151,"unit":"bytes","source":"cisco-iosxr/gnmi"`
	if !strings.Contains(string(out), want) {
		t.Fatalf("probe output lacks %s:\n%s", want, out)
	}
}
