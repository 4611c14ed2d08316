package schema

import (
	"context"
	"strconv"
)

// Protocol names the transport an Observation arrived on.
type Protocol uint8

// Protocols a collector can report.
const (
	ProtocolUnknown Protocol = iota
	ProtocolSNMP             // an SNMP GET/GETBULK response
	ProtocolTrap             // an SNMP trap or inform
	ProtocolGNMI             // a gNMI Subscribe notification
)

var protocolNames = [...]string{"unknown", "snmp", "trap", "gnmi"}

// String returns the lower-case protocol name ("snmp", "trap", "gnmi").
func (p Protocol) String() string {
	if int(p) < len(protocolNames) {
		return protocolNames[p]
	}
	return "protocol(" + strconv.Itoa(int(p)) + ")"
}

// ValueKind is the wire type of an observed value. It keeps enough of the
// protocol's type system for the normalizer to handle counters (wrap width),
// enums and strings correctly.
type ValueKind uint8

// Value kinds. The SNMP exception kinds (NoSuchObject, NoSuchInstance,
// EndOfMibView) are observations too: the normalizer counts them instead of
// mapping them.
const (
	KindUnknown        ValueKind = iota
	KindCounter32                // SNMP Counter32: unsigned, wraps at 2^32; Uint holds it
	KindCounter64                // SNMP Counter64 or a gNMI uint64 counter leaf; Uint holds it
	KindGauge                    // SNMP Gauge32/Unsigned32 or a gNMI unsigned gauge; Uint holds it
	KindInteger                  // SNMP Integer32 or a gNMI signed int; Int holds it
	KindFloat                    // gNMI float/double/decimal64; Float holds it
	KindString                   // OCTET STRING, gNMI string; Str holds it
	KindEnum                     // a named enumeration (gNMI JSON "UP"); Str holds the name, Int the number when known
	KindTimeTicks                // SNMP TimeTicks (hundredths of a second); Uint holds it
	KindBool                     // gNMI bool; Int is 1 or 0
	KindOID                      // SNMP OBJECT IDENTIFIER; Str holds the dotted OID without a leading dot
	KindBytes                    // binary OCTET STRING or gNMI bytes; Str holds the raw bytes
	KindNull                     // SNMP NULL / gNMI empty value
	KindNoSuchObject             // SNMP exception noSuchObject
	KindNoSuchInstance           // SNMP exception noSuchInstance
	KindEndOfMibView             // SNMP exception endOfMibView
	KindJSON                     // an undecoded JSON or JSON_IETF blob; Str holds it
)

var kindNames = [...]string{
	"unknown", "counter32", "counter64", "gauge", "integer", "float", "string", "enum",
	"timeticks", "bool", "oid", "bytes", "null", "noSuchObject", "noSuchInstance", "endOfMibView", "json",
}

// String returns the kind's name as used in logs and metrics labels.
func (k ValueKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// IsException reports whether k is an SNMP exception value rather than data.
func (k ValueKind) IsException() bool {
	return k == KindNoSuchObject || k == KindNoSuchInstance || k == KindEndOfMibView
}

// Observation is one raw value as a collector received it, before any
// vendor knowledge is applied. Collectors emit Observations; the normalizer
// turns them into Samples.
//
// Exactly one of Uint, Int, Float or Str carries the value, chosen by Kind.
type Observation struct {
	// Device is the configured name of the target the value came from.
	Device string
	// Protocol is the transport the value arrived on.
	Protocol Protocol
	// Origin is the gNMI path origin ("openconfig-interfaces",
	// "Cisco-IOS-XR-infra-statsd-oper", ...); empty for SNMP.
	Origin string
	// Path is the full location of the value: for SNMP the numeric OID with
	// its instance index and no leading dot ("1.3.6.1.2.1.31.1.1.1.6.3"); for
	// gNMI the prefix joined with the update path, keys in brackets
	// ("interfaces/interface[name=Gi0/0/0/0]/state/counters/in-octets").
	Path string
	// Kind is the wire type of the value.
	Kind ValueKind
	// Uint holds counters, gauges and timeticks.
	Uint uint64
	// Int holds signed integers, enum numbers and booleans.
	Int int64
	// Float holds floating-point values.
	Float float64
	// Str holds strings, enum names, OIDs, raw bytes and JSON blobs.
	Str string
	// DeviceTime is the device's own timestamp in Unix nanoseconds (the gNMI
	// notification timestamp), or 0 when the protocol gives none.
	DeviceTime int64
	// RecvTime is when the collector received the bytes, in Unix
	// nanoseconds. Polls stamp every observation of a response with the
	// response's receive time.
	RecvTime int64
}

// ObservationSink accepts batches of raw observations from a collector.
//
// Observe may block while the sink applies back-pressure; it returns early
// with ctx.Err() when ctx is cancelled. The sink does not retain batch after
// Observe returns, so the caller may reuse the slice and its strings' backing
// storage is never mutated by the sink. A non-nil error means the batch was
// not accepted (as a whole); per-observation mapping failures are counted by
// the sink and are not errors. Implementations are safe for concurrent use.
type ObservationSink interface {
	Observe(ctx context.Context, batch []Observation) error
}

// ObservationSinkFunc adapts a function to ObservationSink.
type ObservationSinkFunc func(ctx context.Context, batch []Observation) error

// Observe calls f(ctx, batch).
func (f ObservationSinkFunc) Observe(ctx context.Context, batch []Observation) error {
	return f(ctx, batch)
}

// ValidOID reports whether s is a numeric object identifier in the form
// Observation.Path uses for SNMP: dot-separated decimal arcs, no leading
// or trailing dot ("1.3.6.1.2.1.1.3.0").
func ValidOID(s string) bool {
	if s == "" {
		return false
	}
	prevDot := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
		case c >= '0' && c <= '9':
			prevDot = false
		default:
			return false
		}
	}
	return !prevDot
}
