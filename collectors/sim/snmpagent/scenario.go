package snmpagent

import (
	"slices"
	"strconv"

	"github.com/gosnmp/gosnmp"

	"github.com/netfeat/netfeat/collectors/sim/scenario"
	"github.com/netfeat/netfeat/recording"
)

// IF-MIB (RFC 2863) tables a scenario drives: ifEntry and ifXEntry.
var (
	oidIfEntry  = []uint32{1, 3, 6, 1, 2, 1, 2, 2, 1}
	oidIfXEntry = []uint32{1, 3, 6, 1, 2, 1, 31, 1, 1, 1}
)

// Columns read to describe an interface.
const (
	colIfDescr      = 2  // ifEntry
	colIfSpeed      = 5  // ifEntry, bit/s
	colIfOperStatus = 8  // ifEntry
	colIfName       = 1  // ifXEntry
	colIfHighSpeed  = 15 // ifXEntry, Mbit/s
)

// Roles of the counter columns; other counters of these tables (ifInNUcastPkts,
// ifInUnknownProtos, …) are scenario.Other.
var (
	ifEntryCounters = map[uint32]scenario.Counter{
		10: scenario.InOctets, 11: scenario.InUnicastPkts, 13: scenario.InDiscards, 14: scenario.InErrors,
		16: scenario.OutOctets, 17: scenario.OutUnicastPkts, 19: scenario.OutDiscards, 20: scenario.OutErrors,
	}
	ifXEntryCounters = map[uint32]scenario.Counter{
		2: scenario.InMulticastPkts, 3: scenario.InBroadcastPkts, 4: scenario.OutMulticastPkts, 5: scenario.OutBroadcastPkts,
		6: scenario.InOctets, 7: scenario.InUnicastPkts, 8: scenario.InMulticastPkts, 9: scenario.InBroadcastPkts,
		10: scenario.OutOctets, 11: scenario.OutUnicastPkts, 12: scenario.OutMulticastPkts, 13: scenario.OutBroadcastPkts,
	}
)

// scripted is how a scenario drives one MIB entry.
type scripted struct {
	plan    *scenario.Plan
	counter scenario.Counter
	oper    bool // ifOperStatus rather than a counter
}

// ifColumn splits an ifEntry or ifXEntry instance OID into its table,
// column and ifIndex.
func ifColumn(oid []uint32) (x bool, col, ifIndex uint32, ok bool) {
	for _, t := range [][]uint32{oidIfEntry, oidIfXEntry} {
		if len(oid) == len(t)+2 && slices.Equal(oid[:len(t)], t) {
			return len(t) == len(oidIfXEntry), oid[len(t)], oid[len(t)+1], true
		}
	}
	return false, 0, 0, false
}

// interfaces describes the MIB's interfaces for a scenario, in ifIndex
// order: named by ifName (else ifDescr, else the ifIndex), with ifDescr and
// the ifIndex as aliases, the speed from ifHighSpeed (else ifSpeed) and up
// unless ifOperStatus says otherwise.
func (m *MIB) interfaces() ([]scenario.Interface, map[uint32]int) {
	type row struct {
		name, descr      string
		speed, highSpeed uint64
		oper             int64
	}
	rows := map[uint32]*row{}
	var order []uint32
	for i := range m.entries {
		e := &m.entries[i]
		x, col, idx, ok := ifColumn(e.oid)
		if !ok {
			continue
		}
		r := rows[idx]
		if r == nil {
			r = &row{oper: 1}
			rows[idx] = r
			order = append(order, idx)
		}
		switch {
		case !x && col == colIfDescr:
			r.descr = string(e.rec.Bytes)
		case !x && col == colIfSpeed:
			r.speed = e.rec.Uint
		case !x && col == colIfOperStatus:
			r.oper = e.rec.Int
		case x && col == colIfName:
			r.name = string(e.rec.Bytes)
		case x && col == colIfHighSpeed:
			r.highSpeed = e.rec.Uint
		}
	}
	slices.Sort(order)
	ifcs := make([]scenario.Interface, len(order))
	byIndex := make(map[uint32]int, len(order))
	for i, idx := range order {
		r := rows[idx]
		index := strconv.FormatUint(uint64(idx), 10)
		f := scenario.Interface{Name: r.name, Aliases: []string{index}, Up: r.oper == 1}
		if r.descr != "" && r.descr != r.name {
			f.Aliases = append(f.Aliases, r.descr)
		}
		if f.Name == "" {
			f.Name = r.descr
		}
		if f.Name == "" {
			f.Name = index
		}
		switch {
		case r.highSpeed > 0:
			f.Speed = float64(r.highSpeed) * 1e6
		case r.speed > 0 && r.speed < 1<<32-1: // 2^32−1 means "see ifHighSpeed"
			f.Speed = float64(r.speed)
		}
		ifcs[i], byIndex[idx] = f, i
	}
	return ifcs, byIndex
}

// bindScenario binds sc to the device's interfaces and records, for every
// ifTable/ifXTable counter and ifOperStatus of a scripted interface, how
// the scenario drives it.
func (d *Device) bindScenario(sc *scenario.Scenario) error {
	ifcs, byIndex := d.mib.interfaces()
	plans, err := sc.Bind(ifcs)
	if err != nil {
		return err
	}
	d.scripted = make([]*scripted, len(d.mib.entries))
	for i := range d.mib.entries {
		e := &d.mib.entries[i]
		x, col, idx, ok := ifColumn(e.oid)
		if !ok {
			continue
		}
		p := plans[byIndex[idx]]
		if p == nil {
			continue
		}
		switch {
		case !x && col == colIfOperStatus && e.rec.Tag == recording.TagInteger:
			d.scripted[i] = &scripted{plan: p, oper: true}
		case e.class == classCounter:
			role, ok := ifEntryCounters[col]
			if x {
				role, ok = ifXEntryCounters[col]
			}
			if !ok {
				role = scenario.Other
			}
			d.scripted[i] = &scripted{plan: p, counter: role}
		}
	}
	return nil
}

// scriptedValue renders e as the scenario has it at c: ifOperStatus down(2)
// while a link-down event holds, else as recorded; a counter at its
// recorded value plus the scenario's increase since Start (since the last
// reboot, from 0, after one).
func (d *Device) scriptedValue(e *entry, s *scripted, c clock) gosnmp.SnmpPDU {
	if s.oper {
		v := e.rec.Int
		if s.plan.Down(c.elapsed) {
			v = 2 // down
		}
		return gosnmp.SnmpPDU{Name: e.name, Type: gosnmp.Integer, Value: int(v)}
	}
	inc := s.plan.Increase(s.counter, d.opt.Rate, c.elapsed)
	if c.reboots > 0 {
		return d.counterPDU(e, uint64(max(0, inc-s.plan.Increase(s.counter, d.opt.Rate, c.elapsed-c.sinceBoot))))
	}
	return d.counterPDU(e, e.rec.Uint+uint64(inc))
}
