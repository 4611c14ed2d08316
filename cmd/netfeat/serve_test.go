package main

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/collectors/snmp"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/service"
)

func TestNoDevicesHint(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*service.Config)
		hint bool
	}{
		{"defaults", func(*service.Config) {}, true},
		{"snmp target", func(c *service.Config) { c.SNMP.Targets = []snmp.Target{{Name: "r1", Address: "127.0.0.1:161"}} }, false},
		{"snmp targets file", func(c *service.Config) { c.SNMP.TargetsFile = "targets.yaml" }, false},
		{"trap listener", func(c *service.Config) { c.SNMP.TrapListen = "127.0.0.1:1162" }, false},
		{"gnmi target", func(c *service.Config) { c.GNMI.Targets = []gnmi.Target{{Name: "xr1", Address: "127.0.0.1:57400"}} }, false},
		{"hub", func(c *service.Config) { c.Role = service.RoleHub }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := service.DefaultConfig()
			tc.mod(&cfg)
			hint := noDevicesHint(&cfg, "")
			if (hint != "") != tc.hint {
				t.Fatalf("hint %q, want one: %v", hint, tc.hint)
			}
			if tc.hint && (!strings.Contains(hint, "snmp.targets or gnmi.targets") || !strings.Contains(hint, "netfeat demo")) {
				t.Fatalf("hint %q does not say how to add a device", hint)
			}
		})
	}
}

// TestServeSaysHowToAddDevices runs serve with no configuration: it says
// how to add a device, and serves anyway.
func TestServeSaysHowToAddDevices(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut testkit.SyncBuffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	// A free port, so that the test can see the service ready.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := l.Addr().String()
	l.Close()
	root.SetArgs([]string{"serve", "--log-level", "error", "--http-listen", httpAddr, "--nats-listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(t.TempDir(), "data")})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	testkit.Eventually(t, "the hint", func() bool { return strings.Contains(errOut.String(), "no devices are configured") })
	testkit.Eventually(t, "serve ready", func() bool { return healthcheck(ctx, "http://"+httpAddr+"/readyz") == nil })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// TestVersionFlag: --version and the version command print the same line.
func TestVersionFlag(t *testing.T) {
	var outs []string
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, _, err := runQueryCmd(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if !strings.HasPrefix(out, "netfeat ") || strings.Count(out, "\n") != 1 {
			t.Fatalf("%v: %q, want one line starting with netfeat", args, out)
		}
		outs = append(outs, out)
	}
	if outs[0] != outs[1] {
		t.Fatalf("version says %q, --version %q", outs[0], outs[1])
	}
}
