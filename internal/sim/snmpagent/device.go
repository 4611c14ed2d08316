package snmpagent

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/netfeat/netfeat/collectors/snmp/snmpwire"
	"github.com/netfeat/netfeat/internal/sim/scenario"
	"github.com/netfeat/netfeat/recording"
)

// User is an SNMPv3 USM user the simulated device accepts. Requests must
// use exactly the user's security level: noAuthNoPriv without AuthProtocol,
// authNoPriv with AuthProtocol only, authPriv with both.
type User struct {
	Name string
	// AuthProtocol is "", MD5, SHA, SHA224, SHA256, SHA384 or SHA512.
	AuthProtocol string
	// AuthKey is the authentication passphrase.
	AuthKey string
	// PrivProtocol is "", DES, AES (128), AES192, AES256, AES192C or AES256C.
	PrivProtocol string
	// PrivKey is the privacy passphrase.
	PrivKey string
}

// DeviceOptions configure one simulated device.
type DeviceOptions struct {
	// Name identifies the device in logs, in its v3 engine ID and in
	// Stats. Required.
	Name string
	// Community is the v2c community; empty disables v2c.
	Community string
	// Users are the v3 users; none disables v3.
	Users []User
	// Rate is the traffic of every interface that carries any (recorded
	// up in ifAdminStatus and ifOperStatus, with a speed in ifHighSpeed
	// or ifSpeed, not a softwareLoopback or Nokia's "system"), in octets
	// per second in each direction: the IF-MIB octet counters advance by
	// Rate per second from their recorded values, unicast packets by Rate ÷
	// 800 (scenario.DefaultPacketSize), multicast and broadcast packets by
	// 1 % and 0.1 % of that (scenario.Traffic). Error, discard and
	// unknown-protocol counters, counters of other interfaces and counters
	// outside ifTable and ifXTable stay at their recorded values unless the
	// Scenario raises them. A read at Start returns the recording exactly.
	Rate float64
	// Wrap32 makes Counter64 counters wrap at 2^32 like Counter32 ones, as
	// devices with 32-bit hardware counters behind HC objects do. Recorded
	// values of 2^32 or more are then served modulo 2^32.
	Wrap32 bool
	// RebootEvery simulates a reboot at every multiple of this duration
	// after Start: sysUpTime restarts from 0, every counter restarts from
	// 0 and snmpEngineBoots increments. 0 disables reboots.
	RebootEvery time.Duration
	// MaxMessageSize bounds a response (default 65000 bytes). GETBULK
	// responses are cut to fit; a GET or GETNEXT that cannot fit answers
	// tooBig.
	MaxMessageSize int
	// MaxRepetitions caps a GETBULK's max-repetitions (default 1000).
	MaxRepetitions int
	// EngineID is the v3 snmpEngineID; default: derived from Name.
	EngineID []byte
	// Start is the instant the recorded values hold; default: time.Now()
	// when the device is created.
	Start time.Time
	// Now is the clock (default time.Now); tests inject their own.
	Now func() time.Time
	// Scenario scripts the interfaces' traffic and faults over time
	// (congestion, errors, link down; see internal/sim/scenario): it
	// drives the IF-MIB ifTable and ifXTable counters and ifOperStatus of
	// the interfaces it names (and of every interface when it has a
	// baseline). Its times count from Start. nil replays the recording
	// with the interfaces' counters following Rate.
	Scenario *scenario.Scenario
	// TrapsTo, when set, is the HOST:PORT the device sends IF-MIB linkDown
	// and linkUp notifications to (RFC 2863: sysUpTime.0, snmpTrapOID.0,
	// ifIndex, ifAdminStatus, ifOperStatus) when the Scenario takes a link
	// down or up and when SetOperStatus changes one. They leave from the
	// device's own socket, as SNMPv2c traps with Community, or SNMPv3
	// traps as TrapUser.
	TrapsTo string
	// TrapUser, when set, names the user of Users that v3 traps are sent
	// as (with its security level; the device is the authoritative
	// engine). Empty: v2c traps with Community.
	TrapUser string
}

