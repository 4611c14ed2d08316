package service

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"sync/atomic"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/collectors/snmp"
	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/normalize"
	"github.com/netfeat/netfeat/query"
	"github.com/netfeat/netfeat/query/frontend"
	"github.com/netfeat/netfeat/schema"
)

// normalizerStateKey is where the normalizer's counter state is kept in the
// store between runs, so the first poll after a restart yields rates.
const normalizerStateKey = "normalize/rate-state"

// pipeline holds the data-path stages; each is created when its component
// starts, because it needs the ones started before it.
type pipeline struct {
	runtime    atomic.Pointer[inference.Runtime]
	store      atomic.Pointer[featurestore.Store]
	normalizer atomic.Pointer[normalize.Normalizer]
	snmp       atomic.Pointer[snmp.Poller]
	gnmi       atomic.Pointer[gnmi.Collector]
	query      atomic.Pointer[query.Engine]
	flight     atomic.Pointer[frontend.FlightSQLServer]
	// auth holds the bearer tokens of HTTP, Flight SQL and the NATS query
	// responder (none: no authentication), read when the query stage
	// starts.
	auth atomic.Pointer[tokenSet]
}

// buildPipeline adds the data-path stages between NATS and HTTP, in
// dependency order: inference (needs NATS), store (delivers window closes to
// inference), normalizer (appends to the store), collectors (feed the
// normalizer). They stop in reverse, so collectors stop first and the store
// flushes its WAL before inference drains its queue.
func (s *Service) buildPipeline() error {
	cfg, reg, log := s.cfg, s.reg, s.log
	p := &s.pipe

	s.group.Add(ComponentFuncs{
		ComponentName: "inference",
		StartFunc: func(ctx context.Context) error {
			rt, err := inference.New(cfg.Inference, s.nats.Conn(), cfg.DataDir, reg, log) // it keeps its files in data_dir/inference
			if err != nil {
				return err
			}
			if err := rt.Start(ctx); err != nil {
				return err
			}
			p.runtime.Store(rt)
			return nil
		},
		StopFunc:  func(ctx context.Context) error { return p.runtime.Load().Stop(ctx) },
		ReadyFunc: func() error { return p.runtime.Load().Ready() },
	})

	s.group.Add(ComponentFuncs{
		ComponentName: "store",
		StartFunc: func(ctx context.Context) error {
			st, err := featurestore.Open(ctx, filepath.Join(cfg.DataDir, "store"), cfg.Store, cfg.Views, reg, log)
			if err != nil {
				return err
			}
			rt := p.runtime.Load()
			st.Subscribe(rt.HandleRow)
			st.SubscribeEvents(rt.HandleEvent) // the event path: state changes decided at once
			rt.SetLatest(st.Latest)
			if err := st.Start(ctx); err != nil {
				return errors.Join(err, st.Close())
			}
			p.store.Store(st)
			return nil
		},
		StopFunc: func(ctx context.Context) error {
			st := p.store.Load()
			return errors.Join(st.Stop(ctx), st.Close())
		},
		ReadyFunc: func() error { return p.store.Load().Ready() },
	})

	s.group.Add(ComponentFuncs{
		ComponentName: "normalizer",
		StartFunc: func(ctx context.Context) error {
			st := p.store.Load()
			ncfg := cfg.Normalize
			// Per-device labels only for the devices configured here (#20).
			ncfg.Devices = []string{}
			for _, t := range cfg.SNMP.Targets {
				ncfg.Devices = append(ncfg.Devices, t.Name)
			}
			for _, t := range cfg.GNMI.Targets {
				ncfg.Devices = append(ncfg.Devices, t.Name)
			}
			n, err := normalize.New(ncfg, st, reg, log)
			if err != nil {
				return err
			}
			if state, err := st.GetState(normalizerStateKey); err == nil {
				if err := n.UnmarshalState(state); err != nil {
					log.Warn("normalizer counter state not restored; first samples yield no rates", "err", err)
				}
			} else if !errors.Is(err, featurestore.ErrNotFound) {
				log.Warn("reading normalizer counter state", "err", err)
			}
			if err := n.Start(ctx); err != nil {
				return err
			}
			p.normalizer.Store(n)
			return nil
		},
		StopFunc: func(ctx context.Context) error {
			n := p.normalizer.Load()
			err := n.Stop(ctx)
			if state, merr := n.MarshalState(); merr == nil {
				err = errors.Join(err, p.store.Load().PutState(normalizerStateKey, state))
			} else {
				err = errors.Join(err, merr)
			}
			return err
		},
	})

	if len(cfg.SNMP.Targets) > 0 || cfg.SNMP.TargetsFile != "" || cfg.SNMP.TrapListen != "" {
		var poller *snmp.Poller
		s.group.Add(ComponentFuncs{
			ComponentName: "snmp",
			StartFunc: func(ctx context.Context) error {
				n := p.normalizer.Load()
				var err error
				poller, err = snmp.New(cfg.SNMP, n, n, reg, log)
				if err != nil {
					return err
				}
				if err := poller.Start(ctx); err != nil {
					return err
				}
				p.snmp.Store(poller)
				return nil
			},
			StopFunc: func(ctx context.Context) error { return poller.Stop(ctx) },
		})
	}
	if len(cfg.GNMI.Targets) > 0 {
		var coll *gnmi.Collector
		s.group.Add(ComponentFuncs{
			ComponentName: "gnmi",
			StartFunc: func(ctx context.Context) error {
				var err error
				coll, err = gnmi.New(cfg.GNMI, p.normalizer.Load(), reg, log)
				if err != nil {
					return err
				}
				if err := coll.Start(ctx); err != nil {
					return err
				}
				p.gnmi.Store(coll)
				return nil
			},
			StopFunc: func(ctx context.Context) error { return coll.Stop(ctx) },
		})
	}
	return s.buildQuery()
}

// Store returns the feature store once started (nil before).
func (s *Service) Store() *featurestore.Store { return s.pipe.store.Load() }

// Normalizer returns the normalizer once started (nil before); it is the
// pipeline's raw entry point (schema.ObservationSink).
func (s *Service) Normalizer() *normalize.Normalizer { return s.pipe.normalizer.Load() }

// Inference returns the inference runtime once started (nil before).
func (s *Service) Inference() *inference.Runtime { return s.pipe.runtime.Load() }

var _ schema.ObservationSink = (*normalize.Normalizer)(nil)

// mountAPIs mounts the stages' HTTP APIs. The handlers exist before the
// stages start, and answer 503 until they have.
func (s *Service) mountAPIs() {
	var models http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt := s.pipe.runtime.Load()
		if rt == nil {
			http.Error(w, "inference not started", http.StatusServiceUnavailable)
			return
		}
		rt.Handler().ServeHTTP(w, r)
	})
	models = s.mountQuery(models)
	s.http.Handle("/v1/models", models)
	s.http.Handle("/v1/models/", models)
	s.http.Handle("/v1/decisions/", models)
	s.http.Handle("/v1/actions", models)
}
