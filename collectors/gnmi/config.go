package gnmi

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/schema"
)

// Config is the `gnmi:` section of the netfeat configuration.
type Config struct {
	// Targets are the devices to subscribe to.
	Targets []Target `yaml:"targets"`
	// RedialMin and RedialMax bound the jittered exponential backoff between
	// reconnect attempts. Defaults 1s and 60s.
	RedialMin time.Duration `yaml:"redial_min"`
	RedialMax time.Duration `yaml:"redial_max"`
	// Timeout bounds connecting and the Capabilities call. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// BatchSize is the most observations handed to the sink in one call.
	// Default 1024.
	BatchSize int `yaml:"batch_size"`
}

// Target is one gNMI target (a router) and how to subscribe to it.
type Target struct {
	// Name identifies the device in samples, metrics and logs. Required,
	// unique.
	Name string `yaml:"name"`
	// Address is host:port of the gNMI server (IOS-XR usually 57400, NX-OS
	// 50051, IOS-XE 9339).
	Address string `yaml:"address"`
	// Platform is iosxr, nxos or iosxe. It selects the shipped subscription
	// set when Subscriptions is empty.
	Platform string `yaml:"platform"`
	// Profile forces the normalizer's vendor profile for the device,
	// bypassing matching by origin (as the normalizer's inventory does).
	// The collector does not use it; the service checks the name and
	// hands it to the normalizer.
	Profile string `yaml:"profile"`
	// GNMITarget is put in the request prefix's target field. Most devices
	// ignore it; gNMI caches and proxies route on it.
	GNMITarget string `yaml:"gnmi_target"`
	// Insecure connects without TLS. It must be asked for explicitly:
	// without it the connection uses TLS.
	Insecure bool `yaml:"insecure"`
	// TLS configures the TLS client (server verification, client
	// certificate for mTLS).
	TLS TLSConfig `yaml:"tls"`
	// Username is sent with PasswordFile or PasswordEnv as gRPC metadata
	// ("username", "password"), as Cisco's gNMI servers expect.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// Mode is stream (default), once or poll. once and poll repeat every
	// PollInterval.
	Mode string `yaml:"mode"`
	// StreamMode is the default subscription mode in stream mode: sample
	// (default), on_change or target_defined.
	StreamMode string `yaml:"stream_mode"`
	// SampleInterval is the default sample interval. Default 10s.
	SampleInterval time.Duration `yaml:"sample_interval"`
	// HeartbeatInterval, when set, asks the target to resend unchanged
	// values (on_change) at least this often.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// SuppressRedundant asks a sampling target to send only changed values.
	SuppressRedundant bool `yaml:"suppress_redundant"`
	// UpdatesOnly skips the initial full state.
	UpdatesOnly bool `yaml:"updates_only"`
	// PollInterval paces once and poll modes. Default SampleInterval.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Encoding is json_ietf (default), json or proto.
	Encoding string `yaml:"encoding"`
	// Subscriptions replace the platform's set when not empty.
	Subscriptions []Subscription `yaml:"subscriptions"`
	// MaxUpdateRate caps the updates per second accepted from this target;
	// beyond it updates are dropped and counted (reason "rate_limited"). 0
	// means no cap.
	MaxUpdateRate float64 `yaml:"max_update_rate"`
}

// TLSConfig names the PEM files of a TLS client.
type TLSConfig struct {
	// CAFile verifies the server; empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate for mTLS.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name verified in the server certificate.
	ServerName string `yaml:"server_name"`
	// SkipVerify accepts any server certificate (lab use only).
	SkipVerify bool `yaml:"skip_verify"`
}

// Subscription is one path of a target's subscription list.
type Subscription struct {
	// Path is "origin:elem/elem[key=value]/...".
	Path string `yaml:"path"`
	// Mode overrides the target's StreamMode for this path.
	Mode string `yaml:"mode"`
	// SampleInterval overrides the target's SampleInterval.
	SampleInterval time.Duration `yaml:"sample_interval"`
	// HeartbeatInterval overrides the target's HeartbeatInterval.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// SuppressRedundant is or-ed with the target's SuppressRedundant.
	SuppressRedundant bool `yaml:"suppress_redundant"`
}

