package snmp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/netfeat/netfeat/schema"
)

// session sends one device's requests. Its methods are called by one
// goroutine at a time (the device's poll).
type session interface {
	// get sends a GET of oids, getBulk a GETBULK from oids (non-repeaters
	// 0, maxRep repetitions). The answer is decoded into r; its varbinds
	// stay valid until the next call with r.
	get(ctx context.Context, r *response, oids [][]uint32) error
	getBulk(ctx context.Context, r *response, oids [][]uint32, maxRep uint32) error
	// watch makes the end of ctx interrupt a request in progress; the
	// returned function undoes it and must be called before the session
	// is used with another context.
	watch(ctx context.Context) (unwatch func())
	close()
}

// maxGetOIDs bounds the OIDs of one GET (gosnmp refuses more).
const maxGetOIDs = gosnmp.MaxOids

// newSession connects (binds a UDP socket to) the target: the poller's own
// v2c client, or gosnmp for v3.
func newSession(ctx context.Context, t *target) (session, error) {
	if t.v3 == nil {
		return dialV2c(ctx, t)
	}
	return dialUSM(t)
}

// v2cSession is an SNMPv2c client on a connected UDP socket: ICMP errors
// (port unreachable) come back as read errors, and only the agent's
// datagrams are received.
type v2cSession struct {
	t     *target
	conn  *net.UDPConn
	reqID int32
	ids   []int32 // request-ids of the attempts of the request in flight
}

func dialV2c(ctx context.Context, t *target) (*v2cSession, error) {
	d := net.Dialer{Timeout: t.timeout}
	c, err := d.DialContext(ctx, "udp", t.address)
	if err != nil {
		return nil, &PollError{Reason: ReasonUnreachable, Err: fmt.Errorf("connect %s: %w", t.address, err)}
	}
	return &v2cSession{t: t, conn: c.(*net.UDPConn), reqID: rand.Int32N(1 << 30)}, nil
}

func (s *v2cSession) close() { s.conn.Close() }

func (s *v2cSession) get(ctx context.Context, r *response, oids [][]uint32) error {
	return s.exchange(ctx, r, pduGet, 0, oids)
}

func (s *v2cSession) getBulk(ctx context.Context, r *response, oids [][]uint32, maxRep uint32) error {
	return s.exchange(ctx, r, pduGetBulk, maxRep, oids)
}

// aLongTimeAgo is a read deadline that has passed: it wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

func (s *v2cSession) watch(ctx context.Context) func() {
	var wg sync.WaitGroup
	wg.Add(1)
	stop := context.AfterFunc(ctx, func() {
		defer wg.Done()
		s.conn.SetReadDeadline(aLongTimeAgo)
	})
	return func() {
		if stop() {
			wg.Done()
		}
		wg.Wait()
	}
}

// rxSize holds the largest UDP datagram.
const rxSize = 1 << 16

// exchange sends one request and waits for its answer, as gosnmp does:
// each attempt gets a new request-id and waits up to the timeout (or the
// context's deadline, whichever is first); an answer to any attempt of
// this request is accepted, others (late answers to earlier requests) are
// skipped; a malformed answer or a network error fails the attempt; after
// retries+1 attempts the last failure is returned.
func (s *v2cSession) exchange(ctx context.Context, r *response, pdu byte, maxRep uint32, oids [][]uint32) error {
	if cap(r.rx) < rxSize {
		r.rx = make([]byte, rxSize)
	}
	rx := r.rx[:rxSize]
	s.ids = s.ids[:0]
	var last error
	for attempt := 0; attempt <= s.t.retries; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		deadline := time.Now().Add(s.t.timeout)
		ctxDeadline := false
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline, ctxDeadline = d, true
		}
		if err := s.conn.SetReadDeadline(deadline); err != nil {
			return err
		}
		if ctx.Err() != nil { // ended before the deadline was set: watch's wake-up may be lost
			return ctx.Err()
		}
		s.reqID = (s.reqID + 1) & 0x7fffffff
		if s.reqID == 0 {
			s.reqID = 1
		}
		s.ids = append(s.ids, s.reqID)
		r.tx = appendRequest(r.tx[:0], s.t.community, pdu, s.reqID, maxRep, oids)
		if _, err := s.conn.Write(r.tx); err != nil {
			last = err
			continue
		}
		for {
			n, err := s.conn.Read(rx)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					if ctxDeadline {
						return context.DeadlineExceeded
					}
					last = errTimeout
				} else {
					last = err
				}
				break
			}
			id, err := peekRequestID(rx[:n])
			if err != nil {
				last = err
				break
			}
			if !s.mine(id) {
				continue // a late answer to an earlier request
			}
			r.msg = rx[:n]
			if err := r.decode(rx[:n]); err != nil {
				last = err
				break
			}
			return nil
		}
	}
	if last == errTimeout {
		// An agent drops a request with a wrong community (or one its ACL
		// refuses) without a word: silence is the only symptom.
		return fmt.Errorf("%w from %s in %d attempt(s) of %v: check the community/credentials and the device's ACL", errNoAnswer, s.t.address, s.t.retries+1, s.t.timeout)
	}
	return last
}

