package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/collectors/snmp"
	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/fleet"
	"github.com/netfeat/netfeat/schema"
)

// edgeForwarder feeds an edge's fleet.Edge from the pipeline: closed
// windows (a store subscriber, like inference), live decisions and their
// action transitions (the runtime's decision handler), raw samples (the
// store's tap: what it accepted, by series id) and the collectors' device
// states (read every device_check; those that changed, and all of them
// every device_heartbeat). The pipeline never waits for it:
// each hook puts a copy in a bounded queue and returns; a full queue drops
// the newest, counted in netfeat_fleet_forward_dropped_total and logged.
// One goroutine per queue stores what it takes in the local streams, which
// is all the edge does in the data path: the hub sources the streams, and
// during a cut they keep everything within their limits.
//
// New makes no I/O; Start creates the fleet.Edge over the NATS component's
// connection (the embedded server's, which Start of NATS opened) and
// starts the queues' goroutines; Stop drains the queues (within its
// context) and stops the edge.
type edgeForwarder struct {
	cfg  FleetEdgeConfig
	nats *NATS
	reg  prometheus.Registerer
	log  *slog.Logger

	items   chan edgeItem             // windows, decisions, actions, device states
	samples chan []fleet.SeriesSample // sample batches
	stop    chan struct{}             // closed by Stop: drain and return

	dropped  *prometheus.CounterVec
	failed   *prometheus.CounterVec
	lastDrop atomic.Int64 // unix ns of the last drop log line
	closing  atomic.Bool

	edge *fleet.Edge
	// labels gives the labels of the store's series (set by the service
	// before Start when samples are forwarded).
	labels fleet.SeriesLabels
	// states returns the collectors' device states (set by the service
	// before Start; nil: none are forwarded).
	states func() []schema.DeviceState
	// now is the clock of device states (time.Now; a test's).
	now func() time.Time
	// publishSamples stores one message's worth of samples: the edge's
	// PublishSeriesSamples (a test's recorder).
	publishSamples func(context.Context, []fleet.SeriesSample) (int, error)
	cancel         context.CancelFunc
	wg             sync.WaitGroup
}

// edgeItem is one window, decision, action transition or device state to
// forward.
type edgeItem struct {
	row      *schema.FeatureRow
	decision *schema.Decision
	action   *fleet.Action
	device   *fleet.DeviceState
}

func (it *edgeItem) kind() string {
	switch {
	case it.row != nil:
		return string(fleet.KindWindows)
	case it.decision != nil:
		return string(fleet.KindDecisions)
	case it.device != nil:
		return string(fleet.KindDevices)
	default:
		return string(fleet.KindActions)
	}
}

// newEdgeForwarder prepares the forwarder of site; nothing runs until
// Start.
func newEdgeForwarder(cfg FleetEdgeConfig, site string, n *NATS, reg prometheus.Registerer, log *slog.Logger) *edgeForwarder {
	cfg.Site = site
	f := &edgeForwarder{
		cfg: cfg, nats: n, reg: reg, log: log.With("component", "fleet-edge"), // fleet.Edge adds the site
		items:   make(chan edgeItem, cfg.Queue),
		samples: make(chan []fleet.SeriesSample, cfg.SampleQueue),
		stop:    make(chan struct{}),
		now:     time.Now,
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_forward_dropped_total",
			Help: "Items the edge did not forward because its queue to the local streams was full, by kind (samples count samples).",
		}, []string{"kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_forward_failed_total",
			Help: "Items the local streams refused after retries (a discard-new stream at its limits), by kind.",
		}, []string{"kind"}),
	}
	for _, k := range fleet.Kinds {
		f.dropped.WithLabelValues(string(k))
		f.failed.WithLabelValues(string(k))
	}
	if reg != nil {
		reg.MustRegister(f.dropped, f.failed, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "netfeat_fleet_forward_queued",
			Help: "Windows, decisions, action transitions and device states waiting for the local streams.",
		}, func() float64 { return float64(len(f.items)) }))
	}
	return f
}

// Name returns "fleet-edge".
func (f *edgeForwarder) Name() string { return "fleet-edge" }

