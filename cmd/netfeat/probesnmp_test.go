package main

import (
	"context"
	"strings"
	"testing"

	"github.com/netfeat/netfeat/internal/testkit"
)

// TestProbeSNMPCommunity: a probe with the right community prints samples;
// with a wrong one it says "no answer" and what to check, once (not in a
// warning, the state line and the error).
func TestProbeSNMPCommunity(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var simOut, simErr testkit.SyncBuffer
	sim := newRootCmd()
	sim.SetOut(&simOut)
	sim.SetErr(&simErr)
	sim.SetArgs([]string{"sim", "snmp", "--recording", "../../testdata/snmp/timos.snmprec", "--listen", "127.0.0.1:0", "--community", "right"})
	done := make(chan error, 1)
	go func() { done <- sim.ExecuteContext(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var addr string
	testkit.Eventually(t, "the simulator's address", func() bool {
		f := strings.Fields(simOut.String())
		if len(f) >= 2 {
			addr = f[1]
		}
		return addr != ""
	})

	tests := []struct {
		name, community string
		want            string // in stdout, or in the error
		err             bool
	}{
		{"right community", "right", "interface.in.octets", false},
		{"wrong community", "wrong", "no answer from " + addr + " in 1 attempt(s) of 200ms: check the community/credentials and the device's ACL", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runQueryCmd(t, "probe", "snmp", addr, "--community", tc.community, "--timeout", "200ms", "--retries", "0")
			if !tc.err {
				if err != nil || !strings.Contains(out, tc.want) {
					t.Fatalf("probe: %v\n%s\n%s", err, out, errOut)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("probe: err %v, want %q", err, tc.want)
			}
			if n := strings.Count(errOut+out, "no answer"); n != 0 {
				t.Fatalf("the error is also printed %d more time(s):\n%s%s", n, out, errOut)
			}
		})
	}
}
