package normalize

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/schema"
)

// Profile is one vendor profile as written in YAML: how to recognise a
// device and how to map its OIDs and gNMI paths onto catalog metrics.
// docs/normalization.md describes the language with examples.
type Profile struct {
	// Name identifies the profile ("nokia-sros"); it is the first half of
	// every sample's Source.
	Name string `yaml:"name"`
	// Description says which devices and software the profile covers.
	Description string `yaml:"description"`
	// Extends lists profiles whose mappings this one inherits. A mapping
	// here replaces an inherited one for the same OID or path.
	Extends []string `yaml:"extends"`
	// Priority breaks ties between profiles that match the same device; the
	// higher wins. Generic profiles use 0, vendor profiles 100.
	Priority int `yaml:"priority"`
	// Match says which devices the profile applies to.
	Match Match `yaml:"match"`
	// SNMP maps OIDs.
	SNMP SNMPSection `yaml:"snmp"`
	// GNMI maps gNMI paths.
	GNMI []GNMIMapping `yaml:"gnmi"`
}

// Match selects devices. A device matches when any listed criterion holds.
type Match struct {
	// SysObjectID lists sysObjectID prefixes (dotted, no leading dot); a
	// longer matching prefix beats a shorter one of the same priority.
	SysObjectID []string `yaml:"sys_object_id"`
	// SysDescr lists regular expressions tried against sysDescr.
	SysDescr []string `yaml:"sys_descr"`
	// GNMIOrigins lists gNMI origins or YANG module names (a trailing "*"
	// matches a prefix) whose presence in a device's updates selects the
	// profile.
	GNMIOrigins []string `yaml:"gnmi_origins"`
}

// SNMPSection holds the SNMP side of a profile.
type SNMPSection struct {
	// Names declares index→name tables used to name components.
	Names []NameTable `yaml:"names"`
	// Metrics maps OIDs to catalog metrics.
	Metrics []SNMPMapping `yaml:"metrics"`
	// Ignore lists OID prefixes that carry no metric but are expected (the
	// trap OID varbind, index columns); they are consumed without being
	// counted as unmapped.
	Ignore []string `yaml:"ignore"`
}

// NameTable is a table column whose values name the rows of other tables
// with the same index (ifName names interfaces by ifIndex).
type NameTable struct {
	// Name is how component templates refer to the table ("ifName").
	Name string `yaml:"name"`
	// OIDs are the column OIDs to read, in order of preference: the first
	// non-empty value for an index wins (ifName, then ifDescr).
	OIDs []string `yaml:"oids"`
	// Object cites the MIB objects read.
	Object string `yaml:"object"`
}

// SNMPMapping maps one table column (or scalar) to a metric.
type SNMPMapping struct {
	// Object cites the MIB object read ("IF-MIB::ifHCInOctets").
	Object string `yaml:"object"`
	// OID is the column OID (or the scalar's OID without ".0").
	OID string `yaml:"oid"`
	// Scalar marks a scalar object: the poller GETs OID.0.
	Scalar bool `yaml:"scalar"`
	// IndexSuffix keeps only rows whose index ends with this suffix
	// (".2" picks parameter type 2 of a table indexed by port.param); the
	// suffix is removed from the index before the component is built.
	IndexSuffix string `yaml:"index_suffix"`
	// Plus and Minus list further columns with the same index whose values
	// are added to or subtracted from OID's before scaling (total = used +
	// free). All must arrive in the same poll.
	Plus  []string `yaml:"plus"`
	Minus []string `yaml:"minus"`
	// Conversion, component and enum are shared with gNMI mappings.
	Conversion `yaml:",inline"`
}

// GNMIMapping maps one gNMI leaf to a metric.
type GNMIMapping struct {
	// Leaf cites the YANG leaf read, when Path alone does not make it plain.
	Leaf string `yaml:"leaf"`
	// Origin is the gNMI origin or YANG module of the path
	// ("Cisco-IOS-XR-infra-statsd-oper"); empty or any "openconfig-*" name
	// means OpenConfig.
	Origin string `yaml:"origin"`
	// Path is the leaf's path with list keys named in brackets
	// ("interfaces/interface[name]/state/counters/in-octets"). Module
	// prefixes on elements are ignored.
	Path string `yaml:"path"`
	// Plus and Minus list sibling leaves (names relative to Path's parent)
	// added to or subtracted from Path's value; all must arrive in the same
	// batch.
	Plus  []string `yaml:"plus"`
	Minus []string `yaml:"minus"`
	// Conversion, component and enum are shared with SNMP mappings.
	Conversion `yaml:",inline"`
}

