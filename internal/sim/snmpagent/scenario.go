package snmpagent

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netfeat/netfeat/internal/sim/scenario"
	"github.com/netfeat/netfeat/recording"
)

// IF-MIB (RFC 2863) tables a scenario drives: ifEntry and ifXEntry.
var (
	oidIfEntry  = []uint32{1, 3, 6, 1, 2, 1, 2, 2, 1}
	oidIfXEntry = []uint32{1, 3, 6, 1, 2, 1, 31, 1, 1, 1}
)

// Columns read to describe an interface.
const (
	colIfIndex       = 1  // ifEntry
	colIfDescr       = 2  // ifEntry
	colIfType        = 3  // ifEntry, IANAifType
	colIfSpeed       = 5  // ifEntry, bit/s
	colIfAdminStatus = 7  // ifEntry
	colIfOperStatus  = 8  // ifEntry
	colIfName        = 1  // ifXEntry
	colIfHighSpeed   = 15 // ifXEntry, Mbit/s

	ifTypeSoftwareLoopback = 24
)

// Roles of the counter columns; other counters of these tables
// (ifInUnknownProtos, …) are scenario.Other.
var (
	ifEntryCounters = map[uint32]scenario.Counter{
		10: scenario.InOctets, 11: scenario.InUnicastPkts, 12: scenario.InNUcastPkts, 13: scenario.InDiscards, 14: scenario.InErrors,
		16: scenario.OutOctets, 17: scenario.OutUnicastPkts, 18: scenario.OutNUcastPkts, 19: scenario.OutDiscards, 20: scenario.OutErrors,
	}
	ifXEntryCounters = map[uint32]scenario.Counter{
		2: scenario.InMulticastPkts, 3: scenario.InBroadcastPkts, 4: scenario.OutMulticastPkts, 5: scenario.OutBroadcastPkts,
		6: scenario.InOctets, 7: scenario.InUnicastPkts, 8: scenario.InMulticastPkts, 9: scenario.InBroadcastPkts,
		10: scenario.OutOctets, 11: scenario.OutUnicastPkts, 12: scenario.OutMulticastPkts, 13: scenario.OutBroadcastPkts,
	}
)

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

// bindInterfaces describes the MIB's interfaces, in ifIndex order: named
// by ifName (else ifDescr, else the ifIndex), with ifDescr and the ifIndex
// as aliases, the speed from ifHighSpeed (else ifSpeed), up when both
// ifAdminStatus and ifOperStatus say so (or are absent), a loopback when
// ifType is softwareLoopback or the name is Nokia's "system"; and gives
// every ifTable/ifXTable instance its interface and counter role.
func (m *MIB) bindInterfaces() {
	type row struct {
		name, descr      string
		speed, highSpeed uint64
		admin, oper      int64
		ifType           int64
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
			r = &row{admin: 1, oper: 1}
			rows[idx] = r
			order = append(order, idx)
		}
		switch {
		case !x && col == colIfDescr:
			r.descr = string(e.rec.Bytes)
		case !x && col == colIfType:
			r.ifType = e.rec.Int
		case !x && col == colIfSpeed:
			r.speed = e.rec.Uint
		case !x && col == colIfAdminStatus:
			r.admin = e.rec.Int
		case !x && col == colIfOperStatus:
			r.oper = e.rec.Int
			if e.rec.Tag == recording.TagInteger {
				e.class = classOperStatus
			}
		case x && col == colIfName:
			r.name = string(e.rec.Bytes)
		case x && col == colIfHighSpeed:
			r.highSpeed = e.rec.Uint
		}
		if e.class == classCounter {
			role, ok := ifEntryCounters[col]
			if x {
				role, ok = ifXEntryCounters[col]
			}
			if !ok {
				role = scenario.Other
			}
			e.role = role
		}
	}
	slices.Sort(order)
	m.ifcs = make([]scenario.Interface, len(order))
	m.ifIndex = order
	byIndex := make(map[uint32]int, len(order))
	for i, idx := range order {
		r := rows[idx]
		index := strconv.FormatUint(uint64(idx), 10)
		f := scenario.Interface{Name: r.name, Aliases: []string{index}, Up: r.admin == 1 && r.oper == 1,
			Loopback: r.ifType == ifTypeSoftwareLoopback || r.name == "system" || r.descr == "system" || strings.HasPrefix(r.descr, "system,")}
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
		m.ifcs[i], byIndex[idx] = f, i
	}
	for i := range m.entries {
		e := &m.entries[i]
		if _, _, idx, ok := ifColumn(e.oid); ok {
			e.ifc = byIndex[idx]
		}
	}
}

// bindScenario binds sc to the device's interfaces: the plan of every
// interface it scripts.
func (d *Device) bindScenario(sc *scenario.Scenario) error {
	plans, err := sc.Bind(d.mib.ifcs)
	if err != nil {
		return err
	}
	d.plans = plans
	return nil
}

// increase is how much counter e has advanced from Start until el: its
// interface's traffic (or the scenario's plan), less the outages taken on
// demand. Counters outside the interface tables stay still.
func (d *Device) increase(e *entry, el time.Duration) float64 {
	if e.ifc < 0 {
		return 0
	}
	rate := 0.0
	if d.mib.ifcs[e.ifc].CarriesTraffic() {
		rate = d.traffic.Rate(e.role)
	}
	var p *scenario.Plan
	if d.plans != nil {
		p = d.plans[e.ifc]
	}
	inc := func(t time.Duration) float64 {
		if p != nil {
			return p.Increase(e.role, rate, t)
		}
		return rate * t.Seconds()
	}
	if !d.flapped.Load() {
		return inc(el)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.outages[e.ifc].Increase(inc, el)
}

// forcedDown reports whether interface i (a position in MIB.ifcs) is
// held down el after Start by the scenario or on demand.
func (d *Device) forcedDown(i int, el time.Duration) bool {
	if d.plans != nil && d.plans[i] != nil && d.plans[i].Down(el) {
		return true
	}
	if !d.flapped.Load() {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.outages[i].Down(el)
}

// down reports whether interface i is operationally down el after Start:
// recorded so, or forced down.
func (d *Device) down(i int, el time.Duration) bool {
	return !d.mib.ifcs[i].Up || d.forcedDown(i, el)
}
