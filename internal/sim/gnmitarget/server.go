// Package gnmitarget is a gNMI target that behaves like a Cisco router for
// demos and tests. It serves Capabilities and Subscribe (STREAM, ONCE and
// POLL) with openconfig/gnmi's own server-side packages: the device state
// lives in a github.com/openconfig/gnmi/cache tree and subscriptions are
// answered by github.com/openconfig/gnmi/subscribe. The state is built from
// real Cisco captures (IOS-XR native generic-counters and wdsysmon CPU,
// NX-OS DME interface attributes, IOS-XE interface names and counters) plus
// OpenConfig interface, platform and system trees derived from them.
// Interface counters follow a steady traffic (Options.Rate) from their
// recorded values, errors and discards stay unless a scenario raises them,
// every leaf is published every Interval, and link state changes (scripted,
// or from SetOperStatus) are published the moment they happen, for
// ON_CHANGE subscriptions.
//
// Faults can be injected: end every stream after N responses, delay every
// response, or corrupt every Nth notification (empty path element, unknown
// origin, a counter turned into a string, a missing value). A scenario
// (Options.Scenario) scripts congestion, error bursts and link faults on
// named interfaces over time.
//
// openconfig's packages log through glog, which writes files under $TMPDIR
// unless -logtostderr is set; the netfeat command sets it.
package gnmitarget

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openconfig/gnmi/cache"
	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/openconfig/gnmi/subscribe"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/internal/sim/scenario"
)

// Options configure a simulated target.
type Options struct {
	// Listen is the address to serve on ("127.0.0.1:0" picks a port).
	Listen string `yaml:"listen"`
	// Name is the gNMI target name; requests without a prefix target are
	// answered as this target. Default "sim".
	Name string `yaml:"name"`
	// Platform is iosxr (default), nxos or iosxe.
	Platform string `yaml:"platform"`
	// Recording replaces the embedded captures: an IOS-XR MDT JSON dump, or
	// a JSON array of gNMI SubscribeResponses (protobuf JSON).
	Recording string `yaml:"recording"`
	// Interval is how often every leaf is published (SAMPLE and POLL see
	// counters advance at this step). Default 1s. Link state changes are
	// published at once, whatever the interval.
	Interval time.Duration `yaml:"interval"`
	// Rate is the traffic, in octets per second in each direction, of
	// every interface that carries any (recorded up, not a loopback, Null
	// or tunnel, with a speed its name gives or a physical NX-OS port):
	// octet counters advance at Rate, unicast packets at Rate ÷ 800,
	// multicast and broadcast packets at 1 % and 0.1 % of that
	// (scenario.Traffic). Errors, discards and other counters stay at their
	// recorded values unless the Scenario raises them; CPU, temperature
	// and memory stay as recorded. Default DefaultRate; negative is an
	// error.
	Rate float64 `yaml:"rate"`
	// CertFile and KeyFile enable TLS. ClientCAFile additionally requires
	// and verifies a client certificate (mTLS).
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
	// Username and Password, when set, are required as gRPC metadata.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Faults to inject.
	Faults Faults `yaml:"faults"`
	// Scenario scripts the interfaces' traffic and faults over time
	// (congestion, errors, link down; see internal/sim/scenario): it
	// drives the counters and oper-status of the interfaces it names, in
	// every model that has them (OpenConfig and native), and of every
	// interface when it has a baseline. Its times count from Start.
	Scenario *scenario.Scenario `yaml:"scenario"`
}

