package snmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/netfeat/netfeat/schema"
)

// Reasons a poll fails, the `result` label of netfeat_snmp_polls_total.
const (
	ReasonTimeout     = "timeout"         // no answer within timeout × (retries+1): unreachable or wrong community
	ReasonUnreachable = "unreachable"     // the network refused (ICMP unreachable, no route)
	ReasonAuth        = "auth_failure"    // USM refused: unknown user, wrong digest, security level, decryption
	ReasonBadResponse = "bad_response"    // an answer we cannot use: error status, wrong value types, OIDs going backwards
	ReasonTableSize   = "table_too_large" // a column exceeded max_table_rows (or never ends)
	ReasonOverrun     = "overrun"         // the poll did not finish before the next was due
	ReasonSink        = "sink_error"      // the normalizer refused the batch
)

// PollError is a failed poll: Reason is one of the Reason constants.
type PollError struct {
	Reason string
	Err    error
}

func (e *PollError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *PollError) Unwrap() error { return e.Err }

func badResponse(format string, args ...any) error {
	return &PollError{Reason: ReasonBadResponse, Err: fmt.Errorf(format, args...)}
}

// OIDs every poll reads to identify the device.
const (
	oidSysDescr    = "1.3.6.1.2.1.1.1.0"
	oidSysObjectID = "1.3.6.1.2.1.1.2.0"
	oidSysUpTime   = "1.3.6.1.2.1.1.3.0"
)

// maxColumnsPerRequest bounds the columns one GETBULK advances.
const maxColumnsPerRequest = 16

// plan is what the profile needs from an identified device.
type plan struct {
	sysObjectID string
	sysDescr    string
	profile     string
	scalars     []string // with leading dot, as gosnmp wants
	columns     []string // without leading dot
}

// device is one polled target: its SNMP session, plan and health.
type device struct {
	t target
	p *Poller

	// Owned by the device's goroutine (or PollOnce).
	g        *gosnmp.GoSNMP
	plan     *plan
	failures int
	batch    []schema.Observation

	mu      sync.Mutex
	state   schema.DeviceState
	skipped int64
}

func newDevice(t target, p *Poller) *device {
	d := &device{t: t, p: p}
	d.state = schema.DeviceState{Device: t.name, Address: t.address, Protocol: "snmp", State: StateUnknown}
	p.m.setState(t.name, StateUnknown)
	return d
}

func (d *device) stateSnapshot() schema.DeviceState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}

func (d *device) setBackoff(delay time.Duration) {
	d.p.m.backoff.WithLabelValues(d.t.name).Set(delay.Seconds())
}

func (d *device) close() {
	if d.g != nil && d.g.Conn != nil {
		d.g.Conn.Close()
	}
	d.g = nil
}

// session returns the device's SNMP session, connecting (binding a UDP
// socket) when there is none.
func (d *device) session(ctx context.Context) (*gosnmp.GoSNMP, error) {
	if d.g != nil {
		d.g.Context = ctx
		return d.g, nil
	}
	g := &gosnmp.GoSNMP{
		Target:         d.t.host,
		Port:           d.t.port,
		Transport:      "udp",
		Version:        d.t.version,
		Community:      d.t.community,
		Timeout:        d.t.timeout,
		Retries:        d.t.retries,
		MaxOids:        gosnmp.MaxOids,
		MaxRepetitions: d.t.maxRep,
		Context:        ctx,
	}
	if u := d.t.v3; u != nil {
		g.SecurityModel = gosnmp.UserSecurityModel
		g.MsgFlags = u.level
		g.ContextName = u.context
		g.SecurityParameters = &gosnmp.UsmSecurityParameters{
			UserName:                 u.user,
			AuthenticationProtocol:   u.auth,
			AuthenticationPassphrase: u.authPass,
			PrivacyProtocol:          u.priv,
			PrivacyPassphrase:        u.privPass,
		}
	}
	if err := g.Connect(); err != nil {
		return nil, &PollError{Reason: ReasonUnreachable, Err: fmt.Errorf("connect %s: %w", d.t.address, err)}
	}
	d.g = g
	return g, nil
}

