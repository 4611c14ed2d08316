package normalize

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/schema"
)

// derived is a rate computed from a counter mapping, with the utilisation
// computed from that rate (when the catalog defines one).
type derived struct {
	metric string
	scale  float64
	util   string // utilisation metric derived from this rate, or ""
}

// combo joins several columns or sibling leaves into one value.
type combo struct {
	id    int
	parts int
	conv  *mapping // the mapping that carries metric, scale and component
}

// mapping is a compiled SNMP or gNMI mapping.
type mapping struct {
	id       int
	role     string
	metric   string
	kind     schema.MetricKind
	scale    float64
	offset   float64
	enum     map[string]int // lower-case names and decimal numbers → canonical number
	tmpl     template
	fallback bool
	scalar   bool
	suffix   string
	object   string
	rates    []derived
	speed    bool // the metric is interface.speed
	dbm      bool // convert mW to dBm
	absent   []float64
	div      float64 // when scale is 1/div for an integer div, divide instead (exact decimals)
	sources  [4]string
	combo    *combo
	part     int
	sign     float64
	bits     uint8 // counter width from the model (counter_bits); 0: from the wire
}

// compiled is a profile with its inheritance resolved and its mappings
// indexed for lookup.
type compiled struct {
	name      string
	priority  int
	oidPrefix []string
	descr     []*regexp.Regexp
	origins   []string
	names     []NameTable
	nameCols  map[string]nameCol // column OID → table, preference
	snmp      map[string][]*mapping
	ignore    []string
	gnmi      map[gnmiKey][]*mapping
	gnmiClass map[string]bool // origin classes the profile maps
	scalars   []string        // OIDs to GET
	columns   []string        // column OIDs to walk
	hasUptime bool
	descrText string
	nMappings int
	nextCombo int
	nextMapID int
	oids      *oidCache // resolved OIDs, shared by the profile's devices
}

type nameCol struct {
	table int
	pref  int
}

type gnmiKey struct {
	class, schema string
}

// profileSet is an immutable compiled set of profiles.
type profileSet struct {
	list   []*compiled
	byName map[string]*compiled
}

// compileSet compiles validated profiles.
func compileSet(srcs []profileSource) (*profileSet, error) {
	byName := map[string]profileSource{}
	for _, s := range srcs {
		byName[s.Name] = s
	}
	set := &profileSet{byName: map[string]*compiled{}}
	for _, s := range srcs {
		c, err := compileProfile(s, byName)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrProfile, s.file, err)
		}
		set.list = append(set.list, c)
		set.byName[c.name] = c
	}
	return set, nil
}

// lineage returns p's ancestors then p, each once, parents first.
func lineage(name string, byName map[string]profileSource, seen map[string]bool, out []profileSource) []profileSource {
	if seen[name] {
		return out
	}
	seen[name] = true
	p := byName[name]
	for _, e := range p.Extends {
		out = lineage(e, byName, seen, out)
	}
	return append(out, p)
}

