package service

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/collectors/snmp"
	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/learning"
	"github.com/netfeat/netfeat/normalize"
	"github.com/netfeat/netfeat/schema"
)

// Config is the whole netfeat configuration: one YAML file, decoded
// strictly. docs/configuration.md documents every key; examples/netfeat.yaml
// shows them all with comments.
type Config struct {
	// DataDir holds the Badger stores and the embedded NATS server's
	// JetStream files.
	DataDir string `yaml:"data_dir"`
	// ShutdownTimeout bounds the drain on SIGINT/SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MemoryLimit is the Go runtime's soft memory limit
	// (runtime/debug.SetMemoryLimit), applied when the service starts; 0
	// leaves the runtime's own (GOMEMLIMIT, or none).
	MemoryLimit featurestore.ByteSize `yaml:"memory_limit"`
	Log         LogConfig             `yaml:"log"`
	HTTP        HTTPConfig            `yaml:"http"`
	NATS        NATSConfig            `yaml:"nats"`
	// Auth holds the bearer tokens of the HTTP, Flight SQL and NATS query
	// front ends (service/auth.go).
	Auth AuthConfig `yaml:"auth"`
	// Role is standalone (the default), edge or hub (docs/fleet.md);
	// Site names an edge. Fleet configures what an edge forwards and
	// how a hub keeps it (service/fleetconfig.go).
	Role  string      `yaml:"role"`
	Site  string      `yaml:"site"`
	Fleet FleetConfig `yaml:"fleet"`
	// Federated configures federated learning of one model across the
	// fleet (docs/learning.md): the rounds, and on an edge what it trains
	// on and where each new global goes (service/federated.go); nil: off.
	Federated *FederatedConfig `yaml:"federated"`

	// The pipeline stages' sections, each validated by its own package.
	Normalize normalize.Config     `yaml:"normalize"`
	SNMP      snmp.Config          `yaml:"snmp"`
	GNMI      gnmi.Config          `yaml:"gnmi"`
	Store     featurestore.Config  `yaml:"store"`
	Views     []schema.FeatureView `yaml:"views"`
	Inference inference.Config     `yaml:"inference"`
	// Learning configures drift monitoring and the retraining loop
	// (docs/learning.md).
	Learning learning.Config `yaml:"learning"`
	Query    QueryConfig     `yaml:"query"`
	// Cluster shares the targets among a site's nodes (service/cluster.go).
	Cluster ClusterConfig `yaml:"cluster"`
	// TargetsFile names a YAML file of more SNMP and gNMI targets
	// (snmp.targets and gnmi.targets, as here) that is watched: targets
	// are added, changed and removed while the service runs, and the
	// /v1/targets API writes its changes to it (service/targets.go).
	TargetsFile string `yaml:"targets_file"`
}

// LogConfig selects the log level and format.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// HTTPConfig configures the HTTP API (/healthz, /readyz, /metrics, and the
// APIs of later stages).
type HTTPConfig struct {
	// Listen is the address to serve on; loopback by default.
	Listen string `yaml:"listen"`
	// TokenFile / TokenEnv name where the optional bearer token for the
	// query and model APIs comes from.
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// ReadHeaderTimeout bounds reading a request's headers; ReadTimeout
	// the whole request, body included; IdleTimeout a keep-alive
	// connection waiting for its next request. A client that trickles
	// bytes is cut off at these, so it cannot hold a connection open.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// MaxConnections caps the connections open at once; over it, new
	// connections wait in the kernel's accept queue.
	MaxConnections int `yaml:"max_connections"`
	// TLS serves HTTPS when cert_file is set.
	TLS ServerTLSConfig `yaml:"tls"`
	// AllowUnauthenticated lets the API bind beyond loopback with no
	// token (logged as a warning at start).
	AllowUnauthenticated bool `yaml:"allow_unauthenticated"`
}

