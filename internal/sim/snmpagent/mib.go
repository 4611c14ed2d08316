// Package snmpagent is an SNMP agent simulator: it serves snmprec recordings
// of real devices over SNMP v2c and v3 (USM with SHA-2 and AES), answering
// GET, GETNEXT and GETBULK as RFC 3416 specifies, with counters that advance
// from their recorded values, optional 32-bit wrap, simulated reboots and
// scripted scenarios (congestion, error bursts, link faults; see
// DeviceOptions.Scenario).
// One process serves many devices, each on its own UDP socket, and devices
// that replay the same recording share one read-only MIB.
package snmpagent

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/netfeat/netfeat/internal/sim/scenario"
	"github.com/netfeat/netfeat/recording"
)

// Well-known OIDs the simulator treats specially.
var (
	oidSysUpTime = []uint32{1, 3, 6, 1, 2, 1, 1, 3, 0}
)

type valueClass uint8

const (
	classStatic     valueClass = iota // served exactly as recorded
	classCounter                      // Counter32/Counter64: an interface's advance with its traffic, others stay
	classSysUpTime                    // sysUpTime.0: advances with the wall clock
	classOperStatus                   // ifOperStatus: as recorded unless the link is taken down
)

// entry is one object instance of a MIB.
type entry struct {
	idx   int // position in MIB.entries
	oid   []uint32
	name  string // dotted with a leading dot, as gosnmp writes varbind names
	rec   recording.SNMPRecord
	class valueClass
	// ifc is the position in MIB.ifcs of the interface an ifTable or
	// ifXTable instance belongs to, -1 for other objects; role is the
	// counter's role there.
	ifc  int
	role scenario.Counter
}

// MIB is a recording's object instances in lexicographic OID order, ready to
// serve. It is read-only after NewMIB and shared by every Device that
// replays the same recording.
type MIB struct {
	entries []entry
	// ifcs describes the IF-MIB interfaces in ifIndex order, ifIndex their
	// ifIndex values.
	ifcs    []scenario.Interface
	ifIndex []uint32
}

// NewMIB sorts the records of one recording into lexicographic OID order.
// Duplicate OIDs are an error naming both lines.
func NewMIB(recs []recording.SNMPRecord) (*MIB, error) {
	m := &MIB{entries: make([]entry, 0, len(recs))}
	for _, r := range recs {
		oid, err := parseOID(r.OID)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", r.Line, err)
		}
		e := entry{oid: oid, name: "." + r.OID, rec: r, ifc: -1}
		switch {
		case r.Tag == recording.TagCounter32 || r.Tag == recording.TagCounter64:
			e.class = classCounter
		case r.Tag == recording.TagTimeTicks && slices.Equal(oid, oidSysUpTime):
			e.class = classSysUpTime
		}
		m.entries = append(m.entries, e)
	}
	slices.SortStableFunc(m.entries, func(a, b entry) int { return slices.Compare(a.oid, b.oid) })
	for i := range m.entries {
		m.entries[i].idx = i
		if i > 0 && slices.Equal(m.entries[i-1].oid, m.entries[i].oid) {
			return nil, fmt.Errorf("duplicate OID %s on lines %d and %d",
				m.entries[i].rec.OID, m.entries[i-1].rec.Line, m.entries[i].rec.Line)
		}
	}
	m.bindInterfaces()
	return m, nil
}

// LoadMIB reads an snmprec file and builds its MIB.
func LoadMIB(path string) (*MIB, error) {
	recs, err := recording.ReadSNMPRecFile(path)
	if err != nil {
		return nil, err
	}
	m, err := NewMIB(recs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Len returns the number of object instances.
func (m *MIB) Len() int { return len(m.entries) }

// Records returns the records in the order the agent serves them
// (lexicographic by OID), which is what a full walk returns.
func (m *MIB) Records() []recording.SNMPRecord {
	out := make([]recording.SNMPRecord, len(m.entries))
	for i := range m.entries {
		out[i] = m.entries[i].rec
	}
	return out
}

// exact returns the index of oid, or -1.
func (m *MIB) exact(oid []uint32) int {
	i, ok := slices.BinarySearchFunc(m.entries, oid, func(e entry, t []uint32) int { return slices.Compare(e.oid, t) })
	if !ok {
		return -1
	}
	return i
}

// next returns the index of the first entry strictly after oid, or -1 at
// the end of the MIB view.
func (m *MIB) next(oid []uint32) int {
	i, ok := slices.BinarySearchFunc(m.entries, oid, func(e entry, t []uint32) int { return slices.Compare(e.oid, t) })
	if ok {
		i++
	}
	if i >= len(m.entries) {
		return -1
	}
	return i
}

// missingKind decides which exception a GET of an absent instance gets.
// The simulator has no MIB modules, so it infers the object from the
// recording: when the request names an instance below an existing object
// (the request without its last sub-identifier is a prefix of, or equal
// to, a recorded OID) and is not itself an interior node of the tree, the
// object exists and only the instance is missing (noSuchInstance);
// otherwise the object is unknown (noSuchObject).
func (m *MIB) missingIsInstance(oid []uint32) bool {
	if len(oid) < 2 {
		return false
	}
	if m.hasPrefix(oid, true) {
		return false // an interior node like sysUpTime without .0 is not an instance
	}
	return m.hasPrefix(oid[:len(oid)-1], false)
}

// hasPrefix reports whether some entry starts with p (strictly longer than
// p when strict is set).
func (m *MIB) hasPrefix(p []uint32, strict bool) bool {
	i, _ := slices.BinarySearchFunc(m.entries, p, func(e entry, t []uint32) int { return slices.Compare(e.oid, t) })
	for ; i < len(m.entries); i++ {
		o := m.entries[i].oid
		if len(o) < len(p) || !slices.Equal(o[:len(p)], p) {
			return false
		}
		if !strict || len(o) > len(p) {
			return true
		}
	}
	return false
}

// parseOID parses a dotted OID with or without a leading dot.
func parseOID(s string) ([]uint32, error) {
	s = strings.TrimPrefix(s, ".")
	if s == "" {
		return nil, fmt.Errorf("empty OID")
	}
	out := make([]uint32, 0, 16)
	for part := range strings.SplitSeq(s, ".") {
		v, err := strconv.ParseUint(part, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad OID %q: %w", s, err)
		}
		out = append(out, uint32(v))
	}
	return out, nil
}

// formatOID writes oid with a leading dot.
func formatOID(oid []uint32) string {
	b := make([]byte, 0, len(oid)*4)
	for _, v := range oid {
		b = append(b, '.')
		b = strconv.AppendUint(b, uint64(v), 10)
	}
	return string(b)
}
