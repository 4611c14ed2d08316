package service

// An edge's part in federated learning (docs/learning.md, "Federated
// learning"): the participant, a trainer that reads the edge's
// feedback-labelled windows at each round, and the installer that makes
// each new global a version of the edge's logistic model.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/federated"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/learning"
)

// federatedEdge is an edge's federated learning: the component
// "federated" (a federated.Participant on the embedded server's
// connection, a leaf node of the hub), its trainer and its installer.
type federatedEdge struct {
	cfg FederatedConfig // defaults applied
	rt  *inference.Runtime
	log *slog.Logger
	// trainer is the edge's own (an *edgeTrainer) unless
	// SetFederatedTrainer replaced it.
	trainer federated.Trainer

	skips    *prometheus.CounterVec
	badRows  prometheus.Counter
	rows     prometheus.Gauge
	installs *prometheus.CounterVec

	// pending holds the newest global not installed yet: the participant
	// hands it over without waiting, the installer takes it.
	pending chan federated.Global
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	p       *federated.Participant
}

// buildFederatedEdge adds an edge's component "federated" after the
// inference component.
func (s *Service) buildFederatedEdge() error {
	rt := s.pipe.runtime
	if rt == nil {
		return errors.New("federated: an edge needs its inference runtime")
	}
	e := &federatedEdge{
		cfg: s.cfg.Federated.withDefaults(), rt: rt, log: s.log.With("component", "federated"),
		skips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fl_edge_skips_total",
			Help: "Federated rounds the edge sat out before sending anything, by reason (too_few: fewer labelled windows than federated.min_rows; features: the labels model does not read the federated features).",
		}, []string{"reason"}),
		badRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_fl_edge_rows_refused_total",
			Help: "Labelled windows left out of a federated round because the feature space refused one of their values (an infinite or out-of-range feature).",
		}),
		rows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "netfeat_fl_edge_labelled_rows", Help: "Labelled windows the edge found for the last federated round it prepared.",
		}),
		installs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fl_edge_installs_total",
			Help: "New global models the edge installed into its registry (installed) or could not (failed: the current version stays).",
		}, []string{"result"}),
		pending: make(chan federated.Global, 1),
	}
	if err := register(s.reg, e.skips, e.badRows, e.rows, e.installs); err != nil {
		return err
	}
	e.trainer = &edgeTrainer{e: e}
	s.flEdge = e
	site, conn := s.cfg.EdgeSite(), s.nats.Conn
	s.group.Add(ComponentFuncs{
		ComponentName: "federated",
		StartFunc: func(ctx context.Context) error {
			p, err := federated.NewParticipant(e.cfg.Config, site, conn(), e.trainer, s.reg, e.log)
			if err != nil {
				return err
			}
			p.SetGlobalHandler(e.offer)
			run, cancel := context.WithCancel(context.WithoutCancel(ctx))
			e.cancel = cancel
			e.wg.Add(1)
			go e.installLoop(run)
			if err := p.Start(ctx); err != nil {
				cancel()
				e.wg.Wait()
				return err
			}
			e.p = p
			return nil
		},
		StopFunc: func(ctx context.Context) error {
			var err error
			if e.p != nil {
				err = e.p.Stop(ctx)
			}
			if e.cancel != nil {
				e.cancel()
			}
			e.wg.Wait()
			return err
		},
	})
	return nil
}

// register registers cs with reg, naming the collector that failed.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("federated: register metrics: %w", err)
		}
	}
	return nil
}

// offer hands g to the installer without waiting: a global it has not
// taken yet is replaced by the newer one.
func (e *federatedEdge) offer(g federated.Global) {
	for {
		select {
		case e.pending <- g:
			return
		default:
		}
		select {
		case <-e.pending:
		default:
		}
	}
}

func (e *federatedEdge) installLoop(ctx context.Context) {
	defer e.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case g := <-e.pending:
			if err := e.install(ctx, g); err != nil {
				e.installs.WithLabelValues("failed").Inc()
				e.log.Warn("federated: a new global model could not be installed; the current version stays",
					"model", e.cfg.Model, "global_version", g.Version, "err", err)
			}
		}
	}
}

// FederatedVersion is the registry version an edge gives the global of
// version v: "fl-<v>".
func FederatedVersion(v uint64) string { return fmt.Sprintf("%s%d", federatedVersionPrefix, v) }

// federatedVersionPrefix begins the name of every federated version.
const federatedVersionPrefix = "fl-"

// keepFederatedVersions is how many federated versions (fl-<round>) of
// the model an edge keeps besides its live, shadow and rollback ones: a
// round an hour would otherwise add 8,760 files a year.
const keepFederatedVersions = 10

// prune removes the model's federated versions beyond the newest
// keepFederatedVersions, but never the live, shadow or rollback version
// (RemoveVersion refuses them). Other versions (uploaded, retrained) are
// not touched.
func (e *federatedEdge) prune(ctx context.Context, model string) {
	mi, err := e.rt.Model(ctx, model)
	if err != nil {
		e.log.Warn("federated: old versions not pruned", "model", model, "err", err)
		return
	}
	var fl []string
	for _, v := range mi.Versions { // oldest first
		if strings.HasPrefix(v.Version, federatedVersionPrefix) {
			fl = append(fl, v.Version)
		}
	}
	for _, v := range fl[:max(0, len(fl)-keepFederatedVersions)] {
		if err := e.rt.RemoveVersion(ctx, model, v); err != nil && !errors.Is(err, inference.ErrVersionInUse) {
			e.log.Warn("federated: old version not pruned", "model", model, "version", v, "err", err)
		}
	}
}

