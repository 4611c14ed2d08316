package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/netfeat/netfeat/internal/testkit"
)

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startServe runs `netfeat serve` with the given config on random loopback
// ports and waits until /readyz answers 200.
func startServe(t *testing.T, config string) (cmd *exec.Cmd, httpAddr, natsURL string, logs *testkit.SyncBuffer) {
	t.Helper()
	return startServeHTTP(t, "", config)
}

// startServeHTTP is startServe with more keys for the http section (its
// listen address is chosen here), e.g. "  token_env: X\n".
func startServeHTTP(t *testing.T, httpKeys, config string) (cmd *exec.Cmd, httpAddr, natsURL string, logs *testkit.SyncBuffer) {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "netfeat.yaml")
	httpAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	natsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	full := fmt.Sprintf("data_dir: %s\nshutdown_timeout: 10s\nhttp:\n  listen: %s\n%snats:\n  listen: %s\n%s", filepath.Join(dir, "data"), httpAddr, httpKeys, natsAddr, config)
	if err := os.WriteFile(cfgPath, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	logs = &testkit.SyncBuffer{}
	cmd = exec.Command(netfeatBin, "serve", "-c", cfgPath, "--log-format", "json")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("netfeat serve not ready after 30s; logs:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cmd, httpAddr, "nats://" + natsAddr, logs
}

// TestServeSIGTERMDrains runs the real binary, talks to its embedded NATS
// server from outside, then checks SIGTERM stops every component in reverse
// order and exits 0.
func TestServeSIGTERMDrains(t *testing.T) {
	cmd, httpAddr, natsURL, logs := startServe(t, "")
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatalf("outside NATS client: %v", err)
	}
	sub, _ := nc.SubscribeSync("netfeat.test")
	_ = nc.Publish("netfeat.test", []byte("hello"))
	if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "hello" {
		t.Fatalf("round trip through the embedded server: %v", err)
	}
	nc.Close()

	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte("netfeat_build_info")) {
		t.Fatal("/metrics lacks netfeat_build_info")
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("did not exit within 20s of SIGTERM\n%s", logs.String())
	}
	var stops []string
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, `"msg":"stopped"`) {
			i := strings.Index(line, `"component":"`)
			rest := line[i+len(`"component":"`):]
			stops = append(stops, rest[:strings.Index(rest, `"`)])
		}
	}
	// The console's live feed ends its streams first, so that HTTP's
	// graceful stop does not wait for them; then HTTP, and NATS last.
	if len(stops) > 0 && stops[0] == "console" {
		stops = stops[1:]
	}
	if len(stops) < 2 || stops[0] != "http" || stops[len(stops)-1] != "nats" {
		t.Fatalf("stop order %v: want http first (after the console's feed) and nats last\n%s", stops, logs.String())
	}
}

// TestServeBadConfigExitsNonZero checks the process refuses to start on a
// bad file and names the line.
func TestServeBadConfigExitsNonZero(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(p, []byte("http:\n  listen: 127.0.0.1:1\n  bogus: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"serve", "-c", p}, {"config", "check", p}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, netfeatBin, args...).CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("%v: want exit 1, got %v\n%s", args, err, out)
		}
		if want := p + `:3: http.bogus: unknown key "bogus"`; !strings.Contains(string(out), want) {
			t.Fatalf("%v: output lacks %q:\n%s", args, want, out)
		}
	}
}