// Stats counts what a device received. All fields are cumulative.
type Stats struct {
	Requests      uint64 // messages received
	Responses     uint64 // responses and reports sent
	BadVersion    uint64 // SNMPv1 or unknown versions, dropped
	BadCommunity  uint64 // v2c with a wrong community, dropped (snmpInBadCommunityNames)
	Malformed     uint64 // undecodable messages, dropped (snmpInASNParseErrs)
	UnknownEngine uint64 // usmStatsUnknownEngineIDs reports (includes discovery)
	UnknownUser   uint64 // usmStatsUnknownUserNames reports
	BadSecLevel   uint64 // usmStatsUnsupportedSecLevels reports
	WrongDigest   uint64 // usmStatsWrongDigests reports
	DecryptError  uint64 // usmStatsDecryptionErrors reports
	Traps         uint64 // linkDown/linkUp notifications sent
	TrapErrors    uint64 // notifications that could not be sent
}

type stats struct {
	requests, responses, badVersion, badCommunity, malformed           atomic.Uint64
	unknownEngine, unknownUser, badSecLevel, wrongDigest, decryptError atomic.Uint64
	traps, trapErrors                                                  atomic.Uint64
}

// v3user is a USM user with keys localized to the device's engine ID.
type v3user struct {
	name  string
	level gosnmp.SnmpV3MsgFlags
	dec   *gosnmp.GoSNMP
	sp    *gosnmp.UsmSecurityParameters
}

// Device is one simulated SNMP agent replaying a MIB. Handle is safe for
// use by one goroutine at a time per Device (each device has its own
// socket and serving goroutine); Stats may be read concurrently.
type Device struct {
	mib      *MIB
	opt      DeviceOptions
	start    time.Time
	engineID string
	v2       *gosnmp.GoSNMP
	users    map[string]*v3user
	salt     atomic.Uint64
	st       stats
	traffic  scenario.Traffic
	// plans holds the scenario's plan of each interface (by position in
	// MIB.ifcs; nil without a scenario, and for interfaces it leaves
	// alone).
	plans []*scenario.Plan
	// trapUser is the v3 user traps are sent as (nil: v2c).
	trapUser *v3user
	// conn is the socket the device is served on (set by Serve); traps
	// leave from it.
	conn atomic.Pointer[net.PacketConn]

	// flapped is set once SetOperStatus took a link down; until then
	// reads need not take mu.
	flapped atomic.Bool
	mu      sync.Mutex
	// outages are the on-demand link changes, by position in MIB.ifcs;
	// linkDown is each interface's state as last notified; trapTo the
	// resolved TrapsTo. All guarded by mu.
	outages  []scenario.Outages
	linkDown []bool
	trapTo   net.Addr
}

// RFC 3414 USM statistics reported to v3 managers.
var (
	oidUnsupportedSecLevels = ".1.3.6.1.6.3.15.1.1.1.0"
	oidUnknownUserNames     = ".1.3.6.1.6.3.15.1.1.3.0"
	oidUnknownEngineIDs     = ".1.3.6.1.6.3.15.1.1.4.0"
	oidWrongDigests         = ".1.3.6.1.6.3.15.1.1.5.0"
	oidDecryptionErrors     = ".1.3.6.1.6.3.15.1.1.6.0"
)