// pollAndRecord runs one poll, hands the batch to the sink and records
// the outcome in the device's state and the metrics.
func (d *device) pollAndRecord(ctx context.Context, slot time.Time) error {
	start := time.Now()
	err := d.poll(ctx)
	if err == nil && len(d.batch) > 0 {
		if serr := d.p.sink.Observe(ctx, d.batch); serr != nil {
			err = &PollError{Reason: ReasonSink, Err: fmt.Errorf("sink refused %d observations: %w", len(d.batch), serr)}
		}
	}
	end := time.Now()
	if err != nil {
		err = d.classify(ctx, err)
		d.recordFailure(slot, end, err)
		// A fresh session next time: redo v3 engine discovery, drop stale replies.
		d.close()
		return err
	}
	dur := end.Sub(start)
	n := len(d.batch)
	d.mu.Lock()
	d.state.State = StateUp
	d.state.LastSuccess = end.UnixNano()
	d.state.LastDurationMS = float64(dur.Microseconds()) / 1000
	d.state.Observations += int64(n)
	if d.plan != nil {
		d.state.Profile = d.plan.profile
	}
	d.mu.Unlock()
	m := d.p.m
	m.polls.WithLabelValues(d.t.name, "ok").Inc()
	m.observations.WithLabelValues(d.t.name).Add(float64(n))
	m.lastDuration.WithLabelValues(d.t.name).Set(dur.Seconds())
	m.duration.Observe(dur.Seconds())
	m.lastSuccess.WithLabelValues(d.t.name).Set(float64(end.UnixNano()) / 1e9)
	m.setState(d.t.name, StateUp)
	return nil
}

// classify turns any poll error into a *PollError with a reason.
func (d *device) classify(ctx context.Context, err error) error {
	var pe *PollError
	if errors.As(err, &pe) {
		return err
	}
	reason := ReasonBadResponse
	msg := err.Error()
	switch {
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		reason = ReasonOverrun
	case errors.Is(err, gosnmp.ErrUnknownUsername), errors.Is(err, gosnmp.ErrWrongDigest),
		errors.Is(err, gosnmp.ErrUnknownSecurityLevel), errors.Is(err, gosnmp.ErrDecryption),
		errors.Is(err, gosnmp.ErrUnknownEngineID), strings.Contains(msg, "not authentic"):
		reason = ReasonAuth
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		reason = ReasonUnreachable
	case errors.Is(err, gosnmp.ErrMaxRetriesExceeded) || strings.Contains(msg, "timeout"):
		reason = ReasonTimeout
	default:
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			reason = ReasonTimeout
		}
	}
	return &PollError{Reason: reason, Err: err}
}

func (d *device) recordFailure(slot, now time.Time, err error) {
	var pe *PollError
	reason := ReasonBadResponse
	if errors.As(err, &pe) {
		reason = pe.Reason
	}
	state := StateError
	switch reason {
	case ReasonTimeout, ReasonUnreachable:
		state = StateDown
	case ReasonAuth:
		state = StateAuthFailure
	}
	d.mu.Lock()
	d.state.State = state
	d.state.LastError = err.Error()
	d.state.LastErrorTS = now.UnixNano()
	d.state.LastDurationMS = float64(now.Sub(slot).Microseconds()) / 1000
	d.state.Errors++
	d.mu.Unlock()
	d.p.m.polls.WithLabelValues(d.t.name, reason).Inc()
	d.p.m.setState(d.t.name, state)
	d.p.log.Warn("snmp poll failed", "device", d.t.name, "address", d.t.address, "reason", reason, "err", err)
}