var (
	errTimeout = errors.New("timeout")
	// errNoAnswer is a request that every attempt waited for in vain.
	errNoAnswer = errors.New("no answer")
)

// mine reports whether id is one of the current request's (0 too: some
// agents answer with request-id 0, and gosnmp accepts it).
func (s *v2cSession) mine(id int32) bool {
	if id == 0 {
		return true
	}
	for _, x := range s.ids {
		if x == id {
			return true
		}
	}
	return false
}

// usmSession polls an SNMPv3 agent through gosnmp (USM engine discovery,
// authentication and privacy) and converts its answers to varbinds.
type usmSession struct {
	g     *gosnmp.GoSNMP
	names []string
}

func dialUSM(t *target) (*usmSession, error) {
	u := t.v3
	g := &gosnmp.GoSNMP{
		Target:         t.host,
		Port:           t.port,
		Transport:      "udp",
		Version:        gosnmp.Version3,
		Timeout:        t.timeout,
		Retries:        t.retries,
		MaxOids:        gosnmp.MaxOids,
		MaxRepetitions: t.maxRep,
		Context:        context.Background(),
		SecurityModel:  gosnmp.UserSecurityModel,
		MsgFlags:       u.level,
		ContextName:    u.context,
		SecurityParameters: &gosnmp.UsmSecurityParameters{
			UserName:                 u.user,
			AuthenticationProtocol:   u.auth,
			AuthenticationPassphrase: u.authPass,
			PrivacyProtocol:          u.priv,
			PrivacyPassphrase:        u.privPass,
		},
	}
	if err := g.Connect(); err != nil {
		return nil, &PollError{Reason: ReasonUnreachable, Err: fmt.Errorf("connect %s: %w", t.address, err)}
	}
	return &usmSession{g: g}, nil
}

func (s *usmSession) close() {
	if s.g.Conn != nil {
		s.g.Conn.Close()
	}
}

// watch does nothing: gosnmp bounds each read by the request's deadline
// and checks the context before every attempt.
func (s *usmSession) watch(context.Context) func() { return func() {} }

func (s *usmSession) dotted(oids [][]uint32) []string {
	s.names = s.names[:0]
	var b []byte
	for _, o := range oids {
		b = appendDotted(append(b[:0], '.'), o)
		s.names = append(s.names, string(b))
	}
	return s.names
}

func (s *usmSession) get(ctx context.Context, r *response, oids [][]uint32) error {
	s.g.Context = ctx
	p, err := s.g.Get(s.dotted(oids))
	if err != nil {
		return err
	}
	return r.fromPacket(p)
}

func (s *usmSession) getBulk(ctx context.Context, r *response, oids [][]uint32, maxRep uint32) error {
	s.g.Context = ctx
	p, err := s.g.GetBulk(s.dotted(oids), 0, maxRep)
	if err != nil {
		return err
	}
	return r.fromPacket(p)
}

// fromPacket converts a gosnmp answer: names to arcs, values with
// toObservation (which also sets Path and Str).
func (r *response) fromPacket(p *gosnmp.SnmpPacket) error {
	r.reqID, r.errStatus, r.errIndex = int32(p.RequestID), int(p.Error), int(p.ErrorIndex)
	r.vbs, r.arcs = r.vbs[:0], r.arcs[:0]
	for i := range p.Variables {
		pv := &p.Variables[i]
		start := len(r.arcs)
		var err error
		if r.arcs, err = appendOIDArcs(r.arcs, pv.Name); err != nil {
			return badResponse("varbind %d: %v", i, err)
		}
		o, ok := toObservation("", schema.ProtocolSNMP, pv, 0)
		r.vbs = append(r.vbs, varbind{tag: byte(pv.Type), obs: o, hold: ok,
			nameOff: int32(start), nameEnd: int32(len(r.arcs))})
	}
	for i := range r.vbs {
		v := &r.vbs[i]
		v.name = r.arcs[v.nameOff:v.nameEnd:v.nameEnd]
	}
	return nil
}

// errorStatusName names an error-status as gosnmp does (tooBig → "TooBig").
func errorStatusName(s int) string {
	if s >= 0 && s <= 255 {
		return gosnmp.SNMPError(s).String()
	}
	return fmt.Sprint(s)
}
