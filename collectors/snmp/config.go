package snmp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gosnmp/gosnmp"
	"gopkg.in/yaml.v3"

	"github.com/netfeat/netfeat/collectors/snmp/snmpwire"
	"github.com/netfeat/netfeat/schema"
)

// Config is the `snmp:` section of the service configuration.
type Config struct {
	// Defaults apply to every target that leaves a setting out.
	Defaults Params `yaml:"defaults"`
	// Targets are the devices to poll.
	Targets []Target `yaml:"targets"`
	// TargetsFile names a YAML file with more targets, as a document
	// `targets: [...]` in the same format as Targets.
	TargetsFile string `yaml:"targets_file"`
	// MaxConcurrency bounds how many devices are polled at once.
	MaxConcurrency int `yaml:"max_concurrency"`
	// MaxTableRows bounds the rows of one table column in one poll; a
	// device whose table is longer (or never ends) fails its poll.
	MaxTableRows int `yaml:"max_table_rows"`
	// MaxValueSize bounds one polled string value (OCTET STRING, Opaque);
	// a longer value is dropped from the poll and counted. 0 means
	// DefaultMaxValueSize.
	MaxValueSize int `yaml:"max_value_size"`
	// MaxPollBytes bounds the bytes of string values and OIDs one poll of
	// one device may hold; a poll that needs more fails. 0 means
	// DefaultMaxPollBytes.
	MaxPollBytes int `yaml:"max_poll_bytes"`
	// MaxBackoff caps the delay between polls of an unreachable device.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// TrapListen is the UDP address of the trap and inform receiver;
	// empty disables it.
	TrapListen string `yaml:"trap_listen"`
	// TrapCommunities are the v1/v2c communities traps are accepted with;
	// empty means the default community.
	TrapCommunities []string `yaml:"trap_communities"`
	// TrapUsers are the v3 users traps and informs are accepted from.
	TrapUsers []V3 `yaml:"trap_users"`
	// TrapEngineID is the receiver's snmpEngineID in hex (for v3
	// informs); default: derived from the listen address.
	TrapEngineID string `yaml:"trap_engine_id"`
	// TrapSources are more addresses (CIDR prefixes or single IPs) traps
	// are accepted from, besides the targets' addresses.
	TrapSources []string `yaml:"trap_sources"`
	// TrapAcceptAny accepts traps from every address. Traps from
	// addresses that are not targets are then counted as source "other".
	TrapAcceptAny bool `yaml:"trap_accept_any"`
	// TrapRateLimit is the traps per second accepted from one source
	// address, on average; more are shed. 0 means DefaultTrapRateLimit.
	TrapRateLimit float64 `yaml:"trap_rate_limit"`
	// TrapBurst is how many traps one source may send at once above
	// TrapRateLimit. 0 means DefaultTrapBurst.
	TrapBurst int `yaml:"trap_burst"`
	// TrapQueueSize bounds the notifications decoded but not yet handed
	// to the sink; when full, traps are shed. 0 means DefaultTrapQueueSize.
	TrapQueueSize int `yaml:"trap_queue_size"`
	// TrapReadBuffer is the socket receive buffer (SO_RCVBUF) in bytes,
	// which absorbs bursts while the receiver is busy. 0 means
	// DefaultTrapReadBuffer.
	TrapReadBuffer int `yaml:"trap_read_buffer"`
}

// Params are the per-device polling settings. In Defaults and in each
// Target; a Target's non-zero values override the defaults.
type Params struct {
	// Version is "2c" or "3".
	Version string `yaml:"version"`
	// Community is the v2c community, inline or from CommunityFile or
	// CommunityEnv.
	Community     string `yaml:"community"`
	CommunityFile string `yaml:"community_file"`
	CommunityEnv  string `yaml:"community_env"`
	// V3 is the USM user for version 3.
	V3 *V3 `yaml:"v3"`
	// Interval between polls.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one request.
	Timeout time.Duration `yaml:"timeout"`
	// Retries of one request after its timeout.
	Retries *int `yaml:"retries"`
	// MaxRepetitions of each GETBULK.
	MaxRepetitions int `yaml:"max_repetitions"`
}

