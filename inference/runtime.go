// Package inference scores closed feature windows and state events with
// models and rules, runs each (model, entity) action through its
// lifecycle, and publishes the decisions on NATS.
//
// A Runtime receives rows through HandleRow (a schema.FeatureRowHandler
// that never blocks) and state events through HandleEvent, shards them by
// entity onto worker goroutines (worker.go), runs every model and rule
// bound to the row's view or the event's metric (events.go), advances the
// entity's action lifecycle (lifecycle.go: pending, firing, resolved), and
// publishes each transition, and each repeat of a firing action, as JSON
// (schema.Decision) on netfeat.decisions.<model>.<device> with the
// decision id as Nats-Msg-Id. Decisions that cannot reach NATS wait in a
// Badger outbox and drain in order when it is back.
//
// Models are versioned in a registry (artifact files plus Badger
// metadata); a version can score in shadow beside the live one, and
// promote and rollback swap versions without a restart. A model that fails
// or overruns its latency budget falls back to its previous version or to
// its rule, and the decision says so in Fallback. See docs/inference.md.
package inference

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/internal/badgerdir"
	"github.com/netfeat/netfeat/schema"
)

// ErrRuleNotVersioned is returned by registry operations on a rule: rules
// come from the configuration and change with it.
var ErrRuleNotVersioned = errors.New("rules are configured, not versioned")

// Runtime is the inference stage. Create it with New (no I/O), then Start
// (opens its files, starts its goroutines), and Stop (releases
// everything). HandleRow and HandleEvent are safe for concurrent use from
// the moment New returns (rows that arrive before Start wait in the queue)
// until Stop; the registry, history and HTTP methods are for after Start.
type Runtime struct {
	cfg Config
	// gateMetric is the promotion gate's metric for HTTP promote requests
	// that name none (SetGateMetric).
	gateMetric string
	conn       func() *nats.Conn // called once by Start
	dir        string
	log        *slog.Logger
	m          *metrics
	// Opened by Start, before the workers start; read-only after.
	db     *badger.DB
	reg    registry
	outbox atomic.Pointer[outbox] // also read by the metrics' scrape
	regM   sync.Mutex             // serialises registry changes
	// observer, when set, is told about registry changes (observe.go).
	observer atomic.Pointer[func(RegistryChange)]

	slots       map[string]*slot   // by model or rule name
	views       map[string][]*slot // window-triggered slots by view; read-only after New
	eventRules  map[string][]*slot // event rules by state metric; read-only after New
	eventModels []*slot            // models triggered by events; read-only after New
	order       []*slot            // configuration order

	states     entityStates
	latest     atomic.Pointer[LatestFunc]
	onDecision atomic.Pointer[DecisionHandler] // nil: none (SetDecisionHandler)
	onDrift    atomic.Pointer[DriftHandler]    // nil: none (SetDriftHandler)
	drift      driftRecorder                   // PSI evaluations for the `drift` table
	evNamesMu  sync.Mutex
	evNames    map[string][]string // view → names of its event rows
	life       *lifeStore
	// transitions are the observers of action transitions
	// (ObserveTransitions); nil: none. Replaced whole on each addition.
	transitions atomic.Pointer[[]DecisionHandler]

	queues   []chan item
	idle     []atomic.Bool // per queue: its worker waits for a row
	seed     maphash.Seed
	pub      *publisher
	rec      *recorder
	dlog     *decisionLog // nil when Config.DecisionRetention is 0
	stopping atomic.Bool
	stopCh   chan struct{}
	released chan struct{} // closed when Stop has closed everything
	workers  sync.WaitGroup
	started  bool
	stopped  bool
	lifeMu   sync.Mutex
	logLimit sync.Map // model name → *atomic.Int64 (unix ns of last error log)
}

