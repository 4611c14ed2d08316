package inference

// The publisher: one goroutine (run, started by Start) that owns the NATS
// side and the outbox. Workers hand it decisions through submit, which
// publishes directly on their goroutine while NATS is up and the outbox is
// empty, and queues to the publisher otherwise.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publisher is the goroutine that talks to NATS. While NATS is reachable
// and the outbox is empty it publishes decisions directly (on core NATS the
// workers then publish themselves and skip the hand-off); when
// NATS is unreachable, or a publish is not confirmed, decisions go to the
// Badger outbox, and while the outbox is not empty new decisions queue
// behind it, so that they reach NATS in the order they were made. The
// outbox drains every Outbox.RetryInterval once NATS is back.
//
// With a JetStream stream configured a decision counts as delivered when
// JetStream acknowledges it; a decision whose acknowledgement does not come
// is kept and sent again with the same Nats-Msg-Id, which JetStream
// de-duplicates within the stream's duplicate window. On core NATS a
// decision counts as delivered once the client library accepted it (the
// outbox drains with a flush), so core NATS is at most once across a
// server crash, as core NATS always is.
type publisher struct {
	cfg      Config
	nc       *nats.Conn
	js       jetstream.JetStream
	streamOK bool
	// streamLost is set when a publish found no stream (someone deleted
	// it): the next ensureStream recreates it, logs and counts that.
	streamLost bool
	ob         *outbox
	in         chan *outMsg
	m          *metrics
	log        *slog.Logger
	done       chan struct{}
	// stopBy (Unix ns) is set before in is closed: the final drain and
	// acknowledgement waits end then.
	stopBy atomic.Int64

	// mu guards direct. While direct is true (core NATS, connected, empty
	// outbox) workers publish themselves under mu.RLock. They also hold
	// mu.RLock while queueing to in, so that the switch to direct, made
	// under mu.Lock after in was emptied, keeps decisions in order. Only
	// the publisher goroutine writes direct, so it reads it without mu.
	mu     sync.RWMutex
	direct bool

	// lastEnsure is when the stream was last tried, so that a server
	// without JetStream costs one attempt per retry interval.
	lastEnsure time.Time
	lastWarn   time.Time
}

func newPublisher(cfg Config, nc *nats.Conn, ob *outbox, m *metrics, log *slog.Logger) (*publisher, error) {
	p := &publisher{cfg: cfg, nc: nc, ob: ob, m: m, log: log,
		in: make(chan *outMsg, cfg.PublishQueue), done: make(chan struct{})}
	if cfg.JetStream.Stream != "" && nc != nil {
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(cfg.Outbox.AckTimeout))
		if err != nil {
			return nil, fmt.Errorf("jetstream: %w", err)
		}
		p.js = js
	}
	return p, nil
}

func (p *publisher) run() {
	defer close(p.done)
	tick := time.NewTicker(p.cfg.Outbox.RetryInterval)
	defer tick.Stop()
	batch := make([]*outMsg, 0, 256)
	for {
		select {
		case m, ok := <-p.in:
			if !ok {
				p.finish()
				return
			}
			batch = append(batch[:0], m)
			closed := false
		fill:
			for len(batch) < cap(batch) {
				select {
				case m, ok := <-p.in:
					if !ok {
						closed = true
						break fill
					}
					batch = append(batch, m)
				default:
					break fill
				}
			}
			p.deliver(batch)
			clear(batch)
			if closed {
				p.finish()
				return
			}
			p.maybeDirect()
		case <-tick.C:
			if p.ob.count > 0 && p.ready() {
				p.drain(time.Now().Add(p.cfg.Outbox.RetryInterval))
			}
			p.maybeDirect()
		}
	}
}

// submit hands a decision over for publishing; workers call it with their
// scratch (data may be sc.buf: it is copied only when queued). On core
// NATS with an empty outbox it publishes at once; otherwise it queues the
// decision for the publisher goroutine, waiting while that queue is full.
func (p *publisher) submit(subject, id string, data []byte, sc *scratch) {
	var m *outMsg
	for {
		p.mu.RLock()
		if p.direct && p.nc.IsConnected() {
			// nats.go copies the message into its buffer: sc.msg and data
			// are free again when PublishMsg returns.
			sc.msg.Subject, sc.msg.Data, sc.id[0] = subject, data, id
			err := p.nc.PublishMsg(&sc.msg)
			sc.msg.Data = nil
			if err == nil {
				p.mu.RUnlock()
				p.m.published.Inc()
				return
			}
			p.m.publishErrors.WithLabelValues("publish").Inc()
		}
		if m == nil {
			m = &outMsg{subject: subject, id: id, data: slices.Clone(data)}
		}
		select {
		case p.in <- m:
			p.mu.RUnlock()
			return
		default:
		}
		p.mu.RUnlock()
		time.Sleep(100 * time.Microsecond) // the publisher is behind: back-pressure
	}
}

