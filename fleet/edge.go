package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/schema"
)

// errCodeStoreFailed is JetStream's "storing a message failed" error code
// (JSStreamStoreFailedF), which a discard-new stream at its limit answers.
const errCodeStoreFailed jetstream.ErrorCode = 10077

// Edge writes a site's closed windows, decisions, action transitions and
// (per SampleConfig) raw samples into local JetStream streams of the site's
// domain, from which the hub sources them. It works the same whether the
// hub is reachable or not: a publish returns once the local stream has
// stored the message.
//
// New makes no network calls; Start creates the streams and starts the
// background work (limit checks, registration with the hub); Stop ends it.
// The Publish methods are safe for concurrent use after Start.
type Edge struct {
	cfg EdgeConfig
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
	m   *edgeMetrics

	instance string

	regMu   sync.Mutex
	regErr  error         // nil while pending or once registered
	regDone chan struct{} // closed when registration is settled

	fillMu sync.Mutex // serializes CheckLimits
	fill   map[Kind]*fillState
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// fillState is what the limit check remembers of one stream.
type fillState struct {
	firstSeq uint64 // first sequence at the previous check
	near     bool   // fill ratio was above warn_ratio at the previous check
}

// NewEdge validates cfg and returns an Edge that publishes through nc, a
// connection to the edge's own (embedded) NATS server. reg receives the
// metrics (nil: none); log nil discards logs. It makes no network calls.
func NewEdge(cfg EdgeConfig, nc *nats.Conn, reg prometheus.Registerer, log *slog.Logger) (*Edge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if nc == nil {
		return nil, errors.New("fleet: edge needs a NATS connection")
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("fleet: jetstream: %w", err)
	}
	m, err := newEdgeMetrics(reg)
	if err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Edge{
		cfg: cfg, nc: nc, js: js, log: log.With("site", cfg.Site), m: m,
		regDone: make(chan struct{}), fill: map[Kind]*fillState{},
	}, nil
}

// Start creates or updates the local streams, loads (or creates) the edge's
// instance id, and starts checking stream limits and registering the site
// with the hub. It returns once the streams exist; registration goes on in
// the background for as long as the hub is unreachable.
func (e *Edge) Start(ctx context.Context) error {
	for _, k := range Kinds {
		sc := jetstream.StreamConfig{
			Name:        EdgeStream(k),
			Description: "netfeat fleet: " + string(k) + " of site " + e.cfg.Site + " for the hub",
			Subjects:    []string{EdgeSubjects(e.cfg.Site, k)},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    1,
			Duplicates:  e.cfg.DuplicateWindow,
		}
		e.cfg.limits(k).apply(&sc)
		s, err := e.js.CreateOrUpdateStream(ctx, sc)
		if err != nil {
			return fmt.Errorf("fleet: edge stream %s: %w", sc.Name, err)
		}
		e.fill[k] = &fillState{firstSeq: s.CachedInfo().State.FirstSeq}
	}
	id, err := e.loadInstance(ctx)
	if err != nil {
		return err
	}
	e.instance = id
	e.log.Info("fleet edge started", "instance", id, "streams", len(Kinds))

	ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	e.wg.Add(2)
	go func() { defer e.wg.Done(); e.checkLoop(ctx) }()
	go func() { defer e.wg.Done(); e.registerLoop(ctx) }()
	return nil
}

// Stop ends the background work and waits for it, or for ctx.
func (e *Edge) Stop(ctx context.Context) error {
	if e.cancel == nil {
		return nil
	}
	e.cancel()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("fleet: edge stop: %w", ctx.Err())
	}
}

// InstanceID is the edge's instance id: a UUID created on the first Start
// and kept in the local KV bucket NETFEAT_FLEET_SELF, so a restarted edge
// keeps it and another edge with the same site name does not have it.
func (e *Edge) InstanceID() string { return e.instance }

// loadInstance returns the instance id from the local KV bucket, creating
// it on the first start.
func (e *Edge) loadInstance(ctx context.Context) (string, error) {
	kv, err := e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: edgeSelfBucket, Description: "netfeat fleet: this edge's identity", Storage: jetstream.FileStorage,
	})
	if err != nil {
		return "", fmt.Errorf("fleet: edge identity bucket: %w", err)
	}
	id := uuid.NewString()
	if _, err := kv.Create(ctx, "instance", []byte(id)); err == nil {
		return id, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return "", fmt.Errorf("fleet: create edge instance id: %w", err)
	}
	ent, err := kv.Get(ctx, "instance")
	if err != nil {
		return "", fmt.Errorf("fleet: read edge instance id: %w", err)
	}
	return string(ent.Value()), nil
}