// slot is one configured model, rule or event rule.
type slot struct {
	name      string
	kind      Kind
	view      string      // "" for event rules
	cfg       ModelConfig // zero for rules
	rule      *rule       // the rule itself, or a model's fallback rule
	event     *eventCond  // an event rule's condition
	isRule    bool
	trigger   string // TriggerWindow, TriggerEvent or TriggerBoth
	life      lifeParams
	lcs       lifecycles
	threshold float64
	action    string
	budget    time.Duration
	scoreObs  prometheus.Observer
	decided   [2]prometheus.Counter // decisions_total{model, action}: [none, action]
	set       atomic.Pointer[liveSet]
	loaded    map[string]*version // under Runtime.regM
}

// liveSet is what scores a slot's rows; it is swapped as a whole.
type liveSet struct {
	live, shadow, prev *version
}

type version struct {
	info VersionInfo
	sc   scorer // nil in the stand-in of a version the registry marks failed
	// failed is set when the version is disabled (a panic, or
	// maxOverruns consecutive scores over the latency budget): it is not
	// scored again. why says what happened.
	failed   atomic.Bool
	why      atomic.Pointer[string]
	overruns atomic.Int32 // consecutive scores over the latency budget
	inScore  atomic.Int32 // scores in progress
	// drift measures the version's input drift when its model file has a
	// training profile and drift monitoring is on; else nil.
	drift *driftMonitor
}

// failedVersion is the stand-in of a version the registry marks failed: it
// is never loaded, so a file that crashed scoring is not even parsed again.
func failedVersion(vi VersionInfo, why string) *version {
	v := &version{info: vi}
	v.failed.Store(true)
	v.why.Store(&why)
	return v
}

// New validates cfg and builds the runtime without touching the disk or
// the network: the slots of the configured models and rules, their
// queues and metrics. Start opens the registry and outbox (a Badger
// database in dir/badger, the model files in dir/models, the decision log
// in dir/decisions), imports the configured model files as versions when
// their content is new, and loads the live and shadow versions. dir is the
// runtime's own directory (the service passes <data_dir>/inference). nc,
// called once by Start, gives the NATS connection; it may be nil, or
// return nil or a disconnected connection: decisions then wait in the
// outbox. reg and log may be nil.
func New(cfg Config, nc func() *nats.Conn, dir string, reg prometheus.Registerer, log *slog.Logger) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("inference config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runtime{
		cfg: cfg, conn: nc, dir: dir, log: log,
		slots: map[string]*slot{}, views: map[string][]*slot{}, seed: maphash.MakeSeed(),
		stopCh: make(chan struct{}), released: make(chan struct{}), rec: newRecorder(cfg.History),
		eventRules: map[string][]*slot{}, evNames: map[string][]string{},
	}
	r.queues = make([]chan item, cfg.Workers)
	r.idle = make([]atomic.Bool, cfg.Workers)
	for i := range r.queues {
		r.queues[i] = make(chan item, cfg.QueueSize)
	}
	var err error
	r.m, err = newMetrics(reg, r.queued, func() float64 {
		if ob := r.outbox.Load(); ob != nil {
			return float64(ob.pending.Load())
		}
		return 0
	})
	if err != nil {
		return nil, fmt.Errorf("register inference metrics: %w", err)
	}
	r.buildSlots()
	return r, nil
}