// NewDevice creates a simulated device serving mib.
func NewDevice(mib *MIB, opt DeviceOptions) (*Device, error) {
	if mib == nil {
		return nil, errors.New("snmpagent: nil MIB")
	}
	if opt.Name == "" {
		return nil, errors.New("snmpagent: device name is required")
	}
	if opt.Community == "" && len(opt.Users) == 0 {
		return nil, fmt.Errorf("snmpagent: device %s: neither a community nor a v3 user", opt.Name)
	}
	if opt.Rate < 0 {
		return nil, fmt.Errorf("snmpagent: device %s: negative rate %v", opt.Name, opt.Rate)
	}
	if opt.MaxMessageSize == 0 {
		opt.MaxMessageSize = 65000
	}
	if opt.MaxMessageSize < 484 {
		return nil, fmt.Errorf("snmpagent: device %s: max message size %d is below SNMP's minimum of 484", opt.Name, opt.MaxMessageSize)
	}
	if opt.MaxRepetitions <= 0 {
		opt.MaxRepetitions = 1000
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	d := &Device{mib: mib, opt: opt, start: opt.Start, users: map[string]*v3user{}}
	if d.start.IsZero() {
		d.start = opt.Now()
	}
	if len(opt.EngineID) > 0 {
		if len(opt.EngineID) < 5 || len(opt.EngineID) > 32 {
			return nil, fmt.Errorf("snmpagent: device %s: engine ID of %d bytes, want 5 to 32", opt.Name, len(opt.EngineID))
		}
		d.engineID = string(opt.EngineID)
	} else {
		d.engineID = string(EngineIDFor(opt.Name))
	}
	d.v2 = &gosnmp.GoSNMP{Version: gosnmp.Version2c}
	for i, u := range opt.Users {
		vu, err := d.newUser(u)
		if err != nil {
			return nil, fmt.Errorf("snmpagent: device %s: users[%d]: %w", opt.Name, i, err)
		}
		if _, dup := d.users[u.Name]; dup {
			return nil, fmt.Errorf("snmpagent: device %s: user %q twice", opt.Name, u.Name)
		}
		d.users[u.Name] = vu
	}
	if opt.Scenario != nil {
		if err := d.bindScenario(opt.Scenario); err != nil {
			return nil, fmt.Errorf("snmpagent: device %s: scenario: %w", opt.Name, err)
		}
	}
	d.traffic = scenario.Traffic{Octets: opt.Rate}
	d.outages = make([]scenario.Outages, len(mib.ifcs))
	d.linkDown = make([]bool, len(mib.ifcs))
	for i := range mib.ifcs {
		d.linkDown[i] = d.down(i, 0)
	}
	if opt.TrapsTo != "" {
		if _, _, err := net.SplitHostPort(opt.TrapsTo); err != nil {
			return nil, fmt.Errorf("snmpagent: device %s: traps to %q: %w", opt.Name, opt.TrapsTo, err)
		}
		switch {
		case opt.TrapUser != "":
			if d.trapUser = d.users[opt.TrapUser]; d.trapUser == nil {
				return nil, fmt.Errorf("snmpagent: device %s: trap user %q is not one of its users", opt.Name, opt.TrapUser)
			}
		case opt.Community == "":
			return nil, fmt.Errorf("snmpagent: device %s: v2c traps need a community (or name a v3 trap user)", opt.Name)
		}
	}
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], uint64(d.start.UnixNano()))
	d.salt.Store(binary.BigEndian.Uint64(seed[:]))
	return d, nil
}

// EngineIDFor derives a stable RFC 3411 snmpEngineID from a device name:
// the net-snmp enterprise prefix 80:00:1f:88, format 4 (text) and the name,
// or format 5 (octets) and a SHA-256 prefix when the name is longer than
// 27 bytes.
func EngineIDFor(name string) []byte {
	id := []byte{0x80, 0x00, 0x1f, 0x88}
	if len(name) <= 27 && len(name) > 0 {
		return append(append(id, 4), name...)
	}
	sum := sha256.Sum256([]byte(name))
	return append(append(id, 5), sum[:27]...)
}

func (d *Device) newUser(u User) (*v3user, error) {
	if u.Name == "" {
		return nil, errors.New("user name is required")
	}
	auth, err := snmpwire.AuthProtocol(u.AuthProtocol)
	if err != nil {
		return nil, err
	}
	priv, err := snmpwire.PrivProtocol(u.PrivProtocol)
	if err != nil {
		return nil, err
	}
	level := gosnmp.NoAuthNoPriv
	switch {
	case priv != gosnmp.NoPriv && auth == gosnmp.NoAuth:
		return nil, errors.New("privacy needs an authentication protocol")
	case priv != gosnmp.NoPriv:
		level = gosnmp.AuthPriv
	case auth != gosnmp.NoAuth:
		level = gosnmp.AuthNoPriv
	}
	if auth != gosnmp.NoAuth && len(u.AuthKey) < 8 {
		return nil, errors.New("authentication passphrase shorter than 8 characters (RFC 3414)")
	}
	if priv != gosnmp.NoPriv && len(u.PrivKey) < 8 {
		return nil, errors.New("privacy passphrase shorter than 8 characters (RFC 3414)")
	}
	sp := &gosnmp.UsmSecurityParameters{
		AuthoritativeEngineID:    d.engineID,
		UserName:                 u.Name,
		AuthenticationProtocol:   auth,
		AuthenticationPassphrase: u.AuthKey,
		PrivacyProtocol:          priv,
		PrivacyPassphrase:        u.PrivKey,
	}
	if err := sp.InitSecurityKeys(); err != nil {
		return nil, fmt.Errorf("localizing keys: %w", err)
	}
	dec := &gosnmp.GoSNMP{
		Version:            gosnmp.Version3,
		SecurityModel:      gosnmp.UserSecurityModel,
		MsgFlags:           level,
		SecurityParameters: sp,
	}
	return &v3user{name: u.Name, level: level, dec: dec, sp: sp}, nil
}