// V3 is an SNMPv3 USM user. Passphrases come from files or environment
// variables, never from the configuration file itself.
type V3 struct {
	User string `yaml:"user"`
	// AuthProtocol is MD5, SHA, SHA224, SHA256, SHA384 or SHA512; empty
	// for noAuthNoPriv.
	AuthProtocol     string `yaml:"auth_protocol"`
	AuthPasswordFile string `yaml:"auth_password_file"`
	AuthPasswordEnv  string `yaml:"auth_password_env"`
	// PrivProtocol is DES, AES, AES192, AES256, AES192C or AES256C; empty
	// for authNoPriv.
	PrivProtocol     string `yaml:"priv_protocol"`
	PrivPasswordFile string `yaml:"priv_password_file"`
	PrivPasswordEnv  string `yaml:"priv_password_env"`
	// ContextName is the SNMPv3 context to poll (usually empty).
	ContextName string `yaml:"context_name"`
}

// Target is one device to poll.
type Target struct {
	// Name identifies the device everywhere (observations, metrics, the
	// devices table); default: Address.
	Name string `yaml:"name"`
	// Address is host or host:port (default port 161).
	Address string `yaml:"address"`
	// Profile forces the normalizer's vendor profile for the device,
	// bypassing sysObjectID/sysDescr matching (as the normalizer's
	// inventory does). The poller does not use it; the service checks
	// the name and hands it to the normalizer.
	Profile string `yaml:"profile"`
	Params  `yaml:",inline"`
}

// Built-in defaults for settings neither the target nor Defaults give.
const (
	DefaultInterval       = 60 * time.Second
	DefaultTimeout        = 5 * time.Second
	DefaultRetries        = 1
	DefaultMaxRepetitions = 25
	DefaultMaxConcurrency = 64
	DefaultMaxTableRows   = 100_000
	DefaultMaxBackoff     = 10 * time.Minute
	DefaultMaxValueSize   = 4096     // bytes; DisplayString is at most 255
	DefaultMaxPollBytes   = 16 << 20 // bytes

	maxMaxConcurrency = 4096
	maxMaxTableRows   = 1_000_000
	maxMaxValueSize   = 65535   // no UDP datagram carries more
	maxMaxPollBytes   = 1 << 30 // bytes

	DefaultTrapRateLimit  = 200     // traps/s per source
	DefaultTrapBurst      = 1000    // traps
	DefaultTrapQueueSize  = 4096    // notifications
	DefaultTrapReadBuffer = 4 << 20 // bytes

	maxTrapRateLimit  = 1_000_000
	maxTrapBurst      = 1_000_000
	maxTrapQueueSize  = 1_000_000
	maxTrapReadBuffer = 1 << 30
)

// DefaultConfig returns the configuration used for keys the file leaves out.
func DefaultConfig() Config {
	r := DefaultRetries
	return Config{
		Defaults: Params{Version: "2c", Community: "public", Interval: DefaultInterval,
			Timeout: DefaultTimeout, Retries: &r, MaxRepetitions: DefaultMaxRepetitions},
		MaxConcurrency: DefaultMaxConcurrency,
		MaxTableRows:   DefaultMaxTableRows,
		MaxBackoff:     DefaultMaxBackoff,
		MaxValueSize:   DefaultMaxValueSize,
		MaxPollBytes:   DefaultMaxPollBytes,
	}
}

// Validate checks the configuration, including the targets file and that
// every secret can be read, and returns every problem as *schema.FieldError
// values joined. Field paths are relative to the `snmp:` section.
func (c *Config) Validate() error {
	_, err := c.resolve()
	return err
}

// target is a Target with every setting resolved and secrets loaded.
type target struct {
	name      string
	address   string // host:port
	host      string
	port      uint16
	version   gosnmp.SnmpVersion
	community string
	v3        *usm
	interval  time.Duration
	timeout   time.Duration
	retries   int
	maxRep    uint32
}