// Limits of the process and HTTP keys: beyond them a value is a mistake,
// not a sizing choice.
const (
	MinMemoryLimit    = 64 << 20
	MaxMemoryLimit    = 1 << 40
	MaxHTTPConns      = 65536
	MaxHTTPTimeout    = time.Hour
	DefaultHTTPConns  = 1024
	defaultHTTPHeader = 10 * time.Second
	defaultHTTPRead   = time.Minute
	defaultHTTPIdle   = 2 * time.Minute
)

// NATSConfig chooses between the embedded NATS server (the default) and an
// external server or cluster.
type NATSConfig struct {
	// URL of an external server or cluster ("nats://a:4222,nats://b:4222").
	// Empty means: run an embedded server.
	URL string `yaml:"url"`
	// Listen is the embedded server's client address.
	Listen string `yaml:"listen"`
	// JetStream enables JetStream on the embedded server (store under
	// DataDir/nats). Default true.
	JetStream *bool `yaml:"jetstream"`
	// CredentialsFile is a NATS .creds file for an external server.
	CredentialsFile string `yaml:"credentials_file"`
	// User and PasswordFile/PasswordEnv authenticate with user/password.
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// TokenFile/TokenEnv authenticate with a token.
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// TLS for the connection to an external server.
	TLS TLSConfig `yaml:"tls"`
	// ReconnectWait is the pause between reconnect attempts.
	ReconnectWait time.Duration `yaml:"reconnect_wait"`
	// ConnectTimeout bounds the first connection to an external server
	// (each server of the list, TCP and handshake).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ConnectRetries is how many times the first connection to an external
	// server is tried before the start fails (default 10); ConnectBackoff
	// is the longest wait between two tries (default 30s; the waits double
	// from 1s).
	ConnectRetries int           `yaml:"connect_retries"`
	ConnectBackoff time.Duration `yaml:"connect_backoff"`
	// Users of the embedded server, with their roles (service/auth.go).
	Users []NATSUserConfig `yaml:"users"`
	// ServerTLS makes the embedded server's clients use TLS.
	ServerTLS ServerTLSConfig `yaml:"server_tls"`
	// AllowUnauthenticated lets the embedded server bind beyond loopback
	// with no users (logged as a warning at start).
	AllowUnauthenticated bool `yaml:"allow_unauthenticated"`
	// Leaf makes the embedded server of an edge a leaf node of the hub.
	Leaf LeafConfig `yaml:"leaf"`
}

// TLSConfig names PEM files for a TLS client connection.
type TLSConfig struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// DefaultConfig returns the configuration used for keys the file leaves out.
func DefaultConfig() Config {
	js := true
	return Config{
		DataDir:         "./data",
		ShutdownTimeout: 30 * time.Second,
		Log:             LogConfig{Level: "info", Format: "text"},
		HTTP: HTTPConfig{Listen: "127.0.0.1:9464", ReadHeaderTimeout: defaultHTTPHeader, ReadTimeout: defaultHTTPRead,
			IdleTimeout: defaultHTTPIdle, MaxConnections: DefaultHTTPConns},
		NATS: NATSConfig{Listen: "127.0.0.1:4222", JetStream: &js, ReconnectWait: 2 * time.Second, ConnectTimeout: 5 * time.Second,
			ConnectRetries: 10, ConnectBackoff: 30 * time.Second},
		SNMP:      snmp.DefaultConfig(),
		GNMI:      gnmi.DefaultConfig(),
		Store:     featurestore.DefaultConfig(),
		Inference: inference.DefaultConfig(),
		Learning:  learning.DefaultConfig(),
		Query:     DefaultQueryConfig(),
		Role:      RoleStandalone,
		Fleet:     DefaultFleetConfig(),
	}
}

