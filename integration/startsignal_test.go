package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/testkit"
)

// TestServeSIGTERMDuringBlockedStart points the real binary at a NATS
// "server" that accepts the connection and never says a word, with a
// connect timeout far longer than the test, so start-up blocks in the nats
// component. SIGTERM must end it at once: non-zero exit and a line naming
// the signal and the component.
func TestServeSIGTERMDuringBlockedStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, silent
		}
	}()
	defer func() {
		for {
			select {
			case c := <-accepted:
				c.Close()
			default:
				return
			}
		}
	}()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "netfeat.yaml")
	cfg := fmt.Sprintf("data_dir: %s\nshutdown_timeout: 10s\nhttp:\n  listen: 127.0.0.1:%d\nnats:\n  url: nats://%s\n  connect_timeout: 5m\n",
		filepath.Join(dir, "data"), freePort(t), ln.Addr())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &testkit.SyncBuffer{}
	cmd := exec.Command(netfeatBin, "serve", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	})

	// Start-up is blocked once the binary has connected to the silent server.
	select {
	case c := <-accepted:
		accepted <- c
	case err := <-done:
		t.Fatalf("exited before connecting to NATS: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("never connected to the NATS listener\n%s", logs.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
	case <-time.After(60 * time.Second): // far below connect_timeout: only the signal can end it
		t.Fatalf("still running 60s after SIGTERM during start-up\n%s", logs.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("exit after SIGTERM during start-up: %v, want a non-zero code\n%s", err, logs.String())
	}
	if want := "netfeat: start interrupted while starting nats: terminated signal received"; !strings.Contains(logs.String(), want) {
		t.Fatalf("output lacks %q:\n%s", want, logs.String())
	}
}

// TestConfigCheckNegativeSize runs `netfeat config check` on a file with a
// negative size and another mistake: both are reported, each with its line
// and key.
func TestConfigCheckNegativeSize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "neg.yaml")
	if err := os.WriteFile(p, []byte("store:\n  badger_block_cache: -1\nlog:\n  level: loud\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, netfeatBin, "config", "check", p).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v\n%s", err, out)
	}
	for _, want := range []string{
		p + `:2: store.badger_block_cache: invalid size "-1"`,
		p + `:4: log.level: must be debug, info, warn or error, got "loud"`,
	} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}