// Conversion is the part of a mapping that turns a raw value into a
// canonical one.
type Conversion struct {
	// Metric is the catalog metric produced. Empty with Role set.
	Metric string `yaml:"metric"`
	// Role is "" for a metric, "discontinuity" for a leaf whose change marks
	// a counter reset of the component (gNMI last-clear), or "ignore" for a
	// leaf that is expected but deliberately not turned into a metric.
	Role string `yaml:"role"`
	// Component is the component template: literal text with
	// {index}, {index.N} (N-th arc of the index, from 0), {name.TABLE} or
	// {name.TABLE.N} (a names table looked up by the index or its N-th arc)
	// and, for gNMI, {KEY} (the value of list key KEY).
	Component string `yaml:"component"`
	// Scale multiplies the raw value (0 means 1); Offset is added after.
	// value = raw × scale + offset.
	Scale  float64 `yaml:"scale"`
	Offset float64 `yaml:"offset"`
	// Enum names a built-in enumeration ("oper_status", "admin_status")
	// whose names (case-insensitive) map to numbers.
	Enum string `yaml:"enum"`
	// EnumValues maps device enumeration names or numbers (as text) to
	// canonical numbers; it extends Enum.
	EnumValues map[string]int `yaml:"enum_values"`
	// Absent lists raw values that mean "no reading" (tmnxHwTemperature
	// -128 for a component without a sensor); they produce no sample and are
	// counted with reason "absent".
	Absent []float64 `yaml:"absent"`
	// Convert applies a non-linear conversion after Scale and Offset:
	// "mw_to_dbm" turns milliwatts into dBm (10·log10); a value ≤ 0 mW has no
	// dBm and is counted as bad_value.
	Convert string `yaml:"convert"`
	// Fallback marks a mapping to be used only when no non-fallback mapping
	// produces the same metric for the same component (ifInOctets when
	// ifHCInOctets is absent).
	Fallback bool `yaml:"fallback"`
	// CounterBits is the width (32 or 64) the model gives a counter leaf,
	// for wire encodings that do not carry it: gNMI sends a YANG uint32
	// counter as an unsigned integer without width, so without this a wrap
	// at 2³² would look like a reset. 0 takes the width from the wire
	// (SNMP Counter32/Counter64), else none.
	CounterBits int `yaml:"counter_bits"`
}

// Roles of a mapping.
const (
	RoleMetric        = ""
	RoleDiscontinuity = "discontinuity"
	RoleIgnore        = "ignore"
)

//go:embed profiles/*.yaml
var embeddedProfiles embed.FS

var (
	// ErrUnknownProfile is returned when a configuration names a profile
	// that neither the embedded set nor the profiles directory defines.
	ErrUnknownProfile = errors.New("unknown profile")
	// ErrProfile wraps every profile loading and validation error.
	ErrProfile = errors.New("invalid profile")
)

// builtinEnums are the enumerations profiles may name in Enum.
var builtinEnums = map[string]map[string]int{
	"oper_status":  schema.OperStatus,
	"admin_status": schema.AdminStatus,
}

// profileSource is a parsed profile with the file it came from.
type profileSource struct {
	Profile
	file string
}

// LoadProfiles reads the embedded profiles and then those in dir (if not
// empty), a dir profile replacing an embedded one of the same name. It
// validates every profile and returns them sorted by name.
func LoadProfiles(dir string) ([]Profile, error) {
	srcs, err := loadProfileSources(dir)
	if err != nil {
		return nil, err
	}
	out := make([]Profile, len(srcs))
	for i, s := range srcs {
		out[i] = s.Profile
	}
	return out, nil
}

func loadProfileSources(dir string) ([]profileSource, error) {
	byName := map[string]profileSource{}
	var errs []error
	add := func(fsys fs.FS, file, label string) {
		data, err := fs.ReadFile(fsys, file)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrProfile, label, err))
			return
		}
		p, err := parseProfile(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrProfile, label, err))
			return
		}
		byName[p.Name] = profileSource{Profile: p, file: label}
	}
	emb, _ := fs.Glob(embeddedProfiles, "profiles/*.yaml")
	for _, f := range emb {
		add(embeddedProfiles, f, "embedded "+f)
	}
	if dir != "" {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("%w: profiles dir: %w", ErrProfile, err)
		}
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			if !e.IsDir() && (strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		fsys := os.DirFS(dir)
		for _, n := range names {
			add(fsys, n, filepath.Join(dir, n))
		}
	}
	srcs := make([]profileSource, 0, len(byName))
	for _, s := range byName {
		srcs = append(srcs, s)
	}
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].Name < srcs[j].Name })
	for _, s := range srcs {
		for _, e := range s.Extends {
			if _, ok := byName[e]; !ok {
				errs = append(errs, fmt.Errorf("%w: %s: extends %q: %w", ErrProfile, s.file, e, ErrUnknownProfile))
			}
		}
	}
	if err := checkExtendsCycles(byName); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return srcs, nil
}

