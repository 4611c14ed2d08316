// Package gnmi collects streaming telemetry from Cisco IOS-XR, NX-OS and
// IOS-XE routers over gNMI Subscribe and hands every leaf value to a
// schema.ObservationSink (the normalizer) as a raw Observation.
//
// A Collector runs one goroutine per target. Each target connects (TLS by
// default, mTLS with a client certificate, plaintext only when asked for),
// checks the target's Capabilities, sends its subscription list (the
// platform's shipped set unless the target lists its own) and decodes the
// responses: PROTO typed values directly, JSON and JSON_IETF blobs
// flattened into one observation per leaf. When the stream ends it
// reconnects with jittered exponential backoff and resubscribes the same
// list. Bad input (malformed paths and values, unknown origins, a leaf that
// changes type, a flooding target) is counted per target in
// netfeat_gnmi_errors_total and never stops other targets.
package gnmi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/schema"
)

// Target states reported in DeviceState.State.
const (
	StateConnecting  = "connecting"
	StateSyncing     = "syncing"
	StateUp          = "up"
	StateDown        = "down"
	StateAuthFailure = "auth_failure"
	StateUnsupported = "unsupported"
	StateStopped     = "stopped"
)

// Collector subscribes to every configured target and feeds a sink. Create
// it with New; it is safe for concurrent use.
type Collector struct {
	cfg     Config
	sink    schema.ObservationSink
	log     *slog.Logger
	m       *metrics
	targets []*target

	mu      sync.Mutex
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	stopped bool
	// runCtx is the context of the target goroutines, runs the running
	// ones and owned the targets to subscribe to (nil: all); see SetOwned.
	runCtx context.Context
	runs   map[*target]*targetRun
	owned  map[string]bool
	ownMu  sync.Mutex // serialises SetOwned
}

// New validates cfg and prepares a collector that sends observations to
// sink. Metrics are registered with reg (nil: not registered); a nil logger
// discards. New makes no network calls.
func New(cfg Config, sink schema.ObservationSink, reg prometheus.Registerer, log *slog.Logger) (*Collector, error) {
	if sink == nil {
		return nil, errors.New("gnmi: nil sink")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gnmi config: %w", err)
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("gnmi metrics: %w", err)
	}
	c := &Collector{cfg: cfg, sink: sink, log: log, m: m}
	for _, tc := range cfg.Targets {
		t, err := newTarget(c, tc)
		if err != nil {
			return nil, fmt.Errorf("gnmi target %q: %w", tc.Name, err)
		}
		c.targets = append(c.targets, t)
	}
	return c, nil
}

// Start launches one goroutine per target and returns. The goroutines run
// until Stop; ctx only bounds Start itself.
func (c *Collector) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errors.New("gnmi: already started")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.started = true
	c.runCtx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	c.runs = map[*target]*targetRun{}
	for _, t := range c.targets {
		if c.owns(t) {
			c.startTarget(t)
		}
	}
	attrs := []any{"targets", len(c.targets)}
	if c.owned != nil {
		attrs = append(attrs, "owned", c.ownedLocked())
	}
	c.log.Info("gnmi collector started", attrs...)
	return nil
}

// Stop cancels every subscription, flushes what was decoded and waits for
// the target goroutines, or returns ctx.Err() if ctx ends first.
func (c *Collector) Stop(ctx context.Context) error {
	c.mu.Lock()
	cancel := c.cancel
	c.stopped = cancel != nil
	c.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
		c.log.Info("gnmi collector stopped")
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gnmi: stop: %w", ctx.Err())
	}
}

// WaitSynced blocks until every owned target has sent its first
// sync_response (the initial state is complete) or ctx ends.
func (c *Collector) WaitSynced(ctx context.Context) error {
	for _, t := range c.targetList() {
		c.mu.Lock()
		owned := c.owns(t)
		c.mu.Unlock()
		if !owned {
			continue
		}
		select {
		case <-t.synced:
		case <-ctx.Done():
			return fmt.Errorf("gnmi: waiting for %s to sync: %w", t.cfg.Name, ctx.Err())
		}
	}
	return nil
}