// Name returns the device's name.
func (d *Device) Name() string { return d.opt.Name }

// EngineID returns the device's snmpEngineID.
func (d *Device) EngineID() []byte { return []byte(d.engineID) }

// Stats returns the device's counters.
func (d *Device) Stats() Stats {
	return Stats{
		Requests: d.st.requests.Load(), Responses: d.st.responses.Load(),
		BadVersion: d.st.badVersion.Load(), BadCommunity: d.st.badCommunity.Load(),
		Malformed: d.st.malformed.Load(), UnknownEngine: d.st.unknownEngine.Load(),
		UnknownUser: d.st.unknownUser.Load(), BadSecLevel: d.st.badSecLevel.Load(),
		WrongDigest: d.st.wrongDigest.Load(), DecryptError: d.st.decryptError.Load(),
		Traps: d.st.traps.Load(), TrapErrors: d.st.trapErrors.Load(),
	}
}

// clock is the device's notion of time for one request.
type clock struct {
	reboots   int64
	sinceBoot time.Duration // since Start when reboots == 0
	elapsed   time.Duration // since Start
}

func (d *Device) clockAt(now time.Time) clock {
	el := now.Sub(d.start)
	if el < 0 {
		el = 0
	}
	if d.opt.RebootEvery > 0 {
		return clock{reboots: int64(el / d.opt.RebootEvery), sinceBoot: el % d.opt.RebootEvery, elapsed: el}
	}
	return clock{sinceBoot: el, elapsed: el}
}

// engineBoots and engineTime are the USM values (RFC 3414 2.2).
func (c clock) engineBoots() uint32 { return uint32(1 + c.reboots) }
func (c clock) engineTime() uint32  { return uint32(c.sinceBoot / time.Second) }

// value renders e's value at c as a gosnmp varbind.
func (d *Device) value(e *entry, c clock) gosnmp.SnmpPDU {
	r := &e.rec
	pdu := gosnmp.SnmpPDU{Name: e.name}
	switch e.class {
	case classCounter:
		inc := d.increase(e, c.elapsed)
		if c.reboots > 0 {
			return d.counterPDU(e, uint64(max(0, inc-d.increase(e, c.elapsed-c.sinceBoot))))
		}
		return d.counterPDU(e, r.Uint+uint64(inc))
	case classOperStatus:
		v := r.Int
		if d.forcedDown(e.ifc, c.elapsed) {
			v = 2 // down
		}
		pdu.Type, pdu.Value = gosnmp.Integer, int(v)
		return pdu
	case classSysUpTime:
		cs := uint64(c.sinceBoot / (10 * time.Millisecond))
		if c.reboots == 0 {
			cs += r.Uint
		}
		pdu.Type, pdu.Value = gosnmp.TimeTicks, uint32(cs)
		return pdu
	}
	switch r.Tag {
	case recording.TagInteger:
		pdu.Type, pdu.Value = gosnmp.Integer, int(r.Int)
	case recording.TagOctetString:
		pdu.Type, pdu.Value = gosnmp.OctetString, r.Bytes
	case recording.TagOpaque:
		pdu.Type, pdu.Value = gosnmp.Opaque, r.Bytes
	case recording.TagNull:
		pdu.Type = gosnmp.Null
	case recording.TagOID:
		pdu.Type, pdu.Value = gosnmp.ObjectIdentifier, "."+string(r.Bytes)
	case recording.TagIPAddress:
		pdu.Type, pdu.Value = gosnmp.IPAddress, r.Bytes
	case recording.TagGauge32:
		pdu.Type, pdu.Value = gosnmp.Gauge32, uint32(r.Uint)
	case recording.TagTimeTicks:
		pdu.Type, pdu.Value = gosnmp.TimeTicks, uint32(r.Uint)
	default:
		pdu.Type = gosnmp.Null
	}
	return pdu
}