// usm is a resolved V3 user.
type usm struct {
	user     string
	auth     gosnmp.SnmpV3AuthProtocol
	authPass string
	priv     gosnmp.SnmpV3PrivProtocol
	privPass string
	context  string
	level    gosnmp.SnmpV3MsgFlags
}

// resolve merges defaults into targets, reads the targets file and the
// secrets, and validates everything.
func (c *Config) resolve() ([]target, error) {
	var errs []error
	add := func(e error) { errs = append(errs, e) }
	if c.MaxConcurrency < 0 || c.MaxConcurrency > maxMaxConcurrency {
		add(schema.Errorf("max_concurrency", "must be 0 to %d, got %d", maxMaxConcurrency, c.MaxConcurrency))
	}
	if c.MaxTableRows < 0 || c.MaxTableRows > maxMaxTableRows {
		add(schema.Errorf("max_table_rows", "must be 0 to %d, got %d", maxMaxTableRows, c.MaxTableRows))
	}
	if c.MaxValueSize < 0 || c.MaxValueSize > maxMaxValueSize {
		add(schema.Errorf("max_value_size", "must be 0 to %d bytes, got %d", maxMaxValueSize, c.MaxValueSize))
	}
	if c.MaxPollBytes < 0 || c.MaxPollBytes > maxMaxPollBytes {
		add(schema.Errorf("max_poll_bytes", "must be 0 to %d bytes (1GiB), got %d", maxMaxPollBytes, c.MaxPollBytes))
	}
	if c.MaxBackoff < 0 {
		add(schema.Errorf("max_backoff", "must not be negative, got %v", c.MaxBackoff))
	}
	if c.TrapListen != "" {
		if _, _, err := net.SplitHostPort(c.TrapListen); err != nil {
			add(schema.Errorf("trap_listen", "want host:port: %v", err))
		}
	}
	if c.TrapEngineID != "" {
		if b, err := hexBytes(c.TrapEngineID); err != nil || len(b) < 5 || len(b) > 32 {
			add(schema.Errorf("trap_engine_id", "want 5 to 32 bytes in hex, got %q", c.TrapEngineID))
		}
	}
	if _, err := parseTrapSources(c.TrapSources); err != nil {
		add(err)
	}
	if c.TrapRateLimit < 0 || c.TrapRateLimit > maxTrapRateLimit || c.TrapRateLimit != c.TrapRateLimit {
		add(schema.Errorf("trap_rate_limit", "must be 0 to %d traps/s, got %v", maxTrapRateLimit, c.TrapRateLimit))
	}
	if c.TrapBurst < 0 || c.TrapBurst > maxTrapBurst {
		add(schema.Errorf("trap_burst", "must be 0 to %d, got %d", maxTrapBurst, c.TrapBurst))
	}
	if c.TrapQueueSize < 0 || c.TrapQueueSize > maxTrapQueueSize {
		add(schema.Errorf("trap_queue_size", "must be 0 to %d, got %d", maxTrapQueueSize, c.TrapQueueSize))
	}
	if c.TrapReadBuffer < 0 || c.TrapReadBuffer > maxTrapReadBuffer {
		add(schema.Errorf("trap_read_buffer", "must be 0 to %d bytes, got %d", maxTrapReadBuffer, c.TrapReadBuffer))
	}
	for i, u := range c.TrapUsers {
		if _, err := u.resolve(fmt.Sprintf("trap_users[%d]", i)); err != nil {
			add(err)
		}
	}
	targets := make([]Target, 0, len(c.Targets))
	fields := make([]string, 0, len(c.Targets))
	for i, t := range c.Targets {
		targets = append(targets, t)
		fields = append(fields, fmt.Sprintf("targets[%d]", i))
	}
	if c.TargetsFile != "" {
		more, err := readTargetsFile(c.TargetsFile)
		if err != nil {
			add(&schema.FieldError{Field: "targets_file", Err: err})
		}
		for i, t := range more {
			targets = append(targets, t)
			fields = append(fields, fmt.Sprintf("targets_file(%s).targets[%d]", c.TargetsFile, i))
		}
	}
	out := make([]target, 0, len(targets))
	seen := map[string]string{}
	for i, t := range targets {
		rt, err := c.resolveTarget(t, fields[i])
		if err != nil {
			add(err)
			continue
		}
		if prev, dup := seen[rt.name]; dup {
			add(schema.Errorf(fields[i]+".name", "device %q is also %s", rt.name, prev))
			continue
		}
		seen[rt.name] = fields[i]
		out = append(out, rt)
	}
	return out, errors.Join(errs...)
}

