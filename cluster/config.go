package cluster

import (
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Defaults of Config.
const (
	// DefaultBucket is the KV bucket holding a site's leases and owners.
	DefaultBucket = "netfeat_cluster"
	// DefaultLeaseTTL is the default bound on how long a dead node's
	// targets stay unowned (Config.LeaseTTL).
	DefaultLeaseTTL = 10 * time.Second
	// MaxNameLen bounds node and target names (a KV key holds the escaped
	// name, which is at most three times longer).
	MaxNameLen = 255
)

// markerTTL is how long the server keeps the marker it writes when a lease
// expires; watchers running at that moment see it at once, later ones do
// not need it.
const markerTTL = time.Minute

// Config is one node's view of its site's cluster.
type Config struct {
	// Node names this node; unique among the site's nodes.
	Node string
	// Bucket is the JetStream KV bucket shared by the site's nodes;
	// default DefaultBucket.
	Bucket string
	// Replicas of the bucket (1, or 3 on a replicated JetStream);
	// default 1.
	Replicas int
	// LeaseTTL bounds how long a dead node's targets stay unowned: its
	// lease is written with a server-side TTL of LeaseTTL - 1 s (the
	// server expires in whole seconds and up to about 250 ms late), so the
	// others take its targets within LeaseTTL of its death. A whole
	// number of seconds, at least 2 s; default DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Renew is the period of lease renewal and of the reconciliation that
	// goes with it; default a third of the server-side TTL. It must be
	// below half of it.
	Renew time.Duration
	// Targets are the site's targets (device names). Every node of a site
	// must be given the same list.
	Targets []string
}

// withDefaults returns the configuration with its zero values filled in.
func (c Config) withDefaults() Config {
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Renew == 0 && c.LeaseTTL >= 2*time.Second {
		c.Renew = c.serverTTL() / 3
	}
	return c
}

// Validate reports every problem of the configuration (with its defaults
// applied), for `netfeat config check`; New checks the same.
func (c *Config) Validate() error { return c.withDefaults().validate() }

// validate reports every problem of a configuration with defaults applied.
func (c Config) validate() error {
	var errs []error
	if err := checkName(c.Node); err != nil {
		errs = append(errs, fmt.Errorf("node: %w", err))
	}
	if c.LeaseTTL < 2*time.Second || c.LeaseTTL%time.Second != 0 {
		errs = append(errs, fmt.Errorf("lease_ttl: %v: want a whole number of seconds, at least 2s", c.LeaseTTL))
	} else if c.Renew <= 0 || c.Renew >= c.serverTTL()/2 {
		errs = append(errs, fmt.Errorf("renew: %v: want more than 0 and less than (lease_ttl - 1s)/2 = %v", c.Renew, c.serverTTL()/2))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas: %d: want 1 to 5", c.Replicas))
	}
	for i, t := range c.Targets {
		if err := checkName(t); err != nil {
			errs = append(errs, fmt.Errorf("targets[%d]: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// expiryAllowance is how much shorter than LeaseTTL the lease's
// server-side TTL is: the server counts message TTLs in whole seconds and
// removes an expired message up to about 250 ms late.
const expiryAllowance = time.Second

// serverTTL is the TTL the lease record is written with.
func (c Config) serverTTL() time.Duration { return c.LeaseTTL - expiryAllowance }

// margin is how long before the server can expire this node's lease the
// node stops its targets: it covers the scheduling delay of its own timer
// and of the OnChange callback.
func (c Config) margin() time.Duration { return c.Renew / 4 }

// checkName accepts a node or target name.
func checkName(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len(s) > MaxNameLen:
		return fmt.Errorf("name longer than %d bytes", MaxNameLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%q: not UTF-8", s)
	}
	return nil
}
