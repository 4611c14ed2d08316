package service

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConsoleMounted checks that the service serves the console's page and
// files, and that an open live action stream does not hold up the
// service's stop (the stream ends before HTTP shuts down).
func TestConsoleMounted(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = 10 * time.Second
	svc, err := New(&cfg, NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = svc.Stop()
		}
	}()
	base := "http://" + svc.HTTP().Addr()
	for path, want := range map[string]string{"/": "netfeat console", "/console/app.js": "/v1/actions/stream"} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, res.StatusCode, want)
		}
	}
	// The API's method checks still answer 405 beside the page's patterns.
	res, err := http.Post(base+"/healthz", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d, want 405", res.StatusCode)
	}

	res, err = http.Get(base + "/v1/actions/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	if line, err := r.ReadString('\n'); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d %q %v", res.StatusCode, line, err)
	}
	stopped = true
	if err := svc.Stop(); err != nil {
		t.Fatalf("stop with a stream open: %v", err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatalf("the stream did not end cleanly: %v", err)
	}
}
