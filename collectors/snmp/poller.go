// Package snmp polls SNMP devices (v2c and v3 USM) and receives their traps
// and informs, turning every value into a raw schema.Observation for the
// normalizer. A poll first identifies the device (sysObjectID, sysDescr,
// sysUpTime), asks the Planner which scalars and table columns its profile
// needs, and fetches exactly those: scalars with GET, columns with GETBULK
// walks that advance several columns per request.
//
// Each device runs on its own schedule. A limit bounds how many devices
// are polled at once; a poll that overruns its interval is cut off and the
// slots it overlapped are skipped and counted, never stacked; a device that
// stops answering is polled with exponential backoff. Every device's
// health is kept for the `devices` table (DeviceStates) and exported as
// Prometheus metrics.
package snmp

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/schema"
)

// Planner chooses what to poll on an identified device. The normalizer
// implements it with its vendor profiles.
//
// SNMPPlan receives the device's name, its sysObjectID.0 (dotted, no
// leading dot) and sysDescr.0 and returns the profile's name, the scalar OIDs to GET (with instance,
// e.g. "1.3.6.1.4.1.6527.3.1.2.1.1.1.0") and the table column OIDs to walk
// (without index, e.g. "1.3.6.1.2.1.31.1.1.1.6"). It must be safe for
// concurrent use and must not block; the poller calls it once per device
// and again when the device's identity changes. The poller does not retain
// or modify the returned slices' contents beyond the call.
type Planner interface {
	SNMPPlan(device, sysObjectID, sysDescr string) (profile string, scalars []string, columns []string)
}

// StaticPlan is a Planner that gives every device the same plan: for
// probing devices before profiles exist, and for tests.
type StaticPlan struct {
	Profile string
	Scalars []string
	Columns []string
}

// SNMPPlan returns the static plan.
func (s StaticPlan) SNMPPlan(string, string, string) (string, []string, []string) {
	return s.Profile, s.Scalars, s.Columns
}

// IFMIBPlan polls the standard IF-MIB interface table and its 64-bit
// extension.
var IFMIBPlan = StaticPlan{
	Profile: "if-mib",
	Columns: []string{
		"1.3.6.1.2.1.2.2.1.2",     // ifDescr
		"1.3.6.1.2.1.2.2.1.7",     // ifAdminStatus
		"1.3.6.1.2.1.2.2.1.8",     // ifOperStatus
		"1.3.6.1.2.1.2.2.1.10",    // ifInOctets
		"1.3.6.1.2.1.2.2.1.13",    // ifInDiscards
		"1.3.6.1.2.1.2.2.1.14",    // ifInErrors
		"1.3.6.1.2.1.2.2.1.16",    // ifOutOctets
		"1.3.6.1.2.1.2.2.1.19",    // ifOutDiscards
		"1.3.6.1.2.1.2.2.1.20",    // ifOutErrors
		"1.3.6.1.2.1.31.1.1.1.1",  // ifName
		"1.3.6.1.2.1.31.1.1.1.6",  // ifHCInOctets
		"1.3.6.1.2.1.31.1.1.1.10", // ifHCOutOctets
		"1.3.6.1.2.1.31.1.1.1.15", // ifHighSpeed
	},
}

// Device states reported in DeviceState.State.
const (
	StateUnknown     = "unknown"      // not polled yet
	StateUp          = "up"           // last poll succeeded
	StateDown        = "down"         // last poll timed out or the device is unreachable
	StateAuthFailure = "auth_failure" // last poll was refused by USM
	StateError       = "error"        // last poll failed for another reason (bad response, table too large, sink)
)