func parseProfile(data []byte) (Profile, error) {
	var p Profile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return Profile{}, fmt.Errorf("decode: %w", err)
	}
	if err := p.Validate(); err != nil {
		return Profile{}, err
	}
	return p, nil
}

func checkExtendsCycles(byName map[string]profileSource) error {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var visit func(n string, chain []string) error
	visit = func(n string, chain []string) error {
		switch state[n] {
		case visiting:
			return fmt.Errorf("%w: extends cycle %s", ErrProfile, strings.Join(append(chain, n), " → "))
		case done:
			return nil
		}
		state[n] = visiting
		for _, e := range byName[n].Extends {
			if err := visit(e, append(chain, n)); err != nil {
				return err
			}
		}
		state[n] = done
		return nil
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return err
		}
	}
	return nil
}

var profileNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// Validate checks a profile on its own (references to other profiles are
// checked when the set is loaded). Errors are *schema.FieldError with the
// field's YAML path inside the profile.
func (p *Profile) Validate() error {
	var errs []error
	if !profileNameRE.MatchString(p.Name) {
		errs = append(errs, schema.Errorf("name", "must match %s, got %q", profileNameRE, p.Name))
	}
	for i, o := range p.Match.SysObjectID {
		if !schema.ValidOID(o) {
			errs = append(errs, schema.Errorf(fmt.Sprintf("match.sys_object_id[%d]", i), "not a dotted OID: %q", o))
		}
	}
	for i, d := range p.Match.SysDescr {
		if _, err := regexp.Compile(d); err != nil {
			errs = append(errs, schema.Errorf(fmt.Sprintf("match.sys_descr[%d]", i), "bad regular expression: %v", err))
		}
	}
	for i, n := range p.SNMP.Names {
		f := fmt.Sprintf("snmp.names[%d]", i)
		if n.Name == "" {
			errs = append(errs, schema.Errorf(f+".name", "required"))
		}
		if len(n.OIDs) == 0 {
			errs = append(errs, schema.Errorf(f+".oids", "at least one OID required"))
		}
		for j, o := range n.OIDs {
			if !schema.ValidOID(o) {
				errs = append(errs, schema.Errorf(fmt.Sprintf("%s.oids[%d]", f, j), "not a dotted OID: %q", o))
			}
		}
	}
	for i, o := range p.SNMP.Ignore {
		if !schema.ValidOID(o) {
			errs = append(errs, schema.Errorf(fmt.Sprintf("snmp.ignore[%d]", i), "not a dotted OID: %q", o))
		}
	}
	for i, m := range p.SNMP.Metrics {
		f := fmt.Sprintf("snmp.metrics[%d]", i)
		if !schema.ValidOID(m.OID) {
			errs = append(errs, schema.Errorf(f+".oid", "not a dotted OID: %q", m.OID))
		}
		for j, o := range m.Plus {
			if !schema.ValidOID(o) {
				errs = append(errs, schema.Errorf(fmt.Sprintf("%s.plus[%d]", f, j), "not a dotted OID: %q", o))
			}
		}
		for j, o := range m.Minus {
			if !schema.ValidOID(o) {
				errs = append(errs, schema.Errorf(fmt.Sprintf("%s.minus[%d]", f, j), "not a dotted OID: %q", o))
			}
		}
		if m.Object == "" {
			errs = append(errs, schema.Errorf(f+".object", "cite the MIB object read"))
		}
		errs = append(errs, m.Conversion.validate(f, p.SNMP.Names, false)...)
	}
	for i, m := range p.GNMI {
		f := fmt.Sprintf("gnmi[%d]", i)
		if _, err := gnmipath.SplitPath(m.Path); err != nil {
			errs = append(errs, schema.Errorf(f+".path", "%v", err))
		}
		for j, s := range append(append([]string(nil), m.Plus...), m.Minus...) {
			if s == "" || strings.ContainsAny(s, "/[]") {
				errs = append(errs, schema.Errorf(fmt.Sprintf("%s.plus/minus[%d]", f, j), "must be a sibling leaf name, got %q", s))
			}
		}
		errs = append(errs, m.Conversion.validate(f, nil, true)...)
	}
	return errors.Join(errs...)
}

