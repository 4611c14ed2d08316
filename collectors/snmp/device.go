package snmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/gosnmp/gosnmp"

	"github.com/netfeat/netfeat/schema"
)

// Reasons a poll fails, the `result` label of netfeat_snmp_polls_total.
const (
	ReasonTimeout     = "timeout"          // no answer within timeout × (retries+1): unreachable or wrong community
	ReasonUnreachable = "unreachable"      // the network refused (ICMP unreachable, no route)
	ReasonAuth        = "auth_failure"     // USM refused: unknown user, wrong digest, security level, decryption
	ReasonBadResponse = "bad_response"     // an answer we cannot use: error status, wrong value types, OIDs going backwards
	ReasonTableSize   = "table_too_large"  // a column exceeded max_table_rows (or never ends)
	ReasonPollSize    = "values_too_large" // the poll's values exceeded max_poll_bytes
	ReasonOverrun     = "overrun"          // the poll did not finish before the next was due
	ReasonSink        = "sink_error"       // the normalizer refused the batch
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

// identArcs are the OIDs of the identity GET.
var identArcs = [][]uint32{mustOID(oidSysDescr), mustOID(oidSysObjectID), mustOID(oidSysUpTime)}

func mustOID(s string) []uint32 {
	a, err := parseOID(s)
	if err != nil {
		panic(err)
	}
	return a
}

// plan is what the profile needs from an identified device.
type plan struct {
	sysObjectID string
	sysDescr    string
	profile     string
	scalars     [][]uint32
	columns     []planColumn
}

// planColumn is one table column to walk.
type planColumn struct {
	root []uint32
	text []byte // dotted, no leading dot: the start of every row's Path
}

// device is one polled target: its SNMP session, plan and health.
type device struct {
	t target
	p *Poller

	// Owned by the device's goroutine (or PollOnce).
	sess     session
	plan     *plan
	failures int
	// rows is each plan column's row count in the last poll that walked
	// it (-1: not known); it sizes the GETBULKs of the next poll.
	rows []int

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
	if d.sess != nil {
		d.sess.close()
	}
	d.sess = nil
}

// session returns the device's SNMP session, connecting (binding a UDP
// socket) when there is none.
func (d *device) session(ctx context.Context) (session, error) {
	if d.sess == nil {
		s, err := newSession(ctx, &d.t)
		if err != nil {
			return nil, err
		}
		d.sess = s
	}
	return d.sess, nil
}

// pollBuf is the memory one poll works in: the batch for the sink, the
// text of its strings, the request and the decoded response. There is one
// per poll in flight (at most max_concurrency), reused, so the poller's
// memory grows with the polls in flight, not with the number of devices.
type pollBuf struct {
	resp  response
	batch []schema.Observation
	// text holds the bytes of every Path and Str of batch that the poll
	// formatted; finish makes it one string and points the observations
	// into it (fix), so a poll makes one string, not one per value.
	text []byte
	fix  []fixup
	oids [][]uint32
	cols []column
	act  []*column
	done []bool

	// dropped counts the values of this poll over max_value_size;
	// droppedOID and droppedLen describe the first.
	dropped    int
	droppedOID string
	droppedLen int
}

// retained approximates the bytes b keeps between polls.
func (b *pollBuf) retained() int {
	const obsSize = int(unsafe.Sizeof(schema.Observation{}))
	n := cap(b.batch)*obsSize + cap(b.text) + cap(b.fix)*int(unsafe.Sizeof(fixup{})) + cap(b.done)
	n += cap(b.resp.rx) + cap(b.resp.tx) + cap(b.resp.text) + 4*cap(b.resp.arcs) +
		cap(b.resp.vbs)*int(unsafe.Sizeof(varbind{}))
	for i := range b.cols[:cap(b.cols)] {
		n += 4 * cap(b.cols[i].last)
	}
	return n
}

// admit checks one value before it joins the batch: a string over
// max_value_size is dropped (counted, and named once per poll by the
// caller); a value that would take the poll past max_poll_bytes fails it.
func (d *device) admit(b *pollBuf, v *varbind) (bool, error) {
	n := len(v.text) + len(v.obs.Str)
	if n > d.p.cfg.MaxValueSize {
		d.p.m.valuesDrop.WithLabelValues(d.t.name).Inc()
		if b.dropped == 0 {
			b.droppedOID, b.droppedLen = string(appendDotted(nil, v.name)), n
		}
		b.dropped++
		return false, nil
	}
	if len(b.text)+n+len(v.name)*11 > d.p.cfg.MaxPollBytes {
		return false, &PollError{Reason: ReasonPollSize, Err: fmt.Errorf("OID %s: the poll's values exceed max_poll_bytes=%d",
			appendDotted(nil, v.name), d.p.cfg.MaxPollBytes)}
	}
	return true, nil
}

// fixup places one observation's Path and Str in pollBuf.text; str < 0
// means Str needs no fixing.
type fixup struct {
	i, path, pathEnd, str, strEnd int32
}

func (b *pollBuf) reset() {
	clear(b.batch) // drop the strings of the last poll
	b.batch, b.text, b.fix = b.batch[:0], b.text[:0], b.fix[:0]
	b.dropped, b.droppedOID, b.droppedLen = 0, "", 0
}

// add appends v as an observation of dev. Its Path is prefix followed by
// the arcs rest ("1.3.6.1.2.1.31.1.1.1.6" + ".3"), or rest alone.
func (b *pollBuf) add(dev string, v *varbind, recv int64, prefix []byte, rest []uint32) {
	o := v.obs
	o.Device, o.Protocol, o.RecvTime = dev, schema.ProtocolSNMP, recv
	f := fixup{i: int32(len(b.batch)), str: -1}
	if o.Path == "" {
		f.path = int32(len(b.text))
		if prefix != nil {
			b.text = append(b.text, prefix...)
			for _, a := range rest {
				b.text = strconv.AppendUint(append(b.text, '.'), uint64(a), 10)
			}
		} else {
			b.text = appendDotted(b.text, rest)
		}
		f.pathEnd = int32(len(b.text))
	} else {
		f.path, f.pathEnd = -1, -1
	}
	if v.text != nil {
		f.str = int32(len(b.text))
		b.text = append(b.text, v.text...)
		f.strEnd = int32(len(b.text))
	}
	b.batch = append(b.batch, o)
	if f.path >= 0 || f.str >= 0 {
		b.fix = append(b.fix, f)
	}
}

// finish makes the batch's formatted strings.
func (b *pollBuf) finish() {
	if len(b.fix) == 0 {
		return
	}
	s := string(b.text)
	for _, f := range b.fix {
		o := &b.batch[f.i]
		if f.path >= 0 {
			o.Path = s[f.path:f.pathEnd]
		}
		if f.str >= 0 {
			o.Str = s[f.str:f.strEnd]
		}
	}
}

// pollAndRecord runs one poll in b, hands the batch to the sink and
// records the outcome in the device's state and the metrics.
func (d *device) pollAndRecord(ctx context.Context, slot time.Time, b *pollBuf) error {
	start := time.Now()
	b.reset()
	err := d.poll(ctx, b)
	if b.dropped > 0 {
		d.p.log.Warn("snmp values over max_value_size dropped", "device", d.t.name, "oid", b.droppedOID,
			"bytes", b.droppedLen, "max_value_size", d.p.cfg.MaxValueSize, "dropped", b.dropped)
	}
	if err == nil && len(b.batch) > 0 {
		b.finish()
		if serr := d.p.sink.Observe(ctx, b.batch); serr != nil {
			err = &PollError{Reason: ReasonSink, Err: fmt.Errorf("sink refused %d observations: %w", len(b.batch), serr)}
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
	n := len(b.batch)
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
	case errors.Is(err, errMalformed):
		reason = ReasonBadResponse
	case errors.Is(err, errNoAnswer), errors.Is(err, gosnmp.ErrMaxRetriesExceeded) || strings.Contains(msg, "timeout"):
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

// poll fetches one batch into b: identity, the profile's scalars and its
// table columns.
func (d *device) poll(ctx context.Context, b *pollBuf) error {
	s, err := d.session(ctx)
	if err != nil {
		return err
	}
	defer s.watch(ctx)()
	oids := append(b.oids[:0], identArcs...)
	if d.plan != nil {
		oids = append(oids, d.plan.scalars...)
	}
	var descr, oid string
	var idErr error
	n := 0
	err = d.get(ctx, s, b, oids, func(v *varbind) error {
		if n < len(identArcs) {
			if idErr = checkIdentity(n, v); idErr != nil {
				return idErr
			}
			switch n {
			case 0:
				descr = v.str()
			case 1:
				oid = strings.TrimPrefix(v.str(), ".")
			}
		}
		n++
		return nil
	})
	if idErr != nil {
		return idErr
	}
	if err != nil {
		return fmt.Errorf("identify: %w", err)
	}
	if d.plan == nil || d.plan.sysObjectID != oid || d.plan.sysDescr != descr {
		changed := d.plan != nil
		d.plan = d.newPlan(oid, descr)
		d.p.log.Info("snmp device identified", "device", d.t.name, "sysObjectID", oid, "profile", d.plan.profile,
			"scalars", len(d.plan.scalars), "columns", len(d.plan.columns), "changed", changed)
		// Keep the identity, drop the old plan's scalars.
		b.truncate(len(identArcs))
		if len(d.plan.scalars) > 0 {
			if err := d.get(ctx, s, b, d.plan.scalars, nil); err != nil {
				return fmt.Errorf("scalars: %w", err)
			}
		}
	}
	return d.walk(ctx, s, b)
}

// truncate keeps the first n observations of the batch.
func (b *pollBuf) truncate(n int) {
	clear(b.batch[n:])
	b.batch = b.batch[:n]
	for len(b.fix) > 0 && int(b.fix[len(b.fix)-1].i) >= n {
		b.fix = b.fix[:len(b.fix)-1]
	}
}

func (d *device) newPlan(oid, descr string) *plan {
	profile, scalars, columns := d.p.planner.SNMPPlan(d.t.name, oid, descr)
	pl := &plan{sysObjectID: oid, sysDescr: descr, profile: profile}
	seen := map[string]bool{oidSysDescr: true, oidSysObjectID: true, oidSysUpTime: true}
	for _, s := range scalars {
		s = strings.TrimPrefix(s, ".")
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		a, err := parseOID(s)
		if err != nil || len(a) < 2 {
			d.p.log.Warn("snmp plan: bad scalar OID skipped", "device", d.t.name, "profile", profile, "oid", s)
			continue
		}
		pl.scalars = append(pl.scalars, a)
	}
	for _, c := range columns {
		c = strings.TrimPrefix(c, ".")
		if c == "" || seen["col:"+c] {
			continue
		}
		seen["col:"+c] = true
		a, err := parseOID(c)
		if err != nil || len(a) < 2 {
			d.p.log.Warn("snmp plan: bad column OID skipped", "device", d.t.name, "profile", profile, "oid", c)
			continue
		}
		pl.columns = append(pl.columns, planColumn{root: a, text: appendDotted(nil, a)})
	}
	d.rows = make([]int, len(pl.columns))
	for i := range d.rows {
		d.rows[i] = -1
	}
	return pl
}

// checkIdentity checks the type of identity varbind i: sysDescr.0 is an
// OCTET STRING, sysObjectID.0 an OBJECT IDENTIFIER, sysUpTime.0 TimeTicks.
func checkIdentity(i int, v *varbind) error {
	want := [...]struct {
		tag  byte
		name string
	}{{tagOctetString, "sysDescr.0 is %v, want OCTET STRING"},
		{tagOID, "sysObjectID.0 is %v, want OBJECT IDENTIFIER"},
		{tagTimeTicks, "sysUpTime.0 is %v, want TimeTicks"}}[i]
	if v.tag != want.tag {
		return badResponse(want.name, gosnmp.Asn1BER(v.tag))
	}
	return nil
}

// get GETs oids in requests of at most maxGetOIDs varbinds, splitting a
// request the agent finds tooBig, checks that the agent answered each OID
// asked, adds every value to the batch and calls each (if not nil) for
// every varbind in order.
func (d *device) get(ctx context.Context, s session, b *pollBuf, oids [][]uint32, each func(*varbind) error) error {
	for len(oids) > 0 {
		n := min(len(oids), maxGetOIDs)
		chunk := oids[:n]
		r := &b.resp
		if err := s.get(ctx, r, chunk); err != nil {
			return err
		}
		recv := time.Now().UnixNano()
		if r.errStatus == errTooBig && n > 1 {
			if err := d.get(ctx, s, b, chunk[:n/2], each); err != nil {
				return err
			}
			if err := d.get(ctx, s, b, chunk[n/2:], each); err != nil {
				return err
			}
			oids = oids[n:]
			continue
		}
		if r.errStatus != errNoError {
			return badResponse("GET error-status %v at index %d", errorStatusName(r.errStatus), r.errIndex)
		}
		if len(r.vbs) != n {
			return badResponse("GET of %d OIDs answered with %d varbinds", n, len(r.vbs))
		}
		for i := range r.vbs {
			v := &r.vbs[i]
			if !equalOID(v.name, chunk[i]) {
				return badResponse("GET %s answered for %s", appendDotted(nil, chunk[i]), appendDotted(nil, v.name))
			}
			if each != nil {
				if err := each(v); err != nil {
					return err
				}
			}
			if v.hold {
				if ok, err := d.admit(b, v); err != nil {
					return err
				} else if ok {
					b.add(d.t.name, v, recv, nil, v.name)
				}
			}
		}
		oids = oids[n:]
	}
	return nil
}

// column is the walk state of one table column.
type column struct {
	*planColumn
	i    int      // index in the plan
	last []uint32 // the last OID walked (the root before the first row)
	rows int
	prev int // rows in the previous poll, -1 if not known
}

// walk fetches every column with GETBULK and appends the rows. The plan's
// columns are walked in groups of up to maxColumnsPerRequest, each group
// to its end before the next: every GETBULK advances the group's columns
// that have not ended (columns of one table have as many rows, so they
// end together).
//
// Each GETBULK asks for max_repetitions rows, or fewer when the previous
// poll says how many rows are left: a column that had 50 rows is asked
// for 25, 25 and then 1 (to see its end) instead of 25, 25 and 25 whose
// last 25 would all be past the end.
func (d *device) walk(ctx context.Context, s session, b *pollBuf) error {
	pl := d.plan
	if cap(b.cols) < len(pl.columns) {
		b.cols = make([]column, len(pl.columns))
	}
	cols := b.cols[:len(pl.columns)]
	for i := range pl.columns {
		c := &cols[i]
		c.planColumn, c.i, c.rows, c.prev = &pl.columns[i], i, 0, d.rows[i]
		c.last = append(c.last[:0], c.root...)
	}
	for g := 0; g < len(cols); g += maxColumnsPerRequest {
		active := b.act[:0]
		for i := g; i < min(g+maxColumnsPerRequest, len(cols)); i++ {
			active = append(active, &cols[i])
		}
		b.act = active
		if err := d.walkGroup(ctx, s, b, active); err != nil {
			return err
		}
	}
	return nil
}

// walkGroup walks the columns of active (at most maxColumnsPerRequest) to
// their ends.
func (d *device) walkGroup(ctx context.Context, s session, b *pollBuf, active []*column) error {
	maxRows := d.p.cfg.MaxTableRows
	for len(active) > 0 {
		batch := active
		reps := d.t.maxRep
		if need := remainingRows(batch); need > 0 {
			reps = min(reps, uint32(need))
		}
		oids := b.oids[:0]
		for _, c := range batch {
			oids = append(oids, c.last)
		}
		b.oids = oids
		r := &b.resp
		if err := s.getBulk(ctx, r, oids, reps); err != nil {
			return fmt.Errorf("walk: %w", err)
		}
		if r.errStatus != errNoError {
			return badResponse("GETBULK error-status %v at index %d", errorStatusName(r.errStatus), r.errIndex)
		}
		if len(r.vbs) == 0 {
			return badResponse("GETBULK of %d columns answered with no varbinds", len(batch))
		}
		recv := time.Now().UnixNano()
		done := b.done[:0]
		for range batch {
			done = append(done, false)
		}
		b.done = done
		for i := range r.vbs {
			v := &r.vbs[i]
			j := i % len(batch)
			c := batch[j]
			if done[j] {
				continue
			}
			if v.isException() || !under(v.name, c.root) {
				done[j] = true
				continue
			}
			if c.rows > 0 && compareOID(v.name, c.last) <= 0 {
				return badResponse("column %s: OID %s does not increase after %s (agent loops)",
					c.text, appendDotted(nil, v.name), appendDotted(nil, c.last))
			}
			c.last = append(c.last[:0], v.name...)
			c.rows++
			if c.rows > maxRows {
				return &PollError{Reason: ReasonTableSize,
					Err: fmt.Errorf("column %s has more than max_table_rows=%d rows", c.text, maxRows)}
			}
			if v.hold {
				if ok, err := d.admit(b, v); err != nil {
					return err
				} else if ok {
					b.add(d.t.name, v, recv, c.text, v.name[len(c.root):])
				}
			}
		}
		next := active[:0]
		for j, c := range active {
			if done[j] {
				d.rows[c.i] = c.rows
				continue
			}
			next = append(next, c)
		}
		active = next
	}
	return nil
}

// remainingRows is how many rows the next GETBULK of batch needs to reach
// the end of every column, counting one past the last row to see the end,
// if the previous poll tells; 0 when it does not (first poll, or a column
// already longer than before).
func remainingRows(batch []*column) int {
	need := 1
	for _, c := range batch {
		if c.prev < 0 || c.rows > c.prev {
			return 0
		}
		need = max(need, c.prev-c.rows+1)
	}
	return need
}