// DeviceStates reports the health of every target.
func (c *Collector) DeviceStates() []schema.DeviceState {
	targets := c.targetList()
	out := make([]schema.DeviceState, 0, len(targets))
	for _, t := range targets {
		t.mu.Lock()
		s := t.state
		t.mu.Unlock()
		s.Observations = t.observations.Load()
		s.Errors = t.errorCount.Load()
		out = append(out, s)
	}
	return out
}

// target is one configured device and its subscription loop.
type target struct {
	c    *Collector
	cfg  Target
	req  *gpb.SubscribeRequest
	subs []*gpb.Path
	dial []grpc.DialOption

	updates       prometheus.Counter
	notifications prometheus.Counter
	reconnects    prometheus.Counter
	syncs         prometheus.Counter
	connected     prometheus.Gauge
	syncSeconds   prometheus.Gauge
	errs          map[string]prometheus.Counter

	observations atomic.Int64
	errorCount   atomic.Int64
	mu           sync.Mutex
	state        schema.DeviceState

	synced     chan struct{}
	syncedOnce sync.Once
	bucket     tokenBucket

	// series outlives sessions, so that a session's decoder knows the
	// last timestamp delivered for every path and drops repeats; gen
	// numbers the sessions. Both are used by the run goroutine only.
	series     map[string]*series
	gen        uint64
	duplicates prometheus.Counter
}

var errorReasons = []string{"connect", "capabilities", "auth", "stream", "sink", reasonBadMessage,
	reasonBadPath, reasonBadValue, reasonUnknownOrigin, reasonTypeMismatch, reasonRateLimited}

func newTarget(c *Collector, cfg Target) (*target, error) {
	t := &target{
		c:      c,
		cfg:    cfg,
		synced: make(chan struct{}),
		errs:   map[string]prometheus.Counter{},
		bucket: tokenBucket{rate: cfg.MaxUpdateRate, burst: cfg.MaxUpdateRate},
		series: map[string]*series{},
	}
	name := cfg.Name
	t.duplicates = c.m.duplicates.WithLabelValues(name)
	t.updates = c.m.updates.WithLabelValues(name)
	t.notifications = c.m.notifications.WithLabelValues(name)
	t.reconnects = c.m.reconnects.WithLabelValues(name)
	t.syncs = c.m.syncs.WithLabelValues(name)
	t.connected = c.m.connected.WithLabelValues(name)
	t.syncSeconds = c.m.syncSeconds.WithLabelValues(name)
	for _, r := range errorReasons {
		t.errs[r] = c.m.errors.WithLabelValues(name, r)
	}
	t.connected.Set(0)
	t.state = schema.DeviceState{Device: name, Address: cfg.Address, Protocol: "gnmi", State: StateConnecting}
	if cfg.Platform != "" {
		t.state.Profile = "cisco-" + cfg.Platform
	}
	req, subs, err := buildRequest(cfg)
	if err != nil {
		return nil, err
	}
	t.req, t.subs = req, subs
	creds, err := transportCredentials(cfg)
	if err != nil {
		return nil, err
	}
	t.dial = []grpc.DialOption{grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)),
		// Telemetry flows one way: large windows let a target send ahead
		// instead of waiting for a window update every 64 KiB.
		grpc.WithInitialWindowSize(1 << 20), grpc.WithInitialConnWindowSize(4 << 20)}
	return t, nil
}

