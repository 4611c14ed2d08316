package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/schema"
)

// Meta says where a sourced item comes from.
type Meta struct {
	// Site is the edge that published the item.
	Site string
	// Kind is the item's kind.
	Kind Kind
	// ID is the item's message id (Nats-Msg-Id): unique per item and the
	// same on every delivery of it.
	ID string
	// Stream and Seq locate the item in the hub stream.
	Stream string
	Seq    uint64
	// Delivered counts the deliveries of this item to the sink, 1 the
	// first time.
	Delivered uint64
	// Stored is when the hub stream stored the item.
	Stored time.Time
}

// Sink receives everything the hub sources from the edges, one item at a
// time, decoded and tagged with its site.
//
// Calls for one (site, kind) come from one goroutine, in the order the
// edge stored the items; calls for different sites or kinds are
// concurrent, so a Sink must be safe for concurrent use. A nil error
// acknowledges the item: the hub does not deliver it again. An error makes
// the hub deliver it again after retry_delay, without limit, so an error
// must mean "try again", never "drop this".
//
// Delivery is at least once: after a hub node dies, or an acknowledgement
// is lost, an item the sink accepted can come again, with the same Meta.ID
// and a higher Meta.Delivered. A Sink that must not count an item twice
// keeps the ids it accepted (the hub streams themselves hold each id once).
// The sink owns the values passed to it.
type Sink interface {
	// Window receives a closed feature window.
	Window(ctx context.Context, m Meta, row *schema.FeatureRow) error
	// Decision receives a decision.
	Decision(ctx context.Context, m Meta, d *schema.Decision) error
	// Action receives an action transition.
	Action(ctx context.Context, m Meta, a *Action) error
	// Samples receives one batch of raw samples.
	Samples(ctx context.Context, m Meta, batch []schema.Sample) error
	// DeviceState receives a collector target's state. States of one
	// device come in the order the edge stored them, but after a
	// redelivery or a replay an older one can follow a newer: compare
	// DeviceState.TS.
	DeviceState(ctx context.Context, m Meta, d *DeviceState) error
}

// Hub sources the streams of every registered edge into replicated hub
// streams (one per site and kind) and feeds a Sink from them through
// durable pull consumers. It runs against the hub's JetStream cluster
// (domain DefaultHubDomain); edges register themselves in its registry KV
// bucket.
//
// NewHub makes no network calls; Start creates the registry and starts
// watching it; Stop ends consumption.
type Hub struct {
	cfg  HubConfig
	nc   *nats.Conn
	js   jetstream.JetStream
	sink Sink
	log  *slog.Logger
	m    *hubMetrics

	mu    sync.Mutex
	sites map[string]*hubSite

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// hubSite is one sourced edge.
type hubSite struct {
	instance string
	ready    bool
	consume  []jetstream.ConsumeContext
	kicked   map[Kind]time.Time // last source kick per kind
}

// NewHub validates cfg and returns a Hub that uses nc, a connection to the
// hub's JetStream cluster. reg receives the metrics (nil: none); log nil
// discards logs. It makes no network calls.
func NewHub(cfg HubConfig, nc *nats.Conn, sink Sink, reg prometheus.Registerer, log *slog.Logger) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc == nil || sink == nil {
		return nil, errors.New("fleet: hub needs a NATS connection and a sink")
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("fleet: jetstream: %w", err)
	}
	m, err := newHubMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Hub{cfg: cfg.withDefaults(), nc: nc, js: js, sink: sink, log: log, m: m, sites: map[string]*hubSite{}}, nil
}

