package service

import (
	"encoding"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// configDocPath is the configuration reference the test holds to the code.
var configDocPath = filepath.Join("..", "docs", "configuration.md")

// configDocMapKeys names the placeholder the reference writes for the key of
// each mapping in the configuration ("normalize.inventory.<device>.site").
// A new mapping needs an entry here, and rows in the reference.
var configDocMapKeys = map[string]string{
	"normalize.inventory": "<device>",
}

// configDocAliases are types used at several places and documented once:
// a key under the first prefix counts as documented when the same key under
// the second prefix is.
var configDocAliases = [][2]string{
	{"snmp.targets[].v3.", "snmp.defaults.v3."},
	{"snmp.trap_users[].", "snmp.defaults.v3."},
}

// configDocProcessKeys are top-level keys documented together in the
// reference's "Process" section rather than in a section of their own.
var configDocProcessKeys = map[string]bool{"data_dir": true, "shutdown_timeout": true, "memory_limit": true, "log": true}

// TestConfigDocCoversEveryKey walks service.Config's yaml keys and checks
// that docs/configuration.md has a table row for every leaf key, that every
// key in the first column of its `| key | default | meaning |` tables
// exists, and that every section has a `## `key“ heading.
//
// A row's first cell holds backticked keys: full paths
// (`snmp.targets[].address`) or, after a full path, bare names of its
// siblings (`nats.tls.ca_file`, `cert_file`). `a[]` is an item of list a.
func TestConfigDocCoversEveryKey(t *testing.T) {
	b, err := os.ReadFile(configDocPath)
	if err != nil {
		t.Skipf("%s: %v", configDocPath, err)
	}
	doc := string(b)

	leaves, nodes := map[string]bool{}, map[string]bool{}
	var walkErrs []string
	walkConfigKeys(reflect.TypeOf(Config{}), "", leaves, nodes, &walkErrs)
	for _, e := range walkErrs {
		t.Error(e)
	}
	if len(leaves) < 100 {
		t.Fatalf("found only %d keys in service.Config: the walk is broken", len(leaves))
	}

	documented, unknown := docKeyRows(doc, leaves, nodes)
	for _, u := range unknown {
		t.Errorf("%s documents %s, which is not a configuration key", configDocPath, u)
	}
	var missing []string
	for p := range leaves {
		if documented[p] {
			continue
		}
		ok := false
		for _, a := range configDocAliases {
			if strings.HasPrefix(p, a[0]) && documented[a[1]+strings.TrimPrefix(p, a[0])] {
				ok = true
				break
			}
		}
		if !ok {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	for _, p := range missing {
		t.Errorf("%s has no table row for key %s", configDocPath, p)
	}

	ct := reflect.TypeOf(Config{})
	for i := 0; i < ct.NumField(); i++ {
		name, _ := yamlKey(ct.Field(i))
		if name == "" || configDocProcessKeys[name] {
			continue
		}
		if !strings.Contains(doc, "\n## `"+name+"`\n") {
			t.Errorf("%s has no section \"## `%s`\"", configDocPath, name)
		}
	}
}

var (
	yamlUnmarshaler = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// yamlKey returns a field's yaml key ("" when the field is skipped) and
// whether it is inlined, as gopkg.in/yaml.v3 decodes it.
func yamlKey(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag := f.Tag.Get("yaml")
	name, opts, _ := strings.Cut(tag, ",")
	if name == "-" {
		return "", false
	}
	for _, o := range strings.Split(opts, ",") {
		if o == "inline" {
			return "", true
		}
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, false
}

// isScalar reports whether the yaml decoder treats t as one value: basic
// kinds (time.Duration is an int64) and types that decode themselves.
func isScalar(t reflect.Type) bool {
	if t.Implements(yamlUnmarshaler) || reflect.PointerTo(t).Implements(yamlUnmarshaler) ||
		t.Implements(textUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return true
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Slice, reflect.Array, reflect.Interface:
		return false
	}
	return true
}

// walkConfigKeys records the dotted path of every leaf key under t in
// leaves, and of every mapping or list of mappings in nodes.
func walkConfigKeys(t reflect.Type, prefix string, leaves, nodes map[string]bool, errs *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isScalar(t) {
		leaves[prefix] = true
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if prefix != "" {
			nodes[prefix] = true
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, inline := yamlKey(f)
			switch {
			case inline:
				walkConfigKeys(f.Type, prefix, leaves, nodes, errs)
			case name != "":
				p := name
				if prefix != "" {
					p = prefix + "." + name
				}
				walkConfigKeys(f.Type, p, leaves, nodes, errs)
			}
		}
	case reflect.Slice, reflect.Array:
		e := t.Elem()
		for e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		if isScalar(e) {
			leaves[prefix] = true // a list of values is one key
			return
		}
		nodes[prefix] = true
		walkConfigKeys(e, prefix+"[]", leaves, nodes, errs)
	case reflect.Map:
		e := t.Elem()
		for e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		if isScalar(e) {
			leaves[prefix] = true // a mapping of values is one key
			return
		}
		ph, ok := configDocMapKeys[prefix]
		if !ok {
			*errs = append(*errs, "mapping "+prefix+" has no placeholder in configDocMapKeys")
			ph = "<key>"
		}
		nodes[prefix] = true
		walkConfigKeys(e, prefix+"."+ph, leaves, nodes, errs)
	default:
		*errs = append(*errs, "key "+prefix+": cannot document a value of kind "+t.Kind().String())
	}
}

var backticked = regexp.MustCompile("`([^`]+)`")

// docKeyRows returns the keys in the first column of the reference's
// `| key | default | meaning |` tables, resolved to full paths, and the
// resolved keys that are neither a leaf nor a node of the configuration.
func docKeyRows(doc string, leaves, nodes map[string]bool) (map[string]bool, []string) {
	documented := map[string]bool{}
	var unknown []string
	inTable := false
	for _, line := range strings.Split(doc, "\n") {
		switch {
		case strings.HasPrefix(line, "| key |"):
			inTable = true
			continue
		case !strings.HasPrefix(line, "|"):
			inTable = false
			continue
		case !inTable || strings.HasPrefix(line, "|---"):
			continue
		}
		cells := strings.SplitN(line, "|", 3)
		if len(cells) < 3 {
			continue
		}
		parent := ""
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			tok := m[1]
			full := tok
			switch {
			case strings.Contains(tok, ".") || leaves[tok] || nodes[tok]:
				if i := strings.LastIndex(tok, "."); i >= 0 {
					parent = tok[:i]
				}
			case parent != "":
				full = parent + "." + tok
			}
			if !leaves[full] && !nodes[full] {
				unknown = append(unknown, "`"+tok+"` ("+full+")")
				continue
			}
			documented[full] = true
		}
	}
	return documented, unknown
}