// buildRequest turns the target's configuration into the SubscribeRequest
// sent on every (re)connect.
func buildRequest(cfg Target) (*gpb.SubscribeRequest, []*gpb.Path, error) {
	subs := cfg.Subscriptions
	if len(subs) == 0 {
		for _, p := range PlatformPaths(cfg.Platform) {
			subs = append(subs, Subscription{Path: p})
		}
	}
	list := &gpb.SubscriptionList{UpdatesOnly: cfg.UpdatesOnly}
	if cfg.GNMITarget != "" {
		list.Prefix = &gpb.Path{Target: cfg.GNMITarget}
	}
	switch cfg.Mode {
	case ModeOnce:
		list.Mode = gpb.SubscriptionList_ONCE
	case ModePoll:
		list.Mode = gpb.SubscriptionList_POLL
	default:
		list.Mode = gpb.SubscriptionList_STREAM
	}
	switch cfg.Encoding {
	case EncodingJSON:
		list.Encoding = gpb.Encoding_JSON
	case EncodingProto:
		list.Encoding = gpb.Encoding_PROTO
	default:
		list.Encoding = gpb.Encoding_JSON_IETF
	}
	var paths []*gpb.Path
	for _, s := range subs {
		p, err := gnmipath.Parse(s.Path)
		if err != nil {
			return nil, nil, fmt.Errorf("subscription %q: %w", s.Path, err)
		}
		paths = append(paths, p)
		sub := &gpb.Subscription{Path: p}
		if list.Mode == gpb.SubscriptionList_STREAM {
			mode := cfg.StreamMode
			if s.Mode != "" {
				mode = s.Mode
			}
			interval := cfg.SampleInterval
			if s.SampleInterval > 0 {
				interval = s.SampleInterval
			}
			heartbeat := cfg.HeartbeatInterval
			if s.HeartbeatInterval > 0 {
				heartbeat = s.HeartbeatInterval
			}
			switch mode {
			case StreamOnChange:
				sub.Mode = gpb.SubscriptionMode_ON_CHANGE
			case StreamTargetDefined:
				sub.Mode = gpb.SubscriptionMode_TARGET_DEFINED
			default:
				sub.Mode = gpb.SubscriptionMode_SAMPLE
				sub.SampleInterval = uint64(interval.Nanoseconds())
				sub.SuppressRedundant = cfg.SuppressRedundant || s.SuppressRedundant
			}
			sub.HeartbeatInterval = uint64(heartbeat.Nanoseconds())
		}
		list.Subscription = append(list.Subscription, sub)
	}
	return &gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Subscribe{Subscribe: list}}, paths, nil
}

