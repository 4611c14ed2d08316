package scenario

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"
)

// Interface is one interface of a simulated device, as the simulator knows
// it from its recording.
type Interface struct {
	// Name is the interface's name (IF-MIB ifName, else ifDescr; the gNMI
	// interface name).
	Name string
	// Aliases are other names an event may use for it (ifDescr, ifIndex).
	Aliases []string
	// Speed is the interface's speed in bits per second; 0 when unknown.
	Speed float64
	// Up is its recorded operational state.
	Up bool
	// Loopback marks software interfaces (IF-MIB softwareLoopback, Nokia's
	// system interface, Cisco Loopback and Null): they carry no traffic.
	Loopback bool
}

// Counter is the role of one counter of an interface.
type Counter uint8

// Counter roles. Packet counters of a role (InPkts = unicast + multicast +
// broadcast) are kept consistent with each other.
const (
	InOctets Counter = iota
	OutOctets
	InUnicastPkts
	OutUnicastPkts
	InMulticastPkts
	OutMulticastPkts
	InBroadcastPkts
	OutBroadcastPkts
	InPkts  // all packets received
	OutPkts // all packets sent
	// InNUcastPkts and OutNUcastPkts are IF-MIB's deprecated
	// ifInNUcastPkts/ifOutNUcastPkts: multicast and broadcast together.
	InNUcastPkts
	OutNUcastPkts
	InErrors
	OutErrors
	InDiscards
	OutDiscards
	// Other is any other counter of the interface (unknown protocols,
	// runts, …): a baseline stops it, events leave it alone.
	Other
)

func (c Counter) dir() Direction {
	switch c {
	case InOctets, InUnicastPkts, InMulticastPkts, InBroadcastPkts, InNUcastPkts, InPkts, InErrors, InDiscards:
		return In
	case OutOctets, OutUnicastPkts, OutMulticastPkts, OutBroadcastPkts, OutNUcastPkts, OutPkts, OutErrors, OutDiscards:
		return Out
	}
	return ""
}

// Plan is a scenario bound to one interface: what its counters and its
// operational state do over time. It is read-only and safe for concurrent
// use.
type Plan struct {
	ifc    Interface
	base   *Baseline
	factor float64 // this interface's share of the baseline utilisation
	period time.Duration
	events []Event
	knots  []time.Duration // instants where a rate changes slope, ascending, > 0
}

// Bind binds the scenario to a device's interfaces. It returns one plan per
// interface, in order, nil where the scenario changes nothing. It fails
// when an event names an interface the device lacks, or congests one whose
// speed is unknown.
func (s *Scenario) Bind(ifcs []Interface) ([]*Plan, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	plans := make([]*Plan, len(ifcs))
	plan := func(i int) *Plan {
		if plans[i] == nil {
			h := fnv.New32a()
			h.Write([]byte(ifcs[i].Name))
			plans[i] = &Plan{ifc: ifcs[i], base: s.Baseline, period: s.Repeat,
				factor: 0.5 + float64(h.Sum32()%1001)/1000}
		}
		return plans[i]
	}
	if s.Baseline != nil {
		for i := range ifcs {
			plan(i)
		}
	}
	for n, e := range s.Events {
		i := slices.IndexFunc(ifcs, func(f Interface) bool { return f.Name == e.Interface || slices.Contains(f.Aliases, e.Interface) })
		if i < 0 {
			names := make([]string, len(ifcs))
			for j, f := range ifcs {
				names[j] = f.Name
			}
			return nil, fmt.Errorf("events[%d]: interface %q not found; the device has %s", n, e.Interface, strings.Join(names, ", "))
		}
		if e.Kind == Congestion && ifcs[i].Speed <= 0 {
			return nil, fmt.Errorf("events[%d]: congestion on %s needs the interface's speed, which the recording does not give", n, e.Interface)
		}
		p := plan(i)
		p.events = append(p.events, e)
	}
	for _, p := range plans {
		if p != nil {
			p.knots = p.breakpoints()
		}
	}
	return plans, nil
}

func (p *Plan) breakpoints() []time.Duration {
	var ks []time.Duration
	for _, e := range p.events {
		ks = append(ks, e.At, e.At+e.Ramp)
		if e.Until > 0 {
			ks = append(ks, e.Until)
		}
	}
	if p.period > 0 {
		ks = append(ks, p.period)
	}
	slices.Sort(ks)
	ks = slices.Compact(ks)
	return slices.DeleteFunc(ks, func(k time.Duration) bool { return k <= 0 })
}

// Interface returns the interface the plan is bound to.
func (p *Plan) Interface() Interface { return p.ifc }

