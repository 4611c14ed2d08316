package service

// The fleet's model roll-out as components (docs/fleet.md, "Model
// roll-out"): a hub's publisher mirrors its registry into the roll-out
// buckets, an edge's follower installs the hub's policy into its own
// registry. buildHub and addModelFollower (fleet.go) add them right after
// the inference component, whose registry they read or install into.

import (
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/fleet"
	"github.com/netfeat/netfeat/inference"
)

// ModelPublisherComponent returns the hub's model publisher as the
// component "model-publisher": it mirrors rt's registry into the roll-out
// buckets of the hub cluster that conn's connection reaches. conn is called
// when the component starts (the NATS component's connection exists only
// then); cfg is checked now.
func ModelPublisherComponent(cfg fleet.ModelRolloutConfig, conn func() *nats.Conn, rt *inference.Runtime, reg prometheus.Registerer, log *slog.Logger) (Component, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return builtOnStart("model-publisher", func() (*fleet.ModelPublisher, error) {
		return fleet.NewModelPublisher(cfg, conn(), rt, reg, log)
	}), nil
}

// ModelFollowerComponent returns an edge's model follower as the component
// "model-follower": it installs the hub's policy into rt's registry through
// conn's connection to the edge's own NATS server (a leaf node of the hub),
// taken when the component starts. Its Start does not wait for the hub.
func ModelFollowerComponent(cfg fleet.ModelRolloutConfig, site string, conn func() *nats.Conn, rt *inference.Runtime, reg prometheus.Registerer, log *slog.Logger) (Component, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return builtOnStart("model-follower", func() (*fleet.ModelFollower, error) {
		return fleet.NewModelFollower(cfg, site, conn(), rt, reg, log)
	}), nil
}