// open does Start's I/O: it opens Badger, the outbox, the registry (and
// imports the configured model files), the lifecycle store and the
// decision log. On failure it closes what it opened.
func (r *Runtime) open() (err error) {
	if err := os.MkdirAll(filepath.Join(r.dir, "models"), 0o755); err != nil {
		return fmt.Errorf("inference data dir: %w", err)
	}
	// The registry and outbox are small: keep Badger's memory and
	// background work small too, so it does not compete with scoring.
	// Tables are not compressed: most of their bytes are decision-log
	// blocks, zstd already, and Badger compresses a memtable flush on
	// 2×NumCPU goroutines at once, which held both vCPUs for ~15 ms every
	// few seconds while decisions waited to be published.
	opts := badger.DefaultOptions(filepath.Join(r.dir, "badger")).
		WithLogger(nil).WithMemTableSize(8 << 20).WithNumMemtables(2).WithValueLogFileSize(64 << 20).
		WithCompression(options.None).WithBlockCacheSize(8 << 20).WithNumCompactors(2).WithNumVersionsToKeep(1)
	if torn, err := badgerdir.RemoveTornMemtables(opts.Dir); err != nil {
		return fmt.Errorf("open inference badger: %w", err)
	} else if len(torn) > 0 {
		r.log.Warn("removed empty Badger memtable files a crash left (they held no write)", "dir", opts.Dir, "files", torn)
	}
	db, err := badger.Open(opts)
	if err != nil {
		return fmt.Errorf("open inference badger: %w", err)
	}
	r.db = db
	defer func() {
		if err != nil {
			_ = r.closeFiles()
		}
	}()
	r.reg = registry{db: db, dir: filepath.Join(r.dir, "models")}
	ob, err := openOutbox(db)
	if err != nil {
		return err
	}
	var nc *nats.Conn
	if r.conn != nil {
		nc = r.conn()
	}
	if r.pub, err = newPublisher(r.cfg, nc, ob, r.m, r.log); err != nil {
		return err
	}
	r.outbox.Store(ob)
	if err := r.loadModels(); err != nil {
		return err
	}
	r.life = newLifeStore(db, r.log)
	r.life.errs = r.m.lifeErrors.Inc
	if err := r.life.load(r.slots); err != nil {
		return err
	}
	if ob.count > 0 {
		r.log.Info("decisions left in the outbox by the last run", "pending", ob.count)
	}
	if r.cfg.DecisionRetention > 0 {
		if r.dlog, err = newDecisionLog(filepath.Join(r.dir, "decisions"), r.cfg.DecisionRetention, r.m,
			func(msg string, args ...any) { r.logLimited("decision-log", msg, args...) }); err != nil {
			return err
		}
	}
	return nil
}

// buildSlots makes the slots of the configured rules, event rules and
// models. The models' versions are loaded by loadModels at Start.
func (r *Runtime) buildSlots() {
	rules := map[string]*rule{}
	for _, rc := range r.cfg.Rules {
		ru := newRule(rc)
		rules[rc.Name] = ru
		s := &slot{name: rc.Name, kind: KindRule, view: rc.View, rule: ru, isRule: true, threshold: 1, action: rc.Action, trigger: TriggerWindow}
		if s.action == "" {
			s.action = "alert"
		}
		s.life = newLifeParams(ActionLifecycle{For: rc.For, KeepFiringFor: rc.KeepFiringFor, RepeatInterval: rc.RepeatInterval,
			ResolveAction: rc.ResolveAction}, r.cfg.Lifecycle, s.action)
		s.set.Store(&liveSet{live: &version{info: VersionInfo{Model: rc.Name, Version: ru.version(), Kind: KindRule, Source: "config"}, sc: ru}})
		r.addSlot(s)
	}
	for _, ec := range r.cfg.EventRules {
		c := newEventCond(ec)
		s := &slot{name: ec.Name, kind: KindEventRule, event: c, isRule: true, threshold: 1, action: ec.Action, trigger: TriggerEvent}
		if s.action == "" {
			s.action = "alert"
		}
		s.life = newLifeParams(ec.ActionLifecycle, r.cfg.Lifecycle, s.action)
		s.set.Store(&liveSet{live: &version{info: VersionInfo{Model: ec.Name, Version: c.version(), Kind: KindEventRule, Source: "config"}}})
		r.addSlot(s)
	}
	for _, mc := range r.cfg.Models {
		s := &slot{
			name: mc.Name, kind: mc.Kind, view: mc.View, cfg: mc, rule: rules[mc.FallbackRule],
			threshold: mc.threshold(), action: mc.action(), budget: mc.LatencyBudget, loaded: map[string]*version{},
			trigger: mc.Trigger,
		}
		if s.trigger == "" {
			s.trigger = TriggerWindow
		}
		s.life = newLifeParams(mc.ActionLifecycle, r.cfg.Lifecycle, s.action)
		r.addSlot(s)
	}
}

