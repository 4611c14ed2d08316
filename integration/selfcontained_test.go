package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/testkit"
	"gopkg.in/yaml.v3"
)

// The binary is self-contained (issue #19): the example configuration
// runs from anywhere, the demo runs outside the source tree, and `config
// check` refuses what `serve` would.

// TestExampleConfigAnywhere copies examples/netfeat.yaml alone into an
// empty directory, checks it there, and serves it from another working
// directory: its model is built in and its relative paths resolve from
// the file's directory.
func TestExampleConfigAnywhere(t *testing.T) {
	example, err := os.ReadFile("../examples/netfeat.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Only the listen addresses change, so that the test runs on free
	// loopback ports.
	var doc map[string]any
	if err := yaml.Unmarshal(example, &doc); err != nil {
		t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	doc["http"].(map[string]any)["listen"] = httpAddr
	doc["nats"].(map[string]any)["listen"] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(t.TempDir(), "netfeat.yaml")
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	workDir := t.TempDir()

	check := exec.Command(netfeatBin, "config", "check", cfgPath)
	check.Dir = workDir
	if out, err := check.CombinedOutput(); err != nil || !strings.Contains(string(out), cfgPath+": OK") {
		t.Fatalf("config check of the copied example: %v\n%s", err, out)
	}

	logs := &testkit.SyncBuffer{}
	cmd := exec.Command(netfeatBin, "serve", "-c", cfgPath, "--log-format", "json")
	cmd.Dir = workDir
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	testkit.EventuallyWithin(t, 30*time.Second, "/readyz 200 from the copied example", func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if _, err := os.Stat(filepath.Join(workDir, "data")); err != nil {
		t.Errorf("data_dir ./data is not in the working directory: %v", err)
	}
}

// TestDemoOutsideSourceTree runs the demo from an empty directory: its
// recordings, scenarios and model are built in.
func TestDemoOutsideSourceTree(t *testing.T) {
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(netfeatBin, "demo", "--duration", "20s", "--http-listen", httpAddr,
		"--nats-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	cmd.Dir = t.TempDir()
	out, stderr := &testkit.SyncBuffer{}, &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("netfeat demo from an empty directory: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	for _, want := range []string{"nokia-7210", "ericsson-ml", "cisco-xr1", "== summary: ran 20"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// TestConfigCheckFiles checks `config check` finds, at their lines, the
// problems `serve` would otherwise meet at start.
func TestConfigCheckFiles(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeKeyPair(t, dir, "a")
	_, otherKey := writeKeyPair(t, dir, "b")
	if err := os.Mkdir(filepath.Join(dir, "token-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	gnmiTLS := func(cert, key string) string {
		return fmt.Sprintf("gnmi:\n  targets:\n    - name: r1\n      address: 127.0.0.1:57400\n      platform: iosxr\n      tls: {cert_file: %s, key_file: %s}\n", cert, key)
	}
	tests := []struct {
		name, config string
		want         string // "" = OK
	}{
		{"good key pair, relative paths", gnmiTLS(filepath.Base(cert), filepath.Base(key)), ""},
		{"missing model file", "inference:\n  models:\n    - {name: m, kind: xgboost, file: models/nope.json, threshold: 0.5, action: reroute}\n",
			":3: inference.models[0].file: open " + filepath.Join(dir, "models/nope.json") + ": no such file"},
		{"model file of the wrong kind", "inference:\n  models:\n    - {name: m, kind: lightgbm, file: builtin:congestion, threshold: 0.5, action: reroute}\n",
			":3: inference.models[0].file: "},
		{"key of another certificate", gnmiTLS(cert, otherKey), ":6: gnmi.targets[0].tls.cert_file: with " + otherKey + ": tls: private key does not match public key"},
		{"credential file not a file", "http:\n  token_file: token-dir\n", ":2: http.token_file: " + filepath.Join(dir, "token-dir") + " is a directory"},
		{"missing credential file", "http:\n  token_file: nope\n", ":2: http.token_file: "},
		{"bad listen address", "http:\n  listen: \"[::1:9464\"\n", `:2: http.listen: "[::1:9464": want host:port`},
		{"syntax error on line 2", "log:\n  level: [info\nhttp: {}\n", `:2: syntax error: did not find expected ',' or ']'`},
	}
	if os.Geteuid() != 0 { // root reads any file
		unreadable := filepath.Join(dir, "unreadable")
		if err := os.WriteFile(unreadable, []byte("x"), 0o000); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct{ name, config, want string }{"unreadable credential file",
			"http:\n  token_file: unreadable\n", ":2: http.token_file: open " + unreadable + ": permission denied"})
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("c%d.yaml", i))
			if err := os.WriteFile(path, []byte(tc.config), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(netfeatBin, "config", "check", path)
			cmd.Dir = t.TempDir() // relative paths must not depend on it
			out, err := cmd.CombinedOutput()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("config check: %v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(string(out), path+tc.want) {
				t.Fatalf("config check: %v\n%s\nwant a line with %q", err, out, path+tc.want)
			}
		})
	}
}

// writeKeyPair writes a self-signed certificate and its key as
// <name>-cert.pem and <name>-key.pem in dir.
func writeKeyPair(t *testing.T, dir, name string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, name+"-cert.pem"), filepath.Join(dir, name+"-key.pem")
	for path, block := range map[string]*pem.Block{cert: {Type: "CERTIFICATE", Bytes: der}, key: {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key
}