// Faults are misbehaviours the simulator can be told to show.
type Faults struct {
	// DropAfter ends every Subscribe stream with UNAVAILABLE after this many
	// responses. 0 never drops.
	DropAfter int `yaml:"drop_after"`
	// Delay is added before every response.
	Delay time.Duration `yaml:"delay"`
	// MalformedEvery corrupts every Nth update notification sent after the
	// initial state (the sync_response), cycling through: an empty path element, an unknown origin, a string where a
	// number was, a missing value. 0 never corrupts.
	MalformedEvery int `yaml:"malformed_every"`
	// ClockOffset stamps every notification this far from the real clock,
	// as a device whose clock is wrong does (the soak test sends one
	// dated in 2200).
	ClockOffset time.Duration `yaml:"clock_offset"`
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Listen == "" {
		errs = append(errs, errors.New("listen: is required"))
	}
	switch o.Platform {
	case "", gnmi.PlatformIOSXR, gnmi.PlatformNXOS, gnmi.PlatformIOSXE:
	default:
		errs = append(errs, fmt.Errorf("platform: must be iosxr, nxos or iosxe, got %q", o.Platform))
	}
	if o.Interval < 0 {
		errs = append(errs, fmt.Errorf("interval: must be positive, got %v", o.Interval))
	}
	if o.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate: must not be negative, got %v", o.Rate))
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		errs = append(errs, errors.New("cert_file: cert_file and key_file go together"))
	}
	if o.ClientCAFile != "" && o.CertFile == "" {
		errs = append(errs, errors.New("client_ca_file: needs cert_file and key_file"))
	}
	if o.Faults.DropAfter < 0 || o.Faults.MalformedEvery < 0 || o.Faults.Delay < 0 {
		errs = append(errs, errors.New("faults: must not be negative"))
	}
	return errors.Join(errs...)
}

// DefaultRate is Options.Rate when left at 0: 125,000 octets/s, 1 Mbit/s.
const DefaultRate = 125_000

// Errors of SetOperStatus.
var (
	// ErrUnknownInterface is returned for an interface the device lacks.
	ErrUnknownInterface = errors.New("gnmi simulator: no such interface")
	// ErrNotStarted is returned before Start.
	ErrNotStarted = errors.New("gnmi simulator: not started")
)

// Stats counts what the simulator did.
type Stats struct {
	Streams   int64 // Subscribe RPCs accepted
	Responses int64 // responses sent, sync responses included
	Dropped   int64 // streams ended by the DropAfter fault
	Malformed int64 // notifications corrupted
}

// Server is a running simulated target.
type Server struct {
	opts  Options
	log   *slog.Logger
	model *model
	cache *cache.Cache
	sub   *subscribe.Server
	grpc  *grpc.Server
	lis   net.Listener
	start time.Time

	streams, responses, dropped, malformed atomic.Int64

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// pubMu serializes publishing into the cache and guards lastTS, the
	// model's link states and eventRing.
	pubMu  sync.Mutex
	lastTS int64
	// events holds the notifications published for a link change (not a
	// sample tick), which SAMPLE subscriptions skip; eventRing bounds it
	// to the latest maxEvents.
	events    sync.Map // *gpb.Notification → struct{}
	eventRing []*gpb.Notification
	anyEvents atomic.Bool
}

// maxEvents bounds how many link-change notifications are remembered as
// such: far more than can wait in a stream's queue.
const maxEvents = 4096

// New builds the simulated device. It does not listen yet.
func New(opts Options, log *slog.Logger) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("gnmi simulator options: %w", err)
	}
	if opts.Name == "" {
		opts.Name = "sim"
	}
	if opts.Platform == "" {
		opts.Platform = gnmi.PlatformIOSXR
	}
	if opts.Interval == 0 {
		opts.Interval = time.Second
	}
	if opts.Rate == 0 {
		opts.Rate = DefaultRate
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := buildModel(opts.Platform, opts.Recording)
	if err != nil {
		return nil, fmt.Errorf("gnmi simulator: %w", err)
	}
	if err := m.finish(opts.Scenario, scenario.Traffic{Octets: opts.Rate}); err != nil {
		return nil, fmt.Errorf("gnmi simulator: scenario: %w", err)
	}
	c := cache.New([]string{opts.Name}, cache.DisableEventDrivenEmulation())
	sub, err := subscribe.NewServer(c, subscribe.WithoutDupReport())
	if err != nil {
		return nil, fmt.Errorf("gnmi simulator: %w", err)
	}
	c.SetClient(sub.Update)
	s := &Server{opts: opts, log: log, model: m, cache: c, sub: sub}
	var sopts []grpc.ServerOption
	if opts.CertFile != "" {
		tc, err := serverTLS(opts)
		if err != nil {
			return nil, err
		}
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(tc)))
	}
	if opts.Username != "" {
		sopts = append(sopts, grpc.UnaryInterceptor(s.authUnary), grpc.StreamInterceptor(s.authStream))
	}
	s.grpc = grpc.NewServer(sopts...)
	gpb.RegisterGNMIServer(s.grpc, &service{s: s})
	return s, nil
}

