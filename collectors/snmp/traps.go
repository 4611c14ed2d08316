package snmp

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/netfeat/netfeat/collectors/snmp/snmpwire"
	"github.com/netfeat/netfeat/schema"
)

// OIDs of the SNMPv2 notification varbinds (RFC 3416, RFC 3584).
const (
	oidSnmpTrapOID        = "1.3.6.1.6.3.1.1.4.1.0"
	oidSnmpTrapAddress    = "1.3.6.1.6.3.18.1.3.0"
	oidSnmpTrapEnterprise = "1.3.6.1.6.3.1.1.4.3.0"
	oidSnmpTraps          = "1.3.6.1.6.3.1.1.5" // coldStart.1 … linkUp.4, authenticationFailure.5
	oidUnknownEngineIDs   = ".1.3.6.1.6.3.15.1.1.4.0"
)

// Limits of the receiver that are not configurable.
const (
	// trapMaxVarbinds bounds the varbinds of one notification (oversize).
	trapMaxVarbinds = 1000
	// trapMaxBuckets bounds the per-source token buckets; sources past it
	// share one bucket until idle buckets are swept.
	trapMaxBuckets = 65536
	// trapSweepEvery is how often idle token buckets are dropped.
	trapSweepEvery = 10 * time.Second
	// trapLogEvery is how often a refusal is logged per reason at most.
	trapLogEvery = 10 * time.Second
	// otherSource is the metric label of sources that are not targets.
	otherSource = "other"
)

// Why traps are shed (reason "shed").
var (
	// errOverRate: the source sent more than trap_rate_limit/trap_burst allow.
	errOverRate = errors.New("source over trap_rate_limit")
	// errQueueFull: the sink is behind by trap_queue_size notifications.
	errQueueFull = errors.New("trap queue full")
)

// trapReceiver accepts v1/v2c traps, v2c informs and v3 traps and informs
// on one UDP socket and hands each to the sink as a batch of Observations
// with Protocol trap: sysUpTime.0, snmpTrapOID.0 (KindOID) and the
// notification's varbinds (v1 traps are translated as RFC 3584 3.1 says).
//
// One goroutine reads the socket: it refuses sources that are not allowed,
// sheds sources over their rate (a token bucket per address), decodes,
// answers informs and puts the batch on a bounded queue, never waiting.
// Another drains the queue into the sink, so a slow sink sheds traps (and
// the socket buffer absorbs bursts) instead of stalling the read.
type trapReceiver struct {
	listen      string
	communities map[string]bool
	sources     map[netip.Addr]string // source IP → device name
	hostNames   map[string]string     // target host names, resolved by start
	allow       []netip.Prefix
	acceptAny   bool
	rate, burst float64
	readBuffer  int
	sink        schema.ObservationSink
	m           *metrics
	log         *slog.Logger
	logs        logLimiter
	engineID    string
	started     time.Time

	plain *gosnmp.GoSNMP // v1/v2c decoding
	v3    *gosnmp.GoSNMP // v3 decoding with the users' table; nil without users
	disc  *gosnmp.GoSNMP // v3 engine discovery probes

	// Owned by the read loop.
	buckets   map[netip.Addr]*tokenBucket
	overflow  tokenBucket
	lastSweep int64

	conn   *net.UDPConn
	queue  chan trapItem
	cancel context.CancelFunc
	done   chan struct{} // closed when both goroutines have returned
}

// trapItem is a notification waiting for the sink.
type trapItem struct {
	batch  []schema.Observation
	source string // metric label
	recv   time.Time
}