// transportCredentials builds TLS (or, only when asked, plaintext)
// credentials from the target's configuration.
func transportCredentials(cfg Target) (credentials.TransportCredentials, error) {
	if cfg.Insecure {
		return insecure.NewCredentials(), nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.TLS.ServerName, InsecureSkipVerify: cfg.TLS.SkipVerify}
	if cfg.TLS.CAFile != "" {
		pem, err := os.ReadFile(cfg.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", cfg.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(tc), nil
}

func (t *target) setState(state string) {
	t.mu.Lock()
	t.state.State = state
	t.mu.Unlock()
}

// Hints added to a connection error when the target and the collector
// disagree about TLS (see tlsHint).
const (
	hintPlaintext = "the target serves plaintext gRPC, not TLS: set insecure: true for it (netfeat probe gnmi: --insecure)"
	hintTLS       = "the target seems to serve TLS: set insecure: false (netfeat probe gnmi: --tls, with --ca-file or --skip-verify)"
)

// IsTLSMismatch reports whether a DeviceState.LastError says that the
// target and the collector disagree about TLS: retrying cannot help.
func IsTLSMismatch(lastError string) bool {
	return strings.Contains(lastError, hintPlaintext) || strings.Contains(lastError, hintTLS)
}

// tlsHint wraps a connection error that shows a TLS/plaintext mismatch
// with what to change: a TLS client reading plaintext gets "first record
// does not look like a TLS handshake"; a plaintext client of a TLS server
// gets no HTTP/2 preface (EOF, or a TLS alert read as a frame).
func (t *target) tlsHint(err error) error {
	msg := err.Error()
	switch {
	case !t.cfg.Insecure && strings.Contains(msg, "first record does not look like a TLS handshake"):
		return fmt.Errorf("%w; %s", err, hintPlaintext)
	case t.cfg.Insecure && strings.Contains(msg, "error reading server preface"):
		return fmt.Errorf("%w; %s", err, hintTLS)
	}
	return err
}

func (t *target) fail(reason string, err error) {
	t.errs[reason].Inc()
	t.errorCount.Add(1)
	t.mu.Lock()
	t.state.LastError = err.Error()
	t.state.LastErrorTS = time.Now().UnixNano()
	t.mu.Unlock()
}

// reject counts an update the decoder refused.
func (t *target) reject(reason string) {
	t.errs[reason].Inc()
	t.errorCount.Add(1)
}

// run is the target's reconnect loop: subscribe, and after the stream
// ends wait a jittered, doubling delay (reset after a session that synced)
// before subscribing again.
func (t *target) run(ctx context.Context) {
	log := t.c.log.With("target", t.cfg.Name, "address", t.cfg.Address)
	delay := t.c.cfg.RedialMin
	for n := 0; ctx.Err() == nil; n++ {
		if n > 0 {
			t.reconnects.Inc()
		}
		t.mu.Lock()
		if t.state.State != StateAuthFailure && t.state.State != StateUnsupported {
			// A failure state stays visible until a session gets through.
			t.state.State = StateConnecting
		}
		t.mu.Unlock()
		synced, err := t.session(ctx)
		t.connected.Set(0)
		if ctx.Err() != nil {
			break
		}
		if synced {
			delay = t.c.cfg.RedialMin
		}
		if err != nil {
			log.Warn("gnmi session ended", "err", err, "retry_in", delay)
		}
		t.mu.Lock()
		if t.state.State != StateAuthFailure && t.state.State != StateUnsupported {
			t.state.State = StateDown
		}
		t.mu.Unlock()
		wait := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		delay = min(delay*2, t.c.cfg.RedialMax)
	}
	t.setState(StateStopped)
}

// recvItem is one message (or the final error) read from the stream.
type recvItem struct {
	raw  []byte // a SubscribeResponse in wire format
	recv int64
	err  error
}

// session runs one connection: Capabilities, Subscribe, and the receive
// loop until the stream fails or ctx ends. synced reports whether the
// target completed at least one sync_response.
func (t *target) session(ctx context.Context) (synced bool, err error) {
	conn, err := grpc.NewClient(t.cfg.Address, t.dial...)
	if err != nil {
		t.fail("connect", err)
		return false, fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	ctx, err = t.withCredentials(ctx)
	if err != nil {
		t.fail("auth", err)
		return false, err
	}
	cli := gpb.NewGNMIClient(conn)
	if err := t.capabilities(ctx, cli); err != nil {
		return false, err
	}
	if t.req.GetSubscribe().GetMode() == gpb.SubscriptionList_ONCE {
		return t.onceLoop(ctx, conn)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	stream, err := t.subscribe(sctx, conn)
	if err != nil {
		return false, err
	}
	t.connected.Set(1)
	t.setState(StateSyncing)

	// The receiver goroutine reads frames into buffers that come back
	// through free once decoded, so the steady state allocates none.
	const depth = 64
	items := make(chan recvItem, depth)
	free := make(chan []byte, depth+2)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			var f rawFrame
			select {
			case f.b = <-free:
			default:
			}
			err := stream.RecvMsg(&f)
			select {
			case items <- recvItem{raw: f.b, recv: time.Now().UnixNano(), err: err}:
			case <-sctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer wg.Wait()
	defer cancel()

	dec := t.newDecoder()
	batch := t.c.cfg.BatchSize
	mode := t.req.GetSubscribe().GetMode()
	var poll <-chan time.Time
	firstSync := true
	for {
		var it recvItem
		select {
		case <-ctx.Done():
			// Hand over what was decoded; a sink that does not take it
			// within the bound loses it rather than blocking Stop.
			fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			t.flush(fctx, dec)
			fcancel()
			return synced, ctx.Err()
		case <-poll:
			poll = nil
			if err := stream.SendMsg(&gpb.SubscribeRequest{Request: &gpb.SubscribeRequest_Poll{Poll: &gpb.Poll{}}}); err != nil {
				t.fail("stream", err)
				return synced, fmt.Errorf("send poll: %w", err)
			}
			continue
		case it = <-items:
		}
		gotSync := false
		for {
			if it.err != nil {
				t.flush(ctx, dec)
				if it.err == io.EOF {
					if mode == gpb.SubscriptionList_STREAM {
						t.fail("stream", errors.New("target closed the stream"))
						return synced, errors.New("target closed the stream")
					}
					return synced, nil
				}
				reason := "stream"
				if c := status.Code(it.err); c == codes.Unauthenticated || c == codes.PermissionDenied {
					reason = "auth"
					t.setState(StateAuthFailure)
				}
				t.fail(reason, it.err)
				return synced, fmt.Errorf("receive: %w", it.err)
			}
			if t.handle(dec, it) {
				gotSync = true
				synced = true
				if firstSync {
					firstSync = false
					t.markSynced(start)
				}
			}
			select {
			case free <- it.raw:
			default:
			}
			if len(dec.out) >= batch {
				t.flush(ctx, dec)
			}
			more := false
			select {
			case it = <-items:
				more = true
			default:
			}
			if !more {
				break
			}
		}
		t.flush(ctx, dec)
		if gotSync && mode == gpb.SubscriptionList_POLL {
			poll = time.After(t.cfg.PollInterval)
		}
	}
}

// markSynced records a completed initial state that took since start.
func (t *target) markSynced(start time.Time) {
	d := time.Since(start)
	t.syncSeconds.Set(d.Seconds())
	t.mu.Lock()
	t.state.LastDurationMS = float64(d.Microseconds()) / 1000
	t.state.State = StateUp
	t.mu.Unlock()
	t.syncedOnce.Do(func() { close(t.synced) })
}

// onceLoop runs a ONCE subscription every poll interval on the same
// connection until one fails or ctx ends.
func (t *target) onceLoop(ctx context.Context, conn *grpc.ClientConn) (synced bool, err error) {
	var buf []byte
	for {
		if buf, err = t.once(ctx, conn, buf); err != nil {
			return synced, err
		}
		synced = true
		select {
		case <-ctx.Done():
			return synced, ctx.Err()
		case <-time.After(t.cfg.PollInterval):
		}
	}
}

// subscribe opens a Subscribe stream that hands responses over as raw
// frames, and sends the target's subscription.
func (t *target) subscribe(ctx context.Context, conn *grpc.ClientConn) (grpc.ClientStream, error) {
	stream, err := conn.NewStream(ctx, &gpb.GNMI_ServiceDesc.Streams[0], gpb.GNMI_Subscribe_FullMethodName, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		t.fail("connect", err)
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if err := stream.SendMsg(t.req); err != nil {
		t.fail("stream", err)
		return nil, fmt.Errorf("send subscription: %w", err)
	}
	return stream, nil
}

// once runs one ONCE subscription to its sync_response, reading frames
// into buf, which it returns for reuse.
func (t *target) once(ctx context.Context, conn *grpc.ClientConn, buf []byte) ([]byte, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	stream, err := t.subscribe(sctx, conn)
	if err != nil {
		return buf, err
	}
	t.connected.Set(1)
	dec := t.newDecoder()
	for {
		f := rawFrame{b: buf}
		err := stream.RecvMsg(&f)
		buf = f.b
		if err != nil {
			t.flush(ctx, dec)
			if err == io.EOF {
				err = errors.New("target ended the ONCE subscription before its sync_response")
			}
			t.fail("stream", err)
			return buf, fmt.Errorf("receive: %w", err)
		}
		synced := t.handle(dec, recvItem{raw: f.b, recv: time.Now().UnixNano()})
		if len(dec.out) >= t.c.cfg.BatchSize || synced {
			t.flush(ctx, dec)
		}
		if synced {
			// The target ends the RPC now; cancelling does not wait for it.
			t.markSynced(start)
			return buf, nil
		}
	}
}

// newDecoder returns the decoder of a new session (or ONCE subscription).
// It shares the target's series, so that an update the target repeats on
// re-subscribing, with a timestamp not newer than the one already
// delivered for its path, is dropped and counted instead of stored twice.
func (t *target) newDecoder() *decoder {
	dec := newDecoder(t.cfg.Name, t.subs, t.reject)
	t.gen++
	dec.series, dec.gen, dec.dedup = t.series, t.gen, true
	return dec
}

// handle decodes one response frame into dec.out and reports whether it
// was a sync_response.
func (t *target) handle(dec *decoder, it recvItem) bool {
	before := len(dec.out)
	kind, msg := dec.response(it.raw, it.recv)
	if dec.dups > 0 {
		t.duplicates.Add(float64(dec.dups))
		dec.dups = 0
	}
	switch kind {
	case respUpdate:
		t.notifications.Inc()
		if n := len(dec.out) - before; n > 0 && t.cfg.MaxUpdateRate > 0 && !t.bucket.take(float64(n), it.recv) {
			clear(dec.out[before:])
			dec.out = dec.out[:before]
			t.errs[reasonRateLimited].Add(float64(n))
			t.errorCount.Add(int64(n))
		}
	case respSync:
		t.syncs.Inc()
		return true
	case respError:
		// The error field is deprecated, but old targets still send it.
		t.fail("stream", fmt.Errorf("target error: %s", msg))
	}
	return false
}

// flush hands the decoded observations to the sink.
func (t *target) flush(ctx context.Context, dec *decoder) {
	if len(dec.out) == 0 {
		return
	}
	n := len(dec.out)
	err := t.c.sink.Observe(ctx, dec.out)
	clear(dec.out)
	dec.out = dec.out[:0]
	if err != nil {
		if ctx.Err() == nil {
			t.fail("sink", fmt.Errorf("sink refused %d observations: %w", n, err))
		}
		return
	}
	t.updates.Add(float64(n))
	t.observations.Add(int64(n))
	t.mu.Lock()
	t.state.LastSuccess = time.Now().UnixNano()
	t.mu.Unlock()
}

// capabilities asks the target what it supports and checks the configured
// encoding against it. Targets that do not implement Capabilities (some
// proxies and test targets) are accepted with a log line.
func (t *target) capabilities(ctx context.Context, cli gpb.GNMIClient) error {
	cctx, cancel := context.WithTimeout(ctx, t.c.cfg.Timeout)
	defer cancel()
	resp, err := cli.Capabilities(cctx, &gpb.CapabilityRequest{})
	switch code := status.Code(err); {
	case err == nil:
	case code == codes.Unimplemented:
		t.c.log.Debug("gnmi target does not implement Capabilities", "target", t.cfg.Name)
		return nil
	case code == codes.Unauthenticated || code == codes.PermissionDenied:
		t.fail("auth", err)
		t.setState(StateAuthFailure)
		return fmt.Errorf("capabilities: %w", err)
	default:
		err = t.tlsHint(err)
		t.fail("connect", err)
		return fmt.Errorf("capabilities: %w", err)
	}
	want := t.req.GetSubscribe().GetEncoding()
	if encs := resp.GetSupportedEncodings(); len(encs) > 0 {
		ok := false
		for _, e := range encs {
			ok = ok || e == want
		}
		if !ok {
			err := fmt.Errorf("target supports encodings %v, not %v", encs, want)
			t.fail("capabilities", err)
			t.setState(StateUnsupported)
			return err
		}
	}
	t.c.log.Debug("gnmi capabilities", "target", t.cfg.Name, "version", resp.GetGNMIVersion(), "models", len(resp.GetSupportedModels()))
	return nil
}

// withCredentials adds the username and password metadata Cisco targets
// authenticate with.
func (t *target) withCredentials(ctx context.Context) (context.Context, error) {
	if t.cfg.Username == "" {
		return ctx, nil
	}
	pw, err := t.cfg.password()
	if err != nil {
		return nil, err
	}
	return metadata.AppendToOutgoingContext(ctx, "username", t.cfg.Username, "password", pw), nil
}

// tokenBucket limits updates per second; used by one goroutine.
type tokenBucket struct {
	rate, burst float64
	tokens      float64
	last        int64
}

func (b *tokenBucket) take(n float64, now int64) bool {
	if b.last == 0 {
		b.tokens = b.burst
	} else {
		b.tokens = min(b.burst, b.tokens+float64(now-b.last)/1e9*b.rate)
	}
	b.last = now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}