// counterPDU renders counter value v of e in the recorded type: a
// Counter32 wraps at 2^32, a Counter64 too when Wrap32 is set.
func (d *Device) counterPDU(e *entry, v uint64) gosnmp.SnmpPDU {
	if e.rec.Tag == recording.TagCounter32 {
		return gosnmp.SnmpPDU{Name: e.name, Type: gosnmp.Counter32, Value: uint32(v)}
	}
	if d.opt.Wrap32 {
		v = uint64(uint32(v))
	}
	return gosnmp.SnmpPDU{Name: e.name, Type: gosnmp.Counter64, Value: v}
}

// Handle answers one SNMP message. It returns the response to send, or nil
// when the message is to be dropped (wrong community, undecodable, a PDU
// an agent does not answer); err then says why.
func (d *Device) Handle(msg []byte) ([]byte, error) {
	d.st.requests.Add(1)
	ver, err := snmpwire.PeekVersion(msg)
	if err != nil {
		d.st.malformed.Add(1)
		return nil, fmt.Errorf("malformed message: %w", err)
	}
	var out []byte
	switch ver {
	case int64(gosnmp.Version2c):
		out, err = d.handleV2c(msg)
	case int64(gosnmp.Version3):
		out, err = d.handleV3(msg)
	default:
		d.st.badVersion.Add(1)
		return nil, fmt.Errorf("unsupported SNMP version field %d", ver)
	}
	if out != nil {
		d.st.responses.Add(1)
	}
	return out, err
}

func (d *Device) handleV2c(msg []byte) ([]byte, error) {
	if d.opt.Community == "" {
		d.st.badVersion.Add(1)
		return nil, errors.New("v2c is disabled")
	}
	req, err := d.v2.SnmpDecodePacket(msg)
	if err != nil {
		d.st.malformed.Add(1)
		return nil, fmt.Errorf("malformed v2c message: %w", err)
	}
	if req.Community != d.opt.Community {
		d.st.badCommunity.Add(1)
		return nil, fmt.Errorf("wrong community %q", req.Community)
	}
	budget := d.opt.MaxMessageSize - 64 - len(req.Community)
	resp, err := d.process(req, d.clockAt(d.opt.Now()), budget)
	if resp == nil {
		return nil, err
	}
	resp.Version = gosnmp.Version2c
	resp.Community = req.Community
	b, err := resp.MarshalMsg()
	if err != nil {
		return nil, fmt.Errorf("marshal response: %w", err)
	}
	return b, nil
}