// loadModels imports each configured model's artifact into the registry
// when it is new and loads its live, shadow and previous versions.
func (r *Runtime) loadModels() error {
	for _, s := range r.order {
		if s.isRule {
			continue
		}
		if err := r.importConfigured(s); err != nil {
			return err
		}
		st, err := r.reg.state(s.name)
		if err != nil {
			return err
		}
		if err := r.apply(s, st); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runtime) addSlot(s *slot) {
	s.scoreObs = r.m.scoreSeconds.WithLabelValues(s.name)
	s.decided = [2]prometheus.Counter{r.m.decisions.WithLabelValues(s.name, ActionNone), r.m.decisions.WithLabelValues(s.name, s.action)}
	r.slots[s.name] = s
	switch {
	case s.event != nil:
		r.eventRules[s.event.cfg.Metric] = append(r.eventRules[s.event.cfg.Metric], s)
	case s.trigger == TriggerEvent:
		r.eventModels = append(r.eventModels, s)
	case s.trigger == TriggerBoth:
		r.eventModels = append(r.eventModels, s)
		r.views[s.view] = append(r.views[s.view], s)
	default:
		r.views[s.view] = append(r.views[s.view], s)
	}
	r.order = append(r.order, s)
}

// fingerprint returns the stable id of the slot's action on e.
func (s *slot) fingerprint(e schema.Entity) string {
	if lc := s.lcs.lookup(e); lc != nil {
		if lc.fp == "" {
			lc.fp = fingerprint(s.name, e)
		}
		return lc.fp
	}
	return fingerprint(s.name, e)
}

// LatestFunc returns the latest closed row of an entity in a view: the
// feature store's online view (featurestore.Store.Latest). Models bound to
// events score on it.
type LatestFunc func(view string, e schema.Entity) (*schema.FeatureRow, bool)

// SetLatest gives the runtime the source of latest rows for models bound
// to events; without one, they see no window features.
func (r *Runtime) SetLatest(f LatestFunc) {
	if f != nil {
		r.latest.Store(&f)
	}
}

// DecisionHandler receives every live decision once it is recorded (the
// `decisions` table), whether or not it was published. It is called on the
// worker that made the decision, so it must return at once (hand the
// decision to a queue); it must not keep d, which the worker reuses, but
// may copy it (the Features map is not reused).
type DecisionHandler func(d *schema.Decision)

// SetDecisionHandler sets the handler of live decisions (the fleet edge
// forwards them to the hub). Call it before Start.
func (r *Runtime) SetDecisionHandler(h DecisionHandler) {
	if h != nil {
		r.onDecision.Store(&h)
	}
}

// ObserveTransitions adds fn to the observers of live decisions that move
// an action's state (Decision.Transition: pending, firing, resolved,
// inactive), such as the console's live action feed. Like a
// DecisionHandler, fn runs on the worker that made the decision, so it
// must return at once, and may copy d but not keep it. Observers cannot be
// removed; add them before Start.
func (r *Runtime) ObserveTransitions(fn DecisionHandler) {
	if fn == nil {
		return
	}
	for {
		old := r.transitions.Load()
		var next []DecisionHandler
		if old != nil {
			next = append(next, *old...)
		}
		next = append(next, fn)
		if r.transitions.CompareAndSwap(old, &next) {
			return
		}
	}
}

// load returns a version's scorer, building it once.
func (r *Runtime) load(s *slot, name string) (*version, error) {
	if name == "" {
		return nil, nil
	}
	if v, ok := s.loaded[name]; ok {
		return v, nil
	}
	vi, err := r.reg.version(s.name, name)
	if err != nil {
		return nil, err
	}
	b, err := r.reg.artifact(vi)
	if err != nil {
		return nil, err
	}
	sc, err := buildScorer(vi.Kind, b, s.cfg.Features, s.cfg.Optional)
	if err != nil {
		return nil, fmt.Errorf("model %s %s: %w", s.name, name, err)
	}
	v := &version{info: vi, sc: sc}
	if ts, ok := sc.(*treeScorer); ok && ts.profile != nil && r.cfg.Drift.Window > 0 {
		v.drift = newDriftMonitor(s, vi, ts.names, ts.profile, r.cfg.Drift.withDefaults(), &r.drift, r.m.psi)
	}
	s.loaded[name] = v
	return v, nil
}

// apply builds the live set for a registry state and swaps it in. The
// caller holds regM (or runs before the runtime is shared). A failed live
// version is in the set as a stand-in that falls back at once; a failed
// shadow or previous version is left out.
func (r *Runtime) apply(s *slot, st modelState) error {
	var ls liveSet
	var err error
	if st.failed(st.Live) {
		vi, err := r.reg.version(s.name, st.Live)
		if err != nil {
			return err
		}
		ls.live = failedVersion(vi, st.Failed[st.Live])
	} else if ls.live, err = r.load(s, st.Live); err != nil {
		return err
	}
	if !st.failed(st.Shadow) {
		if ls.shadow, err = r.load(s, st.Shadow); err != nil {
			return err
		}
	}
	if n := len(st.History); n > 0 && !st.failed(st.History[n-1]) {
		if ls.prev, err = r.load(s, st.History[n-1]); err != nil {
			r.log.Warn("previous version cannot load; no version fallback", "model", s.name, "version", st.History[n-1], "err", err)
			ls.prev = nil
		}
	}
	s.set.Store(&ls)
	// Forget scorers no longer referenced, so a re-promoted version starts
	// from its stored artifact but a version that stays keeps its state.
	for name := range s.loaded {
		if st.failed(name) || name != st.Live && name != st.Shadow && (len(st.History) == 0 || name != st.History[len(st.History)-1]) {
			if v := s.loaded[name]; v.drift != nil {
				v.drift.close()
			}
			delete(s.loaded, name)
		}
	}
	return nil
}

// Name returns "inference", the component's name in logs and /readyz.
func (r *Runtime) Name() string { return "inference" }

// Ready reports whether the runtime is running. NATS being unreachable does
// not make it unready: decisions wait in the outbox.
func (r *Runtime) Ready() error {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	switch {
	case r.stopped:
		return errors.New("inference: stopped")
	case !r.started:
		return errors.New("inference: not started")
	}
	return nil
}

// Start opens the runtime's files (see New), then starts the workers and
// the publisher. It returns once they run. If it fails, it has released
// what it opened, and the runtime cannot be started again.
func (r *Runtime) Start(ctx context.Context) error {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if r.started || r.stopped {
		return errors.New("inference: already started or stopped")
	}
	err := ctx.Err()
	if err == nil {
		err = r.open()
	}
	if err != nil {
		r.stopped = true
		r.stopping.Store(true)
		close(r.released)
		return err
	}
	r.started = true
	for i := range r.queues {
		r.workers.Add(1)
		go r.work(i)
	}
	r.life.run()
	r.workers.Add(1)
	go r.janitor()
	go r.pub.run()
	r.log.Info("inference started", "models", len(r.cfg.Models), "rules", len(r.cfg.Rules), "workers", len(r.queues),
		"jetstream_stream", r.cfg.JetStream.Stream)
	return nil
}

// Stop stops accepting rows, scores those queued, publishes or stores
// their decisions, drains the outbox while NATS takes decisions and ctx
// allows, and closes the Badger database. Decisions still in the outbox
// are sent after the next start.
//
// A score that does not return cannot be stopped: once ctx is done Stop
// waits stuckGrace more, then records the versions still scoring as
// failed and returns ErrScoreStuck without waiting for them (the rest of
// the shutdown runs if they ever return), so that the process can end.
func (r *Runtime) Stop(ctx context.Context) error {
	r.lifeMu.Lock()
	defer r.lifeMu.Unlock()
	if r.stopped {
		return nil
	}
	r.stopped = true
	r.stopping.Store(true)
	if !r.started {
		defer close(r.released)
		return r.closeFiles() // nothing, unless a test opened the files
	}
	close(r.stopCh)
	done := make(chan struct{})
	go func() { r.workers.Wait(); close(done) }()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("inference workers: %w", ctx.Err()))
		select {
		case <-done: // workers finish the row at hand; they never wait on ctx-less I/O for long
		case <-time.After(stuckGrace):
			// A score that never returns cannot be stopped. Record its
			// version as failed, so the next start does not score it,
			// and let the process end; the rest of the shutdown runs if
			// the score ever returns.
			stuck := r.failStuck()
			r.log.Error("inference stopping with a score that does not return", "versions", stuck)
			go func() {
				<-done
				_ = r.release(time.Now().Add(r.cfg.Outbox.AckTimeout))
			}()
			return errors.Join(append(errs, fmt.Errorf("inference: %w: %v", ErrScoreStuck, stuck))...)
		}
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(r.cfg.Outbox.AckTimeout)
	}
	return errors.Join(append(errs, r.release(deadline))...)
}

