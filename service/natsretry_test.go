package service

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// freeAddr returns a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestConnectRetryWaitsForLateServer(t *testing.T) {
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	go func() {
		time.Sleep(300 * time.Millisecond)
		p, _ := net.LookupPort("tcp", port)
		srv, err := server.NewServer(&server.Options{Host: host, Port: p, NoSigs: true, NoLog: true})
		if err != nil {
			t.Error(err)
			return
		}
		go srv.Start()
		t.Cleanup(srv.Shutdown)
	}()
	r := natsRetry{attempts: 20, min: 50 * time.Millisecond, max: 100 * time.Millisecond}
	conn, err := connectRetry(t.Context(), "nats://"+addr, []nats.Option{nats.Timeout(time.Second)}, r, log)
	if err != nil {
		t.Fatalf("connectRetry: %v\n%s", err, logs.String())
	}
	conn.Close()
	if n := strings.Count(logs.String(), "NATS connect failed, retrying"); n == 0 {
		t.Fatalf("no log line per failed attempt:\n%s", logs.String())
	}
}

func TestConnectRetryGivesUp(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r := natsRetry{attempts: 3, min: 10 * time.Millisecond, max: 20 * time.Millisecond}
	_, err := connectRetry(t.Context(), "nats://"+freeAddr(t), nil, r, log)
	if err == nil {
		t.Fatal("connected to nothing")
	}
	if n := strings.Count(logs.String(), "NATS connect failed, retrying"); n != 2 {
		t.Fatalf("%d retry log lines for 3 attempts, want 2:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "attempt=1 of=3") {
		t.Fatalf("log line does not count attempts:\n%s", logs.String())
	}
}

func TestConnectRetryHonoursCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r := natsRetry{attempts: 1000, min: time.Hour, max: time.Hour}
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	t0 := time.Now()
	_, err := connectRetry(ctx, "nats://"+freeAddr(t), nil, r, slog.New(slog.DiscardHandler))
	if err == nil || time.Since(t0) > 5*time.Second {
		t.Fatalf("err %v after %v, want a cancellation at once", err, time.Since(t0))
	}
}