func (d *Device) handleV3(msg []byte) ([]byte, error) {
	if len(d.users) == 0 {
		d.st.badVersion.Add(1)
		return nil, errors.New("v3 is disabled")
	}
	h, err := snmpwire.PeekV3(msg)
	if err != nil {
		d.st.malformed.Add(1)
		return nil, fmt.Errorf("malformed v3 message: %w", err)
	}
	if h.SecModel != int64(gosnmp.UserSecurityModel) {
		d.st.malformed.Add(1)
		return nil, fmt.Errorf("security model %d is not USM", h.SecModel)
	}
	c := d.clockAt(d.opt.Now())
	level := gosnmp.SnmpV3MsgFlags(h.Flags) & gosnmp.AuthPriv
	if h.EngineID != d.engineID {
		// Engine discovery (RFC 3414 4) or a stale engine ID.
		n := d.st.unknownEngine.Add(1)
		return d.report(h, c, oidUnknownEngineIDs, n, "unknown engine ID (discovery)")
	}
	u := d.users[h.User]
	if u == nil {
		n := d.st.unknownUser.Add(1)
		return d.report(h, c, oidUnknownUserNames, n, fmt.Sprintf("unknown user %q", h.User))
	}
	if level != u.level {
		n := d.st.badSecLevel.Add(1)
		return d.report(h, c, oidUnsupportedSecLevels, n, fmt.Sprintf("user %q: security level %v, want %v", h.User, level, u.level))
	}
	req, err := u.dec.UnmarshalTrap(bytes.Clone(msg), true)
	if err != nil {
		switch {
		case strings.Contains(err.Error(), "authentic") || strings.Contains(err.Error(), "msgAuthenticationParameters"):
			n := d.st.wrongDigest.Add(1)
			return d.report(h, c, oidWrongDigests, n, "wrong digest: "+err.Error())
		case level == gosnmp.AuthPriv:
			n := d.st.decryptError.Add(1)
			return d.report(h, c, oidDecryptionErrors, n, "decryption: "+err.Error())
		}
		d.st.malformed.Add(1)
		return nil, fmt.Errorf("malformed v3 message: %w", err)
	}
	budget := d.opt.MaxMessageSize
	if h.MaxSize > 0 && int(h.MaxSize) < budget {
		budget = int(h.MaxSize)
	}
	budget -= 160 + 2*len(d.engineID) + len(h.User) + len(req.ContextName)
	resp, err := d.process(req, c, budget)
	if resp == nil {
		return nil, err
	}
	resp.Version = gosnmp.Version3
	resp.MsgID = uint32(h.MsgID)
	resp.MsgFlags = u.level
	resp.SecurityModel = gosnmp.UserSecurityModel
	resp.ContextEngineID = d.engineID
	resp.ContextName = req.ContextName
	resp.SecurityParameters = d.usmFor(u, c)
	b, err := resp.MarshalMsg()
	if err != nil {
		return nil, fmt.Errorf("marshal v3 response: %w", err)
	}
	return b, nil
}

// usmFor returns the security parameters of a response to u.
func (d *Device) usmFor(u *v3user, c clock) *gosnmp.UsmSecurityParameters {
	sp := &gosnmp.UsmSecurityParameters{
		AuthoritativeEngineID:    d.engineID,
		AuthoritativeEngineBoots: c.engineBoots(),
		AuthoritativeEngineTime:  c.engineTime(),
		UserName:                 u.name,
		AuthenticationProtocol:   u.sp.AuthenticationProtocol,
		PrivacyProtocol:          u.sp.PrivacyProtocol,
		SecretKey:                u.sp.SecretKey,
		PrivacyKey:               u.sp.PrivacyKey,
	}
	if u.level == gosnmp.AuthPriv {
		salt := make([]byte, 8)
		binary.BigEndian.PutUint64(salt, d.salt.Add(1))
		sp.PrivacyParameters = salt
	}
	return sp
}

// report answers a v3 message that failed USM processing with an
// unauthenticated Report PDU carrying the statistic (RFC 3414 3.2), when
// the message was reportable.
func (d *Device) report(h snmpwire.V3Header, c clock, oid string, count uint64, why string) ([]byte, error) {
	if h.Flags&byte(gosnmp.Reportable) == 0 {
		return nil, errors.New(why + " (not reportable, dropped)")
	}
	reqID := uint32(0)
	if h.RequestID >= 0 {
		reqID = uint32(h.RequestID)
	}
	pkt := &gosnmp.SnmpPacket{
		Version:       gosnmp.Version3,
		MsgFlags:      gosnmp.NoAuthNoPriv,
		SecurityModel: gosnmp.UserSecurityModel,
		MsgID:         uint32(h.MsgID),
		SecurityParameters: &gosnmp.UsmSecurityParameters{
			AuthoritativeEngineID:    d.engineID,
			AuthoritativeEngineBoots: c.engineBoots(),
			AuthoritativeEngineTime:  c.engineTime(),
			UserName:                 h.User,
		},
		ContextEngineID: d.engineID,
		PDUType:         gosnmp.Report,
		RequestID:       reqID,
		Variables:       []gosnmp.SnmpPDU{{Name: oid, Type: gosnmp.Counter32, Value: uint32(count)}},
	}
	b, err := pkt.MarshalMsg()
	if err != nil {
		return nil, fmt.Errorf("marshal report: %w", err)
	}
	return b, errors.New(why)
}
