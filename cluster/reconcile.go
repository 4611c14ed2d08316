package cluster

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// writeChunk bounds the owner writes in flight at once.
const writeChunk = 256

// loop is the reconciler: it follows the bucket and keeps the owned set
// and the owner records in line with the assignment until ctx ends.
func (n *Node) loop(ctx context.Context) {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.Renew)
	defer tick.Stop()
	for {
		var updates <-chan jetstream.KeyValueEntry
		if n.watcher != nil {
			updates = n.watcher.Updates()
		}
		select {
		case <-ctx.Done():
			return
		case e, ok := <-updates:
			d := dirty{targets: map[string]bool{}}
			for ok {
				n.apply(e, &d)
				select {
				case e, ok = <-updates:
				default:
					e, ok = nil, false
					updates = nil
				}
			}
			if updates != nil { // the channel closed: the watch ended
				n.watcher = nil
			}
			if d.all {
				n.reconcile(ctx, nil)
			} else if len(d.targets) > 0 {
				n.reconcile(ctx, slices.Sorted(maps.Keys(d.targets)))
			}
		case <-tick.C:
			// The periodic full pass: restarts a watch that ended and
			// retries what failed.
			if n.watcher == nil && !n.leaseNow().failing {
				if err := n.startWatch(ctx); err != nil {
					n.log.Warn("cluster: watching the bucket", "err", err)
				}
			}
			n.reconcile(ctx, nil)
		case <-n.leaseKick:
			recovered := false
			n.setLease(func(l *lease) { recovered, l.recovered = l.recovered, false })
			if recovered {
				// Rebuild the view from the bucket rather than trust a
				// watch that lived through the outage.
				n.log.Info("cluster: bucket reachable again; reading it afresh")
				if err := n.startWatch(ctx); err != nil {
					n.log.Warn("cluster: watching the bucket", "err", err)
				}
			}
			n.reconcile(ctx, nil)
		case <-n.deadlineTmr.C:
			n.reconcile(ctx, nil)
		case <-n.targetsKick:
			n.mu.Lock()
			ts := n.nextTargets
			n.nextTargets = nil
			n.mu.Unlock()
			if ts != nil {
				n.targets = ts
			}
			n.reconcile(ctx, nil)
		}
	}
}

// startWatch (re)starts the watch of the whole bucket; its initial values
// fill a new view, which replaces the current one when complete. Creating
// the watch is bounded like any KV call (opCtx); the watch then lives
// until the next startWatch or ctx ends.
func (n *Node) startWatch(ctx context.Context) error {
	if n.watcher != nil {
		_ = n.watcher.Stop()
		n.watcher = nil
	}
	if n.stopWatch != nil {
		n.stopWatch()
	}
	bound, cancelBound := n.opCtx(ctx)
	defer cancelBound()
	wctx, cancel := context.WithCancel(ctx)
	stopTimeout := context.AfterFunc(bound, cancel)
	w, err := n.kv.WatchAll(wctx)
	if !stopTimeout() { // the bound passed: the watch's context is cancelled
		cancel()
		if err == nil {
			err = bound.Err()
		}
	}
	if err != nil {
		cancel()
		return err
	}
	n.watcher, n.pending, n.stopWatch = w, newView(), cancel
	return nil
}

// dirty collects what a batch of watched entries changed: the
// membership (all) or some targets' owner records.
type dirty struct {
	all     bool
	targets map[string]bool
}

// apply adds one watched entry to the view being filled or followed; nil
// marks the end of a new watch's initial values.
func (n *Node) apply(e jetstream.KeyValueEntry, d *dirty) {
	if e == nil {
		if n.pending != nil {
			n.view, n.pending = n.pending, nil
			if d != nil {
				d.all = true
			}
		}
		return
	}
	if n.pending != nil {
		n.pending.set(e.Key(), e.Revision(), e.Value(), e.Operation() != jetstream.KeyValuePut)
		return
	}
	if n.view == nil {
		return
	}
	switch ch, target := n.view.set(e.Key(), e.Revision(), e.Value(), e.Operation() != jetstream.KeyValuePut); {
	case d == nil:
	case ch == changedMembers:
		d.all = true
	case ch == changedOwner:
		d.targets[target] = true
	}
}