func serverTLS(o Options) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("load server certificate: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if o.ClientCAFile != "" {
		pem, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("read client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA file %s holds no PEM certificate", o.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Start loads the initial state, listens and serves. It returns once the
// listener is open.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("gnmi simulator listen: %w", err)
	}
	s.lis = lis
	s.pubMu.Lock()
	s.start = time.Now()
	s.pubMu.Unlock()
	s.publish(s.start)
	s.cache.GetTarget(s.opts.Name).Sync()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	s.wg.Add(3)
	go func() {
		defer s.wg.Done()
		s.runLinkChanges(runCtx)
	}()
	go func() {
		defer s.wg.Done()
		if err := s.grpc.Serve(lis); err != nil {
			s.log.Error("gnmi simulator serve", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.opts.Interval)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case now := <-t.C:
				s.publish(now)
			}
		}
	}()
	s.log.Info("gnmi simulator listening", "addr", lis.Addr().String(), "platform", s.opts.Platform,
		"leaves", len(s.model.leaves), "tls", s.opts.CertFile != "", "mtls", s.opts.ClientCAFile != "")
	return nil
}

// Stop ends every stream and waits for the server goroutines.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	cancel := s.cancel
	s.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	stopped := make(chan struct{})
	go func() { s.grpc.Stop(); s.wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gnmi simulator stop: %w", ctx.Err())
	}
}

// Addr is the address the server listens on, after Start.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Leaves is the number of leaf values the simulated device holds.
func (s *Server) Leaves() int { return len(s.model.leaves) }

// Stats returns counts of what the simulator has done.
func (s *Server) Stats() Stats {
	return Stats{Streams: s.streams.Load(), Responses: s.responses.Load(), Dropped: s.dropped.Load(), Malformed: s.malformed.Load()}
}

// publish writes every leaf's current value into the cache, which passes
// them to matching subscriptions.
func (s *Server) publish(now time.Time) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	ts := s.nextTS(now)
	// A tick that waited for a link change publishes after it, so it
	// reads the state at its own (later) timestamp.
	elapsed := time.Unix(0, ts).Sub(s.start)
	for _, l := range s.model.leaves {
		s.update(l, ts, elapsed)
	}
}

// nextTS returns now as a notification timestamp, after every one used
// before. pubMu must be held.
func (s *Server) nextTS(now time.Time) int64 {
	ts := now.Add(s.opts.Faults.ClockOffset).UnixNano()
	if ts <= s.lastTS {
		ts = s.lastTS + 1
	}
	s.lastTS = ts
	return ts
}

// update publishes leaf l's value elapsed after the start with timestamp
// ts and returns the notification. pubMu must be held.
func (s *Server) update(l *leaf, ts int64, elapsed time.Duration) *gpb.Notification {
	n := &gpb.Notification{
		Timestamp: ts,
		Prefix:    &gpb.Path{Target: s.opts.Name, Origin: l.origin},
		Update:    []*gpb.Update{{Path: &gpb.Path{Elem: l.elems}, Val: l.value(elapsed)}},
	}
	if err := s.cache.GnmiUpdate(n); err != nil {
		s.log.Debug("gnmi simulator cache update", "err", err)
	}
	return n
}