// install makes global g a version of the edge's model federated.model,
// the shadow or the live one as federated.install says. Version 0 (the
// hub's zero weights, before any round) is not installed; a version
// already installed with the same content is left as it is.
func (e *federatedEdge) install(ctx context.Context, g federated.Global) error {
	if e.cfg.Install == FederatedOff || g.Version == 0 {
		return nil
	}
	m, err := learning.FederatedModel(e.cfg.Features, g.Weights, e.cfg.Train.L2, learning.TrainInfo{
		Rows:   int(g.Samples),
		Source: fmt.Sprintf("federated %s round %d: %d edges, %d samples", e.cfg.Model, g.Version, g.Edges, g.Samples),
	})
	if err != nil {
		return err
	}
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	model, version := e.cfg.Model, FederatedVersion(g.Version)
	if _, err := e.rt.InstallVersion(ctx, model, version, b, "federated"); err != nil {
		return err
	}
	mi, err := e.rt.Model(ctx, model)
	if err != nil {
		return err
	}
	switch {
	case mi.Live == version || (e.cfg.Install == FederatedShadow && mi.Shadow == version):
		return nil // installed before (a repeated global)
	case e.cfg.Install == FederatedLive:
		err = e.rt.Promote(ctx, model, version)
	default:
		err = e.rt.SetShadow(ctx, model, version)
	}
	if err != nil {
		return err
	}
	e.installs.WithLabelValues("installed").Inc()
	e.prune(ctx, model)
	e.log.Info("federated: new global model installed", "model", model, "version", version, "as", e.cfg.Install,
		"edges", g.Edges, "samples", g.Samples)
	return nil
}

// edgeTrainer is an edge's own federated trainer: at each round
// (Prepare) it reads the windows that operator feedback labels
// (Runtime.LabelledWindows of federated.labels), maps them into the
// feature space and trains a learning.FederatedTrainer on them (Train).
type edgeTrainer struct {
	e  *federatedEdge
	mu sync.Mutex
	t  *learning.FederatedTrainer // the last round's, nil before one
}

// Prepare builds the round's training set; too few rows, or a labels
// model that does not read the features, sit the round out
// (federated.ErrSkipRound).
func (t *edgeTrainer) Prepare(ctx context.Context, round uint64) error {
	cfg := t.e.cfg
	names := cfg.Features.Names()
	t.mu.Lock()
	t.t = nil
	t.mu.Unlock()
	reads, _, err := t.e.rt.ModelFeatures(cfg.Labels)
	if err != nil {
		return fmt.Errorf("labels model %s: %w", cfg.Labels, err)
	}
	for _, n := range names {
		if !slices.Contains(reads, n) {
			t.e.skips.WithLabelValues("features").Inc()
			return fmt.Errorf("the labels model %s does not read %s (it reads %v): its decisions cannot label the federated features: %w",
				cfg.Labels, n, reads, federated.ErrSkipRound)
		}
	}
	raw, err := t.e.rt.LabelledWindows(ctx, cfg.Labels, names)
	if err != nil {
		return fmt.Errorf("labelled windows of %s: %w", cfg.Labels, err)
	}
	t.e.rows.Set(float64(raw.Len()))
	if raw.Len() < cfg.MinRows {
		t.e.skips.WithLabelValues("too_few").Inc()
		return fmt.Errorf("%d windows of model %s labelled by feedback, federated.min_rows is %d: %w",
			raw.Len(), cfg.Labels, cfg.MinRows, federated.ErrSkipRound)
	}
	ds := &learning.Dataset{Names: names}
	var z []float64
	bad := 0
	for i := range raw.Len() {
		z, err = cfg.Features.Apply(z[:0], raw.Row(i))
		if err == nil {
			err = ds.Add(z, raw.Y[i])
		}
		if err != nil {
			// One window the feature space refuses (an infinite rate)
			// is left out, not the edge out of every round while it
			// stays among the labelled windows.
			if bad == 0 {
				t.e.log.Warn("federated: a labelled window left out of the round", "round", round, "window", i, "err", err)
			}
			bad++
			continue
		}
	}
	t.e.badRows.Add(float64(bad))
	if ds.Len() < cfg.MinRows {
		t.e.skips.WithLabelValues("too_few").Inc()
		return fmt.Errorf("%d usable windows of model %s labelled by feedback (%d left out), federated.min_rows is %d: %w",
			ds.Len(), cfg.Labels, bad, cfg.MinRows, federated.ErrSkipRound)
	}
	ft, err := learning.NewFederatedTrainer(ds, cfg.Train)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.t = ft
	t.mu.Unlock()
	pos := 0
	for _, y := range ds.Y {
		pos += int(y)
	}
	t.e.log.Info("federated: training on the edge's labelled windows", "round", round, "rows", ds.Len(), "positives", pos)
	return nil
}

// Train trains the round's set prepared by Prepare.
func (t *edgeTrainer) Train(ctx context.Context, global []float64) ([]float64, int, error) {
	t.mu.Lock()
	ft := t.t
	t.mu.Unlock()
	if ft == nil {
		return nil, 0, errors.New("no training set prepared for this round")
	}
	return ft.Train(ctx, global)
}