// Validate checks the configuration and returns every problem, as
// *schema.FieldError values joined.
func (c *Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, schema.Errorf("data_dir", "is required"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, schema.Errorf("shutdown_timeout", "must be positive, got %v", c.ShutdownTimeout))
	}
	if c.MemoryLimit != 0 && (c.MemoryLimit < MinMemoryLimit || c.MemoryLimit > MaxMemoryLimit) {
		errs = append(errs, schema.Errorf("memory_limit", "must be 0 (off) or between 64MiB and 1TiB, got %d bytes", c.MemoryLimit))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, schema.Errorf("log.level", "must be debug, info, warn or error, got %q", c.Log.Level))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, schema.Errorf("log.format", "must be text or json, got %q", c.Log.Format))
	}
	if c.HTTP.Listen == "" {
		errs = append(errs, schema.Errorf("http.listen", "is required"))
	} else if err := checkHostPort(c.HTTP.Listen); err != nil {
		errs = append(errs, schema.Errorf("http.listen", "%v", err))
	}
	if c.HTTP.TokenFile != "" && c.HTTP.TokenEnv != "" {
		errs = append(errs, schema.Errorf("http.token_file", "set token_file or token_env, not both"))
	}
	for key, d := range map[string]time.Duration{"http.read_header_timeout": c.HTTP.ReadHeaderTimeout,
		"http.read_timeout": c.HTTP.ReadTimeout, "http.idle_timeout": c.HTTP.IdleTimeout} {
		if d <= 0 || d > MaxHTTPTimeout {
			errs = append(errs, schema.Errorf(key, "must be positive and at most %v, got %v", MaxHTTPTimeout, d))
		}
	}
	if c.HTTP.MaxConnections < 1 || c.HTTP.MaxConnections > MaxHTTPConns {
		errs = append(errs, schema.Errorf("http.max_connections", "must be between 1 and %d, got %d", MaxHTTPConns, c.HTTP.MaxConnections))
	}
	errs = append(errs, c.NATS.validate()...)
	errs = append(errs, prefixErrors("normalize", c.Normalize.Validate())...)
	errs = append(errs, prefixErrors("snmp", c.SNMP.Validate())...)
	errs = append(errs, prefixErrors("gnmi", c.GNMI.Validate())...)
	errs = append(errs, prefixErrors("store", c.Store.Validate())...)
	errs = append(errs, prefixErrors("inference", c.Inference.Validate())...)
	errs = append(errs, prefixErrors("learning", c.Learning.Validate())...)
	errs = append(errs, prefixErrors("query", c.Query.Validate())...)
	for i, v := range c.Views {
		errs = append(errs, prefixErrors(fmt.Sprintf("views[%d]", i), v.Validate())...)
	}
	errs = append(errs, c.crossCheck()...)
	errs = append(errs, c.checkTargetProfiles(c.SNMP.Targets, c.GNMI.Targets)...)
	errs = append(errs, c.checkLearning()...)
	errs = append(errs, c.validateFleet()...)
	errs = append(errs, c.validateFederated()...)
	errs = append(errs, c.validateAuth()...)
	errs = append(errs, c.validateCluster()...)
	if c.TargetsFile != "" && c.Role == RoleHub {
		errs = append(errs, schema.Errorf("targets_file", "a hub polls no targets"))
	}
	return errors.Join(errs...)
}

// checkTargetProfiles refuses a target `profile` that neither the
// embedded profiles nor normalize.profiles_dir define; keys are
// snmp.targets[i].profile and gnmi.targets[i].profile. When the profiles
// do not load, normalize's own check says so and this one is silent.
func (c *Config) checkTargetProfiles(snmpTargets []snmp.Target, gnmiTargets []gnmi.Target) []error {
	var keyed [][2]string
	for i, t := range snmpTargets {
		if t.Profile != "" {
			keyed = append(keyed, [2]string{fmt.Sprintf("snmp.targets[%d].profile", i), t.Profile})
		}
	}
	for i, t := range gnmiTargets {
		if t.Profile != "" {
			keyed = append(keyed, [2]string{fmt.Sprintf("gnmi.targets[%d].profile", i), t.Profile})
		}
	}
	if len(keyed) == 0 {
		return nil
	}
	ps, err := normalize.LoadProfiles(c.Normalize.ProfilesDir)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(ps))
	for _, p := range ps {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	var errs []error
	for _, k := range keyed {
		if !slices.Contains(names, k[1]) {
			errs = append(errs, schema.Errorf(k[0], "%w %q (profiles: %s)", normalize.ErrUnknownProfile, k[1], strings.Join(names, ", ")))
		}
	}
	return errs
}

