package service

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/netfeat/netfeat/fleet"
	"github.com/netfeat/netfeat/schema"
)

// Roles of Config.Role (docs/fleet.md).
const (
	// RoleStandalone is one process that collects, stores, decides and
	// answers SQL on its own: the default.
	RoleStandalone = "standalone"
	// RoleEdge is RoleStandalone plus forwarding to a hub: its embedded
	// NATS server is a leaf node of the hub cluster with the site as its
	// JetStream domain, and closed windows, decisions, action transitions
	// and (per fleet.edge.sample_forwarding) raw samples go into local
	// streams the hub sources.
	RoleEdge = "edge"
	// RoleHub connects to the hub's NATS cluster (nats.url), sources every
	// edge's streams and answers fleet-wide SQL over them; it collects and
	// decides nothing itself.
	RoleHub = "hub"
)

// FleetConfig is the `fleet` section: what an edge forwards and how a hub
// keeps it. Only the part of the process's role applies.
type FleetConfig struct {
	Edge FleetEdgeConfig `yaml:"edge"`
	Hub  FleetHubConfig  `yaml:"hub"`
	// Rollout names the model roll-out's buckets and bounds (a hub's
	// publisher and an edge's follower read the same keys).
	Rollout fleet.ModelRolloutConfig `yaml:"rollout"`
}

// FleetEdgeConfig configures an edge's forwarding: fleet.EdgeConfig (the
// local streams' limits, sample forwarding) plus the queues between the
// pipeline and the local streams.
type FleetEdgeConfig struct {
	fleet.EdgeConfig `yaml:",inline"`
	// Queue bounds the windows, decisions and action transitions waiting
	// to be stored in the local streams; when it is full (the local
	// server is stuck) the newest are dropped, counted and logged, and
	// the pipeline never waits. Default 65536.
	Queue int `yaml:"queue"`
	// SampleQueue bounds the sample batches waiting to be forwarded.
	// Default 1024.
	SampleQueue int `yaml:"sample_queue"`
}

// FleetHubConfig configures a hub: fleet.HubConfig (its streams and
// consumers) plus the bounds of the fleet tables it serves in SQL.
type FleetHubConfig struct {
	fleet.HubConfig `yaml:",inline"`
	// Retention is how long the fleet tables keep a row (by its time:
	// window end, decision time, sample time, last decision of an
	// action). Default 24h. The hub streams keep what hub.limits say;
	// a hub restart rebuilds the tables from them.
	Retention time.Duration `yaml:"retention"`
	// MaxRows bounds each fleet table; beyond it the oldest rows go, a
	// sixteenth of MaxRows at a time.
	// Default 1000000.
	MaxRows int `yaml:"max_rows"`
}

// Defaults of the service's fleet keys.
const (
	defaultFleetQueue       = 65536
	defaultFleetSampleQueue = 1024
	defaultHubRetention     = 24 * time.Hour
	defaultHubMaxRows       = 1_000_000
)

// DefaultFleetConfig returns the `fleet` section's defaults.
func DefaultFleetConfig() FleetConfig {
	e := fleet.DefaultEdgeConfig("")
	return FleetConfig{
		Edge: FleetEdgeConfig{EdgeConfig: e, Queue: defaultFleetQueue, SampleQueue: defaultFleetSampleQueue},
		Hub:  FleetHubConfig{HubConfig: fleet.DefaultHubConfig(), Retention: defaultHubRetention, MaxRows: defaultHubMaxRows},
	}
}

// LeafConfig is `nats.leaf`: the leafnode remotes of an edge's embedded
// server, normally the hub cluster's leafnode ports.
type LeafConfig struct {
	Remotes []LeafRemoteConfig `yaml:"remotes"`
}

// LeafRemoteConfig is one leafnode remote: a hub cluster reached through
// any of its URLs.
type LeafRemoteConfig struct {
	// URLs of the hub's leafnode ports (nats-leaf://host:7422, or tls://).
	URLs []string `yaml:"urls"`
	// CredentialsFile is the .creds file the hub's leafnode port expects
	// (per site, so that no edge can connect as another).
	CredentialsFile string `yaml:"credentials_file"`
	// TLS for the leaf connection.
	TLS TLSConfig `yaml:"tls"`
}

// EdgeSite returns the site of an edge (the fleet.edge.site key may repeat
// it).
func (c *Config) EdgeSite() string {
	if c.Site != "" {
		return c.Site
	}
	return c.Fleet.Edge.Site
}

