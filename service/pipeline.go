package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync/atomic"

	"github.com/netfeat/netfeat/cluster"
	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/collectors/snmp"
	"github.com/netfeat/netfeat/console"
	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/learning"
	"github.com/netfeat/netfeat/normalize"
	"github.com/netfeat/netfeat/query"
	"github.com/netfeat/netfeat/query/frontend"
	"github.com/netfeat/netfeat/schema"
)

// normalizerStateKey is where the normalizer's counter state is kept in the
// store between runs, so the first poll after a restart yields rates.
const normalizerStateKey = "normalize/rate-state"

// pipeline holds the data-path stages. buildPipeline creates them all, with
// their subscriptions, when the service is built; the group starts them in
// dependency order. The stage fields are set once, before anything runs.
type pipeline struct {
	runtime    *inference.Runtime
	store      *featurestore.Store
	state      schema.StateStore // the store, as the normalizer's state keeper
	normalizer *normalize.Normalizer
	snmp       *snmp.Poller    // nil when no SNMP is configured
	gnmi       *gnmi.Collector // nil when no gNMI target is configured
	query      *query.Engine
	flight     *frontend.FlightSQLServer // nil when no Flight SQL is configured
	// cluster is the cluster node once started (cluster.enabled only).
	cluster  atomic.Pointer[cluster.Node]
	learning *learning.Loop // nil unless learning.enabled
	// learningGate: SetLearningGate added a gate (the twin's) to the loop.
	learningGate bool
	// auth holds the bearer tokens of HTTP, Flight SQL and the NATS query
	// responder (none: no authentication), read when the query stage
	// starts (nil before).
	auth atomic.Pointer[tokenSet]
}

// buildPipeline creates the data-path stages between NATS and HTTP and
// adds them to the group in dependency order: inference (needs NATS),
// store (delivers window closes to inference), normalizer (appends to the
// store), collectors (feed the normalizer), with cluster.enabled the
// cluster node (tells the collectors which targets they own; buildCluster),
// then the SQL stage and its front ends (buildQuery). Creating them does no I/O but
// the normalizer's reading of its profiles and the SNMP targets file; each
// opens its files and connections in Start. They stop in reverse, so
// collectors stop first and the store flushes its WAL before inference
// drains its queue.
func (s *Service) buildPipeline() error {
	cfg, reg, log := s.cfg, s.reg, s.log
	p := &s.pipe

	// It keeps its files in data_dir/inference; its NATS connection is
	// the NATS component's, taken when it starts.
	rt, err := inference.New(cfg.Inference, s.nats.Conn, filepath.Join(cfg.DataDir, "inference"), reg, log)
	if err != nil {
		return fmt.Errorf("inference: %w", err)
	}
	rt.SetGateMetric(cfg.Learning.Gate.Metric)

	st, err := featurestore.New(cfg.Store, cfg.Views, filepath.Join(cfg.DataDir, "store"), reg, log)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	// Before the store starts, so that windows its recovery closes reach
	// inference too.
	st.Subscribe(rt.HandleRow)
	st.SubscribeEvents(rt.HandleEvent) // the event path: state changes decided at once
	rt.SetLatest(st.Latest)
	s.hookEdge(rt, st)
	ts, err := s.newTargetSet()
	if err != nil {
		return err
	}
	s.targets = ts
	ncfg := cfg.Normalize
	// Per-device labels only for the devices configured here (#20), the
	// targets file's included; the target set updates the list.
	ncfg.Devices = ts.allNames()
	n, err := normalize.New(ncfg, st, reg, log)
	if err != nil {
		return fmt.Errorf("normalizer: %w", err)
	}
	n.SetTargetProfiles(ts.profiles())
	p.runtime, p.store, p.state, p.normalizer = rt, st, st, n

	s.group.Add(ComponentFuncs{
		ComponentName: "inference",
		StartFunc:     rt.Start,
		StopFunc:      rt.Stop,
		ReadyFunc:     rt.Ready,
	})
	if err := s.addModelFollower(rt); err != nil {
		return err
	}
	if err := s.buildLearning(rt); err != nil {
		return err
	}
	s.group.Add(ComponentFuncs{
		ComponentName: "store",
		StartFunc:     st.Start,
		StopFunc:      st.Stop,
		ReadyFunc:     st.Ready,
	})
	if cfg.MemoryLimit > 0 {
		g, err := newMemoryGovernor(int64(cfg.MemoryLimit), st, reg, log)
		if err != nil {
			return fmt.Errorf("memory governor: %w", err)
		}
		s.group.Add(g)
	}
	s.group.Add(ComponentFuncs{
		ComponentName: "normalizer",
		StartFunc: func(ctx context.Context) error {
			if state, err := p.state.GetState(normalizerStateKey); err == nil {
				if err := n.UnmarshalState(state); err != nil {
					log.Warn("normalizer counter state not restored; first samples yield no rates", "err", err)
				}
			} else if !errors.Is(err, schema.ErrStateNotFound) {
				log.Warn("reading normalizer counter state", "err", err)
			}
			return n.Start(ctx)
		},
		StopFunc: func(ctx context.Context) error {
			err := n.Stop(ctx)
			if state, merr := n.MarshalState(); merr == nil {
				err = errors.Join(err, p.state.PutState(normalizerStateKey, state))
			} else {
				err = errors.Join(err, merr)
			}
			return err
		},
	})

	// Both collectors exist even without targets, so that targets can be
	// added at run time (targets_file, /v1/targets); with none they run
	// nothing. The poller gets snmp.targets_file's targets as read here,
	// and keeps them when the target set changes the others.
	scfg := cfg.SNMP
	scfg.Targets, scfg.TargetsFile = slices.Concat(ts.staticSNMP, ts.dyn.SNMP.Targets), ""

	poller, err := snmp.New(scfg, n, n, reg, log)
	if err != nil {
		return fmt.Errorf("snmp: %w", err)
	}
	p.snmp = poller
	s.group.Add(ComponentFuncs{ComponentName: "snmp", StartFunc: poller.Start, StopFunc: poller.Stop})
	gcfg := cfg.GNMI
	gcfg.Targets = slices.Concat(cfg.GNMI.Targets, ts.dyn.GNMI.Targets)
	coll, err := gnmi.New(gcfg, n, reg, log)
	if err != nil {
		return fmt.Errorf("gnmi: %w", err)
	}
	p.gnmi = coll
	s.group.Add(ComponentFuncs{ComponentName: "gnmi", StartFunc: coll.Start, StopFunc: coll.Stop})
	if err := s.buildCluster(); err != nil {
		return err
	}
	s.addTargetsWatch()
	return s.buildQuery()
}

