package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/netfeat/netfeat/internal/testkit"
)

// TestServeTargetsSIGHUPAndCLI runs the real binary with a targets file
// that does not exist yet: SIGHUP applies the file written meanwhile,
// `netfeat targets add` adds to it and `targets list` shows both.
func TestServeTargetsSIGHUPAndCLI(t *testing.T) {
	file := filepath.Join(t.TempDir(), "targets.yaml")
	cmd, httpAddr, _, logs := startServe(t, fmt.Sprintf("targets_file: %s\nsnmp:\n  defaults:\n    interval: 1h\n", file))
	server := "--server=http://" + httpAddr
	steps := []struct {
		name string
		do   func(t *testing.T)
		want map[string]string // target → origin in GET /v1/targets
	}{
		{name: "no targets at start", want: map[string]string{}},
		{name: "SIGHUP applies the file", want: map[string]string{"r1": "dynamic"}, do: func(t *testing.T) {
			if err := os.WriteFile(file, []byte("snmp:\n  targets:\n    - name: r1\n      address: 127.0.0.1:1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			testkit.Eventually(t, "the change logged with its source", func() bool {
				return strings.Contains(logs.String(), `"msg":"target add","component":"targets","target":"r1","protocol":"snmp","source":"sighup"`)
			})
		}},
		{name: "targets add", want: map[string]string{"r1": "dynamic", "r2": "dynamic"}, do: func(t *testing.T) {
			out, err := exec.Command(netfeatBin, "targets", "add", "r2", "127.0.0.1:2", server).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "r2: added snmp target (written to the targets file") {
				t.Fatalf("targets add: %v\n%s", err, out)
			}
			if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), "name: r2") {
				t.Fatalf("targets file without r2 (%v):\n%s", err, b)
			}
		}},
		{name: "targets add refuses a bad address", want: map[string]string{"r1": "dynamic", "r2": "dynamic"}, do: func(t *testing.T) {
			out, err := exec.Command(netfeatBin, "targets", "add", "r3", "127.0.0.1:99999", server).CombinedOutput()
			if err == nil || !strings.Contains(string(out), `snmp.address: bad port in "127.0.0.1:99999"`) {
				t.Fatalf("targets add: %v\n%s", err, out)
			}
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.do != nil {
				st.do(t)
			}
			resp, err := http.Get("http://" + httpAddr + "/v1/targets")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var list struct {
				Targets []struct{ Name, Origin string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, tg := range list.Targets {
				got[tg.Name] = tg.Origin
			}
			if fmt.Sprint(got) != fmt.Sprint(st.want) {
				t.Fatalf("targets %v, want %v", got, st.want)
			}
		})
	}
}
