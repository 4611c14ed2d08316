package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/cluster"
)

// A node of a site shares the site's targets with the other nodes; the
// collector polls what OnChange gives it.
func ExampleNode() {
	nc, err := nats.Connect("nats://127.0.0.1:4222")
	if err != nil {
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	node, err := cluster.New(cluster.Config{
		Node:     "site1-a",
		LeaseTTL: 10 * time.Second,
		Targets:  []string{"pe1.site1", "pe2.site1", "10.0.0.7:161"},
	}, js, prometheus.NewRegistry(), slog.Default())
	if err != nil {
		return
	}
	node.OnChange(func(owned []string) {
		// Stop polling what left the set before returning; poll new
		// targets at once.
		fmt.Println("polling", owned)
	})
	ctx := context.Background()
	if err := node.Start(ctx); err != nil {
		return
	}
	// ... on shutdown: hand the targets over without waiting for the lease.
	_ = node.Stop(ctx)
}