// crossCheck finds what no section can see alone: duplicate view names,
// and rules or models that name a view or feature that does not exist (a
// rule on a mistyped view would never fire).
func (c *Config) crossCheck() []error {
	var errs []error
	views := map[string]schema.FeatureView{}
	for i, v := range c.Views {
		if _, dup := views[v.Name]; dup {
			errs = append(errs, schema.Errorf(fmt.Sprintf("views[%d].name", i), "%q: another view has this name", v.Name))
		}
		views[v.Name] = v
	}
	hasFeature := func(v schema.FeatureView, f string) bool { return slices.Contains(v.FeatureNames(), f) }
	for i, r := range c.Inference.Rules {
		key := fmt.Sprintf("inference.rules[%d]", i)
		v, ok := views[r.View]
		switch {
		case r.View == "":
		case !ok:
			errs = append(errs, schema.Errorf(key+".view", "%q: no such view (views: %s)", r.View, viewNames(c.Views)))
		case r.Feature != "" && !hasFeature(v, r.Feature):
			errs = append(errs, schema.Errorf(key+".feature", "%q: view %s has no such feature (it has %s)", r.Feature, r.View, strings.Join(v.FeatureNames(), ", ")))
		}
	}
	for i, m := range c.Inference.Models {
		key := fmt.Sprintf("inference.models[%d]", i)
		v, ok := views[m.View]
		if m.View != "" && !ok {
			errs = append(errs, schema.Errorf(key+".view", "%q: no such view (views: %s)", m.View, viewNames(c.Views)))
			continue
		}
		for _, f := range m.Features {
			if ok && !hasFeature(v, f) {
				errs = append(errs, schema.Errorf(key+".features", "%q: view %s has no such feature", f, m.View))
			}
		}
	}
	return errs
}

func viewNames(vs []schema.FeatureView) string {
	if len(vs) == 0 {
		return "none configured"
	}
	names := make([]string, len(vs))
	for i, v := range vs {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}

// prefixErrors places a section's field errors under its key.
func prefixErrors(prefix string, err error) []error {
	if err == nil {
		return nil
	}
	var out []error
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var fe *schema.FieldError
		if errors.As(e, &fe) {
			f := prefix
			if fe.Field != "" {
				f = prefix + "." + fe.Field
			}
			out = append(out, &schema.FieldError{Field: f, Err: fe.Err})
			return
		}
		out = append(out, &schema.FieldError{Field: prefix, Err: e})
	}
	walk(err)
	return out
}