// Poller polls the configured devices and, when configured, receives traps.
type Poller struct {
	cfg     Config
	planner Planner
	sink    schema.ObservationSink
	log     *slog.Logger
	m       *metrics
	devices []*device
	sem     chan struct{}
	traps   *trapReceiver

	bufMu sync.Mutex
	bufs  []*pollBuf // free poll buffers, most recently used last

	mu      sync.Mutex
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	stopped bool
	// runCtx is the context of the device goroutines, runs the running
	// ones and owned the devices to poll (nil: all); see SetOwned.
	runCtx context.Context
	runs   map[*device]*devRun
	owned  map[string]bool
	ownMu  sync.Mutex // serialises SetOwned
}

// New validates cfg and builds a Poller. It makes no network calls. A nil
// logger discards; a nil registerer skips metric registration.
func New(cfg Config, planner Planner, sink schema.ObservationSink, reg prometheus.Registerer, log *slog.Logger) (*Poller, error) {
	if planner == nil {
		return nil, errors.New("snmp: nil planner")
	}
	if sink == nil {
		return nil, errors.New("snmp: nil sink")
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	targets, err := cfg.resolve()
	if err != nil {
		return nil, fmt.Errorf("snmp: invalid configuration: %w", err)
	}
	if cfg.MaxConcurrency == 0 {
		cfg.MaxConcurrency = DefaultMaxConcurrency
	}
	if cfg.MaxTableRows == 0 {
		cfg.MaxTableRows = DefaultMaxTableRows
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxValueSize == 0 {
		cfg.MaxValueSize = DefaultMaxValueSize
	}
	if cfg.MaxPollBytes == 0 {
		cfg.MaxPollBytes = DefaultMaxPollBytes
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("snmp: metrics: %w", err)
	}
	p := &Poller{cfg: cfg, planner: planner, sink: sink, log: log, m: m,
		sem: make(chan struct{}, cfg.MaxConcurrency)}
	names := map[string]string{}
	for _, t := range targets {
		d := newDevice(t, p)
		p.devices = append(p.devices, d)
		names[t.host] = t.name
	}
	if cfg.TrapListen != "" {
		tr, err := newTrapReceiver(cfg, names, sink, m, log)
		if err != nil {
			return nil, fmt.Errorf("snmp: trap receiver: %w", err)
		}
		p.traps = tr
	}
	return p, nil
}

// Start binds the trap receiver (if configured) and starts polling every
// device; it returns once started. The first polls are spread over each
// device's interval so that devices do not all poll at once.
func (p *Poller) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("snmp: already started")
	}
	if p.traps != nil {
		if err := p.traps.start(ctx); err != nil {
			return fmt.Errorf("snmp: trap receiver: %w", err)
		}
	}
	p.runCtx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.runs = map[*device]*devRun{}
	p.started = true
	owned := 0
	for _, d := range p.devices {
		if p.owns(d) {
			p.startDevice(d, false)
			owned++
		}
	}
	attrs := []any{"devices", len(p.devices), "max_concurrency", p.cfg.MaxConcurrency, "trap_listen", p.TrapAddr()}
	if p.owned != nil {
		attrs = append(attrs, "owned", owned)
	}
	p.log.Info("snmp poller started", attrs...)
	return nil
}

// Stop cancels every poll in flight and waits for the device goroutines
// and the trap receiver to finish, or for ctx to end.
func (p *Poller) Stop(ctx context.Context) error {
	p.mu.Lock()
	if !p.started {
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	p.cancel()
	p.mu.Unlock()
	var errs []error
	if p.traps != nil {
		if err := p.traps.stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("snmp: stop: %w", ctx.Err()))
	}
	for _, d := range p.deviceList() {
		d.close()
	}
	return errors.Join(errs...)
}

// TrapAddr returns the trap receiver's bound address, or "" if none.
func (p *Poller) TrapAddr() string {
	if p.traps == nil || p.traps.conn == nil {
		return ""
	}
	return p.traps.conn.LocalAddr().String()
}

// DeviceStates returns every device's current health.
func (p *Poller) DeviceStates() []schema.DeviceState {
	devices := p.deviceList()
	out := make([]schema.DeviceState, len(devices))
	for i, d := range devices {
		out[i] = d.stateSnapshot()
	}
	return out
}

