package service

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// startTestHTTP runs the service's HTTP component on a loopback port with
// cfg's limits and stops it when the test ends.
func startTestHTTP(t *testing.T, cfg HTTPConfig) *HTTP {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	h := NewHTTP(cfg, NewRegistry(), NewRegistry(), func() error { return nil }, nil)
	h.Handle("POST /echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestTimeout)
			return
		}
		_, _ = w.Write(b)
	}))
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Stop(ctx)
	})
	return h
}

// waitClosed reads from c until the server closes it, failing the test if
// that takes longer than a generous bound.
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server did not close a connection that trickles its request")
	}
}

func TestHTTPSlowHeadersTimeOut(t *testing.T) {
	h := startTestHTTP(t, HTTPConfig{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: time.Minute})
	c, err := net.Dial("tcp", h.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil { // headers never end
		t.Fatal(err)
	}
	waitClosed(t, c)
}

func TestHTTPSlowBodyTimesOut(t *testing.T) {
	h := startTestHTTP(t, HTTPConfig{ReadHeaderTimeout: time.Minute, ReadTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", h.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc"); err != nil {
		t.Fatal(err)
	}
	// The handler's read of the rest fails at the deadline; the answer is
	// an error status (or the connection closes), never a hang.
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("a body 997 bytes short was answered %s", resp.Status)
		}
		return
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server held a connection with a trickling body")
	}
}

func TestHTTPConnectionLimit(t *testing.T) {
	const limit = 3
	h := startTestHTTP(t, HTTPConfig{MaxConnections: limit})
	ll := h.ln.(*limitListener)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Open limit+2 idle connections; only limit are accepted.
	for range limit + 2 {
		c, err := net.Dial("tcp", h.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(ll.sem) < limit {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections accepted, want %d", len(ll.sem), limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(ll.sem); n != limit {
		t.Fatalf("%d connections open, want at most %d", n, limit)
	}
	// Closing one admits a waiting one, which is served.
	conns[0].Close()
	c := conns[limit]
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("a waiting connection was not served after another closed: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("body %q", body)
	}
}

func TestMemoryLimitApplied(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.MemoryLimit = 3 << 30
	svc, err := New(&cfg, NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := svc.Stop(); err != nil {
			t.Error(err)
		}
	}()
	// The governor gives Go the limit less what is outside the Go runtime
	// (service/memory.go), never under a quarter of it.
	if got := debug.SetMemoryLimit(-1); got > 3<<30 || got < 3<<30/4 {
		t.Fatalf("Go memory limit %d after start, want at most %d and at least a quarter of it", got, int64(3<<30))
	}
}

func TestMemoryLimitBounds(t *testing.T) {
	for _, v := range []string{"1MiB", "2TiB"} {
		_, err := ParseConfig("f.yaml", []byte("memory_limit: "+v+"\n"))
		if err == nil || !strings.Contains(err.Error(), "f.yaml:1: memory_limit: must be 0 (off) or between 64MiB and 1TiB") {
			t.Fatalf("memory_limit %s: %v", v, err)
		}
	}
	if _, err := ParseConfig("f.yaml", []byte("memory_limit: 2GiB\n")); err != nil {
		t.Fatal(err)
	}
}