// poll fetches one batch into d.batch: identity, the profile's scalars
// and its table columns.
func (d *device) poll(ctx context.Context) error {
	d.batch = d.batch[:0]
	g, err := d.session(ctx)
	if err != nil {
		return err
	}
	ident := []string{"." + oidSysDescr, "." + oidSysObjectID, "." + oidSysUpTime}
	var scalars []string
	if d.plan != nil {
		scalars = d.plan.scalars
	}
	vars, err := d.get(g, append(ident, scalars...))
	if err != nil {
		return fmt.Errorf("identify: %w", err)
	}
	recv := time.Now().UnixNano()
	descr, oid, err := identity(vars[:3])
	if err != nil {
		return err
	}
	if d.plan == nil || d.plan.sysObjectID != oid || d.plan.sysDescr != descr {
		changed := d.plan != nil
		d.plan = d.newPlan(oid, descr)
		d.p.log.Info("snmp device identified", "device", d.t.name, "sysObjectID", oid, "profile", d.plan.profile,
			"scalars", len(d.plan.scalars), "columns", len(d.plan.columns), "changed", changed)
		vars = vars[:3]
		if len(d.plan.scalars) > 0 {
			more, err := d.get(g, d.plan.scalars)
			if err != nil {
				return fmt.Errorf("scalars: %w", err)
			}
			vars = append(vars, more...)
		}
	}
	for i := range vars {
		if o, ok := toObservation(d.t.name, schema.ProtocolSNMP, &vars[i], recv); ok {
			d.batch = append(d.batch, o)
		}
	}
	return d.walk(g, d.plan.columns)
}

func (d *device) newPlan(oid, descr string) *plan {
	profile, scalars, columns := d.p.planner.SNMPPlan(oid, descr)
	pl := &plan{sysObjectID: oid, sysDescr: descr, profile: profile}
	seen := map[string]bool{oidSysDescr: true, oidSysObjectID: true, oidSysUpTime: true}
	for _, s := range scalars {
		s = strings.TrimPrefix(s, ".")
		if s != "" && !seen[s] {
			seen[s] = true
			pl.scalars = append(pl.scalars, "."+s)
		}
	}
	for _, c := range columns {
		c = strings.TrimPrefix(c, ".")
		if c != "" && !seen["col:"+c] {
			seen["col:"+c] = true
			pl.columns = append(pl.columns, c)
		}
	}
	return pl
}

// identity checks the types of sysDescr.0, sysObjectID.0, sysUpTime.0.
func identity(v []gosnmp.SnmpPDU) (descr, oid string, err error) {
	if v[0].Type != gosnmp.OctetString {
		return "", "", badResponse("sysDescr.0 is %v, want OCTET STRING", v[0].Type)
	}
	if v[1].Type != gosnmp.ObjectIdentifier {
		return "", "", badResponse("sysObjectID.0 is %v, want OBJECT IDENTIFIER", v[1].Type)
	}
	if v[2].Type != gosnmp.TimeTicks {
		return "", "", badResponse("sysUpTime.0 is %v, want TimeTicks", v[2].Type)
	}
	b, _ := v[0].Value.([]byte)
	s, _ := v[1].Value.(string)
	return string(b), strings.TrimPrefix(s, "."), nil
}

// get GETs oids in requests of at most MaxOids varbinds, splitting a
// request the agent finds tooBig, and checks that the agent answered
// each OID asked.
func (d *device) get(g *gosnmp.GoSNMP, oids []string) ([]gosnmp.SnmpPDU, error) {
	out := make([]gosnmp.SnmpPDU, 0, len(oids))
	for len(oids) > 0 {
		n := min(len(oids), gosnmp.MaxOids)
		chunk := oids[:n]
		res, err := g.Get(chunk)
		if err != nil {
			return nil, err
		}
		if res.Error == gosnmp.TooBig && n > 1 {
			half, err := d.get(g, chunk[:n/2])
			if err != nil {
				return nil, err
			}
			rest, err := d.get(g, chunk[n/2:])
			if err != nil {
				return nil, err
			}
			out = append(append(out, half...), rest...)
			oids = oids[n:]
			continue
		}
		if res.Error != gosnmp.NoError {
			return nil, badResponse("GET error-status %v at index %d", res.Error, res.ErrorIndex)
		}
		if len(res.Variables) != n {
			return nil, badResponse("GET of %d OIDs answered with %d varbinds", n, len(res.Variables))
		}
		for i, v := range res.Variables {
			if v.Name != chunk[i] {
				return nil, badResponse("GET %s answered for %s", chunk[i], v.Name)
			}
		}
		out = append(out, res.Variables...)
		oids = oids[n:]
	}
	return out, nil
}

