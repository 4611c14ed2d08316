package snmpagent

import (
	"slices"
	"sync"
	"time"
)

// PollTimes holds, per device name, the sorted moments a device received
// requests: when its polls ran, whichever collector polled it. The fleet
// bench's failover phase and the cluster tests judge failovers by it.
type PollTimes map[string][]time.Time

// NextPoll returns when the first of devs is due again: its last request
// plus interval (now plus interval when none was polled yet).
func (p PollTimes) NextPoll(devs []string, interval time.Duration) time.Time {
	var next time.Time
	for _, d := range devs {
		ts := p[d]
		if len(ts) == 0 {
			continue
		}
		if due := ts[len(ts)-1].Add(interval); next.IsZero() || due.Before(next) {
			next = due
		}
	}
	if next.IsZero() {
		next = time.Now().Add(interval)
	}
	return next
}

// PolledBetween returns the devices of devs that received requests in
// (from, to], sorted.
func (p PollTimes) PolledBetween(devs []string, from, to time.Time) []string {
	var out []string
	for _, d := range devs {
		if slices.ContainsFunc(p[d], func(t time.Time) bool { return t.After(from) && !t.After(to) }) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// LongestGap returns the longest time within [from, to] during which one of
// names (nil: every device in p) received no request, and that device:
// from and to bound each device's first and last gap, and a device
// without any request counts the whole window. Ties go to the first name
// in sorted order.
func (p PollTimes) LongestGap(names []string, from, to time.Time) (time.Duration, string) {
	if names == nil {
		for n := range p {
			names = append(names, n)
		}
	}
	names = slices.Sorted(slices.Values(names))
	var worst time.Duration
	var dev string
	for _, name := range names {
		prev := from
		for _, t := range p[name] {
			if t.Before(from) || t.After(to) {
				continue
			}
			if g := t.Sub(prev); g > worst {
				worst, dev = g, name
			}
			prev = t
		}
		if g := to.Sub(prev); g > worst {
			worst, dev = g, name
		}
	}
	return worst, dev
}

// PollCounts returns the fewest and most polls one device of names saw in
// [from, to]. A poll's requests may span several readings: a reading with
// new requests starts a poll when the device's previous one is more than
// sep earlier.
func (p PollTimes) PollCounts(names []string, from, to time.Time, sep time.Duration) (lo, hi int) {
	for i, d := range names {
		n := 0
		var prev time.Time
		for _, t := range p[d] {
			if !t.Before(from) && !t.After(to) && (prev.IsZero() || t.Sub(prev) > sep) {
				n++
			}
			prev = t
		}
		if i == 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return lo, hi
}

// PollWatch reads devices' request counters every 20 ms and records when
// each received requests.
type PollWatch struct {
	mu    sync.Mutex
	times PollTimes
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

// WatchPolls watches devs until Close.
func WatchPolls(devs []*Device) *PollWatch {
	w := &PollWatch{times: PollTimes{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		last := make([]uint64, len(devs))
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case now := <-tick.C:
				w.mu.Lock()
				for i, d := range devs {
					if n := d.Stats().Requests; n != last[i] {
						last[i] = n
						w.times[d.Name()] = append(w.times[d.Name()], now)
					}
				}
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// Times returns a copy of what the watch recorded so far.
func (w *PollWatch) Times() PollTimes {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(PollTimes, len(w.times))
	for k, v := range w.times {
		out[k] = slices.Clone(v)
	}
	return out
}

// Close stops the watch; it may be called more than once.
func (w *PollWatch) Close() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}
