package service

// Federated learning in the service (docs/learning.md, "Federated
// learning"): the `federated:` section configures one federated model. On
// a hub it runs the rounds (federated.Coordinator, component "federated")
// and serves GET /v1/fl/rounds; on an edge a participant takes part once a
// trainer is given (SetFederatedTrainer): netfeat has no trainer of its
// own on the edge yet.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/federated"
	"github.com/netfeat/netfeat/schema"
)

// validateFederated checks the federated section: a fleet role, and the
// section's own values.
func (c *Config) validateFederated() []error {
	if c.Federated == nil {
		return nil
	}
	var errs []error
	if c.Role != RoleHub && c.Role != RoleEdge {
		errs = append(errs, schema.Errorf("federated", "runs on a fleet: needs role hub or edge, got %q", c.Role))
	}
	if err := c.Federated.WithDefaults().Validate("federated"); err != nil {
		var j interface{ Unwrap() []error }
		if errors.As(err, &j) {
			errs = append(errs, j.Unwrap()...)
		} else {
			errs = append(errs, err)
		}
	}
	return errs
}

// federatedHub is a hub's coordinator, set once its component started.
type federatedHub struct {
	coord atomic.Pointer[federated.Coordinator]
}

// buildFederated adds a hub's coordinator as the component "federated",
// keeping its state in the hub cluster's KV bucket NETFEAT_FL_STATE.
func (s *Service) buildFederated() {
	if s.cfg.Federated == nil || s.cfg.Role != RoleHub {
		return
	}
	cfg := *s.cfg.Federated
	s.fl = &federatedHub{}
	log := s.log.With("component", "federated")
	var c *federated.Coordinator
	s.group.Add(ComponentFuncs{
		ComponentName: "federated",
		StartFunc: func(ctx context.Context) error {
			nc := s.nats.Conn()
			js, err := jetstream.New(nc)
			if err != nil {
				return fmt.Errorf("federated: %w", err)
			}
			if c, err = federated.NewCoordinator(cfg, nc, s.reg, log); err != nil {
				return err
			}
			c.SetStateStore(federated.NewKVStateStore(js, "", s.cfg.Fleet.Hub.Replicas))
			if err := c.Start(ctx); err != nil {
				return err
			}
			s.fl.coord.Store(c)
			return nil
		},
		StopFunc: func(ctx context.Context) error {
			if c == nil {
				return nil
			}
			return c.Stop(ctx)
		},
	})
}

// mountFederated serves GET /v1/fl/rounds to the read scope: the hub's
// rounds, 404 where no coordinator runs, 503 until it has started.
func (s *Service) mountFederated() {
	s.http.Handle("/v1/fl/rounds", s.withScope(scopeRead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.fl == nil {
			http.Error(w, "federated learning runs on a hub with a federated section", http.StatusNotFound)
			return
		}
		c := s.fl.coord.Load()
		if c == nil {
			http.Error(w, "federated learning not started", http.StatusServiceUnavailable)
			return
		}
		c.Handler().ServeHTTP(w, r)
	})))
}

// SetFederatedTrainer makes an edge with a federated section take part in
// the rounds with t (the component "federated", on the embedded server's
// connection, a leaf node of the hub). Call after New, before Start.
func (s *Service) SetFederatedTrainer(t federated.Trainer) error {
	if s.cfg.Federated == nil || s.cfg.Role != RoleEdge {
		return errors.New("federated: a trainer needs role edge and a federated section")
	}
	c, err := FederatedParticipantComponent(*s.cfg.Federated, s.cfg.EdgeSite(), s.nats.Conn, t, s.reg, s.log.With("component", "federated"))
	if err != nil {
		return err
	}
	s.group.Add(c)
	return nil
}

// FederatedParticipantComponent returns an edge's participant as the
// component "federated": it trains with t and takes part in the hub's
// rounds through conn's connection, taken when the component starts. cfg
// is checked now.
func FederatedParticipantComponent(cfg federated.Config, site string, conn func() *nats.Conn, t federated.Trainer, reg prometheus.Registerer, log *slog.Logger) (Component, error) {
	if err := cfg.WithDefaults().Validate("federated"); err != nil {
		return nil, err
	}
	var p *federated.Participant
	return ComponentFuncs{
		ComponentName: "federated",
		StartFunc: func(ctx context.Context) error {
			var err error
			if p, err = federated.NewParticipant(cfg, site, conn(), t, reg, log); err != nil {
				return err
			}
			return p.Start(ctx)
		},
		StopFunc: func(ctx context.Context) error {
			if p == nil {
				return nil
			}
			return p.Stop(ctx)
		},
	}, nil
}