// column is the walk state of one table column.
type column struct {
	root   string // "1.3.6.1.2.1.31.1.1.1.6."
	last   string // with leading dot
	lastID []uint32
	rows   int
}

// walk fetches every column with GETBULK, advancing up to
// maxColumnsPerRequest columns per request, and appends the rows.
func (d *device) walk(g *gosnmp.GoSNMP, columns []string) error {
	maxRows := d.p.cfg.MaxTableRows
	active := make([]*column, 0, len(columns))
	for _, c := range columns {
		active = append(active, &column{root: "." + c + ".", last: "." + c})
	}
	recvOIDs := make([]string, 0, maxColumnsPerRequest)
	for len(active) > 0 {
		batch := active[:min(len(active), maxColumnsPerRequest)]
		recvOIDs = recvOIDs[:0]
		for _, c := range batch {
			recvOIDs = append(recvOIDs, c.last)
		}
		res, err := g.GetBulk(recvOIDs, 0, d.t.maxRep)
		if err != nil {
			return fmt.Errorf("walk: %w", err)
		}
		if res.Error != gosnmp.NoError {
			return badResponse("GETBULK error-status %v at index %d", res.Error, res.ErrorIndex)
		}
		if len(res.Variables) == 0 {
			return badResponse("GETBULK of %d columns answered with no varbinds", len(batch))
		}
		recv := time.Now().UnixNano()
		done := make([]bool, len(batch))
		for i := range res.Variables {
			v := &res.Variables[i]
			j := i % len(batch)
			c := batch[j]
			if done[j] {
				continue
			}
			if v.Type == gosnmp.EndOfMibView || v.Type == gosnmp.NoSuchObject || v.Type == gosnmp.NoSuchInstance ||
				!strings.HasPrefix(v.Name, c.root) {
				done[j] = true
				continue
			}
			id, err := parseOID(v.Name)
			if err != nil {
				return badResponse("column %s: %v", c.root[1:len(c.root)-1], err)
			}
			if c.lastID != nil && compareOID(id, c.lastID) <= 0 {
				return badResponse("column %s: OID %s does not increase after %s (agent loops)", c.root[1:len(c.root)-1], v.Name, c.last)
			}
			c.last, c.lastID = v.Name, id
			c.rows++
			if c.rows > maxRows {
				return &PollError{Reason: ReasonTableSize,
					Err: fmt.Errorf("column %s has more than max_table_rows=%d rows", c.root[1:len(c.root)-1], maxRows)}
			}
			if o, ok := toObservation(d.t.name, schema.ProtocolSNMP, v, recv); ok {
				d.batch = append(d.batch, o)
			}
		}
		// Columns that did not advance in a full response are finished too.
		next := active[:0]
		for j, c := range active {
			if j < len(batch) && done[j] {
				continue
			}
			next = append(next, c)
		}
		active = next
	}
	return nil
}

// parseOID parses a dotted OID (leading dot optional).
func parseOID(s string) ([]uint32, error) {
	s = strings.TrimPrefix(s, ".")
	out := make([]uint32, 0, 16)
	var v uint64
	digits := false
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if !digits {
				return nil, fmt.Errorf("bad OID %q", s)
			}
			out = append(out, uint32(v))
			v, digits = 0, false
			continue
		}
		c := s[i]
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("bad OID %q", s)
		}
		v = v*10 + uint64(c-'0')
		if v > 0xffffffff {
			return nil, fmt.Errorf("OID %q: sub-identifier out of range", s)
		}
		digits = true
	}
	return out, nil
}

func compareOID(a, b []uint32) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}