// registerLoop claims the site in the hub's registry, retrying while the
// hub is unreachable, until it succeeds or the hub refuses.
func (e *Edge) registerLoop(ctx context.Context) {
	hub, err := jetstream.NewWithDomain(e.nc, e.cfg.HubDomain)
	if err != nil {
		e.settle(fmt.Errorf("fleet: hub domain %s: %w", e.cfg.HubDomain, err))
		return
	}
	logged := false
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := register(rctx, hub, e.cfg.RegistryBucket, e.cfg.Site, e.instance)
		cancel()
		switch {
		case err == nil:
			e.m.registered.Set(1)
			e.log.Info("fleet edge registered with the hub", "instance", e.instance)
			e.settle(nil)
			return
		case errors.Is(err, ErrSiteTaken):
			e.m.refused.Inc()
			e.log.Error("fleet: the hub refused this edge: its site name belongs to another edge; data stays local", "err", err)
			e.settle(err)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !logged {
			e.log.Warn("fleet: hub not reachable; data stays in the local streams until it is", "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(e.cfg.RegisterRetry):
		}
	}
}

func (e *Edge) settle(err error) {
	e.regMu.Lock()
	e.regErr = err
	e.regMu.Unlock()
	close(e.regDone)
}

// Registered waits until the hub's registry accepted this edge (nil), or
// refused it (an error wrapping ErrSiteTaken), or ctx ends.
func (e *Edge) Registered(ctx context.Context) error {
	select {
	case <-e.regDone:
		e.regMu.Lock()
		defer e.regMu.Unlock()
		return e.regErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkLoop checks the streams' fill every CheckInterval.
func (e *Edge) checkLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.CheckLimits(ctx)
		}
	}
}

// CheckLimits updates the fill ratio of every local stream, logs and
// counts a stream that rose above warn_ratio (it is about to drop data),
// and counts the messages its limits removed since the previous check. It
// runs every check_interval; a caller may run it at any time.
func (e *Edge) CheckLimits(ctx context.Context) {
	e.fillMu.Lock()
	defer e.fillMu.Unlock()
	for _, k := range Kinds {
		name := EdgeStream(k)
		s, err := e.js.Stream(ctx, name)
		if err != nil {
			e.log.Warn("fleet: cannot read stream state", "stream", name, "err", err)
			continue
		}
		info := s.CachedInfo()
		st, lim := info.State, e.cfg.limits(k)
		ratio := 0.0
		if lim.MaxBytes > 0 {
			ratio = max(ratio, float64(st.Bytes)/float64(lim.MaxBytes))
		}
		if lim.MaxMsgs > 0 {
			ratio = max(ratio, float64(st.Msgs)/float64(lim.MaxMsgs))
		}
		if lim.MaxAge > 0 && st.Msgs > 0 {
			ratio = max(ratio, float64(time.Since(st.FirstTime))/float64(lim.MaxAge))
		}
		e.m.fill.WithLabelValues(name).Set(ratio)
		fs := e.fill[k]
		// With discard old, the only way the first sequence moves is a
		// limit removing messages (the edge never deletes). A new stream
		// reports 0 before its first message.
		if base := max(fs.firstSeq, 1); st.FirstSeq > base {
			e.m.dropped.WithLabelValues(name, "limits").Add(float64(st.FirstSeq - base))
		}
		fs.firstSeq = st.FirstSeq
		switch near := ratio >= e.cfg.WarnRatio; {
		case near && !fs.near:
			e.m.nearLimit.WithLabelValues(name).Inc()
			e.log.Warn("fleet: local stream near its limits; it will drop data if the hub stays unreachable",
				"stream", name, "fill", math.Round(ratio*1000)/1000, "bytes", st.Bytes, "msgs", st.Msgs,
				"max_bytes", lim.MaxBytes, "max_msgs", lim.MaxMsgs, "max_age", lim.MaxAge, "discard", lim.Discard)
			fs.near = true
		case !near && fs.near:
			e.log.Info("fleet: local stream back below its warning level", "stream", name, "fill", math.Round(ratio*1000)/1000)
			fs.near = false
		}
	}
}