// PollOnce polls every device once, now, ignoring schedules and backoff,
// and returns the per-device errors joined. It is for `netfeat probe` and
// tests; it must not run while the poller is started.
func (p *Poller) PollOnce(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, d := range p.deviceList() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := p.acquire(ctx)
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", d.t.name, err))
				mu.Unlock()
				return
			}
			defer p.release(b)
			if err := d.pollAndRecord(ctx, time.Now(), b); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", d.t.name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// acquire waits for one of the max_concurrency poll slots and returns a
// poll buffer to use until release.
func (p *Poller) acquire(ctx context.Context) (*pollBuf, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	p.m.inFlight.Inc()
	p.bufMu.Lock()
	defer p.bufMu.Unlock()
	if n := len(p.bufs); n > 0 {
		b := p.bufs[n-1]
		p.bufs = p.bufs[:n-1]
		return b, nil
	}
	return &pollBuf{}, nil
}

// maxKeptPollBuf is the most memory a free poll buffer may hold on to: a
// buffer that grew past it for one unusual poll (a huge table, long
// strings) is dropped on release instead of pinning that memory for good.
const maxKeptPollBuf = 8 << 20

// release returns the slot and the buffer. Buffers are reused last in,
// first out, so that only as many exist as polls ever ran at once; one
// that holds more than maxKeptPollBuf is left to the garbage collector.
func (p *Poller) release(b *pollBuf) {
	b.reset()
	if b.retained() <= maxKeptPollBuf {
		p.bufMu.Lock()
		p.bufs = append(p.bufs, b)
		p.bufMu.Unlock()
	} else {
		p.m.bufsDropped.Inc()
	}
	<-p.sem
	p.m.inFlight.Dec()
}

// run is one device's schedule: poll at every interval slot, skip the
// slots a poll overran, back off while the device fails. The first poll is
// at first, or when first is zero at an offset into the interval that
// spreads the devices' polls.
func (d *device) run(ctx context.Context, first time.Time) {
	iv := d.t.interval
	next := first
	if next.IsZero() {
		h := fnv.New64a()
		h.Write([]byte(d.t.name))
		next = time.Now().Add(time.Duration(h.Sum64() % uint64(iv)))
	}
	d.failures = 0 // a device owned again starts without backoff
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		slot := next
		// The poll, including the wait for a concurrency slot, must end
		// by the next slot.
		pctx, cancel := context.WithDeadline(ctx, slot.Add(iv))
		b, err := d.p.acquire(pctx)
		if err == nil {
			err = d.pollAndRecord(pctx, slot, b)
			d.p.release(b)
		} else if ctx.Err() == nil {
			d.recordFailure(slot, time.Now(), &PollError{Reason: ReasonOverrun,
				Err: errors.New("no concurrency slot free before the next poll was due")})
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		if err != nil && d.backoffWorthy(err) {
			d.failures++
			delay := min(iv<<min(d.failures-1, 20), max(d.p.cfg.MaxBackoff, iv))
			delay += time.Duration(rand.Int64N(int64(delay/10) + 1))
			next = now.Add(delay)
			d.setBackoff(delay)
		} else {
			d.failures = 0
			d.setBackoff(0)
			next = slot.Add(iv)
			if !next.After(now) {
				skipped := int64(now.Sub(next)/iv) + 1
				next = next.Add(time.Duration(skipped) * iv)
				d.p.m.skipped.WithLabelValues(d.t.name).Add(float64(skipped))
				d.mu.Lock()
				d.skipped += skipped
				d.mu.Unlock()
			}
		}
		timer.Reset(time.Until(next))
	}
}

func (d *device) backoffWorthy(err error) bool {
	var pe *PollError
	if errors.As(err, &pe) {
		return pe.Reason == ReasonTimeout || pe.Reason == ReasonUnreachable || pe.Reason == ReasonAuth
	}
	return false
}
