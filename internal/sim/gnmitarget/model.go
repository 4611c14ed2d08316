package gnmitarget

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/internal/sim/scenario"
)

//go:embed recordings/*.json recordings/*.jsonl
var recordings embed.FS

// leafKind says how a simulated leaf's value evolves.
type leafKind uint8

const (
	kindCounter leafKind = iota // uint64 that advances by rate per second
	kindUint                    // uint64 that stays
	kindInt                     // int64 that stays
	kindFloat                   // float64 that stays
	kindString                  // string that stays
	kindRaw                     // a recorded TypedValue replayed as-is
	kindOper                    // operational state: s, or down while a scenario's link-down holds
)

// leaf is one value of the simulated device.
type leaf struct {
	origin string
	elems  []*gpb.PathElem
	kind   leafKind
	// replayed marks a counter of a replayed SubscribeResponse, which
	// belongs to no known interface: it carries traffic if its role does.
	replayed bool
	start    uint64  // counter/uint: recorded value
	rate     float64 // counter: increase per second
	i        int64
	f        float64
	s        string
	raw      *gpb.TypedValue
	// iface is the interface an interface leaf belongs to, role the
	// counter's role there; plan, set when a scenario scripts the
	// interface, drives counters and oper state.
	iface string
	role  scenario.Counter
	plan  *scenario.Plan
	down  string // kindOper: the value while the link is down
	// link is the state of the leaf's interface (nil for leaves of no
	// interface): its on-demand outages stop counters and turn oper
	// leaves down.
	link *link
}

// link is one interface's link state: what its recording says, what the
// scenario does to it, and the outages SetOperStatus started. Guarded by
// the Server's pubMu.
type link struct {
	name      string
	recorded  bool // recorded up
	plan      *scenario.Plan
	outages   scenario.Outages
	notified  bool    // down as last published by an event
	operLeafs []*leaf // kindOper leaves of the interface
}

// forcedDown reports whether the scenario or an on-demand outage holds the
// link down el after the start.
func (k *link) forcedDown(el time.Duration) bool {
	return (k.plan != nil && k.plan.Down(el)) || k.outages.Down(el)
}

// down reports whether the link is operationally down el after the start.
func (k *link) down(el time.Duration) bool { return !k.recorded || k.forcedDown(el) }

// value is the leaf's value elapsed after the start.
func (l *leaf) value(elapsed time.Duration) *gpb.TypedValue {
	switch l.kind {
	case kindCounter:
		inc := l.increase
		if l.link != nil {
			inc = func(t time.Duration) float64 { return l.link.outages.Increase(l.increase, t) }
		}
		return &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: l.start + uint64(inc(elapsed))}}
	case kindOper:
		if l.link != nil && l.link.forcedDown(elapsed) {
			return &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: l.down}}
		}
		return &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: l.s}}
	case kindUint:
		return &gpb.TypedValue{Value: &gpb.TypedValue_UintVal{UintVal: l.start}}
	case kindInt:
		return &gpb.TypedValue{Value: &gpb.TypedValue_IntVal{IntVal: l.i}}
	case kindFloat:
		return &gpb.TypedValue{Value: &gpb.TypedValue_DoubleVal{DoubleVal: l.f}}
	case kindString:
		return &gpb.TypedValue{Value: &gpb.TypedValue_StringVal{StringVal: l.s}}
	}
	return l.raw
}

// increase is how much a counter leaf has advanced el after the start,
// outages aside.
func (l *leaf) increase(el time.Duration) float64 {
	if l.plan != nil {
		return l.plan.Increase(l.role, l.rate, el)
	}
	return l.rate * el.Seconds()
}

// model is the simulated device: its leaves and what the Subscribe
// front end needs to resolve requests (list keys, origins by first element).
type model struct {
	leaves []*leaf
	// lists maps origin NUL "a/b/list" to the list's key names.
	lists map[string][]string
	// origins maps a top-level element name to the origin it lives under.
	origins map[string]string
	models  map[string]bool
	// xr holds the interfaces the OpenConfig trees are built for.
	xr []xrIface
	// links are the interfaces' link states, by name.
	links map[string]*link
}

func newModel() *model {
	return &model{lists: map[string][]string{}, origins: map[string]string{}, models: map[string]bool{}}
}

// add registers a leaf at origin:path (keys in brackets).
func (m *model) add(l *leaf, origin, path string) {
	p, err := gnmipath.Parse(path)
	if err != nil {
		panic(fmt.Sprintf("simulator model path %q: %v", path, err)) // paths are literals in this file
	}
	l.origin, l.elems = origin, p.Elem
	m.register(origin, p.Elem)
	m.leaves = append(m.leaves, l)
}

