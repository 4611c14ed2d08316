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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Node is one netfeat process's membership in its site's cluster. It
// holds a lease in the bucket, takes the targets the assignment gives it
// once nobody else holds them, and gives away the ones it no longer gets.
//
// Two goroutines run it: the renewer keeps the lease (lease.go), the
// reconciler follows the bucket and owns the targets (reconcile.go), so
// that a long reconciliation never delays a renewal. Its methods are safe
// for concurrent use, except OnChange, which is called before Start.
type Node struct {
	cfg Config
	js  jetstream.JetStream
	kv  jetstream.KeyValue // set by Start
	log *slog.Logger
	m   *metrics

	mu          sync.Mutex
	onChange    []func(owned []string)
	owned       []string // last set delivered to onChange, sorted
	nextTargets []string // set by SetTargets, taken by the reconciler
	// targetsHash and targetsCount describe the target list in the lease
	// record.
	targetsHash  string
	targetsCount int
	started      bool

	leaseMu sync.Mutex
	lease   lease // guarded by leaseMu; written by the renewer

	targetsKick chan struct{} // SetTargets → reconciler
	leaseKick   chan struct{} // renewer → reconciler: the lease changed
	cancel      context.CancelFunc
	wg          sync.WaitGroup

	// Owned by the reconciler goroutine (and by Start before and Stop
	// after it).
	targets     []string // sorted, unique
	ownedInc    string   // the incarnation ownedSet is held under
	ownedSet    map[string]bool
	watcher     jetstream.KeyWatcher
	stopWatch   context.CancelFunc // ends the watch's context
	view        *view              // nil until the first watch is complete
	pending     *view              // the view a new watch is filling
	deadlineTmr *time.Timer
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
	targets := sortedUnique(cfg.Targets)
	return &Node{
		cfg: cfg, js: js, m: newMetrics(reg),
		log:          log.With("component", "cluster", "node", cfg.Node),
		targets:      targets,
		targetsHash:  targetsHash(targets),
		targetsCount: len(targets),
		targetsKick:  make(chan struct{}, 1),
		leaseKick:    make(chan struct{}, 1),
		ownedSet:     map[string]bool{},
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
	l := n.leaseNow()
	return l.inc != "" && !l.failing && time.Now().Before(l.deadline)
}

// SetTargets replaces the site's target list (after a configuration
// reload); targets not in it are given up.
func (n *Node) SetTargets(targets []string) error {
	for i, t := range targets {
		if err := checkName(t); err != nil {
			return fmt.Errorf("targets[%d]: %w", i, err)
		}
	}
	ts := sortedUnique(targets)
	n.mu.Lock()
	n.nextTargets, n.targetsHash, n.targetsCount = ts, targetsHash(ts), len(ts)
	n.mu.Unlock()
	select {
	case n.targetsKick <- struct{}{}:
	default:
	}
	return nil
}

// Start opens the bucket, registers the node's lease, reads the cluster
// state, takes the targets that are free and starts renewing and
// reconciling in the background. It fails if the bucket cannot be reached
// within ctx. If the node's name still has a live lease of another
// process (ErrNameInUse), Start logs it and succeeds; the node joins once
// that lease expires.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.started {
		n.mu.Unlock()
		return errors.New("cluster: node already started")
	}
	n.started = true
	n.mu.Unlock()

	ok := false
	defer func() {
		if !ok { // let the caller try again
			n.mu.Lock()
			n.started = false
			n.mu.Unlock()
		}
	}()
	kv, err := OpenBucket(ctx, n.js, n.cfg.Bucket, n.cfg.Replicas)
	if err != nil {
		return err
	}
	n.kv = kv
	n.setLease(func(l *lease) { l.reconnects = n.js.Conn().Stats().Reconnects })
	if err := n.register(ctx); errors.Is(err, ErrNameInUse) {
		// Run without a lease; the renewer registers once it expires.
		n.log.Warn("cluster: waiting for the lease of this node name to expire", "err", err)
	} else if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	if err := n.startWatch(runCtx); err != nil {
		cancel()
		return err
	}
	for n.view == nil {
		select {
		case <-ctx.Done():
			cancel()
			_ = n.watcher.Stop()
			return fmt.Errorf("cluster: reading the bucket: %w", ctx.Err())
		case e, ok := <-n.watcher.Updates():
			if !ok {
				cancel()
				return errors.New("cluster: bucket watch ended while reading it")
			}
			n.apply(e, nil)
		}
	}
	n.deadlineTmr = time.NewTimer(time.Hour)
	n.reconcile(runCtx, nil)
	n.cancel, ok = cancel, true
	n.wg.Add(2)
	go n.renewLoop(runCtx)
	go n.loop(runCtx)
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
	n.wg.Wait()
	n.cancel = nil
	if n.watcher != nil {
		_ = n.watcher.Stop()
	}
	if n.stopWatch != nil {
		n.stopWatch()
	}
	n.changeOwned(nil, slices.Collect(maps.Keys(n.ownedSet)), "released")
	l := n.leaseNow()
	n.setLease(func(l *lease) { l.inc = "" })
	if l.inc == "" || n.view == nil {
		return nil
	}
	var writes []ownerWrite
	for t, o := range n.view.owners {
		if o.rec.Node == n.cfg.Node && o.rec.Incarnation == l.inc {
			writes = append(writes, n.releaseWrite(t, o))
		}
	}
	var errs []error
	for i, err := range n.writeOwners(ctx, writes) {
		if err != nil && !isRevisionMismatch(err) {
			errs = append(errs, fmt.Errorf("cluster: releasing %s: %w", writes[i].target, err))
		}
	}
	key := nodesPrefix + escape(n.cfg.Node)
	err := n.kv.Delete(ctx, key, jetstream.LastRevision(l.rev))
	if isRevisionMismatch(err) {
		// A renewal that timed out may have been stored after all: delete
		// the lease if it is still this incarnation's.
		if e, gerr := n.kv.Get(ctx, key); gerr == nil {
			var cur nodeRecord
			if json.Unmarshal(e.Value(), &cur) == nil && cur.Incarnation == l.inc {
				err = n.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
			}
		}
	}
	if err != nil && !isRevisionMismatch(err) && !errors.Is(err, jetstream.ErrKeyNotFound) {
		errs = append(errs, fmt.Errorf("cluster: deleting lease: %w", err))
	}
	n.log.Info("cluster: left", "released", len(writes), "errors", len(errs))
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

func sortedUnique(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func inSorted(s []string, x string) bool {
	_, ok := slices.BinarySearch(s, x)
	return ok
}