// Start creates the local streams (fleet.Edge.Start: registration with the
// hub goes on in the background) and the goroutines that fill them.
func (f *edgeForwarder) Start(ctx context.Context) error {
	e, err := fleet.NewEdge(f.cfg.EdgeConfig, f.nats.Conn(), f.reg, f.log)
	if err != nil {
		return err
	}
	if err := e.Start(ctx); err != nil {
		return err
	}
	f.edge = e
	if f.labels != nil {
		enc := fleet.NewSeriesEncoder(f.labels)
		f.publishSamples = func(ctx context.Context, b []fleet.SeriesSample) (int, error) {
			return e.PublishSeriesSamples(ctx, enc, b)
		}
	}
	var run context.Context
	run, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
	f.wg.Add(2)
	go func() { defer f.wg.Done(); f.forwardItems(run) }()
	go func() { defer f.wg.Done(); f.forwardSamples(run) }()
	if f.states != nil {
		f.wg.Add(1)
		go func() { defer f.wg.Done(); f.watchDevices(run) }()
	}
	return nil
}

// Ready reports an error until Start has run.
func (f *edgeForwarder) Ready() error {
	if f.edge == nil {
		return errors.New("not started")
	}
	return nil
}

// Stop forwards what is queued (the stages before it have stopped, so the
// queues only shrink) until ctx ends, then stops the edge.
func (f *edgeForwarder) Stop(ctx context.Context) error {
	if f.edge == nil {
		return nil
	}
	f.closing.Store(true)
	close(f.stop)
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		f.cancel()
		<-done
		err = fmt.Errorf("fleet edge: %d items left unforwarded: %w", len(f.items), ctx.Err())
	}
	f.cancel()
	return errors.Join(err, f.edge.Stop(ctx))
}

// window is the store's subscriber: a closed window to forward.
func (f *edgeForwarder) window(row *schema.FeatureRow) {
	f.put(edgeItem{row: row})
}

// decision is the runtime's decision handler: the decision, and its action
// transition when it made one.
func (f *edgeForwarder) decision(d *schema.Decision) {
	c := *d
	f.put(edgeItem{decision: &c})
	if a, ok := fleet.ActionFromDecision(&c); ok {
		f.put(edgeItem{action: &a})
	}
}

// put queues it without waiting and reports whether it did: a full queue
// drops it, counted.
func (f *edgeForwarder) put(it edgeItem) bool {
	if f.closing.Load() {
		return false
	}
	select {
	case f.items <- it:
		return true
	default:
		f.drop(it.kind(), 1)
		return false
	}
}

// deviceKey is what makes a device state a change: a new state, address,
// protocol, profile or last error. last_success, the duration and the
// counters move at every poll; the heartbeat carries them.
type deviceKey struct {
	address, protocol, profile, state, lastError string
}

func keyOf(d *schema.DeviceState) deviceKey {
	return deviceKey{d.Address, d.Protocol, d.Profile, d.State, d.LastError}
}

// watchDevices reads the collectors' device states every device_check
// until Stop and queues, for the hub, those that changed since the last
// one queued, and every state when the heartbeat is due. A device that
// disappears (its target removed) is queued once as fleet.StateRemoved. A
// state the full queue dropped counts as not sent: it goes at the next
// check. States of targets another cluster node owns are not this edge's
// to report.
func (f *edgeForwarder) watchDevices(ctx context.Context) {
	t := time.NewTicker(f.cfg.DeviceCheck)
	defer t.Stop()
	sent := map[string]deviceKey{}
	var lastBeat time.Time
	for {
		now := f.now()
		beat := now.Sub(lastBeat) >= f.cfg.DeviceHeartbeat
		if f.checkDevices(now, beat, sent) && beat {
			lastBeat = now
		}
		select {
		case <-ctx.Done():
			return
		case <-f.stop:
			return
		case <-t.C:
		}
	}
}

// checkDevices queues the states that changed since sent (all of them
// when beat), updating sent with what it queued, and reports whether the
// queue took everything.
func (f *edgeForwarder) checkDevices(now time.Time, beat bool, sent map[string]deviceKey) bool {
	ts := now.UnixNano()
	all := true
	current := make(map[string]struct{}, len(sent))
	for _, st := range f.states() {
		if st.State == snmp.StateNotOwned || st.State == gnmi.StateNotOwned {
			// Another node of the site polls it and reports it: left
			// out, and forgotten here without a word (a "removed" from
			// this node could land after the new owner's first state).
			delete(sent, st.Device)
			continue
		}
		current[st.Device] = struct{}{}
		k := keyOf(&st)
		old, known := sent[st.Device]
		if known && old == k && !beat {
			continue
		}
		d := &fleet.DeviceState{TS: ts, Heartbeat: known && old == k, DeviceState: st}
		if !f.put(edgeItem{device: d}) {
			all = false
			continue
		}
		sent[st.Device] = k
	}
	for dev, k := range sent {
		if _, ok := current[dev]; ok {
			continue
		}
		d := &fleet.DeviceState{TS: ts, DeviceState: schema.DeviceState{Device: dev, Address: k.address, Protocol: k.protocol,
			Profile: k.profile, State: fleet.StateRemoved}}
		if !f.put(edgeItem{device: d}) {
			all = false
			continue
		}
		delete(sent, dev)
	}
	return all
}

