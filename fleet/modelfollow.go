package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/inference"
)

// errRefused marks a published version the edge will not install until the
// policy changes: retrying cannot help.
type errRefused struct {
	reason string
	err    error
}

func (e *errRefused) Error() string { return e.err.Error() }
func (e *errRefused) Unwrap() error { return e.err }

// ModelFollower runs on an edge: it follows the hub's model policy and
// makes the edge's registry run it. It watches the policy bucket through
// the hub's JetStream domain across the leaf connection; for each model it
// downloads the versions it lacks from the Object Store (refusing an object
// larger than max_model_bytes or whose bytes do not have the policy's
// SHA-256), installs them through the registry's own checks, promotes the
// live version and sets the shadow one, and writes what the edge runs into
// the hub's status bucket.
//
// Whatever fails leaves the edge's registry as it was: the edge keeps
// scoring with its current versions. A refused version (refused) is not
// tried again until the policy changes; a failure for want of the hub (a
// cut link) is retried every retry_delay, and the watch is opened again, so
// the edge catches up when the link returns.
type ModelFollower struct {
	cfg  ModelRolloutConfig
	site string
	js   jetstream.JetStream
	inst ModelInstaller
	log  *slog.Logger
	m    *followerMetrics

	// Owned by the run goroutine.
	applied map[string]uint64      // model → policy revision applied or refused
	retry   map[string]ModelPolicy // model → policy whose apply failed for want of the hub
	unsent  map[string]ModelStatus // model → status not yet written to the hub

	mu       sync.Mutex
	statuses map[string]ModelStatus // model → latest status

	cancel context.CancelFunc
	done   chan struct{}
}

type followerMetrics struct {
	installed prometheus.Counter
	refused   *prometheus.CounterVec
	errors    prometheus.Counter
}

// NewModelFollower validates cfg and returns the follower of site that
// installs into inst and reaches the hub through nc, a connection to the
// edge's own NATS server (a leaf node of the hub). reg receives the metrics
// (nil: none); log nil discards logs. It makes no network calls.
func NewModelFollower(cfg ModelRolloutConfig, site string, nc *nats.Conn, inst ModelInstaller, reg prometheus.Registerer, log *slog.Logger) (*ModelFollower, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := ValidateSite(site, cfg.withDefaults().HubDomain); err != nil {
		return nil, err
	}
	if nc == nil || inst == nil {
		return nil, errors.New("fleet: model follower needs a NATS connection and a registry")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	js, err := jetstream.NewWithDomain(nc, cfg.HubDomain)
	if err != nil {
		return nil, fmt.Errorf("fleet: jetstream of domain %s: %w", cfg.HubDomain, err)
	}
	m := &followerMetrics{
		installed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_fleet_model_versions_installed_total", Help: "Model versions the edge downloaded from the hub and installed.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_model_refused_total", Help: "Published model versions the edge refused (checksum, oversized, invalid); it keeps its current ones.",
		}, []string{"reason"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_fleet_model_sync_errors_total", Help: "Failures to reach the hub's roll-out buckets; retried.",
		}),
	}
	if err := registerAll(reg, m.installed, m.refused, m.errors); err != nil {
		return nil, err
	}
	return &ModelFollower{
		cfg: cfg, site: site, js: js, inst: inst, log: log, m: m,
		applied: map[string]uint64{}, retry: map[string]ModelPolicy{}, unsent: map[string]ModelStatus{},
		statuses: map[string]ModelStatus{},
	}, nil
}

// Start starts following in the background; it does not wait for the hub.
func (f *ModelFollower) Start(ctx context.Context) error {
	if f.cancel != nil {
		return errors.New("fleet: model follower started twice")
	}
	var rctx context.Context
	rctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
	f.done = make(chan struct{})
	go func() { defer close(f.done); f.run(rctx) }()
	f.log.Info("fleet model follower started", "site", f.site, "hub_domain", f.cfg.HubDomain, "policy", f.cfg.PolicyBucket)
	return nil
}