func newTrapReceiver(cfg Config, names map[string]string, sink schema.ObservationSink, m *metrics, log *slog.Logger) (*trapReceiver, error) {
	t := &trapReceiver{listen: cfg.TrapListen, communities: map[string]bool{}, sources: map[netip.Addr]string{},
		hostNames: map[string]string{}, acceptAny: cfg.TrapAcceptAny, sink: sink, m: m, log: log,
		rate: cfg.TrapRateLimit, burst: float64(cfg.TrapBurst), readBuffer: cfg.TrapReadBuffer,
		logs: logLimiter{every: trapLogEvery}, buckets: map[netip.Addr]*tokenBucket{},
		plain: &gosnmp.GoSNMP{Version: gosnmp.Version2c}}
	if t.rate == 0 {
		t.rate = DefaultTrapRateLimit
	}
	if t.burst == 0 {
		t.burst = DefaultTrapBurst
	}
	if t.readBuffer == 0 {
		t.readBuffer = DefaultTrapReadBuffer
	}
	qs := cfg.TrapQueueSize
	if qs == 0 {
		qs = DefaultTrapQueueSize
	}
	t.queue = make(chan trapItem, qs)
	t.overflow.tokens = t.burst
	for host, name := range names {
		if a, err := netip.ParseAddr(host); err == nil {
			t.sources[a.Unmap()] = name
		} else {
			t.hostNames[host] = name
		}
	}
	var err error
	if t.allow, err = parseTrapSources(cfg.TrapSources); err != nil {
		return nil, err
	}
	for _, c := range cfg.TrapCommunities {
		t.communities[c] = true
	}
	if len(t.communities) == 0 {
		c, err := secret(cfg.Defaults.Community, cfg.Defaults.CommunityFile, cfg.Defaults.CommunityEnv, "defaults.community")
		if err != nil {
			return nil, err
		}
		if c != "" {
			t.communities[c] = true
		}
	}
	if cfg.TrapEngineID != "" {
		b, err := hexBytes(cfg.TrapEngineID)
		if err != nil {
			return nil, fmt.Errorf("trap_engine_id: %w", err)
		}
		t.engineID = string(b)
	} else {
		t.engineID = string(append([]byte{0x80, 0x00, 0x1f, 0x88, 4}, []byte("netfeat-trap")...))
	}
	if len(cfg.TrapUsers) > 0 {
		table := gosnmp.NewSnmpV3SecurityParametersTable(gosnmp.Logger{})
		for i, u := range cfg.TrapUsers {
			ru, err := u.resolve(fmt.Sprintf("trap_users[%d]", i))
			if err != nil {
				return nil, err
			}
			sp := &gosnmp.UsmSecurityParameters{
				AuthoritativeEngineID:    t.engineID,
				UserName:                 ru.user,
				AuthenticationProtocol:   ru.auth,
				AuthenticationPassphrase: ru.authPass,
				PrivacyProtocol:          ru.priv,
				PrivacyPassphrase:        ru.privPass,
			}
			if err := table.Add(ru.user, sp); err != nil {
				return nil, fmt.Errorf("trap_users[%d]: %w", i, err)
			}
		}
		t.v3 = &gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel}
		t.v3.SetTrapSecurityParametersTable(table)
		t.disc = &gosnmp.GoSNMP{Version: gosnmp.Version3, SecurityModel: gosnmp.UserSecurityModel,
			SecurityParameters: &gosnmp.UsmSecurityParameters{}}
	}
	return t, nil
}

// start resolves the targets given by host name, binds the socket and
// starts the read loop and the worker.
func (t *trapReceiver) start(ctx context.Context) error {
	t.resolveHosts(ctx)
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", t.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", t.listen, err)
	}
	conn := pc.(*net.UDPConn)
	got, err := setReadBuffer(conn, t.readBuffer)
	if err != nil {
		t.log.Warn("snmp trap receiver: socket receive buffer", "asked", t.readBuffer, "err", err)
	}
	t.m.trapReadBuf.Set(float64(got))
	t.conn = conn
	t.started = time.Now()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.cancel = cancel
	t.done = make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { t.read(runCtx) })
	wg.Go(func() { t.work(runCtx) })
	go func() { wg.Wait(); close(t.done) }()
	if len(t.sources) == 0 && len(t.allow) == 0 && !t.acceptAny {
		t.log.Warn("snmp trap receiver: no targets, trap_sources or trap_accept_any: every trap will be refused")
	}
	t.log.Info("snmp trap receiver listening", "addr", conn.LocalAddr().String(), "read_buffer", got,
		"rate_limit", t.rate, "burst", t.burst, "queue", cap(t.queue), "accept_any", t.acceptAny)
	return nil
}

// resolveHosts adds the addresses of targets given by host name to the
// sources, within 5 s in all; a name that does not resolve is logged.
func (t *trapReceiver) resolveHosts(ctx context.Context) {
	if len(t.hostNames) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for host, name := range t.hostNames {
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			t.log.Warn("snmp trap receiver: traps from this target are not accepted", "device", name, "host", host, "err", err)
			continue
		}
		for _, a := range addrs {
			t.sources[a.Unmap()] = name
		}
	}
}

