package service

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/netfeat/netfeat/collectors/snmp"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/schema"
)

// resolvePaths makes every relative path in the configuration relative to
// dir, the configuration file's directory (as Prometheus does for rule
// files), so that a configuration means the same from any working
// directory. Absolute paths and builtin models are left alone, and so is
// data_dir: it is where the process keeps its state, not a file the
// configuration refers to, and stays relative to the working directory
// (the image runs in /var/lib/netfeat with its configuration in the
// read-only /etc/netfeat).
func (c *Config) resolvePaths(dir string) {
	for _, p := range c.pathKeys() {
		if p.kind == "state" || *p.path == "" || filepath.IsAbs(*p.path) || strings.HasPrefix(*p.path, inference.BuiltinPrefix) {
			continue
		}
		*p.path = filepath.Join(dir, *p.path)
	}
}

// pathKey is a key whose value is a file or directory name.
type pathKey struct {
	key  string
	path *string
	// kind says what CheckFiles checks: "file" (readable), "scenarios"
	// (a directory), "dir",
	// "targets" and "state" (none: created at start; "state" is not
	// resolved), "cert"/"key" (a pair, checked together), "ca"
	// or "model" (loads as model would).
	kind  string
	model *inference.ModelConfig
}

// pathKeys lists every path in the configuration, with its key.
func (c *Config) pathKeys() []pathKey {
	ks := []pathKey{
		{key: "data_dir", path: &c.DataDir, kind: "state"},
		{key: "normalize.profiles_dir", path: &c.Normalize.ProfilesDir, kind: "dir"},
		{key: "http.token_file", path: &c.HTTP.TokenFile, kind: "file"},
		{key: "nats.credentials_file", path: &c.NATS.CredentialsFile, kind: "file"},
		{key: "nats.password_file", path: &c.NATS.PasswordFile, kind: "file"},
		{key: "nats.token_file", path: &c.NATS.TokenFile, kind: "file"},
		{key: "nats.tls.ca_file", path: &c.NATS.TLS.CAFile, kind: "ca"},
		{key: "nats.tls.cert_file", path: &c.NATS.TLS.CertFile, kind: "cert"},
		{key: "nats.tls.key_file", path: &c.NATS.TLS.KeyFile, kind: "key"},
		{key: "snmp.targets_file", path: &c.SNMP.TargetsFile, kind: "file"},
		// May not exist yet: the targets API creates it.
		{key: "targets_file", path: &c.TargetsFile, kind: "targets"},
	}
	for i := range c.NATS.Leaf.Remotes {
		r := &c.NATS.Leaf.Remotes[i]
		key := fmt.Sprintf("nats.leaf.remotes[%d]", i)
		ks = append(ks, pathKey{key: key + ".credentials_file", path: &r.CredentialsFile, kind: "file"},
			pathKey{key: key + ".tls.ca_file", path: &r.TLS.CAFile, kind: "ca"},
			pathKey{key: key + ".tls.cert_file", path: &r.TLS.CertFile, kind: "cert"},
			pathKey{key: key + ".tls.key_file", path: &r.TLS.KeyFile, kind: "key"})
	}
	params := func(key string, p *snmp.Params) {
		ks = append(ks, pathKey{key: key + ".community_file", path: &p.CommunityFile, kind: "file"})
		if p.V3 != nil {
			ks = append(ks, pathKey{key: key + ".v3.auth_password_file", path: &p.V3.AuthPasswordFile, kind: "file"},
				pathKey{key: key + ".v3.priv_password_file", path: &p.V3.PrivPasswordFile, kind: "file"})
		}
	}
	params("snmp.defaults", &c.SNMP.Defaults)
	for i := range c.SNMP.Targets {
		params(fmt.Sprintf("snmp.targets[%d]", i), &c.SNMP.Targets[i].Params)
	}
	for i := range c.SNMP.TrapUsers {
		u := &c.SNMP.TrapUsers[i]
		key := fmt.Sprintf("snmp.trap_users[%d]", i)
		ks = append(ks, pathKey{key: key + ".auth_password_file", path: &u.AuthPasswordFile, kind: "file"},
			pathKey{key: key + ".priv_password_file", path: &u.PrivPasswordFile, kind: "file"})
	}
	for i := range c.GNMI.Targets {
		t := &c.GNMI.Targets[i]
		key := fmt.Sprintf("gnmi.targets[%d]", i)
		ks = append(ks, pathKey{key: key + ".password_file", path: &t.PasswordFile, kind: "file"},
			pathKey{key: key + ".tls.ca_file", path: &t.TLS.CAFile, kind: "ca"},
			pathKey{key: key + ".tls.cert_file", path: &t.TLS.CertFile, kind: "cert"},
			pathKey{key: key + ".tls.key_file", path: &t.TLS.KeyFile, kind: "key"})
	}
	if t := c.Learning.Gate.Twin; t != nil {
		ks = append(ks, pathKey{key: "learning.gate.twin.scenarios", path: &t.Scenarios, kind: "scenarios"})
	}
	for i := range c.Inference.Models {
		m := &c.Inference.Models[i]
		ks = append(ks, pathKey{fmt.Sprintf("inference.models[%d].file", i), &m.File, "model", m})
	}
	return ks
}

