package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/inference"
)

// ModelPublisher runs on the hub: it mirrors the hub's model registry into
// the roll-out buckets. Every version that is stored, live or in shadow
// goes into the Object Store bucket (once: an object with the version's
// SHA-256 is not put again), and each model's live and shadow versions into
// the policy bucket, which edges follow. It publishes every model at Start
// and each model again after a change the registry reports; what fails is
// retried after retry_delay until it succeeds, so a registry change made
// while JetStream is unavailable reaches the edges when it is back.
type ModelPublisher struct {
	cfg ModelRolloutConfig
	js  jetstream.JetStream
	src ModelSource
	log *slog.Logger
	m   *publisherMetrics

	mu    sync.Mutex
	dirty map[string][]string // model → versions added since the last publish
	kick  chan struct{}

	objs   jetstream.ObjectStore
	policy jetstream.KeyValue
	cancel context.CancelFunc
	done   chan struct{}
}

type publisherMetrics struct {
	objects  prometheus.Counter
	policies prometheus.Counter
	errors   prometheus.Counter
}

// NewModelPublisher validates cfg and returns a publisher of src's
// registry that uses nc, a connection to the hub's JetStream cluster. reg
// receives the metrics (nil: none); log nil discards logs. It makes no
// network calls.
func NewModelPublisher(cfg ModelRolloutConfig, nc *nats.Conn, src ModelSource, reg prometheus.Registerer, log *slog.Logger) (*ModelPublisher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc == nil || src == nil {
		return nil, errors.New("fleet: model publisher needs a NATS connection and a registry")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("fleet: jetstream: %w", err)
	}
	m := &publisherMetrics{
		objects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_fleet_model_objects_published_total", Help: "Model versions the hub put into the model Object Store bucket.",
		}),
		policies: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_fleet_model_policies_published_total", Help: "Changes of a model's desired state the hub wrote into the policy bucket.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_fleet_model_publish_errors_total", Help: "Model publications that failed; retried after retry_delay.",
		}),
	}
	if err := registerAll(reg, m.objects, m.policies, m.errors); err != nil {
		return nil, err
	}
	return &ModelPublisher{
		cfg: cfg.withDefaults(), js: js, src: src, log: log, m: m,
		dirty: map[string][]string{}, kick: make(chan struct{}, 1),
	}, nil
}

// Start creates or updates the three buckets (replicas from the
// configuration), starts observing the registry and publishes every model.
func (p *ModelPublisher) Start(ctx context.Context) error {
	objs, err := p.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: p.cfg.Bucket, Description: "netfeat fleet: model versions, object <model>@<version>",
		Storage: jetstream.FileStorage, Replicas: p.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("fleet: model bucket %s: %w", p.cfg.Bucket, err)
	}
	policy, err := p.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: p.cfg.PolicyBucket, Description: "netfeat fleet: desired live and shadow version per model",
		Storage: jetstream.FileStorage, Replicas: p.cfg.Replicas, History: 5,
	})
	if err != nil {
		return fmt.Errorf("fleet: model policy bucket %s: %w", p.cfg.PolicyBucket, err)
	}
	if _, err := p.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: p.cfg.StatusBucket, Description: "netfeat fleet: model versions each edge runs, key <site>.<model>",
		Storage: jetstream.FileStorage, Replicas: p.cfg.Replicas, History: 1,
	}); err != nil {
		return fmt.Errorf("fleet: model status bucket %s: %w", p.cfg.StatusBucket, err)
	}
	ms, err := p.src.Models(ctx)
	if err != nil {
		return fmt.Errorf("fleet: model publisher: %w", err)
	}
	p.objs, p.policy = objs, policy
	for _, mi := range ms {
		if versioned(mi.Kind) {
			p.mark(mi.Name, "")
		}
	}
	var rctx context.Context
	rctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.done = make(chan struct{})
	p.src.ObserveRegistry(p.changed)
	go func() { defer close(p.done); p.run(rctx) }()
	p.log.Info("fleet model publisher started", "bucket", p.cfg.Bucket, "policy", p.cfg.PolicyBucket, "models", len(ms))
	return nil
}

// Stop stops observing the registry and waits for a publication in
// flight. What was not published yet is published by the next Start,
// which publishes every model.
func (p *ModelPublisher) Stop(ctx context.Context) error {
	if p.cancel == nil {
		return nil
	}
	p.src.ObserveRegistry(nil)
	p.cancel()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("fleet: model publisher stop: %w", ctx.Err())
	}
}