// Stop stops following and waits for an installation in flight.
func (f *ModelFollower) Stop(ctx context.Context) error {
	if f.cancel == nil {
		return nil
	}
	f.cancel()
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("fleet: model follower stop: %w", ctx.Err())
	}
}

// Status returns the edge's latest status of model, whether or not it has
// reached the hub yet.
func (f *ModelFollower) Status(model string) (ModelStatus, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.statuses[model]
	return st, ok
}

// errHubBack ends a watch that saw the hub go away and come back: the
// watch is opened again at once, and its first values are the current
// policy of every model.
var errHubBack = errors.New("the hub is reachable again")

// run follows the policy until ctx ends: it (re)opens the watch whenever
// it fails, waiting retry_delay in between.
func (f *ModelFollower) run(ctx context.Context) {
	failing := false
	for ctx.Err() == nil {
		err := f.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errHubBack) {
			f.log.Info("fleet: hub reachable again; reading the model policy", "site", f.site)
			failing = false
			continue
		}
		f.m.errors.Inc()
		if !failing { // once per outage, not every retry
			f.log.Warn("fleet: model policy not reachable; the edge keeps its models", "err", err, "retry", f.cfg.RetryDelay)
		}
		failing = true
		select {
		case <-ctx.Done():
		case <-time.After(f.cfg.RetryDelay):
		}
	}
}

// follow watches the policy bucket and applies each change; every
// retry_delay it asks the hub for the bucket's state, retries what failed
// for want of the hub and sends unsent statuses, and every resync it reads
// the whole bucket again. It returns when the watch cannot be opened or
// ends, and errHubBack when the hub answers again after it did not: the
// watch's consumer may have missed what changed meanwhile (JetStream sets
// an ordered consumer up again only after missed heartbeats and with a
// back-off), so a new watch reads the current state instead.
func (f *ModelFollower) follow(ctx context.Context) error {
	octx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
	kv, err := f.js.KeyValue(octx, f.cfg.PolicyBucket)
	cancel()
	if err != nil {
		return fmt.Errorf("policy bucket %s: %w", f.cfg.PolicyBucket, err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch policy bucket %s: %w", f.cfg.PolicyBucket, err)
	}
	defer w.Stop()
	f.log.Debug("fleet: watching the model policy", "bucket", f.cfg.PolicyBucket)
	tick := time.NewTicker(f.cfg.RetryDelay)
	defer tick.Stop()
	resync := time.NewTicker(f.cfg.Resync)
	defer resync.Stop()
	away := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("policy watch ended")
			}
			if e != nil && e.Operation() == jetstream.KeyValuePut {
				f.entry(ctx, e)
			}
		case <-tick.C:
			if f.hubAway(ctx, kv) {
				away = true
				continue
			}
			if away {
				return errHubBack
			}
			f.flush(ctx)
		case <-resync.C:
			if err := f.resync(ctx, kv); err != nil {
				return err
			}
		}
	}
}

// hubAway reports whether the policy bucket does not answer.
func (f *ModelFollower) hubAway(ctx context.Context, kv jetstream.KeyValue) bool {
	octx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
	defer cancel()
	_, err := kv.Status(octx)
	return err != nil && ctx.Err() == nil // a timeout of octx counts: no answer

}

// resync applies every policy whose revision was not applied yet.
func (f *ModelFollower) resync(ctx context.Context, kv jetstream.KeyValue) error {
	octx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
	defer cancel()
	keys, err := kv.ListKeys(octx)
	if err != nil {
		return fmt.Errorf("list policy bucket: %w", err)
	}
	var names []string
	for k := range keys.Keys() {
		names = append(names, k)
	}
	for _, k := range names {
		e, err := kv.Get(octx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read policy %s: %w", k, err)
		}
		f.entry(ctx, e)
	}
	return nil
}