// publishLink publishes the oper-status leaves of k at once, as an event
// that ON_CHANGE subscriptions receive and SAMPLE ones skip. pubMu must be
// held.
func (s *Server) publishLink(k *link, ts int64, elapsed time.Duration) {
	for _, l := range k.operLeafs {
		// Marked before the cache passes it on to the subscriptions.
		n := &gpb.Notification{
			Timestamp: ts,
			Prefix:    &gpb.Path{Target: s.opts.Name, Origin: l.origin},
			Update:    []*gpb.Update{{Path: &gpb.Path{Elem: l.elems}, Val: l.value(elapsed)}},
		}
		s.markEvent(n)
		if err := s.cache.GnmiUpdate(n); err != nil {
			s.log.Debug("gnmi simulator cache update", "err", err)
		}
	}
}

// markEvent remembers n as a link-change notification. pubMu must be held.
func (s *Server) markEvent(n *gpb.Notification) {
	s.anyEvents.Store(true)
	s.events.Store(n, struct{}{})
	s.eventRing = append(s.eventRing, n)
	if len(s.eventRing) > maxEvents {
		s.events.Delete(s.eventRing[0])
		s.eventRing = s.eventRing[1:]
	}
}

// isEvent reports whether n was published for a link change.
func (s *Server) isEvent(n *gpb.Notification) bool {
	if !s.anyEvents.Load() {
		return false
	}
	_, ok := s.events.Load(n)
	return ok
}

// SetOperStatus takes interface iface down (up false) or brings it back
// up now, on top of the recording and the scenario: its oper-status leaves
// (OpenConfig oper-status DOWN, IOS-XE if-oper-state-no-pass, NX-OS DME
// operSt down) change and its counters stop while down. The change is
// published at once: STREAM subscriptions in ON_CHANGE mode (and
// TARGET_DEFINED, for state leaves) receive it immediately, with the
// notification timestamp the instant returned; SAMPLE subscriptions see it
// at their next interval, ONCE and POLL on their next request. It cannot
// bring up an interface recorded down or held down by the scenario; it
// only ends the outages it started.
//
// It returns the notification timestamp of the change, or the zero Time
// when the link state did not change (nothing is published). Errors:
// ErrUnknownInterface, ErrNotStarted.
func (s *Server) SetOperStatus(iface string, up bool) (time.Time, error) {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if s.start.IsZero() {
		return time.Time{}, ErrNotStarted
	}
	k := s.model.links[iface]
	if k == nil {
		return time.Time{}, fmt.Errorf("%w: %q", ErrUnknownInterface, iface)
	}
	now := time.Now()
	if last := time.Unix(0, s.lastTS); !now.After(last) {
		now = last.Add(time.Nanosecond)
	}
	el := now.Sub(s.start)
	before := k.down(el)
	k.outages.Set(el, up)
	after := k.down(el)
	if before == after {
		return time.Time{}, nil
	}
	ts := s.nextTS(now)
	k.notified = after
	s.publishLink(k, ts, el)
	return time.Unix(0, ts), nil
}

// Interfaces returns the names of the device's interfaces, which
// SetOperStatus and scenarios accept.
func (s *Server) Interfaces() []string {
	out := make([]string, len(s.model.xr))
	for i, x := range s.model.xr {
		out[i] = x.name
	}
	return out
}

// runLinkChanges publishes the scenario's link changes at the instant
// they happen (from Start), until ctx ends.
func (s *Server) runLinkChanges(ctx context.Context) {
	el := time.Duration(0)
	for {
		next, found := time.Duration(0), false
		for _, k := range s.model.links {
			if k.plan == nil {
				continue
			}
			if t, ok := k.plan.NextLinkChange(el); ok && (!found || t < next) {
				next, found = t, true
			}
		}
		if !found {
			return
		}
		timer := time.NewTimer(time.Until(s.start.Add(next)))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		el = next
		s.pubMu.Lock()
		ts := s.nextTS(s.start.Add(next))
		for _, x := range s.model.xr {
			k := s.model.links[x.name]
			if k.plan == nil {
				continue
			}
			if down := k.down(next); down != k.notified {
				k.notified = down
				s.publishLink(k, ts, next)
			}
		}
		s.pubMu.Unlock()
	}
}