func (n *NATSConfig) validate() []error {
	var errs []error
	if n.URL == "" {
		if err := checkHostPort(n.Listen); err != nil {
			errs = append(errs, schema.Errorf("nats.listen", "%v", err))
		}
		for field, v := range map[string]string{
			"nats.credentials_file": n.CredentialsFile, "nats.user": n.User, "nats.token_file": n.TokenFile,
			"nats.token_env": n.TokenEnv, "nats.tls.ca_file": n.TLS.CAFile, "nats.tls.cert_file": n.TLS.CertFile,
		} {
			if v != "" {
				errs = append(errs, schema.Errorf(field, "only applies to an external server (set nats.url)"))
			}
		}
	} else {
		for _, u := range strings.Split(n.URL, ",") {
			u = strings.TrimSpace(u)
			if !strings.HasPrefix(u, "nats://") && !strings.HasPrefix(u, "tls://") && !strings.HasPrefix(u, "ws://") && !strings.HasPrefix(u, "wss://") {
				errs = append(errs, schema.Errorf("nats.url", "%q: must start with nats://, tls://, ws:// or wss://", u))
			}
		}
		if n.PasswordFile != "" && n.User == "" || n.PasswordEnv != "" && n.User == "" {
			errs = append(errs, schema.Errorf("nats.user", "is required with a password"))
		}
		if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
			errs = append(errs, schema.Errorf("nats.tls.cert_file", "cert_file and key_file go together"))
		}
		for field, p := range map[string]string{
			"nats.credentials_file": n.CredentialsFile, "nats.password_file": n.PasswordFile, "nats.token_file": n.TokenFile,
			"nats.tls.ca_file": n.TLS.CAFile, "nats.tls.cert_file": n.TLS.CertFile, "nats.tls.key_file": n.TLS.KeyFile,
		} {
			if p == "" {
				continue
			}
			if _, err := os.Stat(p); err != nil {
				errs = append(errs, schema.Errorf(field, "%v", errors.Unwrap(err)))
			}
		}
	}
	if n.ConnectTimeout <= 0 || n.ConnectTimeout > 5*time.Minute {
		errs = append(errs, schema.Errorf("nats.connect_timeout", "must be positive and at most 5m, got %v", n.ConnectTimeout))
	}
	if n.ConnectRetries < 1 || n.ConnectRetries > 1000 {
		errs = append(errs, schema.Errorf("nats.connect_retries", "must be 1–1000, got %d", n.ConnectRetries))
	}
	if n.ConnectBackoff < time.Second || n.ConnectBackoff > 10*time.Minute {
		errs = append(errs, schema.Errorf("nats.connect_backoff", "must be 1s–10m, got %v", n.ConnectBackoff))
	}
	if n.ReconnectWait <= 0 {
		errs = append(errs, schema.Errorf("nats.reconnect_wait", "must be positive, got %v", n.ReconnectWait))
	}
	return errs
}

// ConfigError is one problem in a configuration file, located by line and
// key.
type ConfigError struct {
	File string
	Line int    // 0 when the key is absent from the file
	Key  string // dotted key path, e.g. "snmp.targets[1].interval"
	Msg  string
}

// Error renders "file:line: key: message".
func (e ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ConfigErrors is every problem found in one configuration file.
type ConfigErrors []ConfigError

// Error lists the problems, one per line.
func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// LoadConfig reads, strictly decodes and validates a configuration file.
// On failure the error is a ConfigErrors listing every problem with its file,
// line and key.
//
// Relative paths in the file (model files, *_file secrets, certificates,
// data_dir, profiles_dir, targets_file) are resolved from the file's
// directory, and the files are checked as the service would check them at
// start (CheckFiles): `serve` and `config check` both load through here.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return parseConfig(path, dir, data)
}

var (
	unknownFieldRE = regexp.MustCompile(`^line (\d+): field (\S+) not found in type (\S+)$`)
	typeErrorRE    = regexp.MustCompile(`^line (\d+): (.*)$`)
)

// ParseConfig decodes and validates configuration bytes; name is the file
// name used in messages. Relative paths stay relative to the working
// directory and the files they name are not checked: LoadConfig does both.
func ParseConfig(name string, data []byte) (*Config, error) {
	return parseConfig(name, "", data)
}