func (m *model) register(origin string, elems []*gpb.PathElem) {
	if len(elems) == 0 {
		return
	}
	m.origins[elems[0].GetName()] = origin
	m.models[origin] = true
	var chain strings.Builder
	for i, e := range elems {
		if i > 0 {
			chain.WriteByte('/')
		}
		chain.WriteString(e.GetName())
		if len(e.GetKey()) == 0 {
			continue
		}
		k := origin + "\x00" + chain.String()
		if _, ok := m.lists[k]; ok {
			continue
		}
		names := make([]string, 0, len(e.GetKey()))
		for n := range e.GetKey() {
			names = append(names, n)
		}
		sort.Strings(names)
		m.lists[k] = names
	}
}

// counter is a counter leaf starting at its recorded value; its rate
// comes from its role and its interface's traffic (model.setTraffic).
func counter(start uint64) *leaf {
	return &leaf{kind: kindCounter, start: start}
}

// buildModel assembles the device for platform from the embedded captures,
// or from the file at recording when it is set.
func buildModel(platform, recording string) (*model, error) {
	m := newModel()
	if recording != "" {
		b, err := os.ReadFile(recording)
		if err != nil {
			return nil, fmt.Errorf("read recording: %w", err)
		}
		if err := m.load(platform, b); err != nil {
			return nil, fmt.Errorf("recording %s: %w", recording, err)
		}
		return m, nil
	}
	var err error
	switch platform {
	case gnmi.PlatformNXOS:
		err = m.nxos()
	case gnmi.PlatformIOSXE:
		err = m.iosxe()
	default:
		err = m.iosxr()
	}
	return m, err
}

// load detects the recording's format: an IOS-XR MDT dump (array of
// {"Telemetry":…,"Rows":…}) or a list of gNMI SubscribeResponses in
// protobuf JSON (Telegraf's responses.json).
func (m *model) load(platform string, b []byte) error {
	var probe []json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return fmt.Errorf("want a JSON array: %w", err)
	}
	var head map[string]json.RawMessage
	if len(probe) > 0 {
		_ = json.Unmarshal(probe[0], &head)
	}
	if head["Telemetry"] != nil {
		cpu, err := m.mdtDump(b)
		if err != nil {
			return err
		}
		m.openconfigCommon(cpu)
		return nil
	}
	for i, raw := range probe {
		r := &gpb.SubscribeResponse{}
		if err := protojson.Unmarshal(raw, r); err != nil {
			return fmt.Errorf("response %d: %w", i, err)
		}
		n := r.GetUpdate()
		if n == nil {
			continue
		}
		origin := n.GetPrefix().GetOrigin()
		for _, u := range n.GetUpdate() {
			elems := append(append([]*gpb.PathElem(nil), n.GetPrefix().GetElem()...), u.GetPath().GetElem()...)
			o := origin
			if o == "" {
				o = u.GetPath().GetOrigin()
			}
			if o == "" && len(elems) > 0 {
				if i := strings.IndexByte(elems[0].GetName(), ':'); i > 0 {
					o = elems[0].GetName()[:i]
					elems[0] = &gpb.PathElem{Name: elems[0].GetName()[i+1:], Key: elems[0].GetKey()}
				}
			}
			l := &leaf{kind: kindRaw, raw: u.GetVal(), origin: o, elems: elems}
			if uv, ok := u.GetVal().GetValue().(*gpb.TypedValue_UintVal); ok && len(elems) > 0 {
				// A counter whose name gives its role follows the traffic
				// model; other integers (gauges, errors) stay.
				l.kind, l.start, l.role = kindCounter, uv.UintVal, roleOf(elems[len(elems)-1].GetName())
				l.replayed = true
			}
			m.register(o, elems)
			m.leaves = append(m.leaves, l)
		}
	}
	if len(m.leaves) == 0 {
		return fmt.Errorf("no updates in recording")
	}
	return nil
}

// mdtRow is one row of an IOS-XR MDT dump.
type mdtDump struct {
	Telemetry struct {
		EncodingPath string `json:"encoding_path"`
	}
	Rows []struct {
		Keys    map[string]any
		Content map[string]json.RawMessage
	}
}

// xrIface is one interface of the IOS-XR capture with its generic
// counters.
type xrIface struct {
	name     string
	counters map[string]uint64
	up       bool // recorded operational state
	// physical marks a physical port whose name does not give its speed
	// (NX-OS ethN/M): it carries traffic all the same.
	physical bool
}