func (s *Server) checkAuth(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	if first(md, "username") != s.opts.Username || first(md, "password") != s.opts.Password {
		return status.Error(codes.Unauthenticated, "bad username or password")
	}
	return nil
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (s *Server) authUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.checkAuth(ctx); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.checkAuth(ss.Context()); err != nil {
		return err
	}
	return h(srv, ss)
}

// service is the gNMI service: Capabilities here, Subscribe by the
// openconfig subscribe package behind a request fixer and fault injector.
type service struct {
	gpb.UnimplementedGNMIServer
	s *Server
}

// Capabilities lists the simulated models and the three encodings.
func (v *service) Capabilities(context.Context, *gpb.CapabilityRequest) (*gpb.CapabilityResponse, error) {
	resp := &gpb.CapabilityResponse{
		SupportedEncodings: []gpb.Encoding{gpb.Encoding_JSON, gpb.Encoding_JSON_IETF, gpb.Encoding_PROTO},
		GNMIVersion:        "0.10.0",
	}
	for _, name := range sortedKeys(v.s.model.models) {
		resp.SupportedModels = append(resp.SupportedModels, &gpb.ModelData{Name: name, Organization: "Cisco Systems, Inc. (simulated)"})
	}
	return resp, nil
}

// Subscribe serves one subscription through openconfig's subscribe server.
func (v *service) Subscribe(stream gpb.GNMI_SubscribeServer) error {
	v.s.streams.Add(1)
	return v.s.sub.Subscribe(&simStream{GNMI_SubscribeServer: stream, s: v.s})
}

// simStream sits between the subscribe server and the client: it completes
// the first request (target, origin, list wildcards) and applies the
// encoding and the faults to every response.
type simStream struct {
	gpb.GNMI_SubscribeServer
	s       *Server
	enc     gpb.Encoding
	started bool
	synced  bool // the initial state has been sent
	sent    int
	updates int
	// stream is set for STREAM subscriptions, whose subs (with prefix
	// elements prepended) decide each leaf's mode; last holds the last
	// value sent of every ON_CHANGE leaf.
	stream bool
	subs   []streamSub
	last   map[string]*gpb.TypedValue
}

// streamSub is one subscription of a STREAM request.
type streamSub struct {
	origin string
	elems  []*gpb.PathElem
	mode   gpb.SubscriptionMode
}

// Recv completes the subscription request so that the subscribe package,
// which matches literally, answers it as a device would: a missing prefix
// target becomes the simulator's name, a missing or "openconfig" origin is
// resolved from the first path element, and list elements without keys
// match every entry.
func (st *simStream) Recv() (*gpb.SubscribeRequest, error) {
	r, err := st.GNMI_SubscribeServer.Recv()
	if err != nil || st.started {
		return r, err
	}
	st.started = true
	list := r.GetSubscribe()
	if list == nil {
		return r, nil
	}
	st.enc = list.GetEncoding()
	if list.Prefix == nil {
		list.Prefix = &gpb.Path{}
	}
	if list.Prefix.Target == "" {
		list.Prefix.Target = st.s.opts.Name
	}
	if list.GetMode() == gpb.SubscriptionList_STREAM {
		defer st.recordModes(list)
	}
	if list.Prefix.Origin != "" || len(list.Prefix.Elem) > 0 {
		return r, nil
	}
	for _, sub := range list.GetSubscription() {
		p := sub.GetPath()
		if p == nil || len(p.Elem) == 0 {
			continue
		}
		if p.Origin == "" || p.Origin == "openconfig" {
			if o, ok := st.s.model.origins[p.Elem[0].Name]; ok {
				p.Origin = o
			}
		}
		chain := ""
		for i, e := range p.Elem {
			if i > 0 {
				chain += "/"
			}
			chain += e.Name
			if len(e.Key) > 0 {
				continue
			}
			if keys, ok := st.s.model.lists[p.Origin+"\x00"+chain]; ok {
				e.Key = map[string]string{}
				for _, k := range keys {
					e.Key[k] = "*"
				}
			}
		}
	}
	return r, nil
}