// validateFleet checks role, site, the fleet section and nats.leaf
// together.
func (c *Config) validateFleet() []error {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, schema.Errorf(key, format, args...)) }
	leaf := c.NATS.Leaf
	switch c.Role {
	case RoleStandalone, "":
		if c.Site != "" {
			bad("site", "only applies to role edge")
		}
		if len(leaf.Remotes) > 0 {
			bad("nats.leaf", "only applies to role edge")
		}
	case RoleEdge:
		if c.Site == "" {
			bad("site", "is required with role edge: it names the edge's JetStream domain and the hub's streams of it")
		} else if err := fleet.ValidateSite(c.Site, c.Fleet.Edge.HubDomain); err != nil {
			bad("site", "%v", strings.TrimPrefix(err.Error(), "fleet: "))
		}
		if c.Fleet.Edge.Site != "" && c.Fleet.Edge.Site != c.Site {
			bad("fleet.edge.site", "%q differs from site %q: leave it out", c.Fleet.Edge.Site, c.Site)
		}
		if c.NATS.URL != "" {
			bad("nats.url", "an edge runs its own embedded server (a leaf node of the hub); set nats.leaf.remotes instead")
		}
		if c.NATS.JetStream != nil && !*c.NATS.JetStream {
			bad("nats.jetstream", "an edge keeps what it forwards in JetStream streams: it must be on")
		}
		if len(leaf.Remotes) == 0 {
			bad("nats.leaf.remotes", "an edge needs at least one remote: the hub cluster's leafnode URLs")
		}
		ec := c.Fleet.Edge.EdgeConfig
		ec.Site = c.Site
		if c.Site != "" {
			if err := ec.Validate(); err != nil {
				bad("fleet.edge", "%v", strings.TrimPrefix(err.Error(), "fleet: "))
			}
		}
		if c.Fleet.Edge.Queue < 1 || c.Fleet.Edge.Queue > 10_000_000 {
			bad("fleet.edge.queue", "must be 1–10000000, got %d", c.Fleet.Edge.Queue)
		}
		if c.Fleet.Edge.SampleQueue < 1 || c.Fleet.Edge.SampleQueue > 1_000_000 {
			bad("fleet.edge.sample_queue", "must be 1–1000000, got %d", c.Fleet.Edge.SampleQueue)
		}
	case RoleHub:
		if c.Site != "" {
			bad("site", "a hub has no site; it sees every edge's")
		}
		if c.NATS.URL == "" {
			bad("nats.url", "a hub connects to the hub's NATS JetStream cluster (list its nodes); it runs no embedded server")
		}
		if len(leaf.Remotes) > 0 {
			bad("nats.leaf", "only applies to role edge")
		}
		if len(c.SNMP.Targets) > 0 || c.SNMP.TargetsFile != "" || c.SNMP.TrapListen != "" || len(c.GNMI.Targets) > 0 {
			bad("role", "a hub collects nothing: snmp and gnmi targets belong on an edge")
		}
		if err := c.Fleet.Hub.Validate(); err != nil {
			bad("fleet.hub", "%v", strings.TrimPrefix(err.Error(), "fleet: "))
		}
		if c.Fleet.Hub.Retention <= 0 {
			bad("fleet.hub.retention", "must be positive, got %v", c.Fleet.Hub.Retention)
		}
		if c.Fleet.Hub.MaxRows < 1 {
			bad("fleet.hub.max_rows", "must be positive, got %d", c.Fleet.Hub.MaxRows)
		}
	default:
		bad("role", "must be standalone, edge or hub, got %q", c.Role)
	}
	if c.Role == RoleEdge || c.Role == RoleHub {
		if err := c.Fleet.Rollout.Validate(); err != nil {
			bad("fleet.rollout", "%v", strings.TrimPrefix(err.Error(), "fleet: "))
		}
	}
	for i, r := range leaf.Remotes {
		key := fmt.Sprintf("nats.leaf.remotes[%d]", i)
		if len(r.URLs) == 0 {
			bad(key+".urls", "is required")
		}
		for _, u := range r.URLs {
			if err := checkLeafURL(u); err != nil {
				bad(key+".urls", "%v", err)
			}
		}
		if (r.TLS.CertFile == "") != (r.TLS.KeyFile == "") {
			bad(key+".tls.cert_file", "cert_file and key_file go together")
		}
	}
	return errs
}

// checkLeafURL accepts nats-leaf://, nats://, tls:// and ws(s):// URLs
// with a host and port.
func checkLeafURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	switch u.Scheme {
	case "nats-leaf", "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("%q: must start with nats-leaf://, nats://, tls://, ws:// or wss://", s)
	}
	if u.Hostname() == "" || u.Port() == "" {
		return errors.New(s + ": want host:port")
	}
	return nil
}