// Start creates or updates the registry bucket and starts watching it:
// every registered site gets its hub streams and consumers.
func (h *Hub) Start(ctx context.Context) error {
	kv, err := h.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: h.cfg.RegistryBucket, Description: "netfeat fleet: edges by site, value the edge's instance",
		Storage: jetstream.FileStorage, Replicas: h.cfg.Replicas, History: 1,
	})
	if err != nil {
		return fmt.Errorf("fleet: registry bucket %s: %w", h.cfg.RegistryBucket, err)
	}
	h.ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
	w, err := kv.WatchAll(h.ctx)
	if err != nil {
		h.cancel()
		return fmt.Errorf("fleet: watch registry %s: %w", h.cfg.RegistryBucket, err)
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer w.Stop()
		for {
			select {
			case <-h.ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					h.registryUpdate(e)
				}
			}
		}
	}()
	h.wg.Add(1)
	go func() { defer h.wg.Done(); h.watchSources() }()
	h.log.Info("fleet hub started", "registry", h.cfg.RegistryBucket, "replicas", h.cfg.Replicas)
	return nil
}

// Stop stops every consumer, waits for the sink calls in flight, and
// returns; the streams and consumers stay, so the next Start resumes where
// this one stopped.
func (h *Hub) Stop(ctx context.Context) error {
	if h.cancel == nil {
		return nil
	}
	h.cancel()
	h.mu.Lock()
	var ccs []jetstream.ConsumeContext
	for _, s := range h.sites {
		ccs = append(ccs, s.consume...)
		s.consume = nil
	}
	h.mu.Unlock()
	for _, cc := range ccs {
		cc.Stop()
	}
	done := make(chan struct{})
	go func() {
		for _, cc := range ccs {
			<-cc.Closed()
		}
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("fleet: hub stop: %w", ctx.Err())
	}
}

// Sites returns the sites whose hub streams and consumers run, sorted.
func (h *Hub) Sites() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for site, s := range h.sites {
		if s.ready {
			out = append(out, site)
		}
	}
	slices.Sort(out)
	return out
}

// registryUpdate handles one registry entry.
func (h *Hub) registryUpdate(e jetstream.KeyValueEntry) {
	site := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		// A deleted registration stops acceptance of the site's
		// messages; its streams stay for a new owner.
		h.mu.Lock()
		if s := h.sites[site]; s != nil {
			s.instance = ""
		}
		h.mu.Unlock()
		h.log.Warn("fleet: edge registration removed; its messages are refused until it registers again", "site", site)
		return
	}
	r, err := parseRegistration(e.Value())
	if err == nil {
		err = ValidateSite(site, DefaultHubDomain)
	}
	if err != nil {
		h.log.Error("fleet: ignoring bad registry entry", "site", site, "err", err)
		return
	}
	h.mu.Lock()
	s, ok := h.sites[site]
	if ok {
		s.instance = r.Instance
		h.mu.Unlock()
		return
	}
	s = &hubSite{instance: r.Instance, kicked: map[Kind]time.Time{}}
	h.sites[site] = s
	h.m.sites.Set(float64(len(h.sites)))
	h.mu.Unlock()
	h.log.Info("fleet: sourcing edge", "site", site, "instance", r.Instance)
	h.wg.Add(1)
	go func() { defer h.wg.Done(); h.sourceSite(site) }()
}