// parseTrapSources parses trap_sources: CIDR prefixes or single addresses.
func parseTrapSources(srcs []string) ([]netip.Prefix, error) {
	var errs []error
	out := make([]netip.Prefix, 0, len(srcs))
	for i, s := range srcs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				errs = append(errs, schema.Errorf(fmt.Sprintf("trap_sources[%d]", i), "want an address or a CIDR prefix, got %q", s))
				continue
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}

func readTargetsFile(path string) ([]Target, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read targets file: %w", err)
	}
	var doc struct {
		Targets []Target `yaml:"targets"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return doc.Targets, nil
}

func (c *Config) resolveTarget(t Target, field string) (target, error) {
	var errs []error
	d := c.Defaults
	p := t.Params
	rt := target{name: t.Name}
	if t.Address == "" {
		errs = append(errs, schema.Errorf(field+".address", "is required"))
	} else {
		host, port, err := splitAddress(t.Address)
		if err != nil {
			errs = append(errs, schema.Errorf(field+".address", "%v", err))
		}
		rt.host, rt.port, rt.address = host, port, net.JoinHostPort(host, strconv.Itoa(int(port)))
	}
	if rt.name == "" {
		rt.name = t.Address
	}
	version := first(p.Version, d.Version, "2c")
	switch version {
	case "2c", "v2c":
		rt.version = gosnmp.Version2c
		var err error
		switch {
		case p.Community != "" || p.CommunityFile != "" || p.CommunityEnv != "":
			rt.community, err = secret(p.Community, p.CommunityFile, p.CommunityEnv, field+".community")
		default:
			rt.community, err = secret(d.Community, d.CommunityFile, d.CommunityEnv, "defaults.community")
		}
		if err != nil {
			errs = append(errs, err)
		} else if rt.community == "" {
			errs = append(errs, schema.Errorf(field+".community", "is required for version 2c"))
		}
	case "3", "v3":
		rt.version = gosnmp.Version3
		v3, vfield := p.V3, field+".v3"
		if v3 == nil {
			v3, vfield = d.V3, "defaults.v3"
		}
		if v3 == nil {
			errs = append(errs, schema.Errorf(field+".v3", "is required for version 3"))
		} else {
			u, err := v3.resolve(vfield)
			if err != nil {
				errs = append(errs, err)
			}
			rt.v3 = u
		}
	default:
		errs = append(errs, schema.Errorf(field+".version", "must be 2c or 3, got %q", version))
	}
	rt.interval = firstDur(p.Interval, d.Interval, DefaultInterval)
	rt.timeout = firstDur(p.Timeout, d.Timeout, DefaultTimeout)
	if rt.interval <= 0 {
		errs = append(errs, schema.Errorf(field+".interval", "must be positive, got %v", rt.interval))
	}
	if rt.timeout <= 0 {
		errs = append(errs, schema.Errorf(field+".timeout", "must be positive, got %v", rt.timeout))
	}
	rt.retries = DefaultRetries
	if d.Retries != nil {
		rt.retries = *d.Retries
	}
	if p.Retries != nil {
		rt.retries = *p.Retries
	}
	if rt.retries < 0 || rt.retries > 10 {
		errs = append(errs, schema.Errorf(field+".retries", "must be 0 to 10, got %d", rt.retries))
	}
	mr := p.MaxRepetitions
	if mr == 0 {
		mr = d.MaxRepetitions
	}
	if mr == 0 {
		mr = DefaultMaxRepetitions
	}
	if mr < 1 || mr > 1000 {
		errs = append(errs, schema.Errorf(field+".max_repetitions", "must be 1 to 1000, got %d", mr))
	}
	rt.maxRep = uint32(mr)
	return rt, errors.Join(errs...)
}

func (v *V3) resolve(field string) (*usm, error) {
	var errs []error
	u := &usm{user: v.User, context: v.ContextName}
	if v.User == "" {
		errs = append(errs, schema.Errorf(field+".user", "is required"))
	}
	var err error
	if u.auth, err = snmpwire.AuthProtocol(v.AuthProtocol); err != nil {
		errs = append(errs, &schema.FieldError{Field: field + ".auth_protocol", Err: err})
	}
	if u.priv, err = snmpwire.PrivProtocol(v.PrivProtocol); err != nil {
		errs = append(errs, &schema.FieldError{Field: field + ".priv_protocol", Err: err})
	}
	u.level = gosnmp.NoAuthNoPriv
	if u.auth != gosnmp.NoAuth {
		u.level = gosnmp.AuthNoPriv
		if u.authPass, err = secret("", v.AuthPasswordFile, v.AuthPasswordEnv, field+".auth_password"); err != nil {
			errs = append(errs, err)
		} else if len(u.authPass) < 8 {
			errs = append(errs, schema.Errorf(field+".auth_password_file", "passphrase must have at least 8 characters (RFC 3414)"))
		}
	}
	if u.priv != gosnmp.NoPriv {
		if u.auth == gosnmp.NoAuth {
			errs = append(errs, schema.Errorf(field+".priv_protocol", "privacy needs auth_protocol"))
		}
		u.level = gosnmp.AuthPriv
		if u.privPass, err = secret("", v.PrivPasswordFile, v.PrivPasswordEnv, field+".priv_password"); err != nil {
			errs = append(errs, err)
		} else if len(u.privPass) < 8 {
			errs = append(errs, schema.Errorf(field+".priv_password_file", "passphrase must have at least 8 characters (RFC 3414)"))
		}
	}
	return u, errors.Join(errs...)
}

// secret returns an inline value or reads it from a file (trailing newline
// trimmed) or an environment variable. Exactly one source may be given.
// field is the key prefix: field+"_file", field+"_env".
func secret(inline, file, env, field string) (string, error) {
	n := 0
	for _, s := range []string{inline, file, env} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return "", schema.Errorf(field, "give only one of the inline value, %s_file and %s_env", lastKey(field), lastKey(field))
	}
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", schema.Errorf(field+"_file", "%v", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", schema.Errorf(field+"_env", "environment variable %s is not set", env)
		}
		return v, nil
	}
	if inline == "" && strings.HasSuffix(field, "_password") {
		return "", schema.Errorf(field+"_file", "is required (or %s_env)", lastKey(field))
	}
	return inline, nil
}

func lastKey(field string) string {
	if i := strings.LastIndexByte(field, '.'); i >= 0 {
		return field[i+1:]
	}
	return field
}

func splitAddress(a string) (string, uint16, error) {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		// No port: the whole address is the host (IPv6 literals bare or bracketed).
		host, port = strings.Trim(a, "[]"), "161"
	}
	if host == "" {
		return "", 0, fmt.Errorf("no host in %q", a)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("bad port in %q", a)
	}
	return host, uint16(p), nil
}

func first(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func firstDur(d ...time.Duration) time.Duration {
	for _, v := range d {
		if v != 0 {
			return v
		}
	}
	return 0
}

func hexBytes(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.ReplaceAll(s, ":", ""), "0x")
	b := make([]byte, len(s)/2)
	if len(s)%2 != 0 {
		return nil, errors.New("odd length")
	}
	for i := range b {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, err
		}
		b[i] = byte(v)
	}
	return b, nil
}
