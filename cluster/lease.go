package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// lease is the node's lease as the renewer last left it.
type lease struct {
	inc      string    // incarnation; "" without a lease
	rev      uint64    // revision of nodes.<node>
	deadline time.Time // when the node must have stopped its targets
	failing  bool      // the last renewal failed
	// recovered is set when renewals succeed again after failing; the
	// reconciler clears it and rebuilds its view.
	recovered  bool
	lastInc    string // the last incarnation this node registered
	registered time.Time
	// reconnects is the connection's reconnect count when the reconciler
	// last (re)started its watch; a reconnect means the watch may have
	// missed what happened meanwhile (an ephemeral consumer does not
	// outlive a server restart).
	reconnects uint64
}

// noteReconnects sets recovered if the connection reconnected since the
// last look.
func (n *Node) noteReconnects(l *lease) {
	if r := n.js.Conn().Stats().Reconnects; r != l.reconnects {
		l.reconnects, l.recovered = r, true
	}
}

// valid reports whether the lease exists and the server cannot have
// expired it yet.
func (l lease) valid() bool { return l.inc != "" && time.Now().Before(l.deadline) }

func (n *Node) leaseNow() lease {
	n.leaseMu.Lock()
	defer n.leaseMu.Unlock()
	return n.lease
}

func (n *Node) setLease(f func(*lease)) {
	n.leaseMu.Lock()
	f(&n.lease)
	n.leaseMu.Unlock()
}

// kickLease tells the reconciler that the lease changed.
func (n *Node) kickLease() {
	select {
	case n.leaseKick <- struct{}{}:
	default:
	}
}

// renewLoop renews the lease every Renew, and more often while renewals
// fail, so that a short outage ends before the lease deadline.
func (n *Node) renewLoop(ctx context.Context) {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.Renew)
	defer tick.Stop()
	for {
		var retry <-chan time.Time
		if n.leaseNow().failing {
			retry = time.After(n.cfg.Renew / 4)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-retry:
		}
		n.renew(ctx)
	}
}

// opCtx bounds one KV operation: by half a renewal period, and by the
// lease deadline while the node holds a lease, so that no wait carries it
// past the moment it must stop its targets.
func (n *Node) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := time.Now().Add(n.cfg.Renew / 2)
	if l := n.leaseNow(); l.valid() && l.deadline.Before(d) {
		d = l.deadline
	}
	return context.WithDeadline(ctx, d)
}

// deadlineAfter is the lease deadline after a renewal sent at sent. The
// server stores the renewal after it was sent and expires it serverTTL
// later, so the node stops its targets a margin before the server can
// expire it; only the two clocks' rates matter, not their offset.
func (n *Node) deadlineAfter(sent time.Time) time.Time {
	return sent.Add(n.cfg.serverTTL() - n.cfg.margin())
}

func (n *Node) record(inc string, registered time.Time) nodeRecord {
	n.mu.Lock()
	hash, count := n.targetsHash, n.targetsCount
	n.mu.Unlock()
	return nodeRecord{
		Node: n.cfg.Node, Incarnation: inc, Started: registered, TTL: n.cfg.serverTTL(),
		TargetsHash: hash, Targets: count,
	}
}

// putLease writes the lease record with the lease's server-side TTL, if
// the key's last revision is expect (0: the key has no message).
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

// ErrNameInUse is returned when a node's name has a live lease that this
// node did not take: another process uses the name, or an earlier run of
// this node died less than a lease ago. The node registers once that lease
// expires; taking it over at once could let two processes own the same
// targets.
var ErrNameInUse = errors.New("cluster: the node name has a live lease of another process")

