package service

// Federated learning in the service (docs/learning.md, "Federated
// learning"): the `federated:` section configures one federated model. On
// a hub it runs the rounds (federated.Coordinator, component "federated")
// and serves GET /v1/fl/rounds; on an edge a participant takes part in
// them (component "federated"): at each round it trains
// learning.FederatedTrainer on the edge's own windows labelled by operator
// feedback, and installs each new global as a version of the edge's
// logistic model of the same name (federatedEdge).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/federated"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/learning"
	"github.com/netfeat/netfeat/schema"
)

// FederatedConfig is the `federated:` section: the rounds' settings,
// the same on the hub and on every edge (federated.Config), and what an
// edge trains on and does with each new global.
type FederatedConfig struct {
	federated.Config `yaml:",inline"`
	// Features is the model's fixed feature space, the same on every
	// edge: one transform per feature (name, log1p, center, scale); the
	// weights are one per feature, then the bias, so dim must be
	// len(features) + 1. Required on an edge.
	Features learning.FeatureSpace `yaml:"features"`
	// Labels names the inference model whose live decisions, labelled by
	// operator feedback on its actions (Runtime.LabelledWindows), are the
	// edge's training rows; it must read every feature of Features.
	// Default: Model.
	Labels string `yaml:"labels"`
	// MinRows is the fewest labelled windows an edge trains on; with fewer
	// it sits the round out. Default 20.
	MinRows int `yaml:"min_rows"`
	// Train are the edge's local training options (epochs, learning_rate,
	// l2, positive_weight); give every edge the same.
	Train learning.FederatedOptions `yaml:"train"`
	// Install is what an edge does with each new global: FederatedShadow
	// (default) installs it as a version of the inference model named
	// Model and makes it the shadow, FederatedLive makes it live,
	// FederatedOff keeps it in the participant only.
	Install string `yaml:"install"`
}

// Values of FederatedConfig.Install.
const (
	FederatedShadow = "shadow"
	FederatedLive   = "live"
	FederatedOff    = "off"
)

// DefaultFederatedMinRows is the default of FederatedConfig.MinRows.
const DefaultFederatedMinRows = 20

// withDefaults returns c with its edge settings' defaults (the rounds'
// settings keep theirs: federated.Config.WithDefaults).
func (c FederatedConfig) withDefaults() FederatedConfig {
	if c.Labels == "" {
		c.Labels = c.Model
	}
	if c.MinRows == 0 {
		c.MinRows = DefaultFederatedMinRows
	}
	if c.Install == "" {
		c.Install = FederatedShadow
	}
	return c
}