// Modes, stream modes and encodings accepted in the configuration.
const (
	ModeStream = "stream"
	ModeOnce   = "once"
	ModePoll   = "poll"

	StreamSample        = "sample"
	StreamOnChange      = "on_change"
	StreamTargetDefined = "target_defined"

	EncodingJSONIETF = "json_ietf"
	EncodingJSON     = "json"
	EncodingProto    = "proto"
)

// DefaultConfig returns the defaults applied to keys the file leaves out.
func DefaultConfig() Config {
	return Config{RedialMin: time.Second, RedialMax: time.Minute, Timeout: 10 * time.Second, BatchSize: 1024}
}

// withDefaults returns c with zero values replaced by DefaultConfig's, and
// each target's by DefaultTarget's.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.RedialMin == 0 {
		c.RedialMin = d.RedialMin
	}
	if c.RedialMax == 0 {
		c.RedialMax = d.RedialMax
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	ts := make([]Target, len(c.Targets))
	for i, t := range c.Targets {
		ts[i] = t.withDefaults()
	}
	c.Targets = ts
	return c
}

// DefaultTarget returns the defaults applied to the keys a target leaves
// out. PollInterval, when left out, is the target's SampleInterval.
func DefaultTarget() Target {
	return Target{Mode: ModeStream, StreamMode: StreamSample, SampleInterval: 10 * time.Second, Encoding: EncodingJSONIETF}
}

// withDefaults returns t with zero values replaced by DefaultTarget's.
func (t Target) withDefaults() Target {
	d := DefaultTarget()
	if t.Mode == "" {
		t.Mode = d.Mode
	}
	if t.StreamMode == "" {
		t.StreamMode = d.StreamMode
	}
	if t.SampleInterval == 0 {
		t.SampleInterval = d.SampleInterval
	}
	if t.PollInterval == 0 {
		t.PollInterval = t.SampleInterval
	}
	if t.Encoding == "" {
		t.Encoding = d.Encoding
	}
	return t
}

// Validate checks the section after defaults are applied and returns every
// problem as *schema.FieldError values joined; Field is relative to the
// `gnmi:` section ("targets[2].address").
func (c *Config) Validate() error {
	cfg := c.withDefaults()
	var errs []error
	if cfg.RedialMin <= 0 || cfg.RedialMax < cfg.RedialMin {
		errs = append(errs, schema.Errorf("redial_max", "must be at least redial_min (%v), got %v", cfg.RedialMin, cfg.RedialMax))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, schema.Errorf("timeout", "must be positive, got %v", cfg.Timeout))
	}
	if cfg.BatchSize < 0 {
		errs = append(errs, schema.Errorf("batch_size", "must be positive, got %d", cfg.BatchSize))
	}
	seen := map[string]int{}
	for i, t := range cfg.Targets {
		f := fmt.Sprintf("targets[%d].", i)
		if t.Name == "" {
			errs = append(errs, schema.Errorf(f+"name", "is required"))
		} else if j, dup := seen[t.Name]; dup {
			errs = append(errs, schema.Errorf(f+"name", "%q is already used by targets[%d]", t.Name, j))
		} else {
			seen[t.Name] = i
		}
		errs = append(errs, t.validate(f)...)
	}
	return errors.Join(errs...)
}

