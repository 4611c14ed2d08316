package service

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// newTestService starts a service on random loopback ports with its data in
// a temporary directory, and stops it when the test ends.
func newTestService(t *testing.T) *Service {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	svc := startService(t, &cfg)
	return svc
}

func TestEmbeddedNATSReachableFromOutside(t *testing.T) {
	svc := newTestService(t)
	url := svc.NATS().ClientURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("client URL %q is not loopback", url)
	}
	outside, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("outside client: %v", err)
	}
	defer outside.Close()
	sub, err := outside.SubscribeSync("netfeat.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := outside.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := svc.NATS().Conn().Publish("netfeat.decisions.test.r1", []byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("outside subscriber got nothing: %v", err)
	}
	if msg.Subject != "netfeat.decisions.test.r1" || string(msg.Data) != `{"ok":true}` {
		t.Fatalf("got %s %q", msg.Subject, msg.Data)
	}
	js, err := svc.NATS().Conn().JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(); err != nil {
		t.Fatalf("JetStream not enabled on the embedded server: %v", err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPEndpoints(t *testing.T) {
	svc := newTestService(t)
	base := "http://" + svc.HTTP().Addr()
	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, family := range []string{
		"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total",
		"netfeat_build_info", "netfeat_component_ready", "netfeat_nats_connected",
		"netfeat_nats_disconnects_total", "netfeat_nats_reconnects_total", "promhttp_metric_handler_requests_total",
	} {
		if !strings.Contains(body, "\n"+family) && !strings.HasPrefix(body, family) {
			t.Errorf("/metrics lacks %s", family)
		}
	}
	if !strings.Contains(body, `netfeat_component_ready{component="nats"} 1`) {
		t.Errorf("nats not reported ready:\n%s", grepLines(body, "netfeat_component_ready"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestReadyzFailsWhenNATSDown(t *testing.T) {
	svc := newTestService(t)
	base := "http://" + svc.HTTP().Addr()
	svc.NATS().Server().Shutdown()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if code, body := get(t, base+"/readyz"); code == 503 && strings.Contains(body, "nats: not connected") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("/readyz still ready after the NATS server went away")
}

func TestStartFailureNamesComponent(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:0"
	svc, err := New(&cfg, NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Occupy the HTTP port so the last component fails after NATS started.
	first := newTestService(t)
	svc.http.cfg.Listen = first.HTTP().Addr()
	err = svc.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "start http: http listen") {
		t.Fatalf("Start = %v", err)
	}
	if svc.NATS().Conn() != nil && !svc.NATS().Conn().IsClosed() {
		t.Fatal("NATS left connected after a failed start")
	}
}

// TestExternalNATSReconnectCounted connects to an external server, restarts
// it, and checks the disconnect and reconnect are counted.
func TestExternalNATSReconnectCounted(t *testing.T) {
	srv := testkit.StartNATS(t, server.Options{})
	port := srv.Addr().(*net.TCPAddr).Port
	cfg := DefaultConfig()
	cfg.NATS.URL = srv.ClientURL()
	cfg.NATS.ReconnectWait = 20 * time.Millisecond
	reg := NewRegistry()
	n := NewNATS(cfg.NATS, t.TempDir(), reg, nil)
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n.Stop(context.Background())

	srv.Shutdown()
	srv.WaitForShutdown()
	testkit.Eventually(t, "disconnect counted", func() bool { return testutil.ToFloat64(n.disconnects) == 1 })
	if n.Ready() == nil {
		t.Fatal("ready while disconnected")
	}
	testkit.StartNATS(t, server.Options{Port: port})
	testkit.Eventually(t, "reconnect counted", func() bool { return testutil.ToFloat64(n.reconnects) == 1 })
	if err := n.Ready(); err != nil {
		t.Fatalf("not ready after reconnect: %v", err)
	}
}
