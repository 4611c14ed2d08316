package service

import (
	"fmt"
	"path/filepath"

	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/inference"
)

// buildFleet prepares the parts of an edge or a hub that run before the
// pipeline: an edge's embedded server joins the hub as a leaf node with
// the site as its JetStream domain, and its forwarder starts right after
// NATS (so it stops after the stages that feed it, and drains them). It
// makes no I/O.
func (s *Service) buildFleet() {
	if s.cfg.Role != RoleEdge {
		return
	}
	site := s.cfg.EdgeSite()
	s.nats.site = site
	s.nats.leaf = newLeafWatch(s.reg, s.log.With("component", "nats", "site", site), func() float64 {
		if srv := s.nats.Server(); srv != nil {
			return float64(srv.NumLeafNodes())
		}
		return 0
	})
	s.edge = newEdgeForwarder(s.cfg.Fleet.Edge, site, s.nats, s.reg, s.log)
	s.group.Add(s.edge)
}

// hookEdge connects an edge's forwarder to the pipeline: closed windows
// from the store, live decisions from the runtime, the collectors' device
// states and, when raw samples are forwarded, the samples the store
// accepted. The hooks only queue.
func (s *Service) hookEdge(rt *inference.Runtime, st *featurestore.Store) {
	if s.edge == nil {
		return
	}
	s.edge.states = deviceStates{p: &s.pipe}.DeviceStates
	st.Subscribe(s.edge.window)
	rt.SetDecisionHandler(s.edge.decision)
	if s.edge.forwardsSamples() {
		s.edge.labels = func(id int32) (device, component, metric, source string, err error) {
			e, m, src, err := st.SeriesLabels(id)
			return e.Device, e.Component, m, src, err
		}
		st.SetTap(s.edge.tap)
	}
}

// addModelFollower adds an edge's model follower right after the inference
// component: it installs the hub's roll-out policy into rt's registry and
// reports what the edge runs (docs/fleet.md, "Model roll-out"), on the
// NATS component's connection.
func (s *Service) addModelFollower(rt *inference.Runtime) error {
	if s.edge == nil {
		return nil
	}
	c, err := ModelFollowerComponent(s.cfg.Fleet.Rollout, s.cfg.EdgeSite(), s.nats.Conn, rt, s.reg, s.log.With("component", "model-follower"))
	if err != nil {
		return fmt.Errorf("model follower: %w", err)
	}
	s.group.Add(c)
	return nil
}

// buildHub builds a hub: the fleet tables fed by fleet.Hub, and the query
// stage over them. A hub has no collectors or store; its inference runtime
// only holds the model registry (`netfeat models upload/promote` against
// the hub), which the model publisher mirrors into the roll-out buckets
// the edges follow. No rows reach it, so it scores nothing.
func (s *Service) buildHub() error {
	s.hub = newHubSink(s.cfg.Fleet.Hub, s.cfg.Views, s.reg)
	s.group.Add(&hubComponent{cfg: s.cfg.Fleet.Hub, nats: s.nats, sink: s.hub, reg: s.reg,
		log: s.log.With("component", "fleet-hub")})
	rt, err := inference.New(s.cfg.Inference, s.nats.Conn, filepath.Join(s.cfg.DataDir, "inference"), s.reg, s.log)
	if err != nil {
		return fmt.Errorf("inference: %w", err)
	}
	s.pipe.runtime = rt
	s.group.Add(ComponentFuncs{ComponentName: "inference", StartFunc: rt.Start, StopFunc: rt.Stop, ReadyFunc: rt.Ready})
	pub, err := ModelPublisherComponent(s.cfg.Fleet.Rollout, s.nats.Conn, rt, s.reg, s.log.With("component", "model-publisher"))
	if err != nil {
		return fmt.Errorf("model publisher: %w", err)
	}
	s.group.Add(pub)
	return s.buildQuery()
}