func (t *Target) validate(f string) []error {
	var errs []error
	if t.Address == "" {
		errs = append(errs, schema.Errorf(f+"address", "is required"))
	} else if _, port, err := net.SplitHostPort(t.Address); err != nil || port == "" {
		errs = append(errs, schema.Errorf(f+"address", "%q: want host:port", t.Address))
	}
	if t.Platform != "" && platformPaths[t.Platform] == nil {
		errs = append(errs, schema.Errorf(f+"platform", "must be one of %s, got %q", strings.Join(Platforms(), ", "), t.Platform))
	}
	if t.Platform == "" && len(t.Subscriptions) == 0 {
		errs = append(errs, schema.Errorf(f+"platform", "is required when subscriptions is empty"))
	}
	switch t.Mode {
	case ModeStream, ModeOnce, ModePoll:
	default:
		errs = append(errs, schema.Errorf(f+"mode", "must be stream, once or poll, got %q", t.Mode))
	}
	if !validStreamMode(t.StreamMode) {
		errs = append(errs, schema.Errorf(f+"stream_mode", "must be sample, on_change or target_defined, got %q", t.StreamMode))
	}
	switch t.Encoding {
	case EncodingJSONIETF, EncodingJSON, EncodingProto:
	default:
		errs = append(errs, schema.Errorf(f+"encoding", "must be json_ietf, json or proto, got %q", t.Encoding))
	}
	if t.SampleInterval < 0 {
		errs = append(errs, schema.Errorf(f+"sample_interval", "must not be negative, got %v", t.SampleInterval))
	}
	if t.PollInterval <= 0 {
		errs = append(errs, schema.Errorf(f+"poll_interval", "must be positive, got %v", t.PollInterval))
	}
	if t.HeartbeatInterval < 0 {
		errs = append(errs, schema.Errorf(f+"heartbeat_interval", "must not be negative, got %v", t.HeartbeatInterval))
	}
	if t.MaxUpdateRate < 0 {
		errs = append(errs, schema.Errorf(f+"max_update_rate", "must not be negative, got %v", t.MaxUpdateRate))
	}
	if t.Insecure && (t.TLS != TLSConfig{}) {
		errs = append(errs, schema.Errorf(f+"insecure", "insecure (no TLS) conflicts with the tls settings"))
	}
	if (t.TLS.CertFile == "") != (t.TLS.KeyFile == "") {
		errs = append(errs, schema.Errorf(f+"tls.cert_file", "cert_file and key_file go together"))
	}
	for k, p := range map[string]string{"tls.ca_file": t.TLS.CAFile, "tls.cert_file": t.TLS.CertFile, "tls.key_file": t.TLS.KeyFile, "password_file": t.PasswordFile} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			errs = append(errs, schema.Errorf(f+k, "%v", errors.Unwrap(err)))
		}
	}
	if t.PasswordFile != "" && t.PasswordEnv != "" {
		errs = append(errs, schema.Errorf(f+"password_file", "set password_file or password_env, not both"))
	}
	if (t.PasswordFile != "" || t.PasswordEnv != "") && t.Username == "" {
		errs = append(errs, schema.Errorf(f+"username", "is required with a password"))
	}
	if t.PasswordEnv != "" {
		if _, ok := os.LookupEnv(t.PasswordEnv); !ok {
			errs = append(errs, schema.Errorf(f+"password_env", "environment variable %s is not set", t.PasswordEnv))
		}
	}
	for j, s := range t.Subscriptions {
		sf := fmt.Sprintf("%ssubscriptions[%d].", f, j)
		if _, err := gnmipath.Parse(s.Path); err != nil {
			errs = append(errs, schema.Errorf(sf+"path", "%v", err))
		}
		if s.Mode != "" && !validStreamMode(s.Mode) {
			errs = append(errs, schema.Errorf(sf+"mode", "must be sample, on_change or target_defined, got %q", s.Mode))
		}
		if s.SampleInterval < 0 {
			errs = append(errs, schema.Errorf(sf+"sample_interval", "must not be negative, got %v", s.SampleInterval))
		}
	}
	return errs
}

func validStreamMode(m string) bool {
	return m == StreamSample || m == StreamOnChange || m == StreamTargetDefined
}

// password reads the target's password from its file or environment
// variable; empty when none is configured.
func (t *Target) password() (string, error) {
	switch {
	case t.PasswordFile != "":
		b, err := os.ReadFile(t.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("read password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case t.PasswordEnv != "":
		return os.Getenv(t.PasswordEnv), nil
	}
	return "", nil
}
