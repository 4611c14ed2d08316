package gnmitarget

import (
	"fmt"
	"strings"

	"github.com/netfeat/netfeat/internal/sim/scenario"
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

// isLoopback reports whether an interface name is a software interface
// that carries no traffic.
func isLoopback(name string) bool {
	for _, p := range []string{"Loopback", "Null", "lo", "tunnel", "Tunnel"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// finish gives every leaf of an interface its link state and its counter
// rate, and binds the scenario (when not nil) to the interfaces. An
// interface carries tr when it is recorded up, is not a loopback, and has
// a speed (from its name) or is a physical port; replayed counters of no
// known interface carry it too.
func (m *model) finish(sc *scenario.Scenario, tr scenario.Traffic) error {
	ifcs := make([]scenario.Interface, len(m.xr))
	for i, x := range m.xr {
		speed, _ := portSpeed(x.name)
		ifcs[i] = scenario.Interface{Name: x.name, Speed: speed, Up: x.up, Loopback: isLoopback(x.name)}
	}
	plans := make([]*scenario.Plan, len(ifcs))
	if sc != nil {
		var err error
		if plans, err = sc.Bind(ifcs); err != nil {
			return err
		}
	}
	m.links = make(map[string]*link, len(ifcs))
	carries := make(map[string]bool, len(ifcs))
	for i, f := range ifcs {
		m.links[f.Name] = &link{name: f.Name, recorded: f.Up, plan: plans[i]}
		carries[f.Name] = f.Up && !f.Loopback && (f.Speed > 0 || m.xr[i].physical)
	}
	for _, l := range m.leaves {
		if l.replayed {
			l.rate = tr.Rate(l.role)
		}
		if l.iface == "" {
			continue
		}
		k := m.links[l.iface]
		if k == nil {
			return fmt.Errorf("leaf of unknown interface %s", l.iface) // the model adds leaves only for m.xr
		}
		l.link, l.plan = k, k.plan
		if l.kind == kindOper {
			k.operLeafs = append(k.operLeafs, l)
		}
		if l.kind == kindCounter && carries[l.iface] {
			l.rate = tr.Rate(l.role)
		}
	}
	for _, k := range m.links {
		k.notified = k.down(0)
	}
	return nil
}