// reconcile brings the owned set and the owner records of targets (nil:
// all) in line with the assignment over the live, non-draining nodes:
// first it stops and releases the targets it no longer gets, then it
// takes those it gets that are free (released, never owned, or owned by
// a lapsed lease). Its cost is in the targets looked at, not in the
// targets owned, so that the stream of watch events a large handover
// makes stays cheap.
func (n *Node) reconcile(ctx context.Context, targets []string) {
	if n.view == nil {
		return
	}
	l := n.leaseNow()
	if n.ownedInc != "" && n.ownedInc != l.inc || !l.valid() {
		if len(n.ownedSet) > 0 {
			n.log.Warn("cluster: lease lost, stopping all targets", "owned", len(n.ownedSet))
		}
		n.changeOwned(nil, slices.Collect(maps.Keys(n.ownedSet)), "lost")
		n.ownedInc = ""
	}
	if !l.valid() {
		return
	}
	n.ownedInc = l.inc
	n.deadlineTmr.Reset(time.Until(l.deadline))

	self := n.cfg.Node
	live := n.view.live()
	if !n.view.drains[self] && !slices.Contains(live, self) {
		live = append(live, self)
		slices.Sort(live)
	}
	n.m.liveNodes.Set(float64(len(live)))

	var drop, add []string
	var claims, releases []ownerWrite
	if targets == nil {
		targets = n.targets
		for t := range n.ownedSet { // targets removed from the list
			if !inSorted(n.targets, t) {
				drop = append(drop, t)
			}
		}
		for t, o := range n.view.owners {
			if o.rec.Node == self && o.rec.Incarnation == l.inc && !inSorted(n.targets, t) {
				releases = append(releases, n.releaseWrite(t, o))
			}
		}
	}
	for _, t := range targets {
		if !inSorted(n.targets, t) {
			if n.ownedSet[t] {
				drop = append(drop, t)
			}
			continue
		}
		o, ok := n.view.owners[t]
		mine := ok && o.rec.Node == self && o.rec.Incarnation == l.inc
		if Assign(t, live) != self {
			if mine {
				releases = append(releases, n.releaseWrite(t, o))
			}
			if n.ownedSet[t] {
				drop = append(drop, t)
			}
			continue
		}
		switch {
		case mine:
			// Ours already (or taken by a write whose answer was lost).
			if !n.ownedSet[t] {
				add = append(add, t)
			}
		case !ok || o.rec.Node == "" || !n.view.holds(o.rec):
			claims = append(claims, ownerWrite{
				target: t, expect: n.view.revs[ownersPrefix+escape(t)],
				rec: ownerRecord{Target: t, Node: self, Incarnation: l.inc, Epoch: o.rec.Epoch + 1, Since: time.Now().UTC()},
			})
		default:
			// Another live lease holds it: it is released by its owner
			// (which sees the same assignment) or when that lease lapses.
			if n.ownedSet[t] {
				drop = append(drop, t)
			}
		}
	}
	// Stop before releasing: the next owner may start the moment the
	// release is written.
	n.changeOwned(nil, drop, "released")
	wctx, cancel := n.opCtx(ctx)
	defer cancel()
	for i, err := range n.writeOwners(wctx, releases) {
		n.noteWriteError("releasing", releases[i].target, err)
	}
	for i, err := range n.writeOwners(wctx, claims) {
		if err == nil {
			add = append(add, claims[i].target)
		}
		n.noteWriteError("taking", claims[i].target, err)
	}
	if cur := n.leaseNow(); cur.inc == l.inc && cur.valid() {
		n.changeOwned(add, nil, "released")
	}
}

// noteWriteError counts and logs a failed owner write; a lost
// compare-and-set is normal (another node moved first) and only counted.
func (n *Node) noteWriteError(what, target string, err error) {
	switch {
	case err == nil:
	case isRevisionMismatch(err):
		n.m.casConflicts.Inc()
	default:
		n.log.Debug("cluster: owner write failed", "what", what, "target", target, "err", err)
	}
}

