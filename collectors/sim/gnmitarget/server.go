// Package gnmitarget is a gNMI target that behaves like a Cisco router for
// demos and tests. It serves Capabilities and Subscribe (STREAM, ONCE and
// POLL) with openconfig/gnmi's own server-side packages: the device state
// lives in a github.com/openconfig/gnmi/cache tree and subscriptions are
// answered by github.com/openconfig/gnmi/subscribe. The state is built from
// real Cisco captures (IOS-XR native generic-counters and wdsysmon CPU,
// NX-OS DME interface attributes, IOS-XE interface names and counters) plus
// OpenConfig interface, platform and system trees derived from them;
// counters advance every Interval from their recorded values.
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
	"github.com/netfeat/netfeat/collectors/sim/scenario"
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
	// Interval is how often counters advance and updates are published.
	// Default 1s.
	Interval time.Duration `yaml:"interval"`
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
	// (congestion, errors, link down; see collectors/sim/scenario): it
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
	lastTS int64
}

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
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := buildModel(opts.Platform, opts.Recording)
	if err != nil {
		return nil, fmt.Errorf("gnmi simulator: %w", err)
	}
	if opts.Scenario != nil {
		if err := m.bind(opts.Scenario); err != nil {
			return nil, fmt.Errorf("gnmi simulator: scenario: %w", err)
		}
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
	s.start = time.Now()
	s.publish(s.start)
	s.cache.GetTarget(s.opts.Name).Sync()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	s.wg.Add(2)
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
	ts := now.UnixNano()
	s.mu.Lock()
	if ts <= s.lastTS {
		ts = s.lastTS + 1
	}
	s.lastTS = ts
	s.mu.Unlock()
	elapsed := now.Sub(s.start)
	for _, l := range s.model.leaves {
		n := &gpb.Notification{
			Timestamp: ts,
			Prefix:    &gpb.Path{Target: s.opts.Name, Origin: l.origin},
			Update:    []*gpb.Update{{Path: &gpb.Path{Elem: l.elems}, Val: l.value(elapsed)}},
		}
		if err := s.cache.GnmiUpdate(n); err != nil {
			s.log.Debug("gnmi simulator cache update", "err", err)
		}
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

// Send applies the requested encoding and the configured faults.
func (st *simStream) Send(r *gpb.SubscribeResponse) error {
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
