// Package cluster shares a site's targets among its netfeat nodes: each
// target is polled or streamed by exactly one live node, and when a node
// joins, leaves, dies or is drained its targets move to others, as few as
// possible. Leases and ownership live in a JetStream KV bucket; the
// assignment is rendezvous hashing of target names over the live nodes.
//
// docs/cluster.md describes the rules, the failure modes and what each
// costs in gaps.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Node is one netfeat process's membership in its site's cluster. It
// holds a lease in the bucket, takes the targets the assignment gives it
// once nobody else holds them, and gives away the ones it no longer gets.
//
// Its methods are safe for concurrent use, except OnChange, which is
// called before Start.
type Node struct {
	cfg Config
	js  jetstream.JetStream
	log *slog.Logger
	m   *metrics

	mu          sync.Mutex
	onChange    []func(owned []string)
	owned       []string // last set delivered to onChange, sorted
	nextTargets []string // set by SetTargets, taken by the loop
	ready       bool     // holds a lease and its last renewal succeeded
	started     bool

	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	// Owned by the loop goroutine (and by Start before and Stop after it).
	kv            jetstream.KeyValue
	targets       []string // sorted, unique
	inc           string   // incarnation of the lease; "" without one
	lastInc       string   // the last incarnation this node registered
	registered    time.Time
	leaseRev      uint64
	leaseDeadline time.Time // when this node stops its targets unless renewed
	leaseTimer    *time.Timer
	renewFailing  bool
	watcher       jetstream.KeyWatcher
	view          *view // nil until the first watch is complete
	pending       *view // the view a new watcher is filling
	ownedSet      map[string]bool
}

// New prepares a node; it does no I/O. js is the site's JetStream (the
// bucket is created or opened in Start), reg receives the node's metrics
// (nil: none) and log its log lines (nil: none).
func New(cfg Config, js jetstream.JetStream, reg prometheus.Registerer, log *slog.Logger) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	if js == nil {
		return nil, errors.New("cluster: no JetStream")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Node{
		cfg: cfg, js: js, m: newMetrics(reg),
		log:      log.With("component", "cluster", "node", cfg.Node),
		targets:  sortedUnique(cfg.Targets),
		kick:     make(chan struct{}, 1),
		ownedSet: map[string]bool{},
	}, nil
}

// OnChange registers f to receive this node's full set of owned targets,
// sorted, each time it changes. Call it before Start. f is called from the
// node's goroutine, one call at a time: a target removed from the set is
// handed to another node only after f returns, so f must stop polling it
// before returning, and must not block for long.
func (n *Node) OnChange(f func(owned []string)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onChange = append(n.onChange, f)
}

// Owned returns the targets this node owns now, sorted.
func (n *Node) Owned() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.owned)
}

// Ready reports whether the node holds a lease and its last renewal
// succeeded (for readiness checks).
func (n *Node) Ready() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ready
}

// setReady publishes the loop's lease state to Ready.
func (n *Node) setReady() {
	n.mu.Lock()
	n.ready = n.inc != "" && !n.renewFailing
	n.mu.Unlock()
}

// SetTargets replaces the site's target list (after a configuration
// reload); targets not in it are given up.
func (n *Node) SetTargets(targets []string) error {
	for i, t := range targets {
		if err := checkName(t); err != nil {
			return fmt.Errorf("targets[%d]: %w", i, err)
		}
	}
	n.mu.Lock()
	n.nextTargets = sortedUnique(targets)
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
	return nil
}

// Start opens the bucket, registers the node's lease, reads the cluster
// state, takes the targets that are free and starts renewing and
// reconciling in the background. It fails if the bucket cannot be reached
// within ctx.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.started {
		n.mu.Unlock()
		return errors.New("cluster: node already started")
	}
	n.started = true
	n.mu.Unlock()

	kv, err := OpenBucket(ctx, n.js, n.cfg.Bucket, n.cfg.Replicas)
	if err != nil {
		return err
	}
	n.kv = kv
	n.leaseTimer = time.NewTimer(time.Hour)
	n.leaseTimer.Stop()
	if err := n.register(ctx); err != nil {
		return err
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	n.cancel, n.done = cancel, make(chan struct{})
	if err := n.startWatch(loopCtx); err != nil {
		cancel()
		return err
	}
	for n.view == nil {
		select {
		case <-ctx.Done():
			cancel()
			n.watcher.Stop()
			return fmt.Errorf("cluster: reading the bucket: %w", ctx.Err())
		case e, ok := <-n.watcher.Updates():
			if !ok {
				cancel()
				return errors.New("cluster: bucket watch ended while reading it")
			}
			n.apply(e)
		}
	}
	n.reconcile(loopCtx)
	go n.loop(loopCtx)
	return nil
}