// parseConfig is ParseConfig, and with a dir, LoadConfig's path
// resolution and file checks.
func parseConfig(name, dir string, data []byte) (*Config, error) {
	cfg := DefaultConfig()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := syntaxLineRE.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "")
		return nil, ConfigErrors{{File: name, Line: yamlSyntaxLine(err, data), Msg: "syntax error: " + msg}}
	}
	keys := indexKeys(&root)
	var problems ConfigErrors
	// Values whose own unmarshaler refuses them ("-1" as a size) would
	// abort the decode unlocated; report each at its line and key, and
	// decode the rest with them blanked.
	bad := checkScalars(&root, reflect.TypeFor[Config](), "")
	badKeys := map[string]bool{}
	for _, b := range bad {
		problems = append(problems, ConfigError{File: name, Line: b.node.Line, Key: b.key, Msg: b.err.Error()})
		badKeys[b.key] = true
	}
	if len(bad) > 0 {
		if blanked, ok := blankScalars(data, bad); ok {
			data = blanked
		}
	}
	if len(root.Content) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil {
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				if len(problems) > 0 { // already located; the decode could not go past them
					return nil, problems
				}
				return nil, ConfigErrors{{File: name, Msg: err.Error()}}
			}
			for _, msg := range te.Errors {
				problems = append(problems, typeProblem(name, msg, keys))
			}
		}
	}
	if dir != "" {
		cfg.resolvePaths(dir)
	}
	if err := cfg.Validate(); err != nil {
		for _, p := range fieldProblems(name, err, keys) {
			if !badKeys[p.Key] { // the blanked value's own complaint says more
				problems = append(problems, p)
			}
		}
	}
	if fileErrs := cfg.checkFilesIn(dir); len(fileErrs) > 0 {
		reported := map[string]bool{}
		for _, p := range problems {
			reported[p.Key] = true
		}
		for _, p := range fieldProblems(name, errors.Join(fileErrs...), keys) {
			if !reported[p.Key] { // a key with a problem already (a missing file) needs no second
				problems = append(problems, p)
			}
		}
	}
	if len(problems) > 0 {
		sort.SliceStable(problems, func(i, j int) bool { return problems[i].Line < problems[j].Line })
		return nil, problems
	}
	// The targets file's problems are its own, at its lines.
	if dir != "" && cfg.TargetsFile != "" {
		if static, err := cfg.staticTargets(); err == nil {
			if data, err := os.ReadFile(cfg.TargetsFile); err == nil {
				// Named as the configuration's own name places it.
				shown := cfg.TargetsFile
				if rel, err := filepath.Rel(dir, shown); err == nil && !strings.HasPrefix(rel, "..") {
					shown = filepath.Join(filepath.Dir(name), rel)
				}
				if _, tp := cfg.parseTargets(shown, filepath.Dir(cfg.TargetsFile), data, static); len(tp) > 0 {
					return nil, tp
				}
			} else if !errors.Is(err, os.ErrNotExist) {
				return nil, ConfigErrors{{File: name, Line: keys.lineOf("targets_file"), Key: "targets_file", Msg: err.Error()}}
			}
		}
	}
	return &cfg, nil
}

func typeProblem(file, msg string, keys keyIndex) ConfigError {
	if m := unknownFieldRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		key := keys.keyAt(line, m[2])
		return ConfigError{File: file, Line: line, Key: key, Msg: fmt.Sprintf("unknown key %q", m[2])}
	}
	if m := typeErrorRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return ConfigError{File: file, Line: line, Key: keys.valueAt(line), Msg: humanTypeError(m[2])}
	}
	return ConfigError{File: file, Msg: msg}
}

var cannotRE = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")

func humanTypeError(msg string) string {
	m := cannotRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	want := m[3]
	switch {
	case want == "time.Duration" && m[2] != "":
		return fmt.Sprintf("%q is not a duration (use a number with a unit: 500ms, 10s, 5m, 1h)", m[2])
	case want == "time.Duration":
		want = "a duration"
	case strings.HasPrefix(want, "[]"):
		want = "a list"
	case strings.HasPrefix(want, "map[") || strings.Contains(want, "."):
		want = "a mapping"
	case want == "bool" || strings.HasSuffix(want, "*bool"):
		want = "true or false"
	case strings.HasPrefix(want, "int") || strings.HasPrefix(want, "uint"):
		want = "an integer"
	case strings.HasPrefix(want, "float"):
		want = "a number"
	}
	if m[2] == "" {
		return fmt.Sprintf("a %s where %s is expected", yamlKind(m[1]), want)
	}
	return fmt.Sprintf("%s %q where %s is expected", yamlKind(m[1]), m[2], want)
}

