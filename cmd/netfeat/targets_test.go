package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/service"
)

// TestTargetsCmd adds, lists and removes targets of a real service through
// the CLI, and checks that a refused target is reported as config check
// reports a file: with the file's name and line, or the key alone for
// flags.
func TestTargetsCmd(t *testing.T) {
	dir := t.TempDir()
	cfg := service.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.TargetsFile = filepath.Join(dir, "targets.yaml")
	svc, err := service.New(&cfg, service.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	server := "--server=http://" + svc.HTTP().Addr()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("snmp:\n  name: r9\n  address: 127.0.0.1:99999\n  intervall: 10s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		want    []string // starts of lines of the output, in order
		wantErr bool
		errText string // in the error
	}{
		{name: "empty list", args: []string{"targets", "list"},
			want: []string{"NAME  PROTOCOL  ADDRESS  ORIGIN  STATE", "no targets: add one with `netfeat targets add NAME ADDRESS`"}},
		{name: "add snmp", args: []string{"targets", "add", "r1", "127.0.0.1:1", "--interval", "1h"},
			want: []string{"r1: added snmp target (written to the targets file: kept across restarts)"}},
		{name: "add the same again: unchanged", args: []string{"targets", "add", "r1", "127.0.0.1:1", "--interval", "1h"},
			want: []string{"r1: unchanged snmp target (written to the targets file: kept across restarts)"}},
		{name: "change snmp", args: []string{"targets", "add", "r1", "127.0.0.1:2", "--interval", "1h"},
			want: []string{"r1: changed snmp target (written to the targets file: kept across restarts)"}},
		{name: "bad file", args: []string{"targets", "add", "-f", bad}, wantErr: true,
			want: []string{bad + `:3: snmp.address: bad port in "127.0.0.1:99999"`, bad + `:4: snmp.intervall: unknown key "intervall"`}},
		{name: "bad flags", args: []string{"targets", "add", "xr1", "127.0.0.1:57400", "--gnmi", "--platform", "junos", "--insecure"}, wantErr: true,
			want: []string{`gnmi.platform: must be one of iosxe, iosxr, nxos, got "junos"`}},
		{name: "list", args: []string{"targets", "list"},
			// Polled at once: its state is unknown or down by now.
			want: []string{"NAME  PROTOCOL  ADDRESS      ORIGIN   STATE", "r1    snmp      127.0.0.1:2  dynamic  "}},
		{name: "remove", args: []string{"targets", "remove", "r1"},
			want: []string{"r1: removed snmp target (written to the targets file: kept across restarts)"}},
		{name: "remove again", args: []string{"targets", "remove", "r1"}, wantErr: true,
			errText: `no target "r1" (HTTP 404)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCmd(t, append(tt.args, server)...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want one: %v\n%s", err, tt.wantErr, out)
			}
			if tt.errText != "" && !strings.Contains(err.Error(), tt.errText) {
				t.Fatalf("error %v, want %q", err, tt.errText)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			for _, w := range tt.want {
				i := 0
				for i < len(lines) && !strings.HasPrefix(lines[i], w) {
					i++
				}
				if i == len(lines) {
					t.Fatalf("output lacks %q:\n%s", w, out)
				}
				lines = lines[i+1:]
			}
		})
	}
}
