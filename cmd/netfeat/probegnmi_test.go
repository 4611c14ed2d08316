package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
)

// TestProbeGNMITLSDefaults: netfeat probe gnmi and sim gnmi agree by
// default on loopback (plaintext), agree with TLS when both use it, and a
// mismatch either way ends the probe with the option to use, without
// waiting out --timeout: a probe that waited would end with "did not
// complete its initial state", which the test refuses.
func TestProbeGNMITLSDefaults(t *testing.T) {
	certs, err := gnmitarget.WriteLabCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		simTLS  bool
		probe   []string
		wantErr string // "" means the probe prints samples
	}{
		{"both default", false, nil, ""},
		{"both TLS", true, []string{"--tls", "--ca-file", certs.CA}, ""},
		{"TLS probe, plaintext sim", false, []string{"--tls", "--ca-file", certs.CA}, "the target serves plaintext gRPC, not TLS: set insecure: true for it (netfeat probe gnmi: --insecure)"},
		{"plaintext probe, TLS sim", true, []string{"--insecure"}, "the target seems to serve TLS: set insecure: false (netfeat probe gnmi: --tls, with --ca-file or --skip-verify)"},
		{"default probe, TLS sim", true, nil, "the target seems to serve TLS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := gnmitarget.Options{Listen: "127.0.0.1:0", Platform: "iosxr", Interval: time.Hour, Rate: gnmitarget.DefaultRate}
			if tc.simTLS {
				o.CertFile, o.KeyFile = certs.ServerCert, certs.ServerKey
			}
			s, err := gnmitarget.New(o, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Stop(context.Background()) })
			args := append([]string{"probe", "gnmi", s.Addr(), "--timeout", "60s"}, tc.probe...)
			out, _, err := runQueryCmd(t, args...)
			if tc.wantErr == "" {
				if err != nil || !strings.Contains(out, "interface.in.octets") {
					t.Fatalf("probe: %v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "did not complete") {
				t.Fatalf("probe: err %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestProbeGNMIRefused: a probe of a port nothing listens on ends at once
// with what to check, not after --timeout.
func TestProbeGNMIRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	// Waiting out --timeout would end with "did not complete its
	// initial state" instead.
	_, _, err = runQueryCmd(t, "probe", "gnmi", addr, "--timeout", "60s")
	if err == nil || !strings.Contains(err.Error(), "nothing listens at "+addr+" (connection refused)") {
		t.Fatalf("probe: err %v, want connection refused", err)
	}
}