// Stop hands the node's targets over without waiting for its lease to
// expire: it stops them (OnChange with an empty set), releases their
// owner records and deletes its lease, so the others take them at once.
func (n *Node) Stop(ctx context.Context) error {
	if n.cancel == nil {
		return nil
	}
	n.cancel()
	<-n.done
	n.cancel = nil
	if n.watcher != nil {
		_ = n.watcher.Stop()
	}
	n.setOwned(ctx, map[string]bool{}, "released")
	if n.inc == "" || n.view == nil {
		return nil
	}
	var errs []error
	for t, o := range n.view.owners {
		if o.rec.Node == n.cfg.Node && o.rec.Incarnation == n.inc {
			if err := n.release(ctx, t, o); err != nil && !isRevisionMismatch(err) {
				errs = append(errs, err)
			}
		}
	}
	err := n.kv.Delete(ctx, nodesPrefix+escape(n.cfg.Node), jetstream.LastRevision(n.leaseRev))
	if err != nil && !isRevisionMismatch(err) {
		errs = append(errs, fmt.Errorf("cluster: deleting lease: %w", err))
	}
	n.inc = ""
	n.setReady()
	n.log.Info("cluster: left", "released_to_others", len(errs) == 0)
	return errors.Join(errs...)
}

// Status reads the cluster's nodes, leases and owners from the bucket.
func (n *Node) Status(ctx context.Context) (Status, error) {
	if n.kv == nil {
		return Status{}, errors.New("cluster: node not started")
	}
	return ReadStatus(ctx, n.kv)
}

// Drain marks node (any node of the site) as draining: it keeps its lease
// but gives its targets away. Undrain reverses it.
func (n *Node) Drain(ctx context.Context, node string) error {
	if n.kv == nil {
		return errors.New("cluster: node not started")
	}
	return Drain(ctx, n.kv, node, true)
}

// Undrain lets a drained node take targets again.
func (n *Node) Undrain(ctx context.Context, node string) error {
	if n.kv == nil {
		return errors.New("cluster: node not started")
	}
	return Drain(ctx, n.kv, node, false)
}

// loop renews the lease, follows the bucket and reconciles until ctx ends.
func (n *Node) loop(ctx context.Context) {
	defer close(n.done)
	tick := time.NewTicker(n.cfg.Renew)
	defer tick.Stop()
	for {
		var retry <-chan time.Time
		if n.renewFailing {
			retry = time.After(n.cfg.Renew / 4)
		}
		var updates <-chan jetstream.KeyValueEntry
		if n.watcher != nil {
			updates = n.watcher.Updates()
		}
		select {
		case <-ctx.Done():
			return
		case e, ok := <-updates:
			if !ok {
				n.watcher = nil
				continue
			}
			n.apply(e)
		batch:
			for {
				select {
				case e, ok := <-updates:
					if !ok {
						n.watcher = nil
						break batch
					}
					n.apply(e)
				default:
					break batch
				}
			}
			n.reconcile(ctx)
		case <-tick.C:
			n.round(ctx)
		case <-retry:
			// While renewals fail, retry more often than every period,
			// so that a short outage ends before the lease deadline.
			n.round(ctx)
		case <-n.leaseTimer.C:
			n.checkLease(ctx)
		case <-n.kick:
			n.mu.Lock()
			if n.nextTargets != nil {
				n.targets, n.nextTargets = n.nextTargets, nil
			}
			n.mu.Unlock()
			n.reconcile(ctx)
		}
	}
}

// round renews the lease, restarts a watch that ended and reconciles.
func (n *Node) round(ctx context.Context) {
	n.renew(ctx)
	if n.watcher == nil && !n.renewFailing {
		if err := n.startWatch(ctx); err != nil {
			n.log.Warn("cluster: watching the bucket", "err", err)
		}
	}
	n.reconcile(ctx)
}