// recordModes keeps the subscriptions of a STREAM request, completed, to
// apply their modes in Send.
func (st *simStream) recordModes(list *gpb.SubscriptionList) {
	st.stream = true
	st.last = map[string]*gpb.TypedValue{}
	for _, sub := range list.GetSubscription() {
		origin := list.GetPrefix().GetOrigin()
		if origin == "" {
			origin = sub.GetPath().GetOrigin()
		}
		elems := append(append([]*gpb.PathElem(nil), list.GetPrefix().GetElem()...), sub.GetPath().GetElem()...)
		st.subs = append(st.subs, streamSub{origin: origin, elems: elems, mode: sub.GetMode()})
	}
}

// stateLeaves are the leaves TARGET_DEFINED streams on change: link
// states. Everything else is sampled.
var stateLeaves = map[string]bool{"oper-status": true, "admin-status": true, "operSt": true, "adminSt": true}

// onChange reports whether n's leaf is streamed ON_CHANGE: the most
// specific subscription that matches it says ON_CHANGE, or TARGET_DEFINED
// for a state leaf.
func (st *simStream) onChange(n *gpb.Notification) bool {
	if len(n.GetUpdate()) == 0 {
		return false
	}
	elems := n.Update[0].GetPath().GetElem()
	best, mode := -1, gpb.SubscriptionMode_SAMPLE
	for _, sub := range st.subs {
		if sub.origin != "" && sub.origin != n.GetPrefix().GetOrigin() || len(sub.elems) > len(elems) || len(sub.elems) <= best {
			continue
		}
		if matchElems(sub.elems, elems) {
			best, mode = len(sub.elems), sub.mode
		}
	}
	switch mode {
	case gpb.SubscriptionMode_ON_CHANGE:
		return true
	case gpb.SubscriptionMode_TARGET_DEFINED:
		return len(elems) > 0 && stateLeaves[elems[len(elems)-1].GetName()]
	}
	return false
}

// matchElems reports whether the subscription path sub is a prefix of
// path, with missing keys and "*" matching any value.
func matchElems(sub, path []*gpb.PathElem) bool {
	for i, e := range sub {
		if e.GetName() != path[i].GetName() && e.GetName() != "*" {
			return false
		}
		for k, v := range e.GetKey() {
			if v != "*" && path[i].GetKey()[k] != v {
				return false
			}
		}
	}
	return true
}

// skip applies the subscription modes of a STREAM request to an update:
// an ON_CHANGE leaf is sent when its value differs from the last sent (the
// initial state always), a SAMPLE leaf at every sample tick but not for a
// link-change event, which only ON_CHANGE subscribers get at once.
func (st *simStream) skip(n *gpb.Notification) bool {
	if !st.stream || len(n.GetUpdate()) == 0 {
		return false
	}
	if !st.onChange(n) {
		return st.synced && st.s.isEvent(n)
	}
	key := n.GetPrefix().GetOrigin() + ":" + gnmipath.Format(&gpb.Path{Elem: n.Update[0].GetPath().GetElem()})
	v := n.Update[0].GetVal()
	if last, ok := st.last[key]; ok && proto.Equal(last, v) {
		return true
	}
	st.last[key] = v
	return false
}

