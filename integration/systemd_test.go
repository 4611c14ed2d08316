package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnit checks deploy/netfeat.service's hardening, that its
// ExecStart is a valid netfeat command line, and, where systemd-analyze is
// installed, that systemd accepts the unit.
func TestSystemdUnit(t *testing.T) {
	raw, err := os.ReadFile("../deploy/netfeat.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = v
		}
	}
	for k, want := range map[string]string{
		"DynamicUser":           "yes",
		"User":                  "netfeat",
		"StateDirectory":        "netfeat",
		"ProtectSystem":         "strict",
		"ProtectHome":           "yes",
		"NoNewPrivileges":       "yes",
		"PrivateTmp":            "yes",
		"CapabilityBoundingSet": "",
		"Restart":               "on-failure",
	} {
		if got, ok := keys[k]; !ok || got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if !strings.Contains(keys["ExecStart"], "--data-dir /var/lib/netfeat") {
		t.Errorf("ExecStart %q does not use the StateDirectory", keys["ExecStart"])
	}
	// The unit's ExecStartPre is a config check of the file it serves: run
	// it against deploy/netfeat.yaml, the file the install notes copy.
	pre := strings.Fields(keys["ExecStartPre"])
	if len(pre) != 4 || pre[1] != "config" || pre[2] != "check" || pre[3] != "/etc/netfeat/netfeat.yaml" {
		t.Fatalf("ExecStartPre %q", keys["ExecStartPre"])
	}
	if out, err := exec.Command(netfeatBin, "config", "check", "../deploy/netfeat.yaml").CombinedOutput(); err != nil {
		t.Fatalf("config check deploy/netfeat.yaml: %v\n%s", err, out)
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed; unit syntax not verified")
		return
	}
	dir := t.TempDir()
	unit := strings.ReplaceAll(string(raw), "/usr/local/bin/netfeat", netfeatBin)
	if err := os.WriteFile(filepath.Join(dir, "netfeat.service"), []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", filepath.Join(dir, "netfeat.service")).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