// forwardsSamples reports whether sample forwarding is on for any device.
func (f *edgeForwarder) forwardsSamples() bool {
	sf := f.cfg.SampleForwarding
	on := sf.Mode != "" && sf.Mode != fleet.SamplesOff
	for _, m := range sf.Devices {
		on = on || m != fleet.SamplesOff
	}
	return on
}

// tap is the store's tap on an edge that forwards samples: a batch the
// store accepted is copied into the queue for the hub, never waiting. It
// forwards what the store keeps: its labels after the store's checks,
// without the samples it refused or had already.
func (f *edgeForwarder) tap(recs []featurestore.Record) {
	if f.closing.Load() || len(recs) == 0 {
		return
	}
	cp := getSampleBuf(len(recs))
	for _, r := range recs {
		cp = append(cp, fleet.SeriesSample{TS: r.TS, IngestTS: r.IngestTS, Value: r.Value, Series: r.Series})
	}
	select {
	case f.samples <- cp:
	default:
		putSampleBuf(cp)
		f.drop(string(fleet.KindSamples), len(recs))
	}
}

// sampleBufs holds the tap's copies of batches once the forwarder has
// gathered them, for the next batches: the tap copies every sample the
// store takes, and a new slice each time was most of the fleet path's
// garbage.
var sampleBufs sync.Pool

// getSampleBuf returns an empty slice with room for n samples.
func getSampleBuf(n int) []fleet.SeriesSample {
	if p, ok := sampleBufs.Get().(*[]fleet.SeriesSample); ok && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]fleet.SeriesSample, 0, n)
}

// putSampleBuf gives b back for getSampleBuf.
func putSampleBuf(b []fleet.SeriesSample) {
	b = b[:0]
	sampleBufs.Put(&b)
}

// drop counts n dropped items of kind and logs it at most every 10 s.
func (f *edgeForwarder) drop(kind string, n int) {
	f.dropped.WithLabelValues(kind).Add(float64(n))
	now := time.Now().UnixNano()
	if last := f.lastDrop.Load(); now-last > int64(10*time.Second) && f.lastDrop.CompareAndSwap(last, now) {
		f.log.Warn("fleet: forwarding queue full; the hub will miss what is dropped (the edge itself keeps it)",
			"kind", kind, "queue", cap(f.items), "sample_queue", cap(f.samples))
	}
}

// forwardItems stores queued windows, decisions and actions in the local
// streams until Stop, then what is left in the queue, unless ctx ends. It
// gathers them per kind into messages of up to items_per_message, stored
// when full or when the first waited item_linger: a JetStream message
// costs a publish, a store and an acknowledgement at the edge and a
// delivery at the hub whatever its size.
func (f *edgeForwarder) forwardItems(ctx context.Context) {
	var (
		rows    []*schema.FeatureRow
		ds      []*schema.Decision
		as      []*fleet.Action
		devs    []*fleet.DeviceState
		maxItem = f.cfg.ItemsPerMessage
	)
	store := func(kind string, n int, publish func(context.Context) error) {
		if n == 0 {
			return
		}
		if err := f.retry(ctx, publish); err != nil && ctx.Err() == nil {
			f.failed.WithLabelValues(kind).Add(float64(n))
			f.log.Warn("fleet: local stream refused items; the hub will not see them", "kind", kind, "items", n, "err", err)
		}
	}
	flushRows := func() {
		b := rows
		rows = nil
		store(string(fleet.KindWindows), len(b), func(ctx context.Context) error { return f.edge.PublishWindows(ctx, b) })
	}
	flushDecisions := func() {
		b := ds
		ds = nil
		store(string(fleet.KindDecisions), len(b), func(ctx context.Context) error { return f.edge.PublishDecisions(ctx, b) })
	}
	flushActions := func() {
		b := as
		as = nil
		store(string(fleet.KindActions), len(b), func(ctx context.Context) error { return f.edge.PublishActions(ctx, b) })
	}
	flushDevices := func() {
		b := devs
		devs = nil
		store(string(fleet.KindDevices), len(b), func(ctx context.Context) error { return f.edge.PublishDeviceStates(ctx, b) })
	}
	flush := func() {
		flushRows()
		flushDecisions()
		flushActions()
		flushDevices()
	}
	add := func(it edgeItem) (started, empty bool) {
		started = len(rows)+len(ds)+len(as)+len(devs) == 0
		switch {
		case it.row != nil:
			if rows = append(rows, it.row); len(rows) >= maxItem {
				flushRows()
			}
		case it.decision != nil:
			if ds = append(ds, it.decision); len(ds) >= maxItem {
				flushDecisions()
			}
		case it.device != nil:
			if devs = append(devs, it.device); len(devs) >= maxItem {
				flushDevices()
			}
		default:
			if as = append(as, it.action); len(as) >= maxItem {
				flushActions()
			}
		}
		return started, len(rows)+len(ds)+len(as)+len(devs) == 0
	}
	gather(ctx, f.items, f.stop, f.cfg.ItemLinger, add, flush)
}

