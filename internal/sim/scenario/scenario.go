// Package scenario scripts what happens to a simulated device's interfaces
// over time — a steady baseline load, congestion episodes, bursts of errors
// and link faults — and turns the script into counter values and
// operational states at any instant.
//
// The SNMP agent (internal/sim/snmpagent) and the gNMI target
// (internal/sim/gnmitarget) both replay their recordings through it, so a
// scenario means the same thing over either protocol. A scenario is a Go
// value or a YAML file:
//
//	baseline:                  # optional: every interface carries a steady load
//	  utilization: 0.2         # share of its speed (each interface 0.5×–1.5× of it)
//	  packet_size: 800         # bytes per unicast packet
//	repeat: 2m                 # optional: the timeline starts over every 2m
//	events:
//	  - {kind: congestion, interface: to_bng-a, at: 20s, until: 80s, ramp: 10s, utilization: 0.98, discards_per_second: 1000}
//	  - {kind: errors, interface: GigabitEthernet0/0/0/1, at: 45s, until: 60s, ramp: 15s, errors_per_second: 200}
//	  - {kind: link-down, interface: GigabitEthernet0/0/0/1, at: 60s, until: 100s}
//
// Counters are integrals of rates that are piecewise linear in time, so they
// never decrease (a 32-bit wrap is the caller's), and two counters of the
// same role on one interface (IF-MIB ifInOctets and ifHCInOctets, OpenConfig
// in-octets and IOS-XR bytes-received) advance by exactly the same amount.
package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Kind names what an event does to its interface.
type Kind string

// Event kinds.
const (
	// Congestion raises the traffic of one direction towards Utilization of
	// the interface's speed, with queue drops (discards) in that direction.
	Congestion Kind = "congestion"
	// Errors makes the error counters of one direction climb.
	Errors Kind = "errors"
	// LinkDown takes the interface operationally down: its oper status is
	// down (IF-MIB 2, OpenConfig DOWN) and its counters stop.
	LinkDown Kind = "link-down"
)

// Direction is the traffic direction an event affects.
type Direction string

// Directions.
const (
	In   Direction = "in"
	Out  Direction = "out"
	Both Direction = "both"
)

// Defaults applied by Validate to fields left at zero.
const (
	DefaultUtilization       = 0.98 // congestion: share of the speed at full strength
	DefaultDiscardsPerSecond = 1000 // congestion: queue drops per second at full strength
	DefaultErrorsPerSecond   = 100  // errors: per second at full strength
	DefaultPacketSize        = 800  // bytes per unicast packet
)

// Event is one scripted change on one interface, active from At until
// Until. Its strength rises linearly from 0 at At to 1 at At+Ramp, stays at
// 1 and drops to 0 at Until.
type Event struct {
	// Kind is congestion, errors or link-down.
	Kind Kind `yaml:"kind"`
	// Interface names the interface: its name (IF-MIB ifName, else
	// ifDescr; the gNMI interface name) or, over SNMP, its ifIndex.
	Interface string `yaml:"interface"`
	// At is when the event starts, from the device's start (or from the
	// start of each repetition).
	At time.Duration `yaml:"at"`
	// Until is when it ends; 0 means never (or at the end of the
	// repetition).
	Until time.Duration `yaml:"until"`
	// Ramp is how long the event takes to reach full strength; 0 is a step.
	Ramp time.Duration `yaml:"ramp"`
	// Direction is the affected direction; default out for congestion, in
	// for errors. Link-down affects both.
	Direction Direction `yaml:"direction"`
	// Utilization is, for congestion, the share of the interface's speed
	// the traffic reaches at full strength (default 0.98).
	Utilization float64 `yaml:"utilization"`
	// DiscardsPerSecond is, for congestion, the queue drops per second at
	// full strength (default 1000; negative: none).
	DiscardsPerSecond float64 `yaml:"discards_per_second"`
	// ErrorsPerSecond is, for errors, the errored packets per second at
	// full strength (default 100).
	ErrorsPerSecond float64 `yaml:"errors_per_second"`
}