// publish stores one message in the local stream of kind and returns once
// JetStream acknowledged it (or the publish failed). A non-empty encoding
// goes in HeaderEncoding.
func (e *Edge) publish(ctx context.Context, k Kind, subject, id string, data []byte, encoding string) error {
	stream := EdgeStream(k)
	msg := nats.NewMsg(subject)
	msg.Header.Set(nats.MsgIdHdr, id)
	if encoding != "" {
		msg.Header.Set(HeaderEncoding, encoding)
	}
	msg.Header.Set(HeaderSite, e.cfg.Site)
	msg.Header.Set(HeaderInstance, e.instance)
	msg.Data = data
	ctx, cancel := context.WithTimeout(ctx, e.cfg.PublishTimeout)
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(stream)); err != nil {
		e.m.publishErrors.WithLabelValues(stream).Inc()
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStoreFailed {
			e.m.dropped.WithLabelValues(stream, "refused").Inc()
		}
		return fmt.Errorf("fleet: publish %s %s: %w", stream, id, err)
	}
	e.m.published.WithLabelValues(stream).Inc()
	e.m.publishedB.WithLabelValues(stream).Add(float64(len(data)))
	return nil
}

// PublishWindow stores a closed window for the hub (after Start: the
// messages carry the instance id Start loads). Its message id is
// WindowID: the same window published again is stored once.
func (e *Edge) PublishWindow(ctx context.Context, row *schema.FeatureRow) error {
	return e.PublishWindows(ctx, []*schema.FeatureRow{row})
}

// PublishDecision stores a decision for the hub. Its message id is
// DecisionID.
func (e *Edge) PublishDecision(ctx context.Context, d *schema.Decision) error {
	return e.PublishDecisions(ctx, []*schema.Decision{d})
}

// PublishAction stores an action transition for the hub. Its message id
// is ActionID.
func (e *Edge) PublishAction(ctx context.Context, a *Action) error {
	return e.PublishActions(ctx, []*Action{a})
}

// PublishSamples stores the samples the forwarding mode selects from batch
// as compressed Arrow IPC messages of at most max_per_message samples, and
// returns how many it stored. The selection and the message ids depend
// only on the samples, so publishing the same batch again stores nothing
// new. On error, the messages before the failing one are stored. It keeps
// no reference to batch.
func (e *Edge) PublishSamples(ctx context.Context, batch []schema.Sample) (int, error) {
	sf := &e.cfg.SampleForwarding
	sel := batch
	if sf.Mode != SamplesAll || len(sf.Devices) > 0 {
		sel = make([]schema.Sample, 0, len(batch))
		for i := range batch {
			if e.forward(&batch[i]) {
				sel = append(sel, batch[i])
			}
		}
	}
	e.m.samplesKept.Add(float64(len(batch) - len(sel)))
	subj := subjectPrefix(e.cfg.Site, KindSamples) + ".arrow"
	var buf []byte
	sent := 0
	for len(sel) > 0 {
		n := min(len(sel), sf.MaxPerMessage)
		data, id, err := EncodeSamples(buf[:0], e.cfg.Site, sel[:n], sf.Compression)
		if err != nil {
			return sent, err
		}
		if err := e.publish(ctx, KindSamples, subj, id, data, ""); err != nil {
			return sent, err
		}
		e.m.samplesSent.Add(float64(n))
		sent += n
		sel = sel[n:]
		buf = data
	}
	return sent, nil
}

// forward reports whether the forwarding mode selects s.
func (e *Edge) forward(s *schema.Sample) bool {
	sf := &e.cfg.SampleForwarding
	mode := sf.Mode
	if m, ok := sf.Devices[s.Device]; ok {
		mode = m
	}
	switch mode {
	case SamplesAll:
		return true
	case SamplesSampled:
		h := fnvString(fnvOffset, s.Device)
		h = fnvString(fnvByte(h, 0), s.Component)
		h = fnvString(fnvByte(h, 0), s.Metric)
		for i := range 8 {
			h = fnvByte(h, byte(s.TS>>(8*i)))
		}
		return h%uint64(sf.Every) == 0
	default:
		return false
	}
}

// FNV-1a, 64 bit, without the allocation of hash/fnv: the sampling choice
// is made for every sample.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnvByte(h uint64, b byte) uint64 { return (h ^ uint64(b)) * fnvPrime }

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = fnvByte(h, s[i])
	}
	return h
}
