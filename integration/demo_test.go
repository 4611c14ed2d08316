package integration

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/testkit"
)

// TestDemo runs `netfeat demo` as a user would, on non-default loopback
// ports and with its timeline four times faster, and checks that the
// scripted congestion episode and link fault each produce a decision with
// an action, that it says where to point query, NATS and watch, and that it
// exits 0 with a summary when its duration is over.
func TestDemo(t *testing.T) {
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	natsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, netfeatBin, "demo", "--http-listen", httpAddr, "--nats-listen", natsAddr,
		"--speed", "4", "--duration", "32s", "--recordings", "../testdata/snmp")
	out := &testkit.SyncBuffer{}
	cmd.Stdout = out
	stderr := &testkit.SyncBuffer{}
	cmd.Stderr = stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("netfeat demo: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	took := time.Since(t0)
	text := out.String()
	t.Logf("netfeat demo ran %v", took.Round(100*time.Millisecond))

	for _, want := range []string{
		"nats sub 'netfeat.decisions.>' --server nats://" + natsAddr,
		"watch --nats nats://" + natsAddr,
		"query --server http://" + httpAddr,
		"== summary: ran 32",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Decision lines, as netfeat watch prints them: time, model@version,
	// entity, score, action.
	tests := []struct {
		incident string
		line     *regexp.Regexp
	}{
		{"congestion episode", regexp.MustCompile(`(?m)^\S+\s+(congestion|out_util_high)@\S+\s+nokia-7210/to_bng-a\s+\S+\s+(reroute|alert)\s`)},
		{"link fault", regexp.MustCompile(`(?m)^\S+\s+link_down@\S+\s+cisco-xr1/GigabitEthernet0/0/0/1\s+\S+\s+reroute\s`)},
		{"errors before the fault", regexp.MustCompile(`(?m)^\S+\s+in_errors_high@\S+\s+cisco-xr1/GigabitEthernet0/0/0/1\s+\S+\s+inspect\s`)},
	}
	for _, tc := range tests {
		if !tc.line.MatchString(text) {
			t.Errorf("no decision for the %s (want a line matching %s)", tc.incident, tc.line)
		}
	}
	// The device without an incident stays quiet.
	if regexp.MustCompile(`(?m)^\S+\s+\S+@\S+\s+ericsson-ml/`).MatchString(text) {
		t.Errorf("a decision with an action on the Ericsson, which has no incident")
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", text, stderr)
	}
}