// release hands what the workers left to the publisher (until deadline),
// which publishes or stores it, then closes the files. The workers have
// stopped.
func (r *Runtime) release(deadline time.Time) error {
	defer close(r.released)
	r.pub.stopBy.Store(deadline.UnixNano())
	close(r.pub.in)
	<-r.pub.done
	return r.closeFiles()
}

// closeFiles closes what open opened: the decision log, the lifecycle
// store and Badger, whichever are open. Their writers (the workers) have
// stopped.
func (r *Runtime) closeFiles() error {
	if r.dlog != nil {
		r.dlog.close()
	}
	if r.life != nil {
		r.life.close()
	}
	if r.db == nil {
		return nil
	}
	if err := r.db.Close(); err != nil {
		return fmt.Errorf("close inference badger: %w", err)
	}
	return nil
}

// HandleRow queues a closed window for scoring. It never blocks: when the
// entity's queue is full the row is dropped and counted. It matches
// schema.FeatureRowHandler; the runtime owns row after the call.
//
// When the row wakes an idle worker, HandleRow yields the processor
// (runtime.Gosched), so that the worker starts on it now: Go runs a woken
// goroutine on the waker's processor, after the waker, and waking an idle
// second processor took about 160 µs on the 2-vCPU VMs this was measured
// on; the caller (the feature store's window engine) otherwise finishes
// its batch first. Measured with BenchmarkEndToEnd: a closed row reached
// its worker after 9-27 µs (p50) instead of 200-275 µs.
func (r *Runtime) HandleRow(row *schema.FeatureRow) {
	if row == nil {
		return
	}
	slots := r.views[row.View]
	if len(slots) == 0 || r.stopping.Load() {
		return
	}
	r.m.rows.WithLabelValues(row.View).Inc()
	if !r.enqueue(r.shard(row.Entity), item{row: row}) {
		r.m.rowsDropped.WithLabelValues(row.View).Inc()
	}
}

