package gnmitarget

import (
	"fmt"
	"slices"
	"strings"

	"github.com/netfeat/netfeat/collectors/sim/scenario"
)

// Roles of the interface counter leaves, by leaf name: OpenConfig and
// IOS-XE statistics share names; IOS-XR generic-counters and NX-OS DME rmon
// have their own.
var counterRoles = map[string]scenario.Counter{
	// openconfig-interfaces state/counters, Cisco-IOS-XE-interfaces-oper statistics
	"in-octets": scenario.InOctets, "out-octets": scenario.OutOctets,
	"in-unicast-pkts": scenario.InUnicastPkts, "out-unicast-pkts": scenario.OutUnicastPkts,
	"in-multicast-pkts": scenario.InMulticastPkts, "out-multicast-pkts": scenario.OutMulticastPkts,
	"in-broadcast-pkts": scenario.InBroadcastPkts, "out-broadcast-pkts": scenario.OutBroadcastPkts,
	"in-errors": scenario.InErrors, "out-errors": scenario.OutErrors,
	"in-discards": scenario.InDiscards, "out-discards": scenario.OutDiscards,
	// Cisco-IOS-XR-infra-statsd-oper generic-counters
	"bytes-received": scenario.InOctets, "bytes-sent": scenario.OutOctets,
	"packets-received": scenario.InPkts, "packets-sent": scenario.OutPkts,
	"multicast-packets-received": scenario.InMulticastPkts, "multicast-packets-sent": scenario.OutMulticastPkts,
	"broadcast-packets-received": scenario.InBroadcastPkts, "broadcast-packets-sent": scenario.OutBroadcastPkts,
	"input-errors": scenario.InErrors, "output-errors": scenario.OutErrors,
	"input-drops": scenario.InDiscards, "output-drops": scenario.OutDiscards,
	// NX-OS DME rmon (dbgIfHCIn/…, dbgIfIn/…; the direction comes from the object)
	"dbgIfHCIn/octets": scenario.InOctets, "dbgIfHCOut/octets": scenario.OutOctets,
	"dbgIfHCIn/ucastPkts": scenario.InUnicastPkts, "dbgIfHCOut/ucastPkts": scenario.OutUnicastPkts,
	"dbgIfHCIn/multicastPkts": scenario.InMulticastPkts, "dbgIfHCOut/multicastPkts": scenario.OutMulticastPkts,
	"dbgIfHCIn/broadcastPkts": scenario.InBroadcastPkts, "dbgIfHCOut/broadcastPkts": scenario.OutBroadcastPkts,
	"dbgIfIn/errors": scenario.InErrors, "dbgIfOut/errors": scenario.OutErrors,
	"dbgIfIn/discards": scenario.InDiscards, "dbgIfOut/discards": scenario.OutDiscards,
}

// roleOf returns the role of a counter leaf named name (its last path
// element, or "object/attribute" for NX-OS DME); scenario.Other for any
// other counter.
func roleOf(name string) scenario.Counter {
	if r, ok := counterRoles[name]; ok {
		return r
	}
	return scenario.Other
}

// portSpeeds are the nominal speeds of Cisco interface types, by name
// prefix, with their openconfig-if-ethernet ETHERNET_SPEED identity.
var portSpeeds = []struct {
	prefix   string
	bps      float64
	identity string
}{
	{"FourHundredGigE", 400e9, "SPEED_400GB"},
	{"HundredGigE", 100e9, "SPEED_100GB"},
	{"FiftyGigE", 50e9, "SPEED_50GB"},
	{"FortyGigE", 40e9, "SPEED_40GB"},
	{"TwentyFiveGigE", 25e9, "SPEED_25GB"},
	{"TenGigE", 10e9, "SPEED_10GB"},
	{"TenGigabitEthernet", 10e9, "SPEED_10GB"},
	{"GigabitEthernet", 1e9, "SPEED_1GB"},
	{"MgmtEth", 1e9, "SPEED_1GB"},
	{"FastEthernet", 100e6, "SPEED_100MB"},
}

// portSpeed returns the speed an interface's name implies, or 0 and "" for
// interfaces whose name does not say (tunnels, Null0, bundles, NX-OS ethN).
func portSpeed(name string) (float64, string) {
	for _, p := range portSpeeds {
		if strings.HasPrefix(name, p.prefix) {
			return p.bps, p.identity
		}
	}
	return 0, ""
}

// addCounter adds a counter leaf of interface ifc whose role comes from
// name.
func (m *model) addCounter(l *leaf, origin, path, ifc, name string) {
	l.iface, l.role = ifc, roleOf(name)
	m.add(l, origin, path)
}

// addOper adds an operational-state leaf of interface ifc that reads up
// normally and down while a scenario's link-down event holds.
func (m *model) addOper(origin, path, ifc, up, down string) {
	m.add(&leaf{kind: kindOper, s: up, down: down, iface: ifc}, origin, path)
}

// bind binds a scenario to the model's interfaces and hands every leaf of a
// scripted interface its plan.
func (m *model) bind(sc *scenario.Scenario) error {
	ifcs := make([]scenario.Interface, len(m.xr))
	for i, x := range m.xr {
		speed, _ := portSpeed(x.name)
		ifcs[i] = scenario.Interface{Name: x.name, Speed: speed, Up: x.up}
	}
	plans, err := sc.Bind(ifcs)
	if err != nil {
		return err
	}
	for _, l := range m.leaves {
		if l.iface == "" {
			continue
		}
		i := slices.IndexFunc(ifcs, func(f scenario.Interface) bool { return f.Name == l.iface })
		if i < 0 {
			return fmt.Errorf("leaf of unknown interface %s", l.iface) // the model adds leaves only for m.xr
		}
		l.plan = plans[i]
	}
	return nil
}