func compileProfile(src profileSource, byName map[string]profileSource) (*compiled, error) {
	c := &compiled{
		name:      src.Name,
		priority:  src.Priority,
		oidPrefix: src.Match.SysObjectID,
		origins:   src.Match.GNMIOrigins,
		nameCols:  map[string]nameCol{},
		snmp:      map[string][]*mapping{},
		gnmi:      map[gnmiKey][]*mapping{},
		gnmiClass: map[string]bool{},
		descrText: src.Description,
		oids:      newOIDCache(),
	}
	for _, d := range src.Match.SysDescr {
		c.descr = append(c.descr, regexp.MustCompile(d))
	}
	line := lineage(src.Name, byName, map[string]bool{}, nil)

	// Names tables: later (child) definitions replace earlier ones.
	tableIdx := map[string]int{}
	for _, p := range line {
		for _, n := range p.SNMP.Names {
			if i, ok := tableIdx[n.Name]; ok {
				c.names[i] = n
				continue
			}
			tableIdx[n.Name] = len(c.names)
			c.names = append(c.names, n)
		}
	}
	for i, n := range c.names {
		for pref, o := range n.OIDs {
			c.nameCols[o] = nameCol{table: i, pref: pref}
		}
	}

	// SNMP mappings: a child's mapping for the same OID (and suffix)
	// replaces the parent's.
	type snmpDef struct {
		m       SNMPMapping
		profile string
	}
	var defs []snmpDef
	pos := map[string]int{}
	for _, p := range line {
		for _, m := range p.SNMP.Metrics {
			k := m.OID + "|" + m.IndexSuffix + "|" + m.Metric + "|" + m.Role
			if i, ok := pos[k]; ok {
				defs[i] = snmpDef{m, p.Name}
				continue
			}
			pos[k] = len(defs)
			defs = append(defs, snmpDef{m, p.Name})
		}
		c.ignore = append(c.ignore, p.SNMP.Ignore...)
	}
	scalarSet, colSet := map[string]bool{}, map[string]bool{}
	for _, n := range c.names {
		for _, o := range n.OIDs {
			colSet[o] = true
		}
	}
	for _, d := range defs {
		m, err := c.compileConversion(d.m.Conversion, d.m.Object, false)
		if err != nil {
			return nil, fmt.Errorf("snmp mapping %s (%s): %w", d.m.OID, d.m.Object, err)
		}
		m.scalar, m.suffix = d.m.Scalar, d.m.IndexSuffix
		oids := append([]string{d.m.OID}, d.m.Plus...)
		oids = append(oids, d.m.Minus...)
		for i, pm := range c.expandCombo(m, len(oids), len(d.m.Plus)) {
			o := oids[i]
			c.snmp[o] = append(c.snmp[o], pm)
			if d.m.Scalar {
				scalarSet[o+".0"] = true
			} else {
				colSet[o] = true
			}
		}
		if d.m.OID == "1.3.6.1.2.1.1.3" {
			c.hasUptime = true
		}
		c.nMappings++
	}
	// The poller always needs the system scalars the normalizer itself
	// uses: sysDescr, sysObjectID, sysUpTime.
	for _, o := range []string{"1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.3.0"} {
		scalarSet[o] = true
	}
	c.scalars = sortedKeys(scalarSet)
	c.columns = sortedKeys(colSet)

	// gNMI mappings.
	type gnmiDef struct {
		m       GNMIMapping
		profile string
	}
	var gdefs []gnmiDef
	gpos := map[string]int{}
	for _, p := range line {
		for _, m := range p.GNMI {
			pp, _ := gnmipath.SplitPath(m.Path)
			k := originClass(m.Origin) + "|" + pp.Schema + "|" + m.Metric + "|" + m.Role
			if i, ok := gpos[k]; ok {
				gdefs[i] = gnmiDef{m, p.Name}
				continue
			}
			gpos[k] = len(gdefs)
			gdefs = append(gdefs, gnmiDef{m, p.Name})
		}
	}
	for _, d := range gdefs {
		cite := d.m.Leaf
		if cite == "" {
			cite = d.m.Origin + ":" + d.m.Path
		}
		m, err := c.compileConversion(d.m.Conversion, cite, true)
		if err != nil {
			return nil, fmt.Errorf("gnmi mapping %s: %w", d.m.Path, err)
		}
		pp, err := gnmipath.SplitPath(d.m.Path)
		if err != nil {
			return nil, err
		}
		class := originClass(d.m.Origin)
		c.gnmiClass[class] = true
		leaves := append([]string{pp.Schema}, nil...)
		parent := pp.Schema[:strings.LastIndexByte(pp.Schema, '/')+1]
		for _, s := range d.m.Plus {
			leaves = append(leaves, parent+s)
		}
		for _, s := range d.m.Minus {
			leaves = append(leaves, parent+s)
		}
		for i, pm := range c.expandCombo(m, len(leaves), len(d.m.Plus)) {
			k := gnmiKey{class: class, schema: leaves[i]}
			c.gnmi[k] = append(c.gnmi[k], pm)
		}
		c.nMappings++
	}
	return c, nil
}

// expandCombo returns the mappings for the n sources of m, an SNMP OID or
// gNMI leaf followed by its plus and then its minus sources, in that
// order. One source is m itself. Several make a combination: m gets the
// combo they share, and each source a copy of m with its own id, its part
// number and sign +1 (the first source and the plus ones) or -1 (minus).
func (c *compiled) expandCombo(m *mapping, n, plus int) []*mapping {
	if n == 1 {
		return []*mapping{m}
	}
	m.combo = &combo{id: c.nextCombo, parts: n, conv: m}
	c.nextCombo++
	out := make([]*mapping, n)
	for i := range out {
		cp := *m
		cp.id = c.nextMapID
		c.nextMapID++
		cp.part, cp.sign = i, 1
		if i > plus {
			cp.sign = -1
		}
		out[i] = &cp
	}
	return out
}

