// Package integration holds black-box tests of the built netfeat binary and
// of our collectors and simulators against peers we did not write (net-snmp,
// snmpsim, openconfig's gNMI fake target and client, NATS). Every peer runs
// on loopback, started by the test.
package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// netfeatBin is the binary built once by TestMain for the tests that run it
// as a separate process.
var netfeatBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "netfeat-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	netfeatBin = filepath.Join(dir, "netfeat")
	build := exec.Command("go", "build", "-tags", "duckdb_arrow", "-o", netfeatBin, "../cmd/netfeat")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build netfeat:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