// changed is the registry observer: it only marks the model, the
// publisher's goroutine does the work.
func (p *ModelPublisher) changed(c inference.RegistryChange) { p.mark(c.Model, c.Version) }

func (p *ModelPublisher) mark(model, version string) {
	p.mu.Lock()
	vs := p.dirty[model]
	if version != "" && !slices.Contains(vs, version) {
		vs = append(vs, version)
	}
	p.dirty[model] = vs
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// versioned reports whether models of kind k have registry versions
// (rules come from the configuration).
func versioned(k inference.Kind) bool { return k != inference.KindRule && k != inference.KindEventRule }

func (p *ModelPublisher) run(ctx context.Context) {
	retry := time.NewTimer(0)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		case <-retry.C:
		}
		p.mu.Lock()
		work := p.dirty
		p.dirty = map[string][]string{}
		p.mu.Unlock()
		failed := false
		for model, added := range work {
			if err := p.publish(ctx, model, added); err != nil {
				if ctx.Err() != nil {
					return
				}
				failed = true
				p.m.errors.Inc()
				p.log.Warn("fleet: could not publish model; retrying", "model", model, "err", err, "retry", p.cfg.RetryDelay)
				p.mu.Lock()
				for _, v := range added {
					if !slices.Contains(p.dirty[model], v) {
						p.dirty[model] = append(p.dirty[model], v)
					}
				}
				if _, ok := p.dirty[model]; !ok {
					p.dirty[model] = nil
				}
				p.mu.Unlock()
			}
		}
		if failed {
			retry.Reset(p.cfg.RetryDelay)
		}
	}
}

// publish puts the model's added, live and shadow versions into the Object
// Store, then its desired state into the policy bucket: an edge that sees
// the policy finds the objects.
func (p *ModelPublisher) publish(ctx context.Context, model string, added []string) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.OpTimeout)
	defer cancel()
	mi, err := p.src.Model(ctx, model)
	if err != nil {
		return err
	}
	if !versioned(mi.Kind) {
		return nil
	}
	pol := ModelPolicy{Model: model, Kind: string(mi.Kind), Live: mi.Live, Shadow: mi.Shadow}
	for _, v := range append(added, mi.Live, mi.Shadow) {
		if v == "" {
			continue
		}
		sum, err := p.putVersion(ctx, model, v)
		if err != nil {
			return err
		}
		if v == pol.Live {
			pol.LiveSHA256 = sum
		}
		if v == pol.Shadow {
			pol.ShadowSHA256 = sum
		}
	}
	if pol.Live == "" {
		return nil
	}
	cur, err := p.policy.Get(ctx, model)
	switch {
	case err == nil:
		var old ModelPolicy
		if json.Unmarshal(cur.Value(), &old) == nil && old.same(pol) {
			return nil
		}
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return fmt.Errorf("read policy of %s: %w", model, err)
	}
	pol.Updated = time.Now().UTC()
	b, err := json.Marshal(pol)
	if err != nil {
		return err
	}
	if _, err := p.policy.Put(ctx, model, b); err != nil {
		return fmt.Errorf("write policy of %s: %w", model, err)
	}
	p.m.policies.Inc()
	p.log.Info("fleet: model policy published", "model", model, "live", pol.Live, "shadow", pol.Shadow)
	return nil
}

// putVersion puts a version into the Object Store unless an object with
// its SHA-256 is there, and returns the SHA-256.
func (p *ModelPublisher) putVersion(ctx context.Context, model, version string) (string, error) {
	vi, b, err := p.src.VersionArtifact(ctx, model, version)
	if err != nil {
		return "", err
	}
	name := ModelObjectName(model, version)
	info, err := p.objs.GetInfo(ctx, name)
	if err == nil && info.Metadata[MetaSHA256] == vi.SHA256 {
		return vi.SHA256, nil
	}
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", fmt.Errorf("model object %s: %w", name, err)
	}
	meta := jetstream.ObjectMeta{
		Name: name, Description: fmt.Sprintf("netfeat model %s version %s", model, version),
		Metadata: map[string]string{
			MetaModel: model, MetaVersion: version, MetaKind: string(vi.Kind), MetaSHA256: vi.SHA256,
			MetaCreated: vi.Created.UTC().Format(time.RFC3339Nano),
		},
	}
	if _, err := p.objs.Put(ctx, meta, bytes.NewReader(b)); err != nil {
		return "", fmt.Errorf("put model object %s: %w", name, err)
	}
	p.m.objects.Inc()
	p.log.Info("fleet: model version published", "model", model, "version", version, "sha256", vi.SHA256, "bytes", len(b))
	return vi.SHA256, nil
}