// forwardSamples stores queued sample batches, like forwardItems, gathered
// into messages: batches are appended to one until the next would take it
// past max_per_message or its first batch waited linger (a collector's
// batch is one device's poll, often a few hundred samples: a message each
// would spend most of its bytes on the Arrow schema and dictionaries).
func (f *edgeForwarder) forwardSamples(ctx context.Context) {
	sf := f.cfg.SampleForwarding
	// pending gathers the batches; PublishSeriesSamples keeps no
	// reference to it, so its array is used again for the next message.
	pending := make([]fleet.SeriesSample, 0, sf.MaxPerMessage)
	flush := func() {
		if len(pending) == 0 {
			return
		}
		b := pending
		pending = pending[:0]
		err := f.retry(ctx, func(ctx context.Context) error {
			_, err := f.publishSamples(ctx, b)
			return err
		})
		if err != nil && ctx.Err() == nil {
			f.failed.WithLabelValues(string(fleet.KindSamples)).Inc()
			f.log.Warn("fleet: local stream refused samples; the hub will not see them", "samples", len(b), "err", err)
		}
	}
	add := func(b []fleet.SeriesSample) (started, empty bool) {
		if len(pending) > 0 && len(pending)+len(b) > sf.MaxPerMessage {
			flush()
		}
		started = len(pending) == 0
		pending = append(pending, b...)
		putSampleBuf(b)
		if len(pending) >= sf.MaxPerMessage {
			flush()
		}
		return started, len(pending) == 0
	}
	gather(ctx, f.samples, f.stop, sf.Linger, add, flush)
}

// gather hands every value of q to add until stop is closed and q is
// empty, or ctx ends. add gathers values into messages and sends them when
// full; it reports whether the value started a new message and whether
// nothing is left pending. gather calls flush when the message pending
// waited linger since the value that started it, and once more at stop. q
// is never closed: a hook racing Stop cannot panic.
func gather[T any](ctx context.Context, q <-chan T, stop <-chan struct{}, linger time.Duration, add func(T) (started, empty bool), flush func()) {
	timer := time.NewTimer(linger)
	timer.Stop()
	var due <-chan time.Time
	put := func(v T) {
		switch started, empty := add(v); {
		case empty:
			timer.Stop()
			due = nil
		case started:
			timer.Reset(linger)
			due = timer.C
		}
	}
	for ctx.Err() == nil {
		select {
		case v := <-q:
			put(v)
		case <-due:
			due = nil
			flush()
		case <-stop:
			for ctx.Err() == nil {
				select {
				case v := <-q:
					put(v)
				default:
					flush()
					return
				}
			}
			return
		case <-ctx.Done():
			return
		}
	}
}

// retry runs publish up to 3 times, 200 ms apart: a publish to the local
// server fails only while it is overloaded or a stream is at a discard-new
// limit. Publishing again is safe: message ids make it idempotent.
func (f *edgeForwarder) retry(ctx context.Context, publish func(context.Context) error) error {
	var err error
	for range 3 {
		if err = publish(ctx); err == nil || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return err
}