// opCtx bounds one KV operation: by a renewal period, and by the lease
// deadline while the node holds a lease, so that no wait carries it past
// the moment it must stop its targets.
func (n *Node) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := time.Now().Add(n.cfg.Renew / 2)
	if n.inc != "" && n.leaseDeadline.Before(d) {
		d = n.leaseDeadline
	}
	return context.WithDeadline(ctx, d)
}

// leaseValid reports whether the node holds a lease the server cannot
// have expired yet.
func (n *Node) leaseValid() bool {
	return n.inc != "" && time.Now().Before(n.leaseDeadline)
}

// checkLease stops every target once the lease could not be renewed in
// time: the server expires it at most a margin later, and then the others
// take them.
func (n *Node) checkLease(ctx context.Context) {
	if n.inc != "" && !n.leaseValid() {
		n.loseLease(ctx, "lease not renewed within its TTL")
	}
}

// loseLease drops all targets and forgets the lease.
func (n *Node) loseLease(ctx context.Context, why string) {
	n.log.Warn("cluster: lease lost, stopping all targets", "reason", why, "owned", len(n.ownedSet))
	n.inc = ""
	n.leaseTimer.Stop()
	n.setReady()
	n.setOwned(ctx, map[string]bool{}, "lost")
}

// extend moves the lease deadline after a renewal sent at sent. The
// server stores the renewal after it was sent and expires it TTL later,
// so the node stops its targets a margin before the server can expire it.
func (n *Node) extend(sent time.Time) {
	n.leaseDeadline = sent.Add(n.cfg.serverTTL() - n.cfg.margin())
	n.leaseTimer.Reset(time.Until(n.leaseDeadline))
}

func (n *Node) record() nodeRecord {
	return nodeRecord{
		Node: n.cfg.Node, Incarnation: n.inc, Started: n.registered, TTL: n.cfg.serverTTL(),
		TargetsHash: targetsHash(n.targets), Targets: len(n.targets),
	}
}

// putLease writes the lease record with the lease TTL, if the key's last
// revision is expect (0: the key has no message).
func (n *Node) putLease(ctx context.Context, rec nodeRecord, expect uint64) (uint64, error) {
	v, err := json.Marshal(rec)
	if err != nil {
		return 0, err
	}
	msg := &nats.Msg{Subject: "$KV." + n.cfg.Bucket + "." + nodesPrefix + escape(n.cfg.Node), Data: v}
	ack, err := n.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(expect), jetstream.WithMsgTTL(n.cfg.serverTTL()))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// register takes a new lease (a new incarnation). A lease left by an
// earlier run of this node is replaced; its owner records become invalid
// and are taken again like any other.
func (n *Node) register(ctx context.Context) error {
	ctx, cancel := n.opCtx(ctx)
	defer cancel()
	inc := newIncarnation()
	key := nodesPrefix + escape(n.cfg.Node)
	prev, prevReg := n.inc, n.registered
	n.inc, n.registered = inc, time.Now().UTC()
	rec := n.record()
	n.inc, n.registered = prev, prevReg
	v, _ := json.Marshal(rec)
	sent := time.Now()
	rev, err := n.kv.Create(ctx, key, v, jetstream.KeyTTL(n.cfg.serverTTL()))
	if isRevisionMismatch(err) {
		var e jetstream.KeyValueEntry
		if e, err = n.kv.Get(ctx, key); err == nil {
			var old nodeRecord
			_ = json.Unmarshal(e.Value(), &old)
			if old.Incarnation != n.lastInc {
				n.log.Warn("cluster: replacing a live lease of this node name (an earlier run of this node, or another process using the same name)",
					"incarnation", old.Incarnation, "started", old.Started)
			}
			sent = time.Now()
			rev, err = n.putLease(ctx, rec, e.Revision())
		}
	}
	if err != nil {
		n.m.renewFailures.Inc()
		n.renewFailing = true
		return fmt.Errorf("cluster: registering lease of %s: %w", n.cfg.Node, err)
	}
	n.inc, n.lastInc, n.leaseRev, n.registered = inc, inc, rev, rec.Started
	n.extend(sent)
	n.setReady()
	for _, vw := range []*view{n.view, n.pending} {
		if vw != nil {
			vw.set(key, rev, v, false)
		}
	}
	n.log.Info("cluster: lease registered", "incarnation", inc, "lease_ttl", n.cfg.LeaseTTL, "targets", len(n.targets))
	return nil
}