func yamlKind(tag string) string {
	switch tag {
	case "str":
		return "string"
	case "seq":
		return "list"
	case "map":
		return "mapping"
	}
	return tag
}

func fieldProblems(file string, err error, keys keyIndex) ConfigErrors {
	var out ConfigErrors
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *schema.FieldError
		if errors.As(err, &fe) {
			out = append(out, ConfigError{File: file, Line: keys.lineOf(fe.Field), Key: fe.Field, Msg: fe.Err.Error()})
			return
		}
		out = append(out, ConfigError{File: file, Msg: err.Error()})
	}
	walk(err)
	return out
}

var syntaxLineRE = regexp.MustCompile(`line (\d+): `)

// yamlParserProblems are the messages of yaml.v3's parser, as opposed to
// its scanner. For them yaml.v3 reports the 0-based line of the construct
// being parsed (decode.go, (*parser).fail adds 1 for scanner errors only),
// or no line at all on the first line: an error on line 2 said "line 1".
var yamlParserProblems = []string{
	"did not find expected <stream-start>", "did not find expected <document start>",
	"found undefined tag handle", "did not find expected node content",
	"did not find expected '-' indicator", "did not find expected key",
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"found duplicate %YAML directive", "found incompatible YAML document", "found duplicate %TAG directive",
}

// yamlSyntaxLine returns the 1-based line of a yaml.v3 syntax error in
// data, 0 when it has none. An error at the end of the input (an
// unclosed "[") is placed on the last line, not the empty one after it.
func yamlSyntaxLine(err error, data []byte) int {
	msg := err.Error()
	n := 0
	if m := syntaxLineRE.FindStringSubmatch(msg); m != nil {
		n, _ = strconv.Atoi(m[1])
	}
	for _, p := range yamlParserProblems {
		if strings.HasSuffix(msg, p) {
			n++
			break
		}
	}
	last := bytes.Count(data, []byte("\n"))
	if len(data) > 0 && data[len(data)-1] != '\n' {
		last++
	}
	return min(n, max(last, 1))
}

// keyIndex maps dotted key paths to the line of their key in the file, and
// lines to the keys on them.
type keyIndex struct {
	line   map[string]int   // path → line of its key (or list item)
	byLine map[int][]string // line → paths whose key or value starts there
}

func indexKeys(root *yaml.Node) keyIndex {
	ki := keyIndex{line: map[string]int{}, byLine: map[int][]string{}}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				ki.line[p] = k.Line
				ki.byLine[k.Line] = append(ki.byLine[k.Line], p)
				if v.Line != k.Line {
					ki.byLine[v.Line] = append(ki.byLine[v.Line], p)
				}
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				ki.line[p] = c.Line
				ki.byLine[c.Line] = append(ki.byLine[c.Line], p)
				walk(c, p)
			}
		}
	}
	walk(root, "")
	return ki
}

// lineOf finds the line of a key path, falling back to its nearest parent
// present in the file (a missing required key is reported at its section).
func (ki keyIndex) lineOf(path string) int {
	for p := path; p != ""; {
		if l, ok := ki.line[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// keyAt returns the full path of the key named name on line.
func (ki keyIndex) keyAt(line int, name string) string {
	for _, p := range ki.byLine[line] {
		if p == name || strings.HasSuffix(p, "."+name) {
			return p
		}
	}
	return name
}

// valueAt returns the key whose value starts on line: the mapping key
// written on that line, else the deepest path there.
func (ki keyIndex) valueAt(line int) string {
	best := ""
	for _, p := range ki.byLine[line] {
		if ki.line[p] == line && !strings.HasSuffix(p, "]") {
			if best == "" || strings.HasSuffix(best, "]") || len(p) > len(best) {
				best = p
			}
			continue
		}
		if best == "" {
			best = p
		}
	}
	return best
}
