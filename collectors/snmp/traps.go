package snmp

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
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

// trapReceiver accepts v1/v2c traps, v2c informs and v3 traps and informs
// on one UDP socket and hands each to the sink at once, as a batch of
// Observations with Protocol trap: sysUpTime.0, snmpTrapOID.0 (KindOID)
// and the notification's varbinds (v1 traps are translated as RFC 3584
// 3.1 says).
type trapReceiver struct {
	listen      string
	communities map[string]bool
	names       map[string]string // source IP → device name
	sink        schema.ObservationSink
	m           *metrics
	log         *slog.Logger
	engineID    string
	started     time.Time

	plain *gosnmp.GoSNMP // v1/v2c decoding
	v3    *gosnmp.GoSNMP // v3 decoding with the users' table; nil without users
	disc  *gosnmp.GoSNMP // v3 engine discovery probes

	conn   net.PacketConn
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newTrapReceiver(cfg Config, names map[string]string, sink schema.ObservationSink, m *metrics, log *slog.Logger) (*trapReceiver, error) {
	t := &trapReceiver{listen: cfg.TrapListen, communities: map[string]bool{}, names: names, sink: sink, m: m, log: log,
		plain: &gosnmp.GoSNMP{Version: gosnmp.Version2c}}
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

func (t *trapReceiver) start(ctx context.Context) error {
	var lc net.ListenConfig
	conn, err := lc.ListenPacket(ctx, "udp", t.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", t.listen, err)
	}
	t.conn = conn
	t.started = time.Now()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.cancel = cancel
	t.wg.Add(1)
	go t.loop(runCtx)
	t.log.Info("snmp trap receiver listening", "addr", conn.LocalAddr().String())
	return nil
}

func (t *trapReceiver) stop(ctx context.Context) error {
	t.cancel()
	t.conn.Close()
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("snmp trap receiver: stop: %w", ctx.Err())
	}
}

func (t *trapReceiver) loop(ctx context.Context) {
	defer t.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, addr, err := t.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			t.log.Warn("snmp trap receiver: read", "err", err)
			continue
		}
		t.handle(ctx, bytes.Clone(buf[:n]), addr)
	}
}

func (t *trapReceiver) refuse(source, reason string, err error) {
	t.m.trapErrors.WithLabelValues(source, reason).Inc()
	t.log.Warn("snmp trap refused", "source", source, "reason", reason, "err", err)
}

// handle decodes one message, answers informs and engine discovery, and
// hands the notification to the sink.
func (t *trapReceiver) handle(ctx context.Context, msg []byte, addr net.Addr) {
	recv := time.Now().UnixNano()
	source := addr.String()
	ip := source
	if ua, ok := addr.(*net.UDPAddr); ok {
		ip = ua.IP.String()
	}
	device := ip
	if name, ok := t.names[ip]; ok {
		device = name
	}
	version, err := snmpwire.PeekVersion(msg)
	if err != nil {
		t.refuse(ip, "malformed", err)
		return
	}
	var pkt *gosnmp.SnmpPacket
	switch version {
	case int64(gosnmp.Version1), int64(gosnmp.Version2c):
		pkt, err = t.plain.UnmarshalTrap(msg, false)
		if err != nil {
			t.refuse(ip, "malformed", err)
			return
		}
		if !t.communities[pkt.Community] {
			t.refuse(ip, "community", fmt.Errorf("community %q not accepted", pkt.Community))
			return
		}
	case int64(gosnmp.Version3):
		if t.v3 == nil {
			t.refuse(ip, "auth", errors.New("v3 message but no trap_users configured"))
			return
		}
		h, err := snmpwire.PeekV3(msg)
		if err != nil {
			t.refuse(ip, "malformed", err)
			return
		}
		if h.EngineID == "" && h.User == "" {
			t.discovery(msg, addr, ip)
			return
		}
		pkt, err = t.v3.UnmarshalTrap(msg, true)
		if err != nil {
			t.refuse(ip, "auth", fmt.Errorf("user %q: %w", h.User, err))
			return
		}
	default:
		t.refuse(ip, "malformed", fmt.Errorf("SNMP version field %d", version))
		return
	}
	switch pkt.PDUType {
	case gosnmp.Trap, gosnmp.SNMPv2Trap, gosnmp.InformRequest:
	default:
		t.refuse(ip, "malformed", fmt.Errorf("PDU %v is not a notification", pkt.PDUType))
		return
	}
	batch := t.observations(device, pkt, recv)
	if pkt.PDUType == gosnmp.InformRequest {
		t.ack(pkt, addr, ip)
	}
	t.m.traps.WithLabelValues(device, pkt.Version.String()).Inc()
	if err := t.sink.Observe(ctx, batch); err != nil {
		t.refuse(ip, "sink", err)
	}
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
func (t *trapReceiver) ack(pkt *gosnmp.SnmpPacket, addr net.Addr, ip string) {
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
		_, err = t.conn.WriteTo(out, addr)
	}
	if err != nil {
		t.refuse(ip, "ack", fmt.Errorf("inform response: %w", err))
	}
}

// discovery answers an engine discovery probe (RFC 3414 4) with a Report
// carrying the receiver's engine ID, so that v3 informs can be sent to it.
func (t *trapReceiver) discovery(msg []byte, addr net.Addr, ip string) {
	pkt, err := t.disc.UnmarshalTrap(msg, true)
	if err != nil {
		t.refuse(ip, "malformed", fmt.Errorf("engine discovery: %w", err))
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
		_, err = t.conn.WriteTo(out, addr)
	}
	if err != nil {
		t.refuse(ip, "ack", fmt.Errorf("discovery report: %w", err))
	}
	t.log.Debug("snmp trap receiver: answered engine discovery", "source", ip, "engine_id", hex.EncodeToString([]byte(t.engineID)))
}