// register takes a new lease (a new incarnation). A lease this node took
// earlier is replaced; a lease of another process is left to expire
// (ErrNameInUse).
func (n *Node) register(ctx context.Context) error {
	ctx, cancel := n.opCtx(ctx)
	defer cancel()
	inc, now := newIncarnation(), time.Now().UTC()
	rec := n.record(inc, now)
	v, _ := json.Marshal(rec)
	key := nodesPrefix + escape(n.cfg.Node)
	sent := time.Now()
	rev, err := n.kv.Create(ctx, key, v, jetstream.KeyTTL(n.cfg.serverTTL()))
	if isRevisionMismatch(err) {
		var e jetstream.KeyValueEntry
		if e, err = n.kv.Get(ctx, key); err == nil {
			var old nodeRecord
			_ = json.Unmarshal(e.Value(), &old)
			if last := n.leaseNow().lastInc; last == "" || old.Incarnation != last {
				err = fmt.Errorf("%w (incarnation %s, started %s, expires %s)", ErrNameInUse,
					old.Incarnation, old.Started.Format(time.RFC3339), e.Created().Add(old.TTL).Format(time.RFC3339Nano))
			} else {
				sent = time.Now()
				rev, err = n.putLease(ctx, rec, e.Revision())
			}
		}
	}
	if err != nil {
		n.m.renewFailures.Inc()
		n.setLease(func(l *lease) { l.failing = true })
		return fmt.Errorf("cluster: registering lease of %s: %w", n.cfg.Node, err)
	}
	n.setLease(func(l *lease) {
		recovered := l.recovered || l.failing
		*l = lease{inc: inc, rev: rev, deadline: n.deadlineAfter(sent), lastInc: inc, registered: now,
			recovered: recovered, reconnects: l.reconnects}
		n.noteReconnects(l)
	})
	n.log.Info("cluster: lease registered", "incarnation", inc, "lease_ttl", n.cfg.LeaseTTL, "targets", rec.Targets)
	n.kickLease()
	return nil
}

// renew renews the lease, or registers a new one if there is none or it
// lapsed.
func (n *Node) renew(ctx context.Context) {
	l := n.leaseNow()
	if !l.valid() {
		if err := n.register(ctx); err != nil && !l.failing {
			n.log.Warn("cluster: no lease; retrying", "err", err)
		}
		return
	}
	// A renewal may take until the lease deadline: a slow answer from a
	// busy server still keeps the lease.
	octx, cancel := context.WithDeadline(ctx, l.deadline)
	defer cancel()
	sent := time.Now()
	rec := n.record(l.inc, l.registered)
	rev, err := n.putLease(octx, rec, l.rev)
	if isRevisionMismatch(err) {
		// A renewal that timed out may have reached the server after all
		// (the client buffers what it publishes while disconnected): if
		// the record is still this incarnation's, renew from its revision.
		if e, gerr := n.kv.Get(octx, nodesPrefix+escape(n.cfg.Node)); gerr == nil {
			var cur nodeRecord
			if json.Unmarshal(e.Value(), &cur) == nil && cur.Incarnation == l.inc {
				sent = time.Now()
				rev, err = n.putLease(octx, rec, e.Revision())
			}
		}
	}
	switch {
	case err == nil:
		wasFailing, recovered := false, false
		n.setLease(func(cur *lease) {
			if cur.inc != l.inc {
				return
			}
			wasFailing = cur.failing
			cur.rev, cur.deadline, cur.failing = rev, n.deadlineAfter(sent), false
			cur.recovered = cur.recovered || wasFailing
			n.noteReconnects(cur)
			recovered = cur.recovered
		})
		if wasFailing {
			n.log.Info("cluster: lease renewed again")
		}
		if recovered {
			n.kickLease()
		}
	case isRevisionMismatch(err):
		n.m.renewFailures.Inc()
		n.log.Warn("cluster: lease record changed or expired in the bucket; registering again", "incarnation", l.inc)
		n.setLease(func(cur *lease) { cur.inc = "" })
		n.kickLease()
		if err := n.register(ctx); err != nil {
			n.log.Warn("cluster: no lease", "err", err)
		}
	default:
		n.m.renewFailures.Inc()
		wasFailing := false
		n.setLease(func(cur *lease) { wasFailing, cur.failing = cur.failing, true })
		if !wasFailing {
			n.log.Warn("cluster: lease renewal failed; targets are kept until the lease deadline",
				"err", err, "deadline_in", max(0, time.Until(l.deadline)).Round(time.Millisecond))
		}
	}
}

func newIncarnation() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