func (c *Conversion) validate(f string, names []NameTable, gnmi bool) []error {
	var errs []error
	switch c.Role {
	case RoleMetric:
		m, ok := schema.LookupMetric(c.Metric)
		if !ok {
			errs = append(errs, schema.Errorf(f+".metric", "%q is not in the catalog", c.Metric))
		} else if m.Kind == schema.KindRateMetric {
			errs = append(errs, schema.Errorf(f+".metric", "%q is derived by the normalizer; map its counter %q", c.Metric, m.DerivedFrom))
		}
	case RoleDiscontinuity, RoleIgnore:
		if c.Metric != "" {
			errs = append(errs, schema.Errorf(f+".metric", "must be empty with role %q", c.Role))
		}
	default:
		errs = append(errs, schema.Errorf(f+".role", "unknown role %q (want discontinuity or ignore)", c.Role))
	}
	if c.CounterBits != 0 {
		if c.CounterBits != 32 && c.CounterBits != 64 {
			errs = append(errs, schema.Errorf(f+".counter_bits", "must be 32 or 64, got %d", c.CounterBits))
		} else if m, ok := schema.LookupMetric(c.Metric); c.Role != RoleMetric || !ok || m.Kind != schema.KindCounterMetric {
			errs = append(errs, schema.Errorf(f+".counter_bits", "only for counter metrics"))
		}
	}
	if c.Convert != "" && c.Convert != "mw_to_dbm" {
		errs = append(errs, schema.Errorf(f+".convert", "unknown conversion %q (want mw_to_dbm)", c.Convert))
	}
	if c.Enum != "" {
		if _, ok := builtinEnums[c.Enum]; !ok {
			errs = append(errs, schema.Errorf(f+".enum", "unknown enumeration %q (want oper_status or admin_status)", c.Enum))
		}
	}
	if _, err := compileTemplate(c.Component, names, gnmi); err != nil {
		errs = append(errs, schema.Errorf(f+".component", "%v", err))
	}
	return errs
}

// segKind is the kind of one piece of a component template.
type segKind uint8

const (
	segLiteral  segKind = iota
	segIndex            // the whole index
	segIndexArc         // one arc of the index
	segName             // a names table lookup
	segKey              // a gNMI list key
)

type segment struct {
	kind  segKind
	text  string // literal text, names table or key name
	arc   int    // -1 for the whole index
	table int    // names table number, set when compiled against a profile
}

// template is a compiled component template.
type template []segment

// compileTemplate parses a component template. names are the names tables
// visible to it (nil for gNMI, where {X} is a list key).
func compileTemplate(s string, names []NameTable, gnmi bool) (template, error) {
	var t template
	for len(s) > 0 {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			t = append(t, segment{kind: segLiteral, text: s})
			break
		}
		if i > 0 {
			t = append(t, segment{kind: segLiteral, text: s[:i]})
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unclosed { in %q", s)
		}
		ref := s[i+1 : i+j]
		s = s[i+j+1:]
		if gnmi {
			if ref == "" {
				return nil, fmt.Errorf("empty {} in template")
			}
			t = append(t, segment{kind: segKey, text: ref})
			continue
		}
		parts := strings.Split(ref, ".")
		switch parts[0] {
		case "index":
			switch len(parts) {
			case 1:
				t = append(t, segment{kind: segIndex, arc: -1})
			case 2:
				n, err := strconv.Atoi(parts[1])
				if err != nil || n < 0 {
					return nil, fmt.Errorf("bad index arc in {%s}", ref)
				}
				t = append(t, segment{kind: segIndexArc, arc: n})
			default:
				return nil, fmt.Errorf("bad reference {%s}", ref)
			}
		case "name":
			if len(parts) < 2 || len(parts) > 3 {
				return nil, fmt.Errorf("want {name.TABLE} or {name.TABLE.N}, got {%s}", ref)
			}
			seg := segment{kind: segName, text: parts[1], arc: -1, table: -1}
			if len(parts) == 3 {
				n, err := strconv.Atoi(parts[2])
				if err != nil || n < 0 {
					return nil, fmt.Errorf("bad index arc in {%s}", ref)
				}
				seg.arc = n
			}
			for k, nt := range names {
				if nt.Name == seg.text {
					seg.table = k
				}
			}
			t = append(t, seg)
		default:
			return nil, fmt.Errorf("unknown reference {%s} (want index, index.N, name.TABLE or name.TABLE.N)", ref)
		}
	}
	return t, nil
}