// sourceSite creates the site's hub streams and consumers, retrying until
// the cluster answers.
func (h *Hub) sourceSite(site string) {
	delay := 250 * time.Millisecond
	for h.ctx.Err() == nil {
		ccs, err := h.startSite(site)
		if err == nil {
			h.mu.Lock()
			s := h.sites[site]
			if h.ctx.Err() != nil {
				h.mu.Unlock()
				for _, cc := range ccs {
					cc.Stop()
				}
				return
			}
			s.consume, s.ready = ccs, true
			h.mu.Unlock()
			return
		}
		h.log.Warn("fleet: cannot source edge yet; retrying", "site", site, "err", err)
		select {
		case <-h.ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// startSite creates or updates the hub stream and durable consumer of each
// kind for site and starts consuming them.
func (h *Hub) startSite(site string) ([]jetstream.ConsumeContext, error) {
	var ccs []jetstream.ConsumeContext
	fail := func(err error) ([]jetstream.ConsumeContext, error) {
		for _, cc := range ccs {
			cc.Stop()
		}
		return nil, err
	}
	for _, k := range Kinds {
		ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
		name := HubStream(site, k)
		sc := jetstream.StreamConfig{
			Name:        name,
			Description: "netfeat fleet: " + string(k) + " of site " + site + ", sourced from its edge",
			Storage:     jetstream.FileStorage,
			Replicas:    h.cfg.Replicas,
			Duplicates:  h.cfg.DuplicateWindow,
			Sources: []*jetstream.StreamSource{{
				Name:     EdgeStream(k),
				External: &jetstream.ExternalStream{APIPrefix: "$JS." + site + ".API"},
			}},
		}
		h.cfg.Limits.apply(&sc)
		s, err := h.js.CreateOrUpdateStream(ctx, sc)
		if err != nil {
			cancel()
			return fail(fmt.Errorf("fleet: hub stream %s: %w", name, err))
		}
		cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       h.cfg.Consumer,
			Description:   "netfeat hub: hands " + string(k) + " of " + site + " to the sink",
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       h.cfg.AckWait,
			MaxDeliver:    -1,
			MaxAckPending: 4 * h.cfg.PullBatch,
		})
		cancel()
		if err != nil {
			return fail(fmt.Errorf("fleet: hub consumer on %s: %w", name, err))
		}
		kind := k
		cc, err := cons.Consume(func(msg jetstream.Msg) { h.handle(site, kind, name, msg) },
			jetstream.PullMaxMessages(h.cfg.PullBatch), jetstream.PullExpiry(h.cfg.PullExpiry),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				h.log.Debug("fleet: hub consumer", "stream", name, "err", err)
			}))
		if err != nil {
			return fail(fmt.Errorf("fleet: consume %s: %w", name, err))
		}
		ccs = append(ccs, cc)
	}
	return ccs, nil
}

// watchSources checks every SourceCheck that each hub stream hears from
// its edge. JetStream re-creates a source consumer that went quiet only
// after a 10 s health check, with a back-off of 10 s per failed attempt up
// to 2 minutes, so after a long cut, or an edge that restarted and lost
// the ephemeral source consumer, the hub could wait minutes before it
// catches up. When a stream's source is quiet for longer than
// SourceQuiet while the edge's stream answers through its domain, the
// hub asks the stream's leader to step down: the new leader sets the
// source up at once, from the last sequence the stream holds (nothing is
// skipped or sourced twice; stepping down is what a leader does when its
// node dies).
func (h *Hub) watchSources() {
	t := time.NewTicker(h.cfg.SourceCheck)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		for _, site := range h.Sites() {
			for _, k := range Kinds {
				h.checkSource(site, k)
			}
		}
	}
}

// checkSource kicks the source of site's kind stream when it is quiet
// while the edge is reachable, at most once per 3 × SourceQuiet.
func (h *Hub) checkSource(site string, k Kind) {
	name := HubStream(site, k)
	ctx, cancel := context.WithTimeout(h.ctx, 2*time.Second)
	defer cancel()
	s, err := h.js.Stream(ctx, name)
	if err != nil {
		return
	}
	info := s.CachedInfo()
	if len(info.Sources) == 0 {
		return
	}
	src := info.Sources[0]
	if src.Active >= 0 && src.Active < h.cfg.SourceQuiet {
		return
	}
	h.mu.Lock()
	last := h.sites[site].kicked[k]
	h.mu.Unlock()
	if time.Since(last) < 3*h.cfg.SourceQuiet {
		return
	}
	edge, err := jetstream.NewWithDomain(h.nc, site)
	if err != nil {
		return
	}
	if _, err := edge.Stream(ctx, EdgeStream(k)); err != nil {
		return // the edge is not reachable: nothing to catch up from
	}
	h.mu.Lock()
	h.sites[site].kicked[k] = time.Now()
	h.mu.Unlock()
	if _, err := h.nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+name, nil); err != nil {
		h.log.Warn("fleet: cannot restart a quiet source", "stream", name, "err", err)
		return
	}
	h.m.kicks.WithLabelValues(name).Inc()
	h.log.Info("fleet: source was quiet while its edge answers; stream leader stepped down to set it up again",
		"stream", name, "quiet", src.Active.Round(time.Millisecond))
}

