package service

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/fleet"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/internal/testkit"
)

// rolloutRuntime starts a runtime with the shipped congestion model.
func rolloutRuntime(t *testing.T) *inference.Runtime {
	t.Helper()
	cfg := inference.DefaultConfig()
	cfg.DecisionRetention = 0
	cfg.Models = []inference.ModelConfig{{
		Name: "congestion", Kind: inference.KindXGBoost, View: "interface_1m",
		File: inference.BuiltinPrefix + "congestion", Action: "reroute",
	}}
	r, err := inference.New(cfg, nil, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	return r
}

// TestModelRolloutComponents: the publisher and follower components, on
// one JetStream server of domain "hub" (the fleet tests run the real
// topology): a version promoted on one registry goes live on the other.
func TestModelRolloutComponents(t *testing.T) {
	ns := testkit.StartNATS(t, server.Options{JetStream: true, JetStreamDomain: fleet.DefaultHubDomain, StoreDir: t.TempDir()})
	nc := testkit.ConnectNATS(t, ns.ClientURL())
	hubRT, edgeRT := rolloutRuntime(t), rolloutRuntime(t)
	cfg := fleet.ModelRolloutConfig{Replicas: 1, RetryDelay: 100 * time.Millisecond}
	pub, err := ModelPublisherComponent(cfg, func() *nats.Conn { return nc }, hubRT, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fol, err := ModelFollowerComponent(cfg, "paris", func() *nats.Conn { return nc }, edgeRT, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var g Group
	g.Add(pub)
	g.Add(fol)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Start(ctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	defer g.Stop(context.Background())

	// v2: the same file as v1 under another name, promoted on the hub.
	_, b, err := hubRT.VersionArtifact(ctx, "congestion", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hubRT.AddVersion(ctx, "congestion", "v2", b); err != nil {
		t.Fatal(err)
	}
	if err := hubRT.Promote(ctx, "congestion", "v2"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "v2 live on the edge's registry", func() bool {
		mi, err := edgeRT.Model(ctx, "congestion")
		return err == nil && mi.Live == "v2"
	})
}