// Baseline is the steady load of every interface outside events.
type Baseline struct {
	// Utilization is the share of an interface's speed its traffic uses in
	// each direction. Each interface gets a steady factor between 0.5 and
	// 1.5 of it, derived from its name, so links differ. Interfaces without
	// a known speed, or recorded as down, carry no traffic.
	Utilization float64 `yaml:"utilization"`
	// PacketSize is the average unicast packet in bytes (default 800):
	// packet counters advance at the octet rate divided by it.
	PacketSize float64 `yaml:"packet_size"`
}

// Scenario is a timeline of events on one device's interfaces.
type Scenario struct {
	// Baseline, when set, replaces the simulator's own counter rates for
	// every interface: a steady load, unicast packets only, no errors or
	// discards. Without it, interface counters keep the simulator's rates
	// and events add to them.
	Baseline *Baseline `yaml:"baseline"`
	// Repeat, when set, starts the timeline over at every multiple of it;
	// counters keep counting.
	Repeat time.Duration `yaml:"repeat"`
	// Events are the scripted changes.
	Events []Event `yaml:"events"`
}

// Parse decodes a YAML scenario strictly (unknown keys are errors) and
// validates it; name is used in messages.
func Parse(name string, data []byte) (*Scenario, error) {
	var s Scenario
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	return &s, nil
}

// Load reads and parses a YAML scenario file.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read scenario: %w", err)
	}
	return Parse(path, data)
}

// Validate checks the scenario, fills defaults in, and returns every
// problem found, joined.
func (s *Scenario) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if s.Repeat < 0 {
		bad("repeat: must not be negative, got %v", s.Repeat)
	}
	if b := s.Baseline; b != nil {
		if b.Utilization < 0 || b.Utilization > 0.66 {
			bad("baseline.utilization: must be between 0 and 0.66 (×1.5 stays below line rate), got %v", b.Utilization)
		}
		if b.PacketSize == 0 {
			b.PacketSize = DefaultPacketSize
		}
		if b.PacketSize < 64 {
			bad("baseline.packet_size: must be at least 64 bytes, got %v", b.PacketSize)
		}
	}
	for i := range s.Events {
		e := &s.Events[i]
		f := fmt.Sprintf("events[%d]", i)
		if e.Interface == "" {
			bad("%s.interface: is required", f)
		}
		if e.At < 0 {
			bad("%s.at: must not be negative, got %v", f, e.At)
		}
		if e.Until != 0 && e.Until <= e.At {
			bad("%s.until: %v must be after at %v", f, e.Until, e.At)
		}
		if e.Ramp < 0 || (e.Until != 0 && e.At+e.Ramp > e.Until) {
			bad("%s.ramp: %v must be between 0 and until − at", f, e.Ramp)
		}
		if s.Repeat > 0 && (e.At >= s.Repeat || e.Until > s.Repeat) {
			bad("%s: at %v and until %v must lie within repeat %v", f, e.At, e.Until, s.Repeat)
		}
		switch e.Kind {
		case Congestion:
			if e.Direction == "" {
				e.Direction = Out
			}
			if e.Utilization == 0 {
				e.Utilization = DefaultUtilization
			}
			if e.Utilization < 0 || e.Utilization > 1 {
				bad("%s.utilization: must be between 0 and 1, got %v", f, e.Utilization)
			}
			if e.DiscardsPerSecond == 0 {
				e.DiscardsPerSecond = DefaultDiscardsPerSecond
			}
			if e.ErrorsPerSecond != 0 {
				bad("%s.errors_per_second: applies to kind errors, not congestion", f)
			}
		case Errors:
			if e.Direction == "" {
				e.Direction = In
			}
			if e.ErrorsPerSecond == 0 {
				e.ErrorsPerSecond = DefaultErrorsPerSecond
			}
			if e.ErrorsPerSecond < 0 {
				bad("%s.errors_per_second: must not be negative, got %v", f, e.ErrorsPerSecond)
			}
			if e.Utilization != 0 || e.DiscardsPerSecond != 0 {
				bad("%s: utilization and discards_per_second apply to kind congestion, not errors", f)
			}
		case LinkDown:
			if e.Direction != "" && e.Direction != Both {
				bad("%s.direction: a link goes down in both directions", f)
			}
			e.Direction = Both
			if e.Ramp != 0 || e.Utilization != 0 || e.DiscardsPerSecond != 0 || e.ErrorsPerSecond != 0 {
				bad("%s: link-down takes no ramp, utilization or rates", f)
			}
		default:
			bad("%s.kind: must be congestion, errors or link-down, got %q", f, e.Kind)
		}
		switch e.Direction {
		case In, Out, Both:
		default:
			bad("%s.direction: must be in, out or both, got %q", f, e.Direction)
		}
	}
	// Two congestion episodes on one interface at once would make its
	// rate quadratic in time (and mean nothing more than one of them).
	for i := range s.Events {
		for j := i + 1; j < len(s.Events); j++ {
			a, b := s.Events[i], s.Events[j]
			if a.Kind == Congestion && b.Kind == Congestion && a.Interface == b.Interface && overlap(a, b) {
				bad("events[%d] and events[%d]: two congestion episodes on %s overlap", i, j, a.Interface)
			}
		}
	}
	return errors.Join(errs...)
}

