package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// injectCounters are the OpenConfig interface counters every injected
// interface reports; the embedded openconfig profile maps each to a
// catalog counter, and each later value also yields its rate, so one
// observation becomes two samples once the first round has passed.
var injectCounters = []string{"in-octets", "out-octets", "in-unicast-pkts", "out-unicast-pkts", "in-errors", "out-errors", "in-discards", "out-discards"}

// injectDevice names the i-th injected device.
func injectDevice(i int) string { return fmt.Sprintf("bench-%04d", i) }

// windowBook records, per window end, when the batch that closed the window
// was handed to the service and how many entities had data in the window.
// Injectors share it.
type windowBook struct {
	hop, lateness int64
	ifaces        int

	mu       sync.Mutex
	triggers map[int64]time.Time // window end → first send of a batch with ts ≥ end + lateness
	expected map[int64]int       // window end → entities with a sample in the window
	seen     map[int64]map[int]bool
	closed   int64 // highest window end with a trigger
	// complete holds, per device and window end, when the device's batch
	// that completed the window was sent: its first with an event time at
	// or past the end. lastEnd is the window end of each device's last
	// batch.
	complete map[devEnd]time.Time
	lastEnd  map[int]int64
}

type devEnd struct {
	dev int
	end int64
}

func newWindowBook(hop, lateness time.Duration, ifaces int) *windowBook {
	return &windowBook{hop: int64(hop), lateness: int64(lateness), ifaces: ifaces,
		triggers: map[int64]time.Time{}, expected: map[int64]int{}, seen: map[int64]map[int]bool{},
		complete: map[devEnd]time.Time{}, lastEnd: map[int]int64{}}
}

// sent notes that device dev's batch with event time ts is handed over at
// now.
func (w *windowBook) sent(dev int, ts int64, now time.Time) {
	end := (ts/w.hop + 1) * w.hop
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.seen[end]
	if s == nil {
		s = map[int]bool{}
		w.seen[end] = s
	}
	s[dev] = true
	// The store closes an entity's window once its series complete it:
	// every series of the device's interfaces (one batch carries them
	// all) has a sample at or past the window's end.
	if e := w.lastEnd[dev]; e != 0 && ts >= e {
		w.complete[devEnd{dev, e}] = now
	}
	w.lastEnd[dev] = end
	// Every window end E with E + lateness ≤ ts that an earlier batch did
	// not close, closes with this one.
	c := (ts - w.lateness) / w.hop * w.hop
	if w.closed == 0 {
		w.closed = c // the first batch: no window held data before it
		return
	}
	for e := w.closed + w.hop; e <= c; e += w.hop {
		w.triggers[e] = now
		w.expected[e] = len(w.seen[e]) * w.ifaces
		delete(w.seen, e)
	}
	w.closed = max(w.closed, c)
}

// trigger implements triggerSource.
func (w *windowBook) trigger(end int64) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.triggers[end]
	return t, ok
}

// completed implements completeSource for injected device names.
func (w *windowBook) completed(device string, end int64) (time.Time, bool) {
	n, ok := strings.CutPrefix(device, "bench-")
	if !ok {
		return time.Time{}, false
	}
	dev, err := strconv.Atoi(n)
	if err != nil {
		return time.Time{}, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.complete[devEnd{dev, end}]
	return t, ok
}

// expectedBetween returns the decisions expected for windows whose
// trigger was sent in [from, to), and those window ends.
func (w *windowBook) expectedBetween(from, to time.Time) (int, []int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	var ends []int64
	for e, t := range w.triggers {
		if !t.Before(from) && t.Before(to) {
			n += w.expected[e]
			ends = append(ends, e)
		}
	}
	return n, ends
}

// injector feeds one share of the devices to the sink at a paced rate.
type injector struct {
	sink    schema.ObservationSink
	book    *windowBook
	devs    []int                  // device numbers of this injector
	batches [][]schema.Observation // one per device, reused
	next    int

	obs    atomic.Int64
	errs   atomic.Int64
	errMu  sync.Mutex
	lastEr error
}

func newInjector(sink schema.ObservationSink, book *windowBook, devs []int, ifaces int) *injector {
	in := &injector{sink: sink, book: book, devs: devs}
	for _, d := range devs {
		name := injectDevice(d)
		b := make([]schema.Observation, 0, ifaces*len(injectCounters))
		for i := range ifaces {
			prefix := "interfaces/interface[name=HundredGigE0/0/0/" + strconv.Itoa(i) + "]/state/counters/"
			for c, leaf := range injectCounters {
				b = append(b, schema.Observation{Device: name, Protocol: schema.ProtocolGNMI, Origin: "openconfig-interfaces",
					Path: prefix + leaf, Kind: schema.KindCounter64, Uint: uint64(1_000_000 * (i + c + 1))})
			}
		}
		in.batches = append(in.batches, b)
	}
	return in
}

// prepare stamps batch i with event and receive time ts and advances its
// counters. It is the generator's whole per-batch work besides pacing.
func prepare(b []schema.Observation, ts int64) {
	for j := range b {
		o := &b[j]
		o.DeviceTime, o.RecvTime = ts, ts
		o.Uint += 125_000 + uint64(j)
	}
}

// run sends batches at rate observations per second until the deadline or
// ctx ends. When the sink falls behind, the schedule slips at most one
// second, so the achieved rate shows what the sink sustains.
func (in *injector) run(ctx context.Context, rate float64, until time.Time) {
	if len(in.batches) == 0 {
		return
	}
	per := len(in.batches[0])
	gap := time.Duration(float64(per) / rate * float64(time.Second))
	due := time.Now()
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(until) {
			return
		}
		if wait := due.Sub(now); wait > 0 {
			time.Sleep(min(wait, until.Sub(now)))
			continue
		}
		if now.Sub(due) > time.Second {
			due = now.Add(-time.Second)
		}
		i := in.next
		in.next = (in.next + 1) % len(in.batches)
		b := in.batches[i]
		ts := time.Now().UnixNano()
		prepare(b, ts)
		in.book.sent(in.devs[i], ts, time.Now())
		if err := in.sink.Observe(ctx, b); err != nil {
			if ctx.Err() != nil {
				return
			}
			in.errs.Add(1)
			in.errMu.Lock()
			in.lastEr = err
			in.errMu.Unlock()
		} else {
			in.obs.Add(int64(len(b)))
		}
		due = due.Add(gap)
	}
}

func (in *injector) lastErr() error {
	in.errMu.Lock()
	defer in.errMu.Unlock()
	return in.lastEr
}

// generatorCost measures the CPU nanoseconds the generator spends per
// observation (prepare plus the window bookkeeping) on a copy of one
// batch, so that it can be told apart from the service's CPU in the same
// process.
func generatorCost(ifaces int) float64 {
	in := newInjector(nil, newWindowBook(time.Second, 0, ifaces), []int{0}, ifaces)
	b := in.batches[0]
	// Thread CPU time may be kept at scheduler-tick resolution: run for a
	// quarter second so that the tick is lost in it.
	rounds := 0
	ts := time.Now().UnixNano()
	cpu := measureThreadCPU(func() {
		for deadline := time.Now().Add(250 * time.Millisecond); time.Now().Before(deadline); {
			for range 1000 {
				ts += 1000
				prepare(b, ts)
				in.book.sent(0, ts, time.Now())
				rounds++
			}
		}
	})
	return float64(cpu.Nanoseconds()) / float64(rounds*len(b))
}
