package integration

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestQueryAgainstServe is the analyst's path end to end: netfeat serve
// polls the SNMP simulator replaying a real Ericsson walk, and `netfeat
// query` reads what it made — samples, the collector's health, the
// catalog — with the bearer token enforced, and a bad query refused with
// DuckDB's message.
func TestQueryAgainstServe(t *testing.T) {
	addr := startSimSNMP(t, filepath.Join(snmpRecordings, "ericsson-ml.snmprec"))

	t.Setenv("NETFEAT_IT_TOKEN", "tok3n")
	_, httpAddr, _, logs := startServeHTTP(t, "  token_env: NETFEAT_IT_TOKEN\n", fmt.Sprintf(`
snmp:
  defaults: {version: v2c, community: public, interval: 1s, timeout: 2s}
  targets:
    - {name: ml1, address: "%s"}
`, addr))
	server := "http://" + httpAddr
	t.Setenv("NETFEAT_TOKEN", "")

	// Rates need two polls; wait for samples to land in the hot tier.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errOut, code := runQuery(t, "--server", server, "--token", "tok3n", "--format", "csv",
			"SELECT count(*) AS n FROM samples WHERE device = 'ml1' AND metric = 'interface.in.bps'")
		if code != 0 {
			t.Fatalf("query exit %d: %s\nserve logs:\n%s", code, errOut, logs.String())
		}
		if n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(out, "n\n"))); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no interface.in.bps samples after 30s: %q\nserve logs:\n%s", out, logs.String())
		}
		time.Sleep(500 * time.Millisecond)
	}

	tests := []struct {
		name string
		args []string
		code int
		want string // in stdout for code 0, in stderr otherwise
	}{
		{"devices", []string{"--format", "csv", "SELECT device, protocol, state FROM devices"}, 0, "ml1,snmp,up"},
		{"catalog", []string{"--format", "json", "SELECT unit FROM metrics WHERE name = 'interface.in.bps'"}, 0, `"bits/s"`},
		{"table", []string{"SELECT DISTINCT device FROM series"}, 0, "(1 rows)"},
		{"bad sql", []string{"SELECT nope FROM samples"}, 1, "nope"},
		{"sandbox", []string{"SELECT * FROM read_csv('/etc/passwd')"}, 1, "queries cannot read files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runQuery(t, append([]string{"--server", server, "--token", "tok3n"}, tc.args...)...)
			got := out
			if tc.code != 0 {
				got = errOut
			}
			if code != tc.code || !strings.Contains(got, tc.want) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q", code, tc.code, out, errOut, tc.want)
			}
		})
	}
	if _, errOut, code := runQuery(t, "--server", server, "SELECT 1"); code == 0 || !strings.Contains(errOut, "401") && !strings.Contains(errOut, "token") {
		t.Fatalf("query without the token: exit %d, %s", code, errOut)
	}
}

// runQuery runs `netfeat query` and returns its stdout, stderr and exit
// code.
func runQuery(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, netfeatBin, append([]string{"query"}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}