func overlap(a, b Event) bool {
	endA, endB := a.Until, b.Until
	if endA == 0 {
		endA = time.Duration(1<<63 - 1)
	}
	if endB == 0 {
		endB = time.Duration(1<<63 - 1)
	}
	return a.At < endB && b.At < endA
}

// Faster returns a copy of the scenario whose timeline runs factor times
// faster: every time (at, until, ramp, repeat) is divided by factor; rates
// and utilisations are unchanged. factor must be positive.
func (s *Scenario) Faster(factor float64) *Scenario {
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) / factor) }
	out := &Scenario{Repeat: scale(s.Repeat), Events: make([]Event, len(s.Events))}
	if s.Baseline != nil {
		b := *s.Baseline
		out.Baseline = &b
	}
	for i, e := range s.Events {
		e.At, e.Until, e.Ramp = scale(e.At), scale(e.Until), scale(e.Ramp)
		out.Events[i] = e
	}
	return out
}

// String describes the event in one line, e.g. "to_bng-a: congestion
// 0:20–1:20, out traffic ramps over 10s to 98% of line rate with 1000
// discards/s".
func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s %s", e.Interface, e.Kind, span(e.At, e.Until))
	switch e.Kind {
	case Congestion:
		fmt.Fprintf(&b, ", %s traffic %s %.0f%% of line rate", e.Direction, rampWords(e.Ramp), 100*e.Utilization)
		if e.DiscardsPerSecond > 0 {
			fmt.Fprintf(&b, " with %g discards/s", e.DiscardsPerSecond)
		}
	case Errors:
		fmt.Fprintf(&b, ", %s errors %s %g/s", e.Direction, rampWords(e.Ramp), e.ErrorsPerSecond)
	}
	return b.String()
}

func rampWords(d time.Duration) string {
	if d == 0 {
		return "at"
	}
	return "ramp over " + d.String() + " to"
}

func span(at, until time.Duration) string {
	if until == 0 {
		return "from " + clock(at)
	}
	return clock(at) + "–" + clock(until)
}

// clock writes d as m:ss (with tenths when d is not whole seconds).
func clock(d time.Duration) string {
	m := d / time.Minute
	s := (d % time.Minute).Seconds()
	if s == float64(int(s)) {
		return fmt.Sprintf("%d:%02d", m, int(s))
	}
	return fmt.Sprintf("%d:%04.1f", m, s)
}

// Active is an event in force at some instant, with its strength there.
type Active struct {
	Event
	// Strength is how far the event has ramped up: in (0, 1].
	Strength float64
}

// At returns the events on the interface named iface (as Event.Interface
// names it; aliases are not resolved) that are in force t after the
// device's start, repetitions included. It is the ground truth of the
// scenario at t, for labelling the windows a run produced.
func (s *Scenario) At(iface string, t time.Duration) []Active {
	if s.Repeat > 0 {
		t %= s.Repeat
	}
	var out []Active
	for _, e := range s.Events {
		if e.Interface != iface {
			continue
		}
		if st := e.strength(t); st > 0 {
			out = append(out, Active{Event: e, Strength: st})
		}
	}
	return out
}