// Store returns the feature store (built by New, started by Start).
func (s *Service) Store() *featurestore.Store { return s.pipe.store }

// Normalizer returns the normalizer (built by New, started by Start); it is
// the pipeline's raw entry point (schema.ObservationSink).
func (s *Service) Normalizer() *normalize.Normalizer { return s.pipe.normalizer }

// Inference returns the inference runtime (built by New, started by Start).
func (s *Service) Inference() *inference.Runtime { return s.pipe.runtime }

var _ schema.ObservationSink = (*normalize.Normalizer)(nil)

// mountAPIs mounts the stages' HTTP APIs. The handlers exist before the
// stages start, and answer 503 until they have.
func (s *Service) mountAPIs() {
	var models http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := s.pipe.runtime
		if rt == nil || rt.Ready() != nil { // a hub has no inference
			http.Error(w, "inference not started", http.StatusServiceUnavailable)
			return
		}
		rt.Handler().ServeHTTP(w, r)
	})
	models = s.mountQuery(models)
	s.mountTargets()
	s.http.Handle("/v1/models", models)
	s.http.Handle("/v1/models/", models)
	s.http.Handle("/v1/decisions/", models)
	s.http.Handle("/v1/actions", models)
	s.http.Handle("/v1/actions/", models) // POST /v1/actions/{fingerprint}/feedback
	s.http.Handle("/v1/feedback", models)
	s.http.Handle("/v1/learning/", s.withScope(scopeRead, http.HandlerFunc(s.serveLearning)))
	s.mountConsole()
}

// mountConsole serves the operator's web console at "/" (its page loads
// without a token; the API calls it makes carry one) and its live action
// feed at GET /v1/actions/stream, which needs the read scope and learns of
// transitions from the inference runtime in-process.
func (s *Service) mountConsole() {
	s.feed = console.NewActionFeed(func() []inference.ActionState {
		rt := s.pipe.runtime
		if rt == nil || rt.Ready() != nil { // a hub has no inference
			return nil
		}
		return rt.Actions()
	}, s.reg)
	if rt := s.pipe.runtime; rt != nil {
		rt.ObserveTransitions(s.feed.Observe)
	}
	s.http.Handle("GET /v1/actions/stream", s.withScope(scopeRead, s.feed))
	page := console.Handler()
	for _, p := range console.Patterns {
		s.http.Handle(p, page)
	}
}