// entry applies one policy entry unless its revision was applied.
func (f *ModelFollower) entry(ctx context.Context, e jetstream.KeyValueEntry) {
	if f.applied[e.Key()] == e.Revision() {
		return
	}
	var p ModelPolicy
	if err := json.Unmarshal(e.Value(), &p); err != nil || p.Model != e.Key() || p.Live == "" {
		f.m.refused.WithLabelValues(RefusedInvalid).Inc()
		f.log.Error("fleet: malformed model policy; ignored", "key", e.Key(), "revision", e.Revision(), "err", err)
		f.applied[e.Key()] = e.Revision()
		return
	}
	delete(f.retry, p.Model)
	if f.apply(ctx, p, false) {
		f.applied[p.Model] = e.Revision()
	} else {
		f.retry[p.Model] = p
		f.applied[p.Model] = 0
	}
}

// flush retries the policies that failed for want of the hub and writes
// the statuses the hub has not got.
func (f *ModelFollower) flush(ctx context.Context) {
	for model, p := range f.retry {
		if f.apply(ctx, p, true) {
			delete(f.retry, model)
		}
	}
	for model, st := range f.unsent {
		if f.report(ctx, st) != nil {
			return // the hub is away; the next flush tries again
		}
		delete(f.unsent, model)
	}
}

// apply makes the registry run p and reports the outcome. It returns
// false when it failed for want of the hub (to be retried), true when it
// succeeded or refused the policy. A retry logs such a failure at debug
// level: the first attempt said it.
func (f *ModelFollower) apply(ctx context.Context, p ModelPolicy, retry bool) bool {
	err := f.install(ctx, p)
	var ref *errRefused
	done := err == nil || errors.As(err, &ref)
	switch {
	case ref != nil:
		f.m.refused.WithLabelValues(ref.reason).Inc()
		f.log.Error("fleet: published model version refused; the edge keeps its current versions",
			"model", p.Model, "live", p.Live, "shadow", p.Shadow, "reason", ref.reason, "err", err)
	case err != nil:
		f.m.errors.Inc()
		level := slog.LevelWarn
		if retry {
			level = slog.LevelDebug
		}
		f.log.Log(ctx, level, "fleet: could not apply model policy; retrying", "model", p.Model, "live", p.Live, "err", err)
	}
	st := ModelStatus{Site: f.site, Model: p.Model, WantLive: p.Live, WantShadow: p.Shadow, Updated: time.Now().UTC()}
	if err != nil {
		st.Error = err.Error()
	}
	if mi, merr := f.inst.Model(ctx, p.Model); merr == nil {
		st.Live, st.Shadow = mi.Live, mi.Shadow
	}
	f.mu.Lock()
	f.statuses[p.Model] = st
	f.mu.Unlock()
	if f.report(ctx, st) != nil {
		f.unsent[p.Model] = st
	} else {
		delete(f.unsent, p.Model)
	}
	return done
}

// install downloads and installs what p names and the registry lacks,
// then promotes and shadows as p says.
func (f *ModelFollower) install(ctx context.Context, p ModelPolicy) error {
	mi, err := f.inst.Model(ctx, p.Model)
	if err != nil {
		return &errRefused{RefusedInvalid, fmt.Errorf("model %s: %w", p.Model, err)}
	}
	if string(mi.Kind) != p.Kind {
		return &errRefused{RefusedInvalid, fmt.Errorf("model %s is %s on this edge, the hub publishes %s", p.Model, mi.Kind, p.Kind)}
	}
	for _, v := range []struct{ version, sum string }{{p.Live, p.LiveSHA256}, {p.Shadow, p.ShadowSHA256}} {
		if v.version == "" {
			continue
		}
		if err := f.ensure(ctx, mi, p.Model, v.version, v.sum); err != nil {
			return err
		}
	}
	if mi.Live != p.Live {
		if err := f.inst.Promote(ctx, p.Model, p.Live); err != nil {
			return &errRefused{RefusedInvalid, fmt.Errorf("promote %s %s: %w", p.Model, p.Live, err)}
		}
		f.log.Info("fleet: model version live from the hub", "model", p.Model, "version", p.Live)
		if mi, err = f.inst.Model(ctx, p.Model); err != nil {
			return err
		}
	}
	if mi.Shadow != p.Shadow {
		if err := f.inst.SetShadow(ctx, p.Model, p.Shadow); err != nil {
			return &errRefused{RefusedInvalid, fmt.Errorf("shadow %s %q: %w", p.Model, p.Shadow, err)}
		}
		f.log.Info("fleet: model shadow version from the hub", "model", p.Model, "version", p.Shadow)
	}
	return nil
}