// validateFederated checks the federated section: a fleet role, the
// rounds' settings, and on an edge (or wherever features are given) the
// feature space, its agreement with dim and with the views of the labels
// model and of the model the globals are installed into.
func (c *Config) validateFederated() []error {
	if c.Federated == nil {
		return nil
	}
	var errs []error
	if c.Role != RoleHub && c.Role != RoleEdge {
		errs = append(errs, schema.Errorf("federated", "runs on a fleet: needs role hub or edge, got %q", c.Role))
	}
	if err := c.Federated.Config.WithDefaults().Validate("federated"); err != nil {
		var j interface{ Unwrap() []error }
		if errors.As(err, &j) {
			errs = append(errs, j.Unwrap()...)
		} else {
			errs = append(errs, err)
		}
	}
	f := c.Federated.withDefaults()
	if c.Role != RoleEdge && len(f.Features) == 0 {
		return errs // a hub needs no feature space
	}
	if len(f.Features) == 0 {
		return append(errs, schema.Errorf("federated.features", "an edge trains on a fixed feature space: name at least one feature (name, log1p, center, scale)"))
	}
	if err := f.Features.Validate(); err != nil {
		errs = append(errs, schema.Errorf("federated.features", "%v", err))
	}
	if f.Dim != len(f.Features)+1 {
		errs = append(errs, schema.Errorf("federated.dim", "is %d, but features name %d: the weights are one per feature and the bias, dim must be %d", f.Dim, len(f.Features), len(f.Features)+1))
	}
	if err := f.Train.Validate(); err != nil {
		errs = append(errs, schema.Errorf("federated.train", "%v", err))
	}
	if f.MinRows < 1 {
		errs = append(errs, schema.Errorf("federated.min_rows", "must be at least 1, got %d", f.MinRows))
	}
	switch f.Install {
	case FederatedShadow, FederatedLive, FederatedOff:
	default:
		errs = append(errs, schema.Errorf("federated.install", "must be %s, %s or %s, got %q", FederatedShadow, FederatedLive, FederatedOff, f.Install))
	}
	if c.Role != RoleEdge {
		return errs
	}
	models := map[string]inference.ModelConfig{}
	for _, m := range c.Inference.Models {
		models[m.Name] = m
	}
	views := map[string]schema.FeatureView{}
	for _, v := range c.Views {
		views[v.Name] = v
	}
	// checkModel checks that model m can read every feature of the space:
	// they are features of its view, and of its features list if it has
	// one (equal to the space's, in order, when exact).
	checkModel := func(key, role string, m inference.ModelConfig, exact bool) {
		if v, ok := views[m.View]; ok {
			have := v.FeatureNames()
			for i, t := range f.Features {
				if !slices.Contains(have, t.Name) {
					errs = append(errs, schema.Errorf(fmt.Sprintf("federated.features[%d].name", i), "%q is not a feature of view %s (%s model %s's view)", t.Name, m.View, role, m.Name))
				}
			}
		}
		switch {
		case len(m.Features) == 0:
		case exact && !slices.Equal(m.Features, f.Features.Names()):
			errs = append(errs, schema.Errorf(key, "model %s lists features %v; the globals it receives have %v: list the same, in order, or none", m.Name, m.Features, f.Features.Names()))
		case !exact:
			for i, t := range f.Features {
				if !slices.Contains(m.Features, t.Name) {
					errs = append(errs, schema.Errorf(fmt.Sprintf("federated.features[%d].name", i), "%q is not read by the %s model %s (its features: %v): its decisions cannot label it", t.Name, role, m.Name, m.Features))
				}
			}
		}
	}
	if m, ok := models[f.Labels]; !ok {
		errs = append(errs, schema.Errorf("federated.labels", "%q is not a model in inference.models: feedback on its actions labels the edge's training windows", f.Labels))
	} else {
		checkModel("federated.labels", "labels", m, false)
	}
	if f.Install != FederatedOff {
		m, ok := models[f.Model]
		switch {
		case !ok:
			errs = append(errs, schema.Errorf("federated.install", "%s installs each global as a version of inference model %q: configure it (kind %s, a starting file) or set install: %s", f.Install, f.Model, inference.KindLogistic, FederatedOff))
		case m.Kind != inference.KindLogistic:
			errs = append(errs, schema.Errorf("federated.install", "inference model %q is of kind %s; the globals are logistic models (kind %s)", f.Model, m.Kind, inference.KindLogistic))
		default:
			checkModel("federated.install", "installed", m, true)
		}
	}
	return errs
}

// federatedHub is a hub's coordinator, set once its component started.
type federatedHub struct {
	coord atomic.Pointer[federated.Coordinator]
}

// buildFederated adds a hub's coordinator as the component "federated",
// keeping its state in the hub cluster's KV bucket NETFEAT_FL_STATE, or an
// edge's participant (buildFederatedEdge).
func (s *Service) buildFederated() error {
	if s.cfg.Federated == nil {
		return nil
	}
	if s.cfg.Role == RoleEdge {
		return s.buildFederatedEdge()
	}
	if s.cfg.Role != RoleHub {
		return nil
	}
	cfg := s.cfg.Federated.Config
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
	return nil
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

// SetFederatedTrainer makes an edge with a federated section train with t
// instead of its own trainer (learning.FederatedTrainer on its
// feedback-labelled windows); each new global is still installed as
// federated.install says. Call after New, before Start.
func (s *Service) SetFederatedTrainer(t federated.Trainer) error {
	if s.flEdge == nil {
		return errors.New("federated: a trainer needs role edge and a federated section")
	}
	if t == nil {
		return errors.New("federated: nil trainer")
	}
	s.flEdge.trainer = t
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
	return builtOnStart("federated", func() (*federated.Participant, error) {
		return federated.NewParticipant(cfg, site, conn(), t, reg, log)
	}), nil
}