// handle decodes one message and hands it to the sink. A message that is
// oversized, corrupt or from an instance that does not hold the site is
// counted and terminated (never redelivered); the others go on.
func (h *Hub) handle(site string, k Kind, stream string, msg jetstream.Msg) {
	meta := Meta{Site: site, Kind: k, Stream: stream, ID: msg.Headers().Get(nats.MsgIdHdr)}
	if md, err := msg.Metadata(); err == nil {
		meta.Seq, meta.Delivered, meta.Stored = md.Sequence.Stream, md.NumDelivered, md.Timestamp
	}
	skip := func(c *prometheus.CounterVec, why string, err error) {
		c.WithLabelValues(stream).Inc()
		h.log.Warn("fleet: skipping message", "stream", stream, "seq", meta.Seq, "id", meta.ID, "why", why, "err", err)
		if err := msg.Term(); err != nil {
			h.log.Debug("fleet: term", "stream", stream, "seq", meta.Seq, "err", err)
		}
	}
	data := msg.Data()
	if len(data) > h.cfg.MaxMessageBytes {
		skip(h.m.oversized, "oversized", fmt.Errorf("%d bytes > max_message_bytes %d", len(data), h.cfg.MaxMessageBytes))
		return
	}
	h.mu.Lock()
	want := ""
	if s := h.sites[site]; s != nil {
		want = s.instance
	}
	h.mu.Unlock()
	if got := msg.Headers().Get(HeaderInstance); got == "" || got != want {
		skip(h.m.refused, "instance does not hold the site", fmt.Errorf("instance %q, registered %q", got, want))
		return
	}
	if meta.ID == "" {
		skip(h.m.corrupt, "corrupt", fmt.Errorf("%w: no Nats-Msg-Id", ErrCorrupt))
		return
	}
	ctx := h.ctx
	var decErr, err error
	if k == KindSamples {
		var b []schema.Sample
		if b, decErr = DecodeSamples(nil, data); decErr == nil {
			err = h.sink.Samples(ctx, meta, b)
		}
	} else {
		// A batch's items each go to the sink with their own id; items
		// that do not decode are counted and skipped, the others go on.
		var items []Item
		items, decErr = DecodeItems(site, k, data, msg.Headers().Get(HeaderEncoding), meta.ID)
		if decErr != nil && len(items) > 0 {
			h.m.corrupt.WithLabelValues(stream).Inc()
			h.log.Warn("fleet: skipping items of a message", "stream", stream, "seq", meta.Seq, "id", meta.ID, "why", "corrupt", "err", decErr)
			decErr = nil
		}
		for _, it := range items {
			im := meta
			im.ID = it.ID
			switch k {
			case KindWindows:
				err = h.sink.Window(ctx, im, it.Window)
			case KindDecisions:
				err = h.sink.Decision(ctx, im, it.Decision)
			case KindActions:
				err = h.sink.Action(ctx, im, it.Action)
			case KindDevices:
				err = h.sink.DeviceState(ctx, im, it.Device)
			}
			if err != nil {
				break
			}
		}
	}
	switch {
	case decErr != nil:
		skip(h.m.corrupt, "corrupt", decErr)
	case err != nil:
		h.m.sinkErrors.WithLabelValues(stream).Inc()
		h.log.Warn("fleet: sink failed; message will be delivered again", "stream", stream, "seq", meta.Seq, "err", err)
		if err := msg.NakWithDelay(h.cfg.RetryDelay); err != nil {
			h.log.Debug("fleet: nak", "stream", stream, "seq", meta.Seq, "err", err)
		}
	default:
		h.m.items.WithLabelValues(stream).Inc()
		if err := msg.Ack(); err != nil {
			h.log.Debug("fleet: ack", "stream", stream, "seq", meta.Seq, "err", err)
		}
	}
}
