package scenario

import (
	"slices"
	"time"
)

// Shares of the unicast packet rate that multicast and broadcast packets
// add on an interface carrying Traffic: a network core sees a little
// routing-protocol multicast and almost no broadcast.
const (
	MulticastShare = 0.01
	BroadcastShare = 0.001
)

// Traffic is the steady load a simulator gives an interface that carries
// traffic, when no scenario baseline replaces it: Octets per second in each
// direction, unicast packets at Octets ÷ PacketSize, multicast and
// broadcast packets a small share of those, and no errors, discards or
// unknown protocols. The zero value carries nothing.
type Traffic struct {
	// Octets is the octet rate of each direction, per second.
	Octets float64
	// PacketSize is the mean unicast packet in bytes; 0 means
	// DefaultPacketSize.
	PacketSize float64
}

// Rate is how fast counter c of an interface carrying t advances, per
// second. Error, discard and Other counters do not move.
func (t Traffic) Rate(c Counter) float64 {
	size := t.PacketSize
	if size <= 0 {
		size = DefaultPacketSize
	}
	ucast := t.Octets / size
	switch c {
	case InOctets, OutOctets:
		return t.Octets
	case InUnicastPkts, OutUnicastPkts:
		return ucast
	case InMulticastPkts, OutMulticastPkts:
		return ucast * MulticastShare
	case InBroadcastPkts, OutBroadcastPkts:
		return ucast * BroadcastShare
	case InNUcastPkts, OutNUcastPkts:
		return ucast * (MulticastShare + BroadcastShare)
	case InPkts, OutPkts:
		return ucast * (1 + MulticastShare + BroadcastShare)
	}
	return 0
}

// CarriesTraffic reports whether a simulator should count traffic on the
// interface: it is recorded up, has a known speed and is not a loopback.
func (f Interface) CarriesTraffic() bool {
	return f.Up && f.Speed > 0 && !f.Loopback
}

// NextLinkChange returns the first instant after t (from the device's
// start) at which a link-down event of the plan starts or ends,
// repetitions included; false when there is none. Down may or may not
// change there (two events can overlap): callers compare it before and
// after.
func (p *Plan) NextLinkChange(t time.Duration) (time.Duration, bool) {
	var marks []time.Duration
	for _, e := range p.events {
		if e.Kind != LinkDown {
			continue
		}
		marks = append(marks, e.At)
		switch {
		case e.Until > 0:
			marks = append(marks, e.Until)
		case p.period > 0:
			marks = append(marks, p.period) // ends with the repetition
		}
	}
	if len(marks) == 0 {
		return 0, false
	}
	base := time.Duration(0)
	if p.period > 0 {
		base = t - t%p.period
	}
	reps := []time.Duration{0}
	if p.period > 0 {
		reps = append(reps, p.period)
	}
	best, found := time.Duration(0), false
	for _, rep := range reps {
		for _, m := range marks {
			if at := base + rep + m; at > t && (!found || at < best) {
				best, found = at, true
			}
		}
	}
	return best, found
}

// Outages are the spans during which an interface was taken down on
// demand (a simulator's SetOperStatus), on top of its scenario. Their
// counters stop while down, like during a scripted link-down. The zero
// value has none. An Outages is not safe for concurrent use.
type Outages struct {
	spans []outage // ascending; only the last may be open
}

type outage struct {
	from, until time.Duration // until < 0: still down
}

// Down reports whether the interface is down on demand at t.
func (o *Outages) Down(t time.Duration) bool {
	for _, s := range slices.Backward(o.spans) {
		if t >= s.from {
			return s.until < 0 || t < s.until
		}
	}
	return false
}

// Set takes the interface down (up false) or back up at t, which must not
// be before the last change. It reports whether the on-demand state
// changed.
func (o *Outages) Set(t time.Duration, up bool) bool {
	open := len(o.spans) > 0 && o.spans[len(o.spans)-1].until < 0
	switch {
	case !up && !open:
		o.spans = append(o.spans, outage{from: t, until: -1})
		return true
	case up && open:
		last := &o.spans[len(o.spans)-1]
		last.until = max(t, last.from)
		return true
	}
	return false
}

// Increase returns inc(t), a counter's increase since the start, less
// what it would have gained during the outages before t.
func (o *Outages) Increase(inc func(time.Duration) float64, t time.Duration) float64 {
	v := inc(t)
	for _, s := range o.spans {
		if s.from >= t {
			break
		}
		end := s.until
		if end < 0 || end > t {
			end = t
		}
		v -= inc(end) - inc(s.from)
	}
	return v
}