// forgetter is a scorer with per-entity state.
type forgetter interface {
	forget(cutoff int64) int
}

// janitor drops per-entity state idle for longer than StateTTL.
func (r *Runtime) janitor() {
	defer r.workers.Done()
	tick := time.NewTicker(min(r.cfg.StateTTL/4, 10*time.Minute))
	defer tick.Stop()
	for {
		select {
		case <-r.stopCh:
			return
		case <-tick.C:
			r.forget(time.Now().Add(-r.cfg.StateTTL).UnixNano())
		}
	}
}

func (r *Runtime) forget(cutoff int64) {
	r.states.forget(cutoff)
	for _, s := range r.order {
		set := s.set.Load()
		n := s.lcs.forget(cutoff)
		for _, v := range []*version{set.live, set.shadow, set.prev} {
			if f, ok := v.scorer().(forgetter); ok {
				n += f.forget(cutoff)
			}
		}
		if n > 0 {
			r.m.forgotten.WithLabelValues(s.name).Add(float64(n))
			r.log.Debug("idle entity state dropped", "model", s.name, "entities", n)
		}
	}
}

func (v *version) scorer() scorer {
	if v == nil {
		return nil
	}
	return v.sc
}

// logLimited logs at most once per 10 s per key, so that a broken model
// or device does not flood the log.
func (r *Runtime) logLimited(key, msg string, args ...any) {
	v, _ := r.logLimit.LoadOrStore(key, new(atomic.Int64))
	last := v.(*atomic.Int64)
	now := time.Now().UnixNano()
	if prev := last.Load(); now-prev < int64(10*time.Second) || !last.CompareAndSwap(prev, now) {
		return
	}
	r.log.Warn(msg, args...)
}