// maybeDirect lets workers publish themselves once nothing waits: core
// NATS, connected, empty outbox. Under mu.Lock it first publishes what is
// queued, so that nothing made earlier goes out after what workers
// publish next.
func (p *publisher) maybeDirect() {
	if p.js != nil || p.direct || p.ob.count > 0 || !p.ready() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	batch := make([]*outMsg, 0, 256)
	for {
		batch = batch[:0]
	take:
		for len(batch) < cap(batch) {
			select {
			case m, ok := <-p.in:
				if !ok {
					break take
				}
				batch = append(batch, m)
			default:
				break take
			}
		}
		if len(batch) == 0 {
			break
		}
		p.deliver(batch) // direct is false here, so store does not lock
	}
	if p.ob.count == 0 && p.ready() {
		p.direct = true
	}
}

// ready reports whether NATS (and the stream, when configured) can take
// decisions now.
func (p *publisher) ready() bool {
	if p.nc == nil || !p.nc.IsConnected() {
		return false
	}
	if p.js != nil && !p.streamOK && time.Since(p.lastEnsure) >= p.cfg.Outbox.RetryInterval {
		p.lastEnsure = time.Now()
		p.ensureStream()
	}
	return p.js == nil || p.streamOK
}

// ensureStream creates or updates the decisions stream.
func (p *publisher) ensureStream() {
	c := p.cfg.JetStream
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Outbox.AckTimeout)
	defer cancel()
	_, err := p.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        c.Stream,
		Description: "netfeat decisions",
		Subjects:    []string{"netfeat.decisions.>"},
		Storage:     jetstream.FileStorage,
		MaxAge:      c.MaxAge,
		Replicas:    c.Replicas,
		Duplicates:  c.DuplicateWindow,
	})
	if err != nil {
		p.m.publishErrors.WithLabelValues("stream").Inc()
		if time.Since(p.lastWarn) >= 30*time.Second {
			p.lastWarn = time.Now()
			p.log.Warn("jetstream stream not ready; decisions wait in the outbox", "stream", c.Stream, "err", err)
		}
		return
	}
	p.streamOK = true
	if p.streamLost {
		p.streamLost = false
		p.m.streamRecreated.Inc()
		p.log.Warn("jetstream stream was missing and has been recreated; the outbox drains into it", "stream", c.Stream)
		return
	}
	p.log.Info("jetstream stream ready", "stream", c.Stream)
}

// deliver publishes a batch, or queues it in the outbox.
func (p *publisher) deliver(batch []*outMsg) {
	if p.ob.count > 0 || !p.ready() {
		p.store(batch)
		return
	}
	if failed := p.send(batch); len(failed) > 0 {
		p.store(failed)
	}
}

func (p *publisher) store(msgs []*outMsg) {
	if p.direct {
		// Workers must queue from now on, behind the outbox.
		p.mu.Lock()
		p.direct = false
		p.mu.Unlock()
	}
	n, err := p.ob.append(msgs, p.cfg.Outbox.MaxPending)
	if err != nil {
		p.log.Error("outbox write failed; decisions lost", "decisions", len(msgs), "err", err)
		p.m.outboxDropped.Add(float64(len(msgs)))
		return
	}
	p.m.outboxStored.Add(float64(n))
	if n < len(msgs) {
		p.m.outboxDropped.Add(float64(len(msgs) - n))
		p.log.Warn("outbox full; decisions dropped", "dropped", len(msgs)-n, "max_pending", p.cfg.Outbox.MaxPending)
	}
}

func natsMsg(m *outMsg) *nats.Msg {
	return &nats.Msg{Subject: m.subject, Data: m.data, Header: nats.Header{jetstream.MsgIDHeader: []string{m.id}}}
}

// send publishes msgs in order and returns those not confirmed, in order.
func (p *publisher) send(msgs []*outMsg) []*outMsg {
	if p.js == nil {
		for i, m := range msgs {
			if err := p.nc.PublishMsg(natsMsg(m)); err != nil {
				p.m.publishErrors.WithLabelValues("publish").Inc()
				return msgs[i:]
			}
			p.m.published.Inc()
		}
		return nil
	}
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	var failed []*outMsg
	for i, m := range msgs {
		if !p.nc.IsConnected() {
			failed = msgs[i:]
			break
		}
		f, err := p.js.PublishMsgAsync(natsMsg(m))
		if err != nil {
			p.m.publishErrors.WithLabelValues("publish").Inc()
			failed = msgs[i:]
			break
		}
		futs = append(futs, f)
	}
	notAcked := p.awaitAcks(futs)
	if len(notAcked) == 0 {
		return failed
	}
	out := make([]*outMsg, 0, len(notAcked)+len(failed))
	for _, i := range notAcked {
		out = append(out, msgs[i])
	}
	return append(out, failed...)
}