// stop closes the socket and lets the worker hand the queued
// notifications to the sink; if ctx ends first, the sink's context is
// cancelled and the rest dropped.
func (t *trapReceiver) stop(ctx context.Context) error {
	t.conn.Close()
	defer t.cancel()
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("snmp trap receiver: stop: %w", ctx.Err())
	}
}

// read is the read loop; it closes the queue when the socket is closed.
func (t *trapReceiver) read(ctx context.Context) {
	defer close(t.queue)
	buf := make([]byte, 65536) // more than any UDP payload
	for {
		n, from, err := t.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			if ok, skipped := t.logs.allow("read", time.Now()); ok {
				t.log.Warn("snmp trap receiver: read", "err", err, "suppressed", skipped)
			}
			continue
		}
		t.receive(buf[:n], from, time.Now())
	}
}

// work hands queued notifications to the sink until the queue is closed.
func (t *trapReceiver) work(ctx context.Context) {
	for it := range t.queue {
		if ctx.Err() != nil {
			continue // stop gave up waiting: drop the rest
		}
		t.m.trapQueue.Set(float64(len(t.queue)))
		t.m.trapDelay.Observe(time.Since(it.recv).Seconds())
		if err := t.deliver(ctx, it.batch); err != nil {
			t.refuse(it.source, "sink", netip.Addr{}, err)
		}
	}
}

// deliver calls the sink; a panic in it is returned as an error so that no
// notification can take the receiver down.
func (t *trapReceiver) deliver(ctx context.Context, batch []schema.Observation) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sink panicked: %v", r)
		}
	}()
	return t.sink.Observe(ctx, batch)
}

// refuse counts a refused message and logs it, at most once per
// trapLogEvery per reason. ip may be the zero Addr.
func (t *trapReceiver) refuse(source, reason string, ip netip.Addr, err error) {
	t.m.trapErrors.WithLabelValues(source, reason).Inc()
	if ok, skipped := t.logs.allow(reason, time.Now()); ok {
		attrs := []any{"reason", reason, "source", source}
		if ip.IsValid() {
			attrs = append(attrs, "addr", ip.String())
		}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		attrs = append(attrs, "suppressed", skipped)
		t.log.Warn("snmp trap refused", attrs...)
	}
}

// receive handles one datagram, in the read loop: admission, rate,
// decoding, the inform's answer and the hand-off to the worker. msg is
// reused once it returns.
func (t *trapReceiver) receive(msg []byte, from netip.AddrPort, now time.Time) {
	ip := from.Addr().Unmap()
	source, device := otherSource, ""
	if name, ok := t.sources[ip]; ok {
		source, device = name, name
	} else if !t.acceptAny && !t.allowed(ip) {
		t.refuse(source, "unknown_source", ip, nil)
		return
	}
	if !t.bucket(ip, now.UnixNano()).take(now.UnixNano(), t.rate, t.burst) {
		t.refuse(source, "shed", ip, errOverRate)
		return
	}
	pkt, reason, err := t.decode(msg, from, source)
	if pkt == nil {
		if reason != "" {
			t.refuse(source, reason, ip, err)
		}
		return
	}
	if device == "" {
		device = ip.String()
	}
	batch := t.observations(device, pkt, now.UnixNano())
	select {
	case t.queue <- trapItem{batch: batch, source: source, recv: now}:
		t.m.trapQueue.Set(float64(len(t.queue)))
	default:
		t.refuse(source, "shed", ip, errQueueFull)
		return // an inform is not answered, so the agent sends it again
	}
	if pkt.PDUType == gosnmp.InformRequest {
		t.ack(pkt, from, source)
	}
	t.m.traps.WithLabelValues(source, pkt.Version.String()).Inc()
}

