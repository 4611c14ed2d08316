package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/netfeat/netfeat/cluster"
	"github.com/netfeat/netfeat/schema"
)

// ClusterConfig makes this process one of several nodes of a site that
// share the site's SNMP and gNMI targets (docs/cluster.md). The nodes
// share one NATS JetStream: an external nats.url, or one node's embedded
// server that the others name as their nats.url.
type ClusterConfig struct {
	// Enabled turns the cluster on; off, the node polls every target.
	Enabled bool `yaml:"enabled"`
	// Node names this node, unique among the site's nodes; default the
	// host name.
	Node string `yaml:"node"`
	// Bucket is the JetStream KV bucket of leases and owners; default
	// cluster.DefaultBucket.
	Bucket string `yaml:"bucket"`
	// Replicas of the bucket: 1, or 3 on a replicated JetStream.
	Replicas int `yaml:"replicas"`
	// LeaseTTL bounds how long a dead node's targets stay unowned.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// Renew is the lease renewal period; default a third of LeaseTTL - 1s.
	Renew time.Duration `yaml:"renew"`
}

// nodeConfig returns the cluster package's configuration, without the
// targets, the node name defaulting to the host name.
func (c ClusterConfig) nodeConfig() cluster.Config {
	node := c.Node
	if node == "" {
		node, _ = os.Hostname()
	}
	return cluster.Config{Node: node, Bucket: c.Bucket, Replicas: c.Replicas, LeaseTTL: c.LeaseTTL, Renew: c.Renew}
}

// clusterKeys are the keys cluster.Config's errors start with.
var clusterKeys = map[string]bool{"node": true, "bucket": true, "replicas": true, "lease_ttl": true, "renew": true}

// validateCluster checks the cluster section when it is enabled.
func (c *Config) validateCluster() []error {
	cc := c.Cluster
	if !cc.Enabled {
		return nil
	}
	var errs []error
	if c.Role == RoleHub {
		errs = append(errs, schema.Errorf("cluster.enabled", "a hub polls no targets: the cluster is for the nodes of one site"))
	}
	if c.NATS.URL == "" && c.NATS.JetStream != nil && !*c.NATS.JetStream {
		errs = append(errs, schema.Errorf("cluster.enabled", "needs JetStream: set nats.jetstream or nats.url"))
	}
	if cc.Bucket != "" && !validBucket(cc.Bucket) {
		errs = append(errs, schema.Errorf("cluster.bucket", "%q: want letters, digits, '-' and '_'", cc.Bucket))
	}
	ncfg := cc.nodeConfig()
	err := ncfg.Validate()
	if err == nil {
		return errs
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		key, msg, ok := strings.Cut(e.Error(), ": ")
		if !ok || !clusterKeys[key] {
			key, msg = "", e.Error()
		}
		errs = append(errs, prefixErrors("cluster", schema.Errorf(key, "%s", msg))...)
	}
	return errs
}

// validBucket reports whether name is a valid JetStream KV bucket name.
func validBucket(name string) bool {
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// buildCluster adds, when cluster.enabled, the component that runs this
// node's cluster.Node: started after the collectors, so that it hands
// them the targets it owns (they own none until then), and stopped before
// them, so that it gives its targets to the other nodes while the
// collectors still run. The site's targets are the SNMP and gNMI target
// names.
func (s *Service) buildCluster() error {
	if !s.cfg.Cluster.Enabled {
		return nil
	}
	p := &s.pipe
	ccfg := s.cfg.Cluster.nodeConfig()
	if p.snmp != nil {
		for _, d := range p.snmp.DeviceStates() {
			ccfg.Targets = append(ccfg.Targets, d.Device)
		}
		p.snmp.SetOwned([]string{})
	}
	if p.gnmi != nil {
		for _, d := range p.gnmi.DeviceStates() {
			ccfg.Targets = append(ccfg.Targets, d.Device)
		}
		p.gnmi.SetOwned([]string{})
	}
	if err := ccfg.Validate(); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	node := &p.cluster // set once started
	s.group.Add(ComponentFuncs{
		ComponentName: "cluster",
		StartFunc: func(ctx context.Context) error {
			js, err := jetstream.New(s.nats.Conn())
			if err != nil {
				return fmt.Errorf("cluster: JetStream: %w", err)
			}
			n, err := cluster.New(ccfg, js, s.reg, s.log)
			if err != nil {
				return err
			}
			n.OnChange(func(owned []string) {
				if p.snmp != nil {
					p.snmp.SetOwned(owned)
				}
				if p.gnmi != nil {
					p.gnmi.SetOwned(owned)
				}
			})
			if err := n.Start(ctx); err != nil {
				return fmt.Errorf("cluster: %w", err)
			}
			node.Store(n)
			return nil
		},
		StopFunc: func(ctx context.Context) error {
			if n := node.Load(); n != nil {
				return n.Stop(ctx)
			}
			return nil
		},
		ReadyFunc: func() error {
			if n := node.Load(); n == nil || !n.Ready() {
				return errors.New("no cluster lease")
			}
			return nil
		},
	})
	return nil
}