// mdtDump loads the IOS-XR generic-counters and wdsysmon rows as native
// leaves and returns the interfaces and CPU figures it found.
func (m *model) mdtDump(b []byte) (cpu map[string]uint64, err error) {
	var dumps []mdtDump
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&dumps); err != nil {
		return nil, fmt.Errorf("IOS-XR MDT dump: %w", err)
	}
	cpu = map[string]uint64{}
	m.xr = nil
	for _, d := range dumps {
		origin, path, _ := strings.Cut(d.Telemetry.EncodingPath, ":")
		for _, r := range d.Rows {
			switch path {
			case "infra-statistics/interfaces/interface/latest/generic-counters":
				name := fmt.Sprint(r.Keys["interface-name"])
				ifc := xrIface{name: name, counters: map[string]uint64{}, up: true}
				fields := sortedKeys(r.Content)
				for _, f := range fields {
					var v uint64
					if err := json.Unmarshal(r.Content[f], &v); err != nil {
						continue
					}
					ifc.counters[f] = v
					p := fmt.Sprintf("infra-statistics/interfaces/interface[interface-name=%s]/latest/generic-counters/%s", name, f)
					// Traffic counters follow the interface's traffic;
					// errors, drops and the rest stay as recorded unless
					// a scenario makes them climb.
					m.addCounter(counter(v), origin, p, name, f)
				}
				m.xr = append(m.xr, ifc)
			case "system-monitoring/cpu-utilization":
				node := fmt.Sprint(r.Keys["node-name"])
				for _, f := range []string{"total-cpu-one-minute", "total-cpu-five-minute", "total-cpu-fifteen-minute"} {
					var v uint64
					if err := json.Unmarshal(r.Content[f], &v); err != nil {
						return nil, fmt.Errorf("cpu row %s: %s: %w", node, f, err)
					}
					cpu[node+"\x00"+f] = v
					m.add(&leaf{kind: kindUint, start: v}, origin, fmt.Sprintf("system-monitoring/cpu-utilization[node-name=%s]/%s", node, f))
				}
			}
		}
	}
	if len(m.xr) == 0 {
		return nil, fmt.Errorf("no generic-counters rows")
	}
	return cpu, nil
}