// ownerWrite is a compare-and-set of one owner record.
type ownerWrite struct {
	target string
	rec    ownerRecord
	expect uint64 // the record's revision; 0 if it has none
}

// releaseWrite marks t's record released.
func (n *Node) releaseWrite(t string, o ownerEntry) ownerWrite {
	return ownerWrite{target: t, expect: o.rev, rec: ownerRecord{Target: t, Epoch: o.rec.Epoch, Since: time.Now().UTC()}}
}

// writeOwners performs writes as compare-and-sets, pipelined (one round
// trip for a chunk rather than one per target), applies the successful
// ones to the view and returns each write's error. It stops early, failing
// the rest, when octx ends.
func (n *Node) writeOwners(octx context.Context, writes []ownerWrite) []error {
	errs := make([]error, len(writes))
	if len(writes) == 0 {
		return errs
	}
	for start := 0; start < len(writes); start += writeChunk {
		chunk := writes[start:min(start+writeChunk, len(writes))]
		futures := make([]jetstream.PubAckFuture, len(chunk))
		values := make([][]byte, len(chunk))
		for i, w := range chunk {
			v, err := json.Marshal(w.rec)
			if err == nil {
				values[i] = v
				msg := &nats.Msg{Subject: "$KV." + n.cfg.Bucket + "." + ownersPrefix + escape(w.target), Data: v}
				futures[i], err = n.js.PublishMsgAsync(msg, jetstream.WithExpectLastSequencePerSubject(w.expect))
			}
			errs[start+i] = err
		}
		for i, f := range futures {
			if f == nil {
				continue
			}
			select {
			case ack := <-f.Ok():
				n.view.set(ownersPrefix+escape(chunk[i].target), ack.Sequence, values[i], false)
				if chunk[i].rec.Node != "" {
					n.log.Debug("cluster: target taken", "target", chunk[i].target, "epoch", chunk[i].rec.Epoch)
				}
			case err := <-f.Err():
				errs[start+i] = err
			case <-octx.Done():
				errs[start+i] = octx.Err()
			}
		}
		if octx.Err() != nil {
			for i := start + len(chunk); i < len(writes); i++ {
				errs[i] = octx.Err()
			}
			break
		}
	}
	return errs
}

// changeOwned adds and removes targets from the owned set and, if that
// changed it, delivers the new set; removed targets are counted under how
// (released or lost).
func (n *Node) changeOwned(add, remove []string, how string) {
	var added, removed []string
	for _, t := range remove {
		if n.ownedSet[t] {
			delete(n.ownedSet, t)
			removed = append(removed, t)
		}
	}
	for _, t := range add {
		if !n.ownedSet[t] {
			n.ownedSet[t] = true
			added = append(added, t)
		}
	}
	if len(added) == 0 && len(removed) == 0 {
		return
	}
	owned := slices.Sorted(maps.Keys(n.ownedSet))
	slices.Sort(added)
	slices.Sort(removed)
	n.m.owned.Set(float64(len(owned)))
	n.m.handovers.WithLabelValues("acquired").Add(float64(len(added)))
	n.m.handovers.WithLabelValues(how).Add(float64(len(removed)))
	attrs := []any{"owned", len(owned)}
	if len(added) > 0 {
		attrs = append(attrs, "acquired", len(added), "first_acquired", firstFew(added))
	}
	if len(removed) > 0 {
		attrs = append(attrs, how, len(removed), "first_"+how, firstFew(removed))
	}
	n.log.Info("cluster: owned targets changed", attrs...)
	n.mu.Lock()
	n.owned = owned
	fs := slices.Clone(n.onChange)
	n.mu.Unlock()
	start := time.Now()
	for _, f := range fs {
		f(slices.Clone(owned))
	}
	if took := time.Since(start); took > n.cfg.Renew {
		// Handovers wait for the callback (rule: stop before release), so
		// a slow one delays them; the lease is renewed meanwhile.
		n.log.Warn("cluster: OnChange callback slow; handovers wait for it", "took", took.Round(time.Millisecond))
	}
}

func firstFew(s []string) string {
	if len(s) > 5 {
		return strings.Join(s[:5], ",") + ",…"
	}
	return strings.Join(s, ",")
}
