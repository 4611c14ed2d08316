package service

// The fleet's model roll-out as components (docs/fleet.md, "Model
// roll-out"). The role wiring adds one of them after the inference
// component, whose registry they read or install into:
//
//	hub:  c, err := ModelPublisherComponent(cfg, hubConn, rt, reg, log)
//	edge: c, err := ModelFollowerComponent(cfg, site, edgeConn, rt, reg, log)
//	      s.Add(c)

import (
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/fleet"
	"github.com/netfeat/netfeat/inference"
)

// ModelPublisherComponent returns the hub's model publisher as the
// component "model-publisher": it mirrors rt's registry into the roll-out
// buckets of the hub cluster that nc connects to. Add it after the
// inference component: its Start reads rt's registry.
func ModelPublisherComponent(cfg fleet.ModelRolloutConfig, nc *nats.Conn, rt *inference.Runtime, reg prometheus.Registerer, log *slog.Logger) (Component, error) {
	p, err := fleet.NewModelPublisher(cfg, nc, rt, reg, log)
	if err != nil {
		return nil, err
	}
	return ComponentFuncs{ComponentName: "model-publisher", StartFunc: p.Start, StopFunc: p.Stop}, nil
}

// ModelFollowerComponent returns an edge's model follower as the component
// "model-follower": it installs the hub's policy into rt's registry, through
// nc, a connection to the edge's own NATS server (a leaf node of the hub).
// Add it after the inference component; its Start does not wait for the
// hub.
func ModelFollowerComponent(cfg fleet.ModelRolloutConfig, site string, nc *nats.Conn, rt *inference.Runtime, reg prometheus.Registerer, log *slog.Logger) (Component, error) {
	f, err := fleet.NewModelFollower(cfg, site, nc, rt, reg, log)
	if err != nil {
		return nil, err
	}
	return ComponentFuncs{ComponentName: "model-follower", StartFunc: f.Start, StopFunc: f.Stop}, nil
}