// awaitAcks waits for JetStream acknowledgements and returns the indexes
// of futures that failed, timed out, or were cut off by a disconnect.
func (p *publisher) awaitAcks(futs []jetstream.PubAckFuture) []int {
	var bad []int
	wait := p.cfg.Outbox.AckTimeout
	if by := p.stopBy.Load(); by != 0 {
		wait = min(wait, max(time.Until(time.Unix(0, by)), time.Millisecond))
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for i, f := range futs {
	wait:
		for {
			select {
			case <-f.Ok():
				p.m.published.Inc()
				break wait
			case err := <-f.Err():
				reason := ackReason(err)
				p.m.publishErrors.WithLabelValues(reason).Inc()
				if reason == "no_stream" && p.streamOK {
					// The stream was deleted under us: stop publishing,
					// keep the decisions in the outbox and recreate it at
					// once (ready calls ensureStream).
					p.streamOK, p.streamLost = false, true
					p.lastEnsure = time.Time{}
				}
				bad = append(bad, i)
				break wait
			case <-deadline.C:
				p.m.publishErrors.WithLabelValues("ack_timeout").Add(float64(len(futs) - i))
				for j := i; j < len(futs); j++ {
					bad = append(bad, j)
				}
				return bad
			case <-poll.C:
				if !p.nc.IsConnected() {
					p.m.publishErrors.WithLabelValues("disconnected").Add(float64(len(futs) - i))
					for j := i; j < len(futs); j++ {
						bad = append(bad, j)
					}
					return bad
				}
			}
		}
	}
	return bad
}

func ackReason(err error) string {
	switch {
	case errors.Is(err, nats.ErrDisconnected):
		return "disconnected"
	case errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return "ack_timeout"
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return "no_stream"
	}
	return "ack_error"
}

// drain sends outbox entries, oldest first, until the outbox is empty,
// a send fails, or the deadline passes.
func (p *publisher) drain(deadline time.Time) {
	for p.ob.count > 0 && time.Now().Before(deadline) && p.ready() {
		entries, err := p.ob.head(p.cfg.Outbox.DrainBatch)
		if err != nil {
			p.log.Error("outbox read failed", "err", err)
			return
		}
		if len(entries) == 0 {
			return
		}
		msgs := make([]*outMsg, 0, len(entries))
		var corrupt []outEntry
		for _, e := range entries {
			if e.msg == nil {
				corrupt = append(corrupt, e)
				continue
			}
			msgs = append(msgs, e.msg)
		}
		if len(corrupt) > 0 {
			p.m.outboxDropped.Add(float64(len(corrupt)))
			p.log.Error("corrupt outbox entries dropped", "count", len(corrupt))
			if err := p.ob.remove(corrupt); err != nil {
				p.log.Error("outbox remove failed", "err", err)
				return
			}
			entries = slicesDeleteCorrupt(entries)
			if len(entries) == 0 {
				continue
			}
		}
		failed := p.send(msgs)
		if p.js == nil && len(failed) == 0 {
			if err := p.nc.FlushTimeout(p.cfg.Outbox.AckTimeout); err != nil {
				p.m.publishErrors.WithLabelValues("flush").Inc()
				return
			}
		}
		// Remove the delivered prefix; from the first failure on, entries
		// stay (JetStream drops the duplicates of any that did land).
		delivered := entries
		if len(failed) > 0 {
			first := failed[0]
			for i, e := range entries {
				if e.msg == first {
					delivered = entries[:i]
					break
				}
			}
		}
		if err := p.ob.remove(delivered); err != nil {
			p.log.Error("outbox remove failed", "err", err)
			return
		}
		if len(delivered) == len(entries) {
			p.ob.advance(entries[len(entries)-1].seq + 1)
		} else {
			p.ob.advance(entries[len(delivered)].seq)
		}
		p.m.outboxDrained.Add(float64(len(delivered)))
		if len(failed) > 0 {
			return
		}
	}
}

func slicesDeleteCorrupt(entries []outEntry) []outEntry {
	out := entries[:0]
	for _, e := range entries {
		if e.msg != nil {
			out = append(out, e)
		}
	}
	return out
}

// finish runs after the input closed: it drains the outbox while NATS
// takes decisions and stopBy allows; what is left stays for the next run.
func (p *publisher) finish() {
	if p.ob.count > 0 && p.ready() {
		p.drain(time.Unix(0, p.stopBy.Load()))
	}
	if p.ob.count > 0 {
		p.log.Info("decisions kept in the outbox for the next start", "pending", p.ob.count)
	}
}