// renew renews the lease, or registers a new one if there is none.
func (n *Node) renew(ctx context.Context) {
	defer n.setReady()
	n.checkLease(ctx)
	if n.inc == "" {
		if err := n.register(ctx); err != nil {
			n.log.Warn("cluster: no lease", "err", err)
			return
		}
		n.afterOutage(ctx)
		return
	}
	octx, cancel := n.opCtx(ctx)
	defer cancel()
	sent := time.Now()
	rev, err := n.putLease(octx, n.record(), n.leaseRev)
	if isRevisionMismatch(err) {
		// A renewal that timed out may have reached the server after all
		// (the client buffers what it publishes while disconnected): if
		// the record is still this incarnation's, renew from its revision.
		if e, gerr := n.kv.Get(octx, nodesPrefix+escape(n.cfg.Node)); gerr == nil {
			var cur nodeRecord
			if json.Unmarshal(e.Value(), &cur) == nil && cur.Incarnation == n.inc {
				sent = time.Now()
				rev, err = n.putLease(octx, n.record(), e.Revision())
			}
		}
	}
	switch {
	case err == nil:
		n.leaseRev = rev
		n.extend(sent)
		n.afterOutage(ctx)
	case isRevisionMismatch(err):
		n.m.renewFailures.Inc()
		n.loseLease(ctx, "lease record changed or expired in the bucket")
		if err := n.register(ctx); err != nil {
			n.log.Warn("cluster: no lease", "err", err)
		}
	default:
		n.m.renewFailures.Inc()
		if !n.renewFailing {
			n.log.Warn("cluster: lease renewal failed; keeping targets until the lease deadline",
				"err", err, "deadline_in", time.Until(n.leaseDeadline).Round(time.Millisecond))
		}
		n.renewFailing = true
	}
}

// afterOutage restarts the watch once renewals succeed again after
// failing, so that the view is rebuilt from the bucket rather than from a
// watch that may have missed the outage.
func (n *Node) afterOutage(ctx context.Context) {
	if !n.renewFailing {
		return
	}
	n.renewFailing = false
	n.log.Info("cluster: bucket reachable again")
	if err := n.startWatch(ctx); err != nil {
		n.log.Warn("cluster: watching the bucket", "err", err)
	}
}

// startWatch (re)starts the watch of the whole bucket; its initial values
// fill a new view, which replaces the current one when complete.
func (n *Node) startWatch(ctx context.Context) error {
	if n.watcher != nil {
		_ = n.watcher.Stop()
		n.watcher = nil
	}
	w, err := n.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("cluster: watching bucket %s: %w", n.cfg.Bucket, err)
	}
	n.watcher, n.pending = w, newView()
	return nil
}

// apply adds one watched entry to the view being filled or followed; nil
// marks the end of a new watch's initial values.
func (n *Node) apply(e jetstream.KeyValueEntry) {
	if e == nil {
		if n.pending != nil {
			n.view, n.pending = n.pending, nil
		}
		return
	}
	vw := n.view
	if n.pending != nil {
		vw = n.pending
	}
	if vw == nil {
		return
	}
	vw.set(e.Key(), e.Revision(), e.Value(), e.Operation() != jetstream.KeyValuePut)
}

