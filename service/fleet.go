package service

import (
	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/schema"
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
// from the store, live decisions from the runtime. Both hooks only queue.
func (s *Service) hookEdge(rt *inference.Runtime, st *featurestore.Store) {
	if s.edge == nil {
		return
	}
	st.Subscribe(s.edge.window)
	rt.SetDecisionHandler(s.edge.decision)
}

// sampleAppender is where the normalizer appends: the store, teed to the
// edge's forwarder when raw samples are forwarded.
func (s *Service) sampleAppender(st *featurestore.Store) schema.SampleAppender {
	if s.edge == nil {
		return st
	}
	return s.edge.tee(st)
}

// buildHub builds a hub: the fleet tables fed by fleet.Hub, and the query
// stage over them. A hub has no collectors, store or inference.
func (s *Service) buildHub() error {
	s.hub = newHubSink(s.cfg.Fleet.Hub, s.cfg.Views, s.reg)
	s.group.Add(&hubComponent{cfg: s.cfg.Fleet.Hub, nats: s.nats, sink: s.hub, reg: s.reg,
		log: s.log.With("component", "fleet-hub")})
	return s.buildQuery()
}
