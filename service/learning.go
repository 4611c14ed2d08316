package service

// The `learning:` section wired into the service: drift monitoring
// settings handed to the inference runtime, the retraining loop
// (learning.Loop) as a component that runs after inference starts, its
// adapter to the runtime's registry and labelled windows, and its HTTP
// API (GET /v1/learning/runs, POST /v1/learning/retrain/{model}).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/learning"
	"github.com/netfeat/netfeat/schema"
)

// driftConfig maps learning.drift onto the runtime's drift settings.
func driftConfig(d learning.DriftConfig) inference.DriftConfig {
	return inference.DriftConfig{Window: d.Window, Every: d.Every, Threshold: d.PSIThreshold, Clear: d.PSIClear}
}

// learningModels returns the models the loop retrains: learning.models, or
// every configured logistic model.
func (c *Config) learningModels() []string {
	if len(c.Learning.Models) > 0 {
		return c.Learning.Models
	}
	var out []string
	for _, m := range c.Inference.Models {
		if m.Kind == inference.KindLogistic {
			out = append(out, m.Name)
		}
	}
	return out
}

// checkLearning checks learning.models against inference.models: the loop
// trains logistic models, so each must be one.
func (c *Config) checkLearning() []error {
	var errs []error
	kinds := map[string]inference.Kind{}
	for _, m := range c.Inference.Models {
		kinds[m.Name] = m.Kind
	}
	for i, name := range c.Learning.Models {
		k, ok := kinds[name]
		switch {
		case !ok:
			errs = append(errs, schema.Errorf(fmt.Sprintf("learning.models[%d]", i), "%q is not a model in inference.models", name))
		case k != inference.KindLogistic:
			errs = append(errs, schema.Errorf(fmt.Sprintf("learning.models[%d]", i), "%q is of kind %s; the loop retrains models of kind %s", name, k, inference.KindLogistic))
		}
	}
	if c.Learning.Enabled && len(c.learningModels()) == 0 {
		errs = append(errs, schema.Errorf("learning.enabled", "no model to retrain: configure a model of kind %s (or list one in learning.models)", inference.KindLogistic))
	}
	return errs
}

// buildLearning creates the retraining loop when learning.enabled, hooks
// it to the runtime's drift events and adds it to the group after
// inference.
func (s *Service) buildLearning(rt *inference.Runtime) error {
	if !s.cfg.Learning.Enabled {
		return nil
	}
	reg := runtimeRegistry{rt}
	loop, err := learning.NewLoop(s.cfg.Learning, s.cfg.learningModels(), reg, reg, nil, s.reg, s.log.With("component", "learning"))
	if err != nil {
		return fmt.Errorf("learning: %w", err)
	}
	rt.SetDriftHandler(func(ev inference.DriftEvent) {
		if ev.Drifting {
			loop.Drifted(ev.Model)
		}
	})
	s.pipe.learning = loop
	var (
		cancel context.CancelFunc
		wg     sync.WaitGroup
	)
	s.group.Add(ComponentFuncs{
		ComponentName: "learning",
		StartFunc: func(context.Context) error {
			var ctx context.Context
			ctx, cancel = context.WithCancel(context.Background())
			wg.Add(1)
			go func() {
				defer wg.Done()
				loop.Run(ctx)
			}()
			return nil
		},
		StopFunc: func(ctx context.Context) error {
			if cancel != nil {
				cancel()
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("learning: a retraining still runs: %w", ctx.Err())
			}
		},
	})
	return nil
}

// SetLearningGate makes the retraining loop judge candidates by the
// held-out gate (learning.gate) and then by g: a candidate is promoted only
// when both pass (learning.AllGates). netfeat serve adds the twin backtest
// gate (internal/twin.Gate) this way when learning.gate.twin is set: the
// service cannot build it, as a twin runs a service of its own. Call it
// between New and Start.
func (s *Service) SetLearningGate(g learning.Gate) error {
	if s.pipe.learning == nil {
		return errors.New("learning: the retraining loop is off (learning.enabled: false): there is no gate to add to")
	}
	s.pipe.learning.SetGate(learning.AllGates{s.cfg.Learning.Gate.Holdout(), g})
	s.pipe.learningGate = true
	return nil
}