// Send applies the subscription modes, the requested encoding and the
// configured faults.
func (st *simStream) Send(r *gpb.SubscribeResponse) error {
	if n := r.GetUpdate(); n != nil && st.skip(n) {
		return nil
	}
	f := st.s.opts.Faults
	if f.DropAfter > 0 && st.sent >= f.DropAfter {
		st.s.dropped.Add(1)
		return status.Error(codes.Unavailable, "simulated stream drop")
	}
	if r.GetSyncResponse() {
		st.synced = true
	}
	if n := r.GetUpdate(); n != nil {
		// Corruption starts after the initial state, so that a client has
		// seen every leaf well-formed once.
		bad := false
		if st.synced && f.MalformedEvery > 0 {
			st.updates++
			bad = st.updates%f.MalformedEvery == 0
		}
		if st.enc == gpb.Encoding_JSON || st.enc == gpb.Encoding_JSON_IETF || bad {
			n = proto.Clone(n).(*gpb.Notification)
			if st.enc == gpb.Encoding_JSON || st.enc == gpb.Encoding_JSON_IETF {
				for _, u := range n.Update {
					u.Val = toJSON(u.Val, st.enc)
				}
			}
			if bad {
				corrupt(n, st.updates/f.MalformedEvery, st.enc)
				st.s.malformed.Add(1)
			}
			r = &gpb.SubscribeResponse{Response: &gpb.SubscribeResponse_Update{Update: n}}
		}
	}
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-st.Context().Done():
			return st.Context().Err()
		}
	}
	st.sent++
	st.s.responses.Add(1)
	return st.GNMI_SubscribeServer.Send(r)
}

// corrupt breaks n in one of four ways, chosen by i.
func corrupt(n *gpb.Notification, i int, enc gpb.Encoding) {
	if len(n.Update) == 0 {
		return
	}
	u := n.Update[0]
	switch i % 4 {
	case 1:
		if len(u.GetPath().GetElem()) > 0 {
			u.Path.Elem[len(u.Path.Elem)-1] = &gpb.PathElem{}
		}
	case 2:
		n.Prefix.Origin = "Bogus-Unknown-Model"
	case 3:
		// A string leaf turns into a number, any other leaf into a string.
		_, wasString := u.GetVal().GetValue().(*gpb.TypedValue_StringVal)
		if j := u.GetVal().GetJsonIetfVal(); len(j) > 0 && j[0] == '"' && !looksNumeric(j) {
			wasString = true
		}
		if j := u.GetVal().GetJsonVal(); len(j) > 0 && j[0] == '"' {
			wasString = true
		}
		switch {
		case wasString:
			u.Val = &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: 12345}}
		case enc == gpb.Encoding_JSON || enc == gpb.Encoding_JSON_IETF:
			u.Val = &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: []byte(`"garbage"`)}}
		default:
			u.Val = &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: "garbage"}}
		}
	default:
		u.Val = nil
	}
}

// toJSON re-encodes a scalar as JSON (numbers as numbers) or JSON_IETF
// (64-bit integers as strings, RFC 7951 §6.1).
func toJSON(v *gpb.TypedValue, enc gpb.Encoding) *gpb.TypedValue {
	var b []byte
	switch x := v.GetValue().(type) {
	case *gpb.TypedValue_UintVal:
		b = strconv.AppendUint(nil, x.UintVal, 10)
		if enc == gpb.Encoding_JSON_IETF {
			b = strconv.AppendQuote(nil, string(b))
		}
	case *gpb.TypedValue_IntVal:
		b = strconv.AppendInt(nil, x.IntVal, 10)
		if enc == gpb.Encoding_JSON_IETF {
			b = strconv.AppendQuote(nil, string(b))
		}
	case *gpb.TypedValue_DoubleVal:
		b = strconv.AppendFloat(nil, x.DoubleVal, 'g', -1, 64)
	case *gpb.TypedValue_StringVal:
		b, _ = json.Marshal(x.StringVal)
	case *gpb.TypedValue_BoolVal:
		b = strconv.AppendBool(nil, x.BoolVal)
	default:
		return v
	}
	if enc == gpb.Encoding_JSON {
		return &gpb.TypedValue{Value: &gpb.TypedValue_JsonVal{JsonVal: b}}
	}
	return &gpb.TypedValue{Value: &gpb.TypedValue_JsonIetfVal{JsonIetfVal: b}}
}

// looksNumeric reports whether a JSON_IETF value is a quoted integer (how
// RFC 7951 writes 64-bit numbers).
func looksNumeric(j []byte) bool {
	if len(j) < 3 || j[0] != '"' || j[len(j)-1] != '"' {
		return false
	}
	for _, c := range j[1 : len(j)-1] {
		if (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}