func sortedKeys[V any](mp map[string]V) []string {
	ks := make([]string, 0, len(mp))
	for k := range mp {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// iosxr builds an IOS-XR router: the native models from the MDT capture
// and the OpenConfig trees derived from it.
func (m *model) iosxr() error {
	b, err := recordings.ReadFile("recordings/iosxr-mdt-dump.json")
	if err != nil {
		return err
	}
	cpu, err := m.mdtDump(b)
	if err != nil {
		return err
	}
	m.openconfigCommon(cpu)
	return nil
}

// openconfigCommon adds openconfig-interfaces (from m.xr), -platform and
// -system trees. Interface counters start at the capture's generic
// counters; CPU utilisation comes from the wdsysmon rows. Temperature and
// memory are not in any capture and are fixed, plausible values.
func (m *model) openconfigCommon(cpu map[string]uint64) {
	for _, ifc := range m.xr {
		c := ifc.counters
		base := fmt.Sprintf("interfaces/interface[name=%s]/state", ifc.name)
		oc := []struct {
			leaf string
			val  uint64
		}{
			{"in-octets", c["bytes-received"]}, {"out-octets", c["bytes-sent"]},
			{"in-unicast-pkts", sub(c["packets-received"], c["multicast-packets-received"]+c["broadcast-packets-received"])},
			{"out-unicast-pkts", sub(c["packets-sent"], c["multicast-packets-sent"]+c["broadcast-packets-sent"])},
			{"in-multicast-pkts", c["multicast-packets-received"]}, {"out-multicast-pkts", c["multicast-packets-sent"]},
			{"in-broadcast-pkts", c["broadcast-packets-received"]}, {"out-broadcast-pkts", c["broadcast-packets-sent"]},
			{"in-errors", c["input-errors"]}, {"out-errors", c["output-errors"]},
			{"in-discards", c["input-drops"]}, {"out-discards", c["output-drops"]},
		}
		for _, x := range oc {
			p := base + "/counters/" + x.leaf
			m.addCounter(counter(x.val), "openconfig-interfaces", p, ifc.name, x.leaf)
		}
		m.addOper("openconfig-interfaces", base+"/oper-status", ifc.name, "UP", "DOWN")
		m.add(&leaf{kind: kindString, s: "UP"}, "openconfig-interfaces", base+"/admin-status")
		if _, identity := portSpeed(ifc.name); identity != "" {
			m.add(&leaf{kind: kindString, s: identity}, "openconfig-interfaces",
				fmt.Sprintf("interfaces/interface[name=%s]/ethernet/state/port-speed", ifc.name))
		}
	}
	nodes := map[string]bool{}
	for k := range cpu {
		node, _, _ := strings.Cut(k, "\x00")
		nodes[node] = true
	}
	if len(nodes) == 0 {
		nodes["0/RP0/CPU0"] = true
		cpu["0/RP0/CPU0\x00total-cpu-one-minute"] = 3
		cpu["0/RP0/CPU0\x00total-cpu-five-minute"] = 2
		cpu["0/RP0/CPU0\x00total-cpu-fifteen-minute"] = 2
	}
	for _, node := range sortedKeys(nodes) {
		one, five, fifteen := cpu[node+"\x00total-cpu-one-minute"], cpu[node+"\x00total-cpu-five-minute"], cpu[node+"\x00total-cpu-fifteen-minute"]
		base := fmt.Sprintf("components/component[name=%s]", node)
		m.add(&leaf{kind: kindUint, start: one}, "openconfig-platform", base+"/cpu/utilization/state/instant")
		m.add(&leaf{kind: kindUint, start: five}, "openconfig-platform", base+"/cpu/utilization/state/avg")
		m.add(&leaf{kind: kindUint, start: min(one, five, fifteen)}, "openconfig-platform", base+"/cpu/utilization/state/min")
		m.add(&leaf{kind: kindUint, start: max(one, five, fifteen)}, "openconfig-platform", base+"/cpu/utilization/state/max")
		m.add(&leaf{kind: kindFloat, f: 41.5}, "openconfig-platform", base+"/state/temperature/instant")
		m.add(&leaf{kind: kindFloat, f: 40.8}, "openconfig-platform", base+"/state/temperature/avg")
		m.add(&leaf{kind: kindFloat, f: 39.0}, "openconfig-platform", base+"/state/temperature/min")
		m.add(&leaf{kind: kindFloat, f: 44.0}, "openconfig-platform", base+"/state/temperature/max")
	}
	m.add(&leaf{kind: kindUint, start: 16 << 30}, "openconfig-system", "system/memory/state/physical")
	m.add(&leaf{kind: kindUint, start: 1 << 30}, "openconfig-system", "system/memory/state/reserved")
	m.add(&leaf{kind: kindUint, start: 6 << 30}, "openconfig-system", "system/memory/state/used")
	m.add(&leaf{kind: kindUint, start: 9 << 30}, "openconfig-system", "system/memory/state/free")
}

func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// iosxe builds an IOS-XE switch from the interfaces named in the IOS-XE
// captures; GigabitEthernet0/0/0 starts at its recorded in-octets.
func (m *model) iosxe() error {
	names := map[string]uint64{}
	b, err := recordings.ReadFile("recordings/iosxe-interfaces-oper.json")
	if err != nil {
		return err
	}
	var ev struct {
		Updates []struct{ Path string }
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		return fmt.Errorf("iosxe capture: %w", err)
	}
	for _, u := range ev.Updates {
		if n := keyValue(u.Path, "name"); n != "" {
			names[n] = 0
		}
	}
	b, err = recordings.ReadFile("recordings/iosxe-oc-in-octets.jsonl")
	if err != nil {
		return err
	}
	var oc struct {
		Updates []struct {
			Path   string
			Values map[string]json.Number
		}
	}
	if err := json.Unmarshal(bytes.TrimSpace(b), &oc); err != nil {
		return fmt.Errorf("iosxe capture: %w", err)
	}
	for _, u := range oc.Updates {
		for _, v := range u.Values {
			n, _ := v.Int64()
			names[keyValue(u.Path, "name")] = uint64(n)
		}
	}
	for _, name := range sortedKeys(names) {
		inOctets := names[name]
		ifc := xrIface{name: name, counters: map[string]uint64{
			"bytes-received": inOctets, "bytes-sent": inOctets / 3,
			"packets-received": inOctets / 500, "packets-sent": inOctets / 1500,
		}, up: true}
		m.xr = append(m.xr, ifc)
		base := fmt.Sprintf("interfaces/interface[name=%s]", name)
		const origin = "Cisco-IOS-XE-interfaces-oper"
		for _, s := range []struct {
			leaf  string
			start uint64
		}{
			{"in-octets", inOctets}, {"out-octets", inOctets / 3},
			{"in-unicast-pkts", inOctets / 500}, {"out-unicast-pkts", inOctets / 1500},
			{"in-broadcast-pkts", 0}, {"out-broadcast-pkts", 0},
			{"in-multicast-pkts", 0}, {"out-multicast-pkts", 0},
			{"in-discards", 0}, {"out-discards", 0}, {"in-errors", 0}, {"out-errors", 0},
		} {
			p := base + "/statistics/" + s.leaf
			m.addCounter(counter(s.start), origin, p, name, s.leaf)
		}
		m.addOper(origin, base+"/oper-status", name, "if-oper-state-ready", "if-oper-state-no-pass")
	}
	m.openconfigCommon(map[string]uint64{})
	return nil
}

// keyValue returns the value of key k in a path string, "" if absent.
func keyValue(path, k string) string {
	p, err := gnmipath.Parse(strings.TrimPrefix(path, "rfc7951:"))
	if err != nil {
		return ""
	}
	for _, e := range p.Elem {
		if v, ok := e.Key[k]; ok {
			return v
		}
	}
	return ""
}

// nxos builds an NX-OS switch: DME objects under sys/intf for the
// interface in the NX-OS capture (ethpmPhysIf attributes as recorded) plus
// rmon counters, and the OpenConfig trees.
func (m *model) nxos() error {
	b, err := recordings.ReadFile("recordings/nxos-dme-ethpmphysif.json")
	if err != nil {
		return err
	}
	var pkt struct {
		DataGpbkv []gpbkv `json:"dataGpbkv"`
	}
	if err := json.Unmarshal(b, &pkt); err != nil {
		return fmt.Errorf("nxos capture: %w", err)
	}
	attrs := map[string]string{}
	for _, f := range pkt.DataGpbkv {
		f.collect("attributes", attrs)
	}
	dn := attrs["dn"] // sys/intf/phys-[eth1/11]/phys
	id := between(dn, "phys-[", "]")
	if id == "" {
		return fmt.Errorf("nxos capture: no interface dn in %q", dn)
	}
	const origin = "DME"
	for _, name := range []string{id} {
		// DME objects flattened as <dn>/<attribute>; the bracketed part of
		// the dn ("phys-[eth1/11]") is a key named id.
		base := fmt.Sprintf("sys/intf/phys-[id=%s]", name)
		m.addOper(origin, base+"/phys/operSt", name, attrs["operSt"], "down")
		for _, a := range []string{"operStQual", "operBitset", "lastLinkStChg"} {
			m.add(&leaf{kind: kindString, s: attrs[a]}, origin, base+"/phys/"+a)
		}
		m.add(&leaf{kind: kindInt, i: 2}, origin, base+"/phys/resetCtr")
		m.add(&leaf{kind: kindString, s: "up"}, origin, base+"/adminSt")
		for _, dir := range []string{"dbgIfHCIn", "dbgIfHCOut"} {
			for _, c := range []string{"octets", "ucastPkts", "multicastPkts", "broadcastPkts"} {
				p := base + "/" + dir + "/" + c
				m.addCounter(counter(0), origin, p, name, dir+"/"+c)
			}
		}
		for _, dir := range []string{"dbgIfIn", "dbgIfOut"} {
			for _, c := range []string{"errors", "discards"} {
				p := base + "/" + dir + "/" + c
				m.addCounter(counter(0), origin, p, name, dir+"/"+c)
			}
		}
		m.xr = append(m.xr, xrIface{name: name, counters: map[string]uint64{}, up: attrs["operSt"] == "up", physical: true})
	}
	m.openconfigCommon(map[string]uint64{})
	return nil
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	j := strings.Index(s, b)
	if j < 0 {
		return ""
	}
	return s[:j]
}

// gpbkv is Cisco's self-describing key-value telemetry encoding as JSON.
type gpbkv struct {
	Name        string  `json:"name"`
	StringValue *string `json:"stringValue"`
	Fields      []gpbkv `json:"fields"`
}

// collect copies the string fields found below every field named
// container.
func (g gpbkv) collect(container string, out map[string]string) {
	g.walk(container, false, out)
}

func (g gpbkv) walk(container string, inside bool, out map[string]string) {
	if inside && g.StringValue != nil {
		out[g.Name] = *g.StringValue
	}
	inside = inside || g.Name == container
	for _, f := range g.Fields {
		f.walk(container, inside, out)
	}
}
