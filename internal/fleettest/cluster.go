// Package fleettest runs the fleet topology for tests on loopback: a hub
// cluster of real nats-server processes (JetStream domain "hub"), edges as
// embedded nats-servers that are leaf nodes of it (JetStream domain = the
// site), and a Link between them that a test can cut and restore. The
// processes and the link are package natsproc's; this package ties them to
// a test's lifetime.
package fleettest

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/netfeat/netfeat/internal/natsproc"
)

// HubDomain is the JetStream domain of the hub cluster.
const HubDomain = natsproc.HubDomain

// NATSServer returns the path of the nats-server binary
// (natsproc.FindServer). When it is absent the test is skipped, or fails
// when NETFEAT_REQUIRE_FLEET is set (CI sets it after running
// scripts/install-nats-server.sh).
func NATSServer(t testing.TB) string {
	t.Helper()
	p, err := natsproc.FindServer()
	if err != nil {
		if !errors.Is(err, natsproc.ErrNoServer) || os.Getenv("NETFEAT_REQUIRE_FLEET") != "" {
			t.Fatalf("fleettest: %v; NETFEAT_REQUIRE_FLEET is set", err)
		}
		t.Skipf("fleettest: %v", err)
	}
	return p
}

// Cluster is a hub cluster of nats-server processes, stopped at the end of
// the test.
type Cluster struct {
	*natsproc.Cluster
	t testing.TB
}

// StartCluster starts a JetStream cluster of n nats-server processes on
// loopback (JetStream domain HubDomain, a leafnode port each, config and
// store under t.TempDir()), waits until it has a meta leader, and stops the
// processes at the end of the test.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c, err := natsproc.StartCluster(context.Background(), natsproc.ClusterOptions{Binary: NATSServer(t), Dir: t.TempDir(), Nodes: n})
	if err != nil {
		t.Fatalf("fleettest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.LogTails(30))
		}
		c.Stop()
	})
	return &Cluster{Cluster: c, t: t}
}

// Connect returns a client connection to the cluster, closed at the end of
// the test.
func (c *Cluster) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := c.Cluster.Connect("fleettest")
	if err != nil {
		t.Fatalf("fleettest: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Restart starts node i again over its store, failing the test if it does
// not start.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if err := c.Cluster.Restart(i); err != nil {
		c.t.Fatalf("fleettest: %v", err)
	}
}