func (t *trapReceiver) allowed(ip netip.Addr) bool {
	for _, p := range t.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// bucket returns the source's token bucket; idle ones are swept every
// trapSweepEvery, and past trapMaxBuckets new sources share one.
func (t *trapReceiver) bucket(ip netip.Addr, now int64) *tokenBucket {
	if b, ok := t.buckets[ip]; ok {
		return b
	}
	if now-t.lastSweep > int64(trapSweepEvery) {
		t.lastSweep = now
		for a, b := range t.buckets {
			if b.full(now, t.rate, t.burst) {
				delete(t.buckets, a)
			}
		}
	}
	if len(t.buckets) >= trapMaxBuckets {
		return &t.overflow
	}
	b := &tokenBucket{tokens: t.burst, last: now}
	t.buckets[ip] = b
	return b
}

// tokenBucket allows rate events per second on average and burst at once.
type tokenBucket struct {
	tokens float64
	last   int64 // unix ns of the last refill
}

func (b *tokenBucket) take(now int64, rate, burst float64) bool {
	if now > b.last {
		b.tokens = min(burst, b.tokens+float64(now-b.last)*rate/1e9)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *tokenBucket) full(now int64, rate, burst float64) bool {
	return b.tokens+float64(now-b.last)*rate/1e9 >= burst
}

// logLimiter lets a message through at most once per every per key and
// counts the ones it held back. The zero every lets all through.
type logLimiter struct {
	every time.Duration
	mu    sync.Mutex
	keys  map[string]*logKey
}

type logKey struct {
	last    time.Time
	skipped int
}

// allow reports whether to log key now, and how many were held back since
// it was last logged.
func (l *logLimiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys == nil {
		l.keys = map[string]*logKey{}
	}
	k := l.keys[key]
	if k == nil {
		k = &logKey{}
		l.keys[key] = k
	} else if now.Sub(k.last) < l.every {
		k.skipped++
		return false, 0
	}
	skipped := k.skipped
	k.last, k.skipped = now, 0
	return true, skipped
}

// decode decodes one message and checks its community or USM user. It
// answers engine discovery (and returns a nil packet and no reason). A
// panic in the decoder is a malformed message.
func (t *trapReceiver) decode(msg []byte, from netip.AddrPort, source string) (pkt *gosnmp.SnmpPacket, reason string, err error) {
	defer func() {
		if r := recover(); r != nil {
			pkt, reason, err = nil, "malformed", fmt.Errorf("decoder panicked: %v", r)
		}
	}()
	version, err := snmpwire.PeekVersion(msg)
	if err != nil {
		return nil, "malformed", err
	}
	switch version {
	case int64(gosnmp.Version1), int64(gosnmp.Version2c):
		pkt, err = t.plain.UnmarshalTrap(msg, false)
		if err != nil {
			return nil, "malformed", err
		}
		if !t.communities[pkt.Community] {
			return nil, "community", fmt.Errorf("community %q not accepted", pkt.Community)
		}
	case int64(gosnmp.Version3):
		if t.v3 == nil {
			return nil, "auth", errors.New("v3 message but no trap_users configured")
		}
		h, err := snmpwire.PeekV3(msg)
		if err != nil {
			return nil, "malformed", err
		}
		if h.EngineID == "" && h.User == "" {
			t.discovery(msg, from, source)
			return nil, "", nil
		}
		pkt, err = t.v3.UnmarshalTrap(msg, true)
		if err != nil {
			return nil, "auth", fmt.Errorf("user %q: %w", h.User, err)
		}
	default:
		return nil, "malformed", fmt.Errorf("SNMP version field %d", version)
	}
	if pkt == nil {
		return nil, "malformed", errors.New("no PDU")
	}
	switch pkt.PDUType {
	case gosnmp.Trap:
	case gosnmp.SNMPv2Trap, gosnmp.InformRequest:
		if !hasTrapOID(pkt.Variables) {
			return nil, "malformed", errors.New("no snmpTrapOID.0 varbind")
		}
	default:
		return nil, "malformed", fmt.Errorf("PDU %v is not a notification", pkt.PDUType)
	}
	if len(pkt.Variables) > trapMaxVarbinds {
		return nil, "oversize", fmt.Errorf("%d varbinds, more than %d", len(pkt.Variables), trapMaxVarbinds)
	}
	return pkt, "", nil
}

// hasTrapOID reports whether a v2 notification names its snmpTrapOID.0
// (RFC 3416 4.2.6 puts it second; any place is taken).
func hasTrapOID(vbs []gosnmp.SnmpPDU) bool {
	for i := range vbs {
		if vbs[i].Type == gosnmp.ObjectIdentifier && trimDot(vbs[i].Name) == oidSnmpTrapOID {
			return true
		}
	}
	return false
}

// observations converts a notification; v1 traps get the v2 form.
func (t *trapReceiver) observations(device string, pkt *gosnmp.SnmpPacket, recv int64) []schema.Observation {
	out := make([]schema.Observation, 0, len(pkt.Variables)+4)
	if pkt.PDUType == gosnmp.Trap {
		trapOID := oidSnmpTraps + "." + strconv.Itoa(pkt.GenericTrap+1)
		ent := trimDot(pkt.Enterprise)
		if pkt.GenericTrap == 6 {
			trapOID = ent + ".0." + strconv.Itoa(pkt.SpecificTrap)
		}
		out = append(out,
			schema.Observation{Device: device, Protocol: schema.ProtocolTrap, Path: oidSysUpTime, Kind: schema.KindTimeTicks, Uint: uint64(pkt.Timestamp), RecvTime: recv},
			schema.Observation{Device: device, Protocol: schema.ProtocolTrap, Path: oidSnmpTrapOID, Kind: schema.KindOID, Str: trapOID, RecvTime: recv})
	}
	for i := range pkt.Variables {
		if o, ok := toObservation(device, schema.ProtocolTrap, &pkt.Variables[i], recv); ok {
			out = append(out, o)
		}
	}
	if pkt.PDUType == gosnmp.Trap {
		out = append(out,
			schema.Observation{Device: device, Protocol: schema.ProtocolTrap, Path: oidSnmpTrapAddress, Kind: schema.KindString, Str: pkt.AgentAddress, RecvTime: recv},
			schema.Observation{Device: device, Protocol: schema.ProtocolTrap, Path: oidSnmpTrapEnterprise, Kind: schema.KindOID, Str: trimDot(pkt.Enterprise), RecvTime: recv})
	}
	return out
}

func trimDot(s string) string {
	if len(s) > 0 && s[0] == '.' {
		return s[1:]
	}
	return s
}

// ack answers an inform with a Response carrying the same varbinds
// (RFC 3416 4.2.7).
func (t *trapReceiver) ack(pkt *gosnmp.SnmpPacket, to netip.AddrPort, source string) {
	pkt.PDUType = gosnmp.GetResponse
	pkt.Error, pkt.ErrorIndex = gosnmp.NoError, 0
	if pkt.Version == gosnmp.Version3 {
		pkt.MsgFlags &= gosnmp.AuthPriv
		if sp, ok := pkt.SecurityParameters.(*gosnmp.UsmSecurityParameters); ok {
			sp.AuthoritativeEngineBoots = 1
			sp.AuthoritativeEngineTime = uint32(time.Since(t.started) / time.Second)
		}
	}
	out, err := pkt.MarshalMsg()
	if err == nil {
		_, err = t.conn.WriteToUDPAddrPort(out, to)
	}
	if err != nil {
		t.refuse(source, "ack", to.Addr(), fmt.Errorf("inform response: %w", err))
	}
}

// discovery answers an engine discovery probe (RFC 3414 4) with a Report
// carrying the receiver's engine ID, so that v3 informs can be sent to it.
func (t *trapReceiver) discovery(msg []byte, to netip.AddrPort, source string) {
	pkt, err := t.disc.UnmarshalTrap(msg, true)
	if err != nil {
		t.refuse(source, "malformed", to.Addr(), fmt.Errorf("engine discovery: %w", err))
		return
	}
	pkt.PDUType = gosnmp.Report
	pkt.MsgFlags = gosnmp.NoAuthNoPriv
	pkt.ContextEngineID = t.engineID
	pkt.SecurityParameters = &gosnmp.UsmSecurityParameters{AuthoritativeEngineID: t.engineID,
		AuthoritativeEngineBoots: 1, AuthoritativeEngineTime: uint32(time.Since(t.started) / time.Second)}
	pkt.Variables = []gosnmp.SnmpPDU{{Name: oidUnknownEngineIDs, Type: gosnmp.Counter32, Value: uint32(1)}}
	out, err := pkt.MarshalMsg()
	if err == nil {
		_, err = t.conn.WriteToUDPAddrPort(out, to)
	}
	if err != nil {
		t.refuse(source, "ack", to.Addr(), fmt.Errorf("discovery report: %w", err))
	}
	t.log.Debug("snmp trap receiver: answered engine discovery", "source", source, "addr", to.Addr().String(), "engine_id", hex.EncodeToString([]byte(t.engineID)))
}