// CheckFiles checks what the service would otherwise find only when it
// starts: model files load and validate, certificate and key files parse
// and match, CA files hold certificates, credential files are readable,
// (Validate checks the listen addresses). LoadConfig runs it, so `serve` and
// `config check` refuse the same files. Problems are *schema.FieldError
// values joined.
func (c *Config) CheckFiles() []error {
	var errs []error
	keys := c.pathKeys()
	for i, k := range keys {
		p := *k.path
		if p == "" {
			continue
		}
		switch k.kind {
		case "file":
			if err := readable(p); err != nil {
				errs = append(errs, schema.Errorf(k.key, "%v", err))
			}
		case "ca":
			pem, err := os.ReadFile(p)
			if err == nil && !x509.NewCertPool().AppendCertsFromPEM(pem) {
				err = fmt.Errorf("%s: no PEM certificates", p)
			}
			if err != nil {
				errs = append(errs, schema.Errorf(k.key, "%v", err))
			}
		case "cert":
			// The key follows its certificate in pathKeys.
			if i+1 < len(keys) && keys[i+1].kind == "key" && *keys[i+1].path != "" {
				if _, err := tls.LoadX509KeyPair(p, *keys[i+1].path); err != nil {
					errs = append(errs, schema.Errorf(k.key, "with %s: %v", *keys[i+1].path, err))
				}
			}
		case "scenarios":
			// netfeat serve and config check also parse each device's
			// scenario in it (cmd/netfeat knows the devices).
			st, err := os.Stat(p)
			if err == nil && !st.IsDir() {
				err = fmt.Errorf("%s is not a directory", p)
			}
			if err != nil {
				errs = append(errs, schema.Errorf(k.key, "%v", err))
			}
		case "model":
			m := k.model
			if err := inference.CheckModelFile(m.Kind, p, m.Features, m.Optional); err != nil {
				errs = append(errs, schema.Errorf(k.key, "%v", err))
			}
		}
	}
	return errs
}

// checkFilesIn runs CheckFiles for a configuration read from a file in
// dir; ParseConfig (dir "") checks no files.
func (c *Config) checkFilesIn(dir string) []error {
	if dir == "" {
		return nil
	}
	return c.CheckFiles()
}

// readable opens and closes a file, so that a file the service may not
// read is found before it starts.
func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	return nil
}

// checkHostPort accepts what net.Listen does: host:port, with a port
// number from 0 to 65535 (the host may be empty, an address or a name).
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: bad port", addr)
	}
	return nil
}