// Events returns the events on this interface.
func (p *Plan) Events() []Event { return slices.Clone(p.events) }

// Down reports whether the interface is operationally down t after the
// device's start.
func (p *Plan) Down(t time.Duration) bool {
	t = p.phase(t)
	for _, e := range p.events {
		if e.Kind == LinkDown && e.strength(t) > 0 {
			return true
		}
	}
	return false
}

// Rate is how fast counter c advances (per second) t after the start.
// dflt is the rate the simulator gives that counter without a scenario
// (Traffic.Rate of the counter's role, 0 on an interface that carries no
// traffic).
func (p *Plan) Rate(c Counter, dflt float64, t time.Duration) float64 {
	return p.rate(c, dflt, p.phase(t))
}

// Increase is how much counter c has advanced from the start until t (the
// integral of Rate), for a counter whose rate without the scenario is dflt.
// It never decreases as t grows.
func (p *Plan) Increase(c Counter, dflt float64, t time.Duration) float64 {
	if t <= 0 {
		return 0
	}
	if p.period > 0 {
		n := t / p.period
		return float64(n)*p.integral(c, dflt, p.period) + p.integral(c, dflt, t%p.period)
	}
	return p.integral(c, dflt, t)
}

func (p *Plan) phase(t time.Duration) time.Duration {
	if p.period > 0 {
		return t % p.period
	}
	return t
}

// integral sums the rate over [0, t] within one period. Between two knots
// every rate is linear in time, so the midpoint rule is exact.
func (p *Plan) integral(c Counter, dflt float64, t time.Duration) float64 {
	sum, prev := 0.0, time.Duration(0)
	for _, k := range p.knots {
		if k >= t {
			break
		}
		sum += p.segment(c, dflt, prev, k)
		prev = k
	}
	return sum + p.segment(c, dflt, prev, t)
}

func (p *Plan) segment(c Counter, dflt float64, a, b time.Duration) float64 {
	if b <= a {
		return 0
	}
	return p.rate(c, dflt, a+(b-a)/2) * (b - a).Seconds()
}

// rate is the rate of c at t within a period.
func (p *Plan) rate(c Counter, dflt float64, t time.Duration) float64 {
	for _, e := range p.events {
		if e.Kind == LinkDown && e.strength(t) > 0 {
			return 0
		}
	}
	dir := c.dir()
	quiet := dflt // errors, discards and the rest without a baseline
	if p.base != nil {
		quiet = 0
	}
	switch c {
	case InOctets, OutOctets:
		return p.octets(dir, p.baseOctets(dflt), t)
	case InUnicastPkts, OutUnicastPkts, InPkts, OutPkts:
		if p.base != nil {
			return p.octets(dir, p.baseOctets(0), t) / p.base.PacketSize
		}
		// Without a baseline the packet counters keep their own rate and
		// gain the congestion's packets.
		return dflt + p.octets(dir, 0, t)/DefaultPacketSize
	case InErrors, OutErrors:
		r := quiet
		for _, e := range p.events {
			if e.Kind == Errors && covers(e.Direction, dir) {
				r += e.ErrorsPerSecond * e.strength(t)
			}
		}
		return r
	case InDiscards, OutDiscards:
		r := quiet
		for _, e := range p.events {
			if e.Kind == Congestion && covers(e.Direction, dir) && e.DiscardsPerSecond > 0 {
				r += e.DiscardsPerSecond * e.strength(t)
			}
		}
		return r
	}
	return quiet
}

// baseOctets is the octet rate outside events.
func (p *Plan) baseOctets(dflt float64) float64 {
	if p.base == nil {
		return dflt
	}
	if !p.ifc.CarriesTraffic() {
		return 0
	}
	return p.base.Utilization * p.factor * p.ifc.Speed / 8
}

// octets moves the octet rate from base towards a congestion's target by
// the congestion's strength. Validate keeps congestion episodes on one
// interface from overlapping, so the result is linear between knots.
func (p *Plan) octets(dir Direction, base float64, t time.Duration) float64 {
	r := base
	for _, e := range p.events {
		if e.Kind == Congestion && covers(e.Direction, dir) {
			target := e.Utilization * p.ifc.Speed / 8
			r += (target - r) * e.strength(t)
		}
	}
	return r
}

func covers(event, counter Direction) bool {
	return counter != "" && (event == Both || event == counter)
}

// strength is 0 outside [At, Until), rises linearly over Ramp, then is 1.
func (e Event) strength(t time.Duration) float64 {
	if t < e.At || (e.Until > 0 && t >= e.Until) {
		return 0
	}
	if e.Ramp > 0 && t < e.At+e.Ramp {
		return float64(t-e.At) / float64(e.Ramp)
	}
	return 1
}