// checkLearningGate refuses to start a loop whose configuration asks for
// the twin gate when none was added: it would promote on the held-out
// gate alone.
func (s *Service) checkLearningGate() error {
	if s.pipe.learning != nil && s.cfg.Learning.Gate.Twin != nil && !s.pipe.learningGate {
		return errors.New("learning.gate.twin is set, but no twin gate was added to the retraining loop (Service.SetLearningGate; netfeat serve adds it)")
	}
	return nil
}

// serveLearning answers GET /v1/learning/runs (the loop's last runs) and
// POST /v1/learning/retrain/{model} (one run now; admin scope).
func (s *Service) serveLearning(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	loop := s.pipe.learning
	if loop == nil {
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "the retraining loop is off (learning.enabled: false)"})
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/learning/runs":
		runs := loop.Runs()
		if runs == nil {
			runs = []learning.Run{}
		}
		_ = json.NewEncoder(w).Encode(runs)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/learning/retrain/"):
		s.withScope(scopeAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			model := strings.TrimPrefix(r.URL.Path, "/v1/learning/retrain/")
			if !slices.Contains(s.cfg.learningModels(), model) {
				w.WriteHeader(http.StatusNotFound)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf("%q is not a model the loop retrains", model)})
				return
			}
			_ = json.NewEncoder(w).Encode(loop.Retrain(r.Context(), model, learning.TriggerManual))
		})).ServeHTTP(w, r)
	default:
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "GET /v1/learning/runs or POST /v1/learning/retrain/{model}"})
	}
}

// runtimeRegistry adapts the inference runtime to learning.Registry and
// learning.Source: the labelled windows are the runtime's decisions
// labelled by operator feedback (Runtime.LabelledWindows).
type runtimeRegistry struct{ rt *inference.Runtime }

// LearningRegistry returns rt as the retraining loop sees it: its
// registry (learning.Registry) and its feedback-labelled windows
// (learning.Source), for a loop built outside the service (the twin
// gate's tests).
func LearningRegistry(rt *inference.Runtime) interface {
	learning.Registry
	learning.Source
} {
	return runtimeRegistry{rt}
}

func (a runtimeRegistry) Features(model string) ([]string, error) {
	names, _, err := a.rt.ModelFeatures(model)
	return names, err
}

func (a runtimeRegistry) Upload(ctx context.Context, model string, file []byte) (string, error) {
	vi, err := a.rt.InstallVersion(ctx, model, "", file, "retrained")
	return vi.Version, err
}

func (a runtimeRegistry) Shadow(ctx context.Context, model, version string) error {
	return a.rt.SetShadow(ctx, model, version)
}

func (a runtimeRegistry) Promote(ctx context.Context, model, version string) error {
	return a.rt.Promote(ctx, model, version)
}

func (a runtimeRegistry) Live(ctx context.Context, model string) (string, error) {
	return a.rt.LiveVersion(ctx, model)
}

func (a runtimeRegistry) Scorer(ctx context.Context, model, version string, names []string) (learning.Scorer, error) {
	f, err := a.rt.VersionScorer(ctx, model, version, names)
	if err != nil {
		return nil, err
	}
	return learning.Scorer(f), nil
}

func (a runtimeRegistry) Threshold(model string) (float64, error) { return a.rt.Threshold(model) }

func (a runtimeRegistry) Labelled(ctx context.Context, model string, names []string) (*learning.Dataset, error) {
	ds, err := a.rt.LabelledWindows(ctx, model, names)
	if err != nil && !errors.Is(err, learning.ErrBadInput) {
		return nil, fmt.Errorf("labelled windows: %w", err)
	}
	return ds, err
}