// reconcile brings the node's owned set and owner records in line with
// the assignment over the live, non-draining nodes: first it stops and
// releases the targets it no longer gets, then it takes those it gets
// that are free (released, never owned, or owned by a lapsed lease).
func (n *Node) reconcile(ctx context.Context) {
	if n.view == nil {
		return
	}
	if !n.leaseValid() {
		n.checkLease(ctx)
		return
	}
	self := n.cfg.Node
	live := n.view.live()
	if !n.view.drains[self] && !slices.Contains(live, self) {
		live = append(live, self)
	}
	n.m.liveNodes.Set(float64(len(live)))

	keep := map[string]bool{}
	var claim, release []string
	for _, t := range n.targets {
		o, ok := n.view.owners[t]
		mine := ok && o.rec.Node == self && o.rec.Incarnation == n.inc
		if Assign(t, live) != self {
			if mine {
				release = append(release, t)
			}
			continue
		}
		switch {
		case mine:
			keep[t] = true
		case !ok || o.rec.Node == "" || !n.view.holds(o.rec):
			claim = append(claim, t)
		}
	}
	for t, o := range n.view.owners {
		if o.rec.Node == self && o.rec.Incarnation == n.inc && !inSorted(n.targets, t) {
			release = append(release, t)
		}
	}
	// Stop before releasing: the next owner may start the moment the
	// release is written.
	n.setOwned(ctx, keep, "released")
	for _, t := range release {
		if !n.leaseValid() {
			break
		}
		if err := n.release(ctx, t, n.view.owners[t]); err != nil {
			if isRevisionMismatch(err) {
				n.m.casConflicts.Inc()
				continue
			}
			if ctx.Err() == nil {
				n.log.Warn("cluster: releasing target", "target", t, "err", err)
			}
			break
		}
	}
	for _, t := range claim {
		if !n.leaseValid() {
			break
		}
		err := n.take(ctx, t)
		if err == nil {
			keep[t] = true
			continue
		}
		if isRevisionMismatch(err) {
			n.m.casConflicts.Inc()
			continue
		}
		if ctx.Err() == nil {
			n.log.Warn("cluster: taking target", "target", t, "err", err)
		}
		break
	}
	if n.leaseValid() {
		n.setOwned(ctx, keep, "released")
	}
}

// take writes an owner record naming this lease, if the record is still
// the one in the view.
func (n *Node) take(ctx context.Context, t string) error {
	o, had := n.view.owners[t]
	rec := ownerRecord{Target: t, Node: n.cfg.Node, Incarnation: n.inc, Epoch: o.rec.Epoch + 1, Since: time.Now().UTC()}
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	key := ownersPrefix + escape(t)
	octx, cancel := n.opCtx(ctx)
	defer cancel()
	var rev uint64
	if had {
		rev, err = n.kv.Update(octx, key, v, o.rev)
	} else {
		rev, err = n.kv.Create(octx, key, v)
	}
	if err != nil {
		return err
	}
	n.view.set(key, rev, v, false)
	n.log.Debug("cluster: target taken", "target", t, "from", o.rec.Node, "epoch", rec.Epoch)
	return nil
}

// release marks the owner record of t released, if it is still o.
func (n *Node) release(ctx context.Context, t string, o ownerEntry) error {
	rec := ownerRecord{Target: t, Epoch: o.rec.Epoch, Since: time.Now().UTC()}
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	key := ownersPrefix + escape(t)
	octx, cancel := context.WithTimeout(ctx, n.cfg.Renew)
	defer cancel()
	rev, err := n.kv.Update(octx, key, v, o.rev)
	if err != nil {
		return err
	}
	n.view.set(key, rev, v, false)
	n.log.Debug("cluster: target released", "target", t, "epoch", rec.Epoch)
	return nil
}

// setOwned delivers a new owned set if it differs from the current one;
// targets that leave it are counted under how (released or lost).
func (n *Node) setOwned(_ context.Context, set map[string]bool, how string) {
	var added, removed []string
	for t := range set {
		if !n.ownedSet[t] {
			added = append(added, t)
		}
	}
	for t := range n.ownedSet {
		if !set[t] {
			removed = append(removed, t)
		}
	}
	if len(added) == 0 && len(removed) == 0 {
		return
	}
	n.ownedSet = maps.Clone(set)
	owned := slices.Sorted(maps.Keys(set))
	slices.Sort(added)
	slices.Sort(removed)
	n.m.owned.Set(float64(len(owned)))
	n.m.handovers.WithLabelValues("acquired").Add(float64(len(added)))
	n.m.handovers.WithLabelValues(how).Add(float64(len(removed)))
	n.log.Info("cluster: owned targets changed", "owned", len(owned),
		"acquired", len(added), "first_acquired", firstFew(added), "removed", len(removed), "how", how, "first_removed", firstFew(removed))
	n.mu.Lock()
	n.owned = owned
	fs := slices.Clone(n.onChange)
	n.mu.Unlock()
	for _, f := range fs {
		f(slices.Clone(owned))
	}
}

func firstFew(s []string) string {
	if len(s) > 5 {
		return strings.Join(s[:5], ",") + ",…"
	}
	return strings.Join(s, ",")
}

func newIncarnation() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func sortedUnique(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func inSorted(s []string, x string) bool {
	_, ok := slices.BinarySearch(s, x)
	return ok
}