func (c *compiled) compileConversion(conv Conversion, cite string, gnmi bool) (*mapping, error) {
	var names []NameTable
	if !gnmi {
		names = c.names
	}
	t, err := compileTemplate(conv.Component, names, gnmi)
	if err != nil {
		return nil, err
	}
	for _, s := range t {
		if s.kind == segName && s.table < 0 {
			return nil, fmt.Errorf("component %q: no names table %q in this profile or those it extends", conv.Component, s.text)
		}
	}
	m := &mapping{
		id: c.nextMapID, role: conv.Role, metric: conv.Metric, scale: conv.Scale, offset: conv.Offset,
		tmpl: t, fallback: conv.Fallback, object: cite, dbm: conv.Convert == "mw_to_dbm",
		absent: conv.Absent, bits: uint8(conv.CounterBits),
	}
	c.nextMapID++
	if m.scale == 0 {
		m.scale = 1
	}
	if a := math.Abs(m.scale); a < 1 {
		if inv := 1 / m.scale; math.Abs(inv-math.Round(inv)) < 1e-9 {
			m.div = math.Round(inv)
		}
	}
	if conv.Enum != "" || len(conv.EnumValues) > 0 {
		m.enum = map[string]int{}
		for k, v := range builtinEnums[conv.Enum] {
			m.enum[strings.ToLower(k)] = v
			m.enum[strconv.Itoa(v)] = v
		}
		for k, v := range conv.EnumValues {
			m.enum[strings.ToLower(k)] = v
		}
	}
	if m.role == RoleMetric {
		md, _ := schema.LookupMetric(m.metric)
		m.kind = md.Kind
		m.speed = m.metric == "interface.speed"
		if md.Kind == schema.KindCounterMetric {
			for _, r := range schema.RatesOf(m.metric) {
				d := derived{metric: r.Name, scale: r.Scale}
				if d.scale == 0 {
					d.scale = 1
				}
				if u := schema.RatesOf(r.Name); len(u) > 0 {
					d.util = u[0].Name
				}
				m.rates = append(m.rates, d)
			}
		}
	}
	for p := schema.ProtocolUnknown; p <= schema.ProtocolGNMI; p++ {
		m.sources[p] = c.name + "/" + p.String()
	}
	return m, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortOIDs(out)
	return out
}

// sortOIDs sorts dotted OIDs numerically, arc by arc.
func sortOIDs(s []string) {
	less := func(a, b string) bool {
		for a != "" && b != "" {
			var x, y string
			x, a, _ = strings.Cut(a, ".")
			y, b, _ = strings.Cut(b, ".")
			if len(x) != len(y) {
				return len(x) < len(y)
			}
			if x != y {
				return x < y
			}
		}
		return a == "" && b != ""
	}
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// matchSNMP scores how well the profile matches a device's sysObjectID and
// sysDescr; 0 means no match.
func (c *compiled) matchSNMP(sysObjectID, sysDescr string) int {
	best := 0
	for _, p := range c.oidPrefix {
		if sysObjectID == p || strings.HasPrefix(sysObjectID, p+".") {
			if s := 1 + len(p); s > best {
				best = s
			}
		}
	}
	if best == 0 && sysDescr != "" {
		for _, re := range c.descr {
			if re.MatchString(sysDescr) {
				best = 1
				break
			}
		}
	}
	if best == 0 {
		return 0
	}
	return (c.priority+1)*1000 + best
}

// matchOrigin scores how well the profile matches a gNMI origin (or YANG
// module); 0 means no match.
func (c *compiled) matchOrigin(origin string) int {
	for _, o := range c.origins {
		if o == origin || (strings.HasSuffix(o, "*") && strings.HasPrefix(origin, strings.TrimSuffix(o, "*"))) {
			return (c.priority+1)*1000 + len(o)
		}
	}
	return 0
}

// matchSNMP returns the best profile for a device, or nil.
func (s *profileSet) matchSNMP(sysObjectID, sysDescr string) *compiled {
	var best *compiled
	score := 0
	for _, c := range s.list {
		if v := c.matchSNMP(sysObjectID, sysDescr); v > score {
			best, score = c, v
		}
	}
	return best
}

// matchOrigin returns the best profile for a gNMI origin, or nil.
func (s *profileSet) matchOrigin(origin string) (*compiled, int) {
	var best *compiled
	score := 0
	for _, c := range s.list {
		if v := c.matchOrigin(origin); v > score {
			best, score = c, v
		}
	}
	return best, score
}

// apply converts a raw number with the mapping's scale and offset.
func (m *mapping) apply(v float64) float64 {
	if m.div != 0 {
		v /= m.div
	} else {
		v *= m.scale
	}
	if m.offset != 0 {
		// raw×scale+offset (100 − idle) leaves binary noise such as
		// 0.22999999999999998; round to 12 decimals.
		v = math.Round((v+m.offset)*1e12) / 1e12
	}
	return v
}