// ensure installs version of model with SHA-256 sum unless the registry
// holds it.
func (f *ModelFollower) ensure(ctx context.Context, mi inference.ModelInfo, model, version, sum string) error {
	for _, vi := range mi.Versions {
		if vi.Version != version {
			continue
		}
		if vi.SHA256 != sum {
			return &errRefused{RefusedInvalid, fmt.Errorf("model %s %s: %w on this edge with sha256 %s, the hub's is %s",
				model, version, inference.ErrVersionExists, vi.SHA256, sum)}
		}
		return nil
	}
	b, err := f.download(ctx, model, version, sum)
	if err != nil {
		return err
	}
	if _, err := f.inst.InstallVersion(ctx, model, version, b, "hub"); err != nil {
		return &errRefused{RefusedInvalid, fmt.Errorf("install %s %s: %w", model, version, err)}
	}
	f.m.installed.Inc()
	f.log.Info("fleet: model version installed from the hub", "model", model, "version", version, "sha256", sum, "bytes", len(b))
	return nil
}

// download reads a version's object from the hub and checks its size and
// SHA-256.
func (f *ModelFollower) download(ctx context.Context, model, version, sum string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
	defer cancel()
	objs, err := f.js.ObjectStore(ctx, f.cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("model bucket %s: %w", f.cfg.Bucket, err)
	}
	name := ModelObjectName(model, version)
	info, err := objs.GetInfo(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("model object %s: %w", name, err)
	}
	if int64(info.Size) > f.cfg.MaxModelBytes {
		return nil, &errRefused{RefusedOversize, fmt.Errorf("model object %s: %d bytes, max_model_bytes is %d", name, info.Size, f.cfg.MaxModelBytes)}
	}
	r, err := objs.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("model object %s: %w", name, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, f.cfg.MaxModelBytes+1))
	switch {
	case errors.Is(err, jetstream.ErrDigestMismatch):
		return nil, &errRefused{RefusedChecksum, fmt.Errorf("model object %s: %w", name, err)}
	case err != nil:
		return nil, fmt.Errorf("read model object %s: %w", name, err)
	case int64(len(b)) > f.cfg.MaxModelBytes:
		return nil, &errRefused{RefusedOversize, fmt.Errorf("model object %s: more than max_model_bytes (%d)", name, f.cfg.MaxModelBytes)}
	}
	if got := sha256Hex(b); got != sum {
		return nil, &errRefused{RefusedChecksum, fmt.Errorf("model object %s: sha256 %s, the policy says %s", name, got, sum)}
	}
	return b, nil
}

// report writes st into the hub's status bucket.
func (f *ModelFollower) report(ctx context.Context, st ModelStatus) error {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.OpTimeout)
	defer cancel()
	kv, err := f.js.KeyValue(ctx, f.cfg.StatusBucket)
	if err != nil {
		return fmt.Errorf("status bucket %s: %w", f.cfg.StatusBucket, err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, ModelStatusKey(f.site, st.Model), b); err != nil {
		return fmt.Errorf("report status of %s: %w", st.Model, err)
	}
	return nil
}
