package service

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/collectors/snmp"
	"github.com/netfeat/netfeat/schema"
)

// Sources of a target change, the source label of the targets metrics.
const (
	targetsFromFile   = "file"
	targetsFromAPI    = "api"
	targetsFromSIGHUP = "sighup"
)

// DefaultTargetsPoll is how often the targets file is checked for changes.
const DefaultTargetsPoll = 5 * time.Second

// errTargetsSettling says that the targets file changed since the last
// check: it is applied when the next check reads the same content.
var errTargetsSettling = errors.New("targets file changed: applied at the next check if it stays the same")

// maxTargetBody bounds a POST /v1/targets body.
const maxTargetBody = 1 << 20

// TargetsDoc is the targets file: the configuration's two target lists,
// with the same keys (snmp.targets, gnmi.targets), so that a problem is
// reported under the key config check would use.
type TargetsDoc struct {
	SNMP struct {
		Targets []snmp.Target `yaml:"targets" json:"targets"`
	} `yaml:"snmp" json:"snmp"`
	GNMI struct {
		Targets []gnmi.Target `yaml:"targets" json:"targets"`
	} `yaml:"gnmi" json:"gnmi"`
}

// names returns the device names of the document's targets, with the key
// of each (an SNMP target without a name is named by its address).
func (d *TargetsDoc) names() []nameKey {
	var out []nameKey
	for i, t := range d.SNMP.Targets {
		n := t.Name
		if n == "" {
			n = t.Address
		}
		out = append(out, nameKey{n, "snmp", fmt.Sprintf("snmp.targets[%d]", i)})
	}
	for i, t := range d.GNMI.Targets {
		out = append(out, nameKey{t.Name, "gnmi", fmt.Sprintf("gnmi.targets[%d]", i)})
	}
	return out
}

type nameKey struct{ name, protocol, key string }

// targetSet owns the targets that may change at run time: those of the
// targets file and of the API (the dynamic ones), added to the
// configuration's own (the static ones, changed only by a restart). Every
// change goes through apply: a full new dynamic list, validated as config
// check validates, diffed by name against the running one, and only the
// difference handed to the collectors, the normalizer and the cluster node.
type targetSet struct {
	cfg  *Config
	file string // the targets file; "" keeps API changes in memory
	log  *slog.Logger
	svc  *Service
	poll time.Duration

	// static are the configuration's target names (snmp.targets,
	// snmp.targets_file, gnmi.targets), by name, with their keys;
	// staticSNMP the SNMP ones, the snmp.targets_file's as read at start
	// or at the last SIGHUP (ReloadConfig); staticGNMI the gNMI ones.
	static     map[string]nameKey
	staticSNMP []snmp.Target
	staticGNMI []gnmi.Target

	mu       sync.Mutex // serialises changes
	dyn      TargetsDoc
	fileHash [32]byte // of the file content last applied or refused
	fileSeen bool     // whether fileHash is set
	// pendingHash is the content a check found changed, applied when the
	// next check finds it again.
	pendingHash [32]byte
	pendingSeen bool

	changes  *prometheus.CounterVec
	rejected *prometheus.CounterVec
	count    *prometheus.GaugeVec
}

// newTargetSet reads the targets file (a missing file is an empty one) and
// checks it; its targets are then given to the collectors when they are
// built.
func (s *Service) newTargetSet() (*targetSet, error) {
	ts := &targetSet{cfg: s.cfg, file: s.cfg.TargetsFile, log: s.log.With("component", "targets"), svc: s,
		poll: DefaultTargetsPoll}
	ts.changes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netfeat_targets_changes_total",
		Help: "Targets added, changed or removed at run time, by source (file, api, sighup)."}, []string{"op", "source"})
	ts.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netfeat_targets_rejected_total",
		Help: "Target lists or targets refused at run time (invalid), by source."}, []string{"source"})
	ts.count = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "netfeat_targets_configured",
		Help: "Targets configured, by protocol and origin (config: the configuration file; dynamic: the targets file and the API)."},
		[]string{"protocol", "origin"})
	for _, c := range []prometheus.Collector{ts.changes, ts.rejected, ts.count} {
		if err := s.reg.Register(c); err != nil {
			return nil, fmt.Errorf("targets metrics: %w", err)
		}
	}
	for _, op := range []string{"add", "change", "remove"} {
		for _, src := range []string{targetsFromFile, targetsFromAPI, targetsFromSIGHUP} {
			ts.changes.WithLabelValues(op, src)
		}
	}
	for _, src := range []string{targetsFromFile, targetsFromAPI, targetsFromSIGHUP} {
		ts.rejected.WithLabelValues(src)
	}
	static, err := s.cfg.staticTargets()
	if err != nil {
		return nil, err
	}
	ts.static = static
	if ts.staticSNMP, err = s.cfg.SNMP.AllTargets(); err != nil {
		return nil, fmt.Errorf("snmp.targets_file: %w", err)
	}
	ts.staticGNMI = slices.Clone(s.cfg.GNMI.Targets)
	if ts.file != "" {
		doc, data, err := ts.readFile()
		if err != nil {
			return nil, err
		}
		ts.dyn = doc
		ts.fileHash, ts.fileSeen = sha256.Sum256(data), true
		ts.pendingHash, ts.pendingSeen = ts.fileHash, true
	}
	ts.setCounts()
	return ts, nil
}

// staticTargets returns the configuration's own targets (snmp.targets,
// snmp.targets_file, gnmi.targets) by device name.
func (c *Config) staticTargets() (map[string]nameKey, error) {
	all, err := c.SNMP.AllTargets()
	if err != nil {
		return nil, fmt.Errorf("snmp.targets_file: %w", err)
	}
	static := map[string]nameKey{}
	for i, t := range all {
		n := t.Name
		if n == "" {
			n = t.Address
		}
		key := fmt.Sprintf("snmp.targets[%d]", i)
		if i >= len(c.SNMP.Targets) {
			key = fmt.Sprintf("snmp.targets_file[%d]", i-len(c.SNMP.Targets))
		}
		static[n] = nameKey{n, "snmp", key}
	}
	for i, t := range c.GNMI.Targets {
		static[t.Name] = nameKey{t.Name, "gnmi", fmt.Sprintf("gnmi.targets[%d]", i)}
	}
	return static, nil
}

// readFile reads and checks the targets file; a missing file is empty.
func (ts *targetSet) readFile() (TargetsDoc, []byte, error) {
	data, err := os.ReadFile(ts.file)
	if errors.Is(err, fs.ErrNotExist) {
		return TargetsDoc{}, nil, nil
	}
	if err != nil {
		return TargetsDoc{}, nil, fmt.Errorf("targets_file: %w", err)
	}
	doc, problems := ts.cfg.parseTargets(ts.file, filepath.Dir(ts.file), data, ts.static)
	if len(problems) > 0 {
		return TargetsDoc{}, data, problems
	}
	return doc, data, nil
}

// parseTargets decodes a targets file strictly and checks it as config
// check does: each target as the configuration's own would be, the files
// it names, and that its names are used once, here and in the
// configuration (static). Relative paths are resolved from dir. Problems
// are located by line and key in name.
func (c *Config) parseTargets(name, dir string, data []byte, static map[string]nameKey) (TargetsDoc, ConfigErrors) {
	var doc TargetsDoc
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := syntaxLineRE.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "")
		return doc, ConfigErrors{{File: name, Line: yamlSyntaxLine(err, data), Msg: "syntax error: " + msg}}
	}
	keys := indexKeys(&root)
	var problems ConfigErrors
	if len(root.Content) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				return doc, ConfigErrors{{File: name, Msg: err.Error()}}
			}
			for _, msg := range te.Errors {
				problems = append(problems, typeProblem(name, msg, keys))
			}
		}
	}
	errs := c.checkTargets(&doc, dir, static)
	if len(errs) > 0 {
		problems = append(problems, fieldProblems(name, errors.Join(errs...), keys)...)
	}
	if len(problems) > 0 {
		sort.SliceStable(problems, func(i, j int) bool { return problems[i].Line < problems[j].Line })
		return doc, problems
	}
	return doc, nil
}

// checkTargets validates the dynamic targets with the sections' own
// validators and the configuration's defaults, checks the files they name,
// and refuses a name used twice. Relative paths are resolved from dir
// first (none with dir ""). Errors are *schema.FieldError keyed as in the
// file (snmp.targets[0].address).
func (c *Config) checkTargets(doc *TargetsDoc, dir string, static map[string]nameKey) []error {
	tmp := Config{}
	tmp.SNMP.Targets, tmp.GNMI.Targets = doc.SNMP.Targets, doc.GNMI.Targets
	if dir != "" {
		tmp.resolvePaths(dir)
	}
	var errs []error
	sc := c.SNMP
	sc.Targets, sc.TargetsFile = doc.SNMP.Targets, ""
	errs = append(errs, prefixErrors("snmp", sc.Validate())...)
	gc := c.GNMI
	gc.Targets = doc.GNMI.Targets
	errs = append(errs, prefixErrors("gnmi", gc.Validate())...)
	errs = append(errs, tmp.CheckFiles()...)
	errs = append(errs, c.checkTargetProfiles(doc.SNMP.Targets, doc.GNMI.Targets)...)
	seen := map[string]string{}
	for _, nk := range doc.names() {
		if nk.name == "" {
			continue // the section's validator said so
		}
		if st, ok := static[nk.name]; ok {
			errs = append(errs, schema.Errorf(nk.key+".name", "%q is already a target of the configuration file (%s); change it there", nk.name, st.key))
			continue
		}
		if prev, dup := seen[nk.name]; dup && !strings.HasPrefix(prev, nk.protocol) {
			// Within a protocol the section's validator reports it.
			errs = append(errs, schema.Errorf(nk.key+".name", "%q is also %s", nk.name, prev))
		}
		seen[nk.name] = nk.key
	}
	return errs
}

// apply makes doc the dynamic target list: the collectors get the
// difference, the normalizer the device names and the cluster node the
// site's list; each change is logged and counted under source. ts.mu is
// held. On error nothing changed.
func (ts *targetSet) apply(doc TargetsDoc, source string) error {
	return ts.applyWith(doc, staticSet{ts.static, ts.staticSNMP, ts.staticGNMI}, source)
}

// staticSet is the configuration's own targets: by name with their keys,
// and the SNMP and gNMI ones.
type staticSet struct {
	names map[string]nameKey
	snmp  []snmp.Target
	gnmi  []gnmi.Target
}

// applyWith is apply with st as the configuration's targets (a reloaded
// configuration's): they replace the running ones only when the
// collectors took them; on error what ran before runs still.
func (ts *targetSet) applyWith(doc TargetsDoc, st staticSet, source string) error {
	p := &ts.svc.pipe
	var sch snmp.TargetChanges
	if p.snmp != nil {
		var err error
		sch, err = p.snmp.SetTargets(slices.Concat(st.snmp, doc.SNMP.Targets))
		if err != nil {
			return err
		}
	}
	var gch gnmi.TargetChanges
	if p.gnmi != nil {
		var err error
		gch, err = p.gnmi.SetTargets(slices.Concat(st.gnmi, doc.GNMI.Targets))
		if err != nil {
			if p.snmp != nil { // back to what runs
				if _, rerr := p.snmp.SetTargets(slices.Concat(ts.staticSNMP, ts.dyn.SNMP.Targets)); rerr != nil {
					ts.log.Error("restoring the SNMP targets", "err", rerr)
				}
			}
			return err
		}
	}
	ts.static, ts.staticSNMP, ts.staticGNMI = st.names, st.snmp, st.gnmi
	ts.dyn = doc
	ts.setCounts()
	for _, c := range []struct {
		proto string
		op    string
		names []string
	}{{"snmp", "add", sch.Added}, {"snmp", "change", sch.Changed}, {"snmp", "remove", sch.Removed},
		{"gnmi", "add", gch.Added}, {"gnmi", "change", gch.Changed}, {"gnmi", "remove", gch.Removed}} {
		for _, n := range c.names {
			ts.log.Info("target "+c.op, "target", n, "protocol", c.proto, "source", source)
			ts.changes.WithLabelValues(c.op, source).Inc()
		}
	}
	if n := p.normalizer; n != nil {
		n.SetTargetProfiles(ts.profiles())
	}
	if sch.Empty() && gch.Empty() {
		return nil
	}
	names := ts.allNames()
	if n := p.normalizer; n != nil {
		n.SetDevices(names)
	}
	if node := p.cluster.Load(); node != nil {
		if err := node.SetTargets(names); err != nil {
			ts.log.Error("cluster: target list not updated", "err", err)
		}
	}
	return nil
}

// profiles returns the profile each target forces by its `profile` key,
// by device name, static and dynamic; ts.mu is held (or the set not
// shared yet).
func (ts *targetSet) profiles() map[string]string {
	m := map[string]string{}
	for _, t := range slices.Concat(ts.staticSNMP, ts.dyn.SNMP.Targets) {
		if t.Profile != "" {
			m[cmp.Or(t.Name, t.Address)] = t.Profile
		}
	}
	for _, t := range slices.Concat(ts.staticGNMI, ts.dyn.GNMI.Targets) {
		if t.Profile != "" {
			m[t.Name] = t.Profile
		}
	}
	return m
}

// allNames returns every target's device name, static and dynamic;
// ts.mu is held.
func (ts *targetSet) allNames() []string {
	names := make([]string, 0, len(ts.static)+len(ts.dyn.SNMP.Targets)+len(ts.dyn.GNMI.Targets))
	for n := range ts.static {
		names = append(names, n)
	}
	for _, nk := range ts.dyn.names() {
		names = append(names, nk.name)
	}
	sort.Strings(names)
	return names
}

// setCounts sets the configured-targets gauge; ts.mu is held (or the set
// not shared yet).
func (ts *targetSet) setCounts() {
	var snmpStatic, gnmiStatic float64
	for _, nk := range ts.static {
		if nk.protocol == "snmp" {
			snmpStatic++
		} else {
			gnmiStatic++
		}
	}
	ts.count.WithLabelValues("snmp", "config").Set(snmpStatic)
	ts.count.WithLabelValues("gnmi", "config").Set(gnmiStatic)
	ts.count.WithLabelValues("snmp", "dynamic").Set(float64(len(ts.dyn.SNMP.Targets)))
	ts.count.WithLabelValues("gnmi", "dynamic").Set(float64(len(ts.dyn.GNMI.Targets)))
}

// reloadFile applies the targets file if it changed since it was last
// applied or refused (source file), or in any case (source sighup: the
// secrets files its targets name may have changed). A refused file is
// logged with every problem and counted; the running targets stay.
func (ts *targetSet) reloadFile(source string) error {
	if ts.file == "" {
		return nil
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	data, err := os.ReadFile(ts.file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		ts.rejected.WithLabelValues(source).Inc()
		ts.log.Error("targets file not read; keeping the running targets", "file", ts.file, "err", err)
		return fmt.Errorf("targets_file: %w", err)
	}
	sum := sha256.Sum256(data)
	if source == targetsFromFile {
		if ts.fileSeen && sum == ts.fileHash {
			return nil
		}
		// A change is applied once the next check reads the same: a file
		// caught half-written (truncated, then written in place) is not.
		if !ts.pendingSeen || sum != ts.pendingHash {
			ts.pendingHash, ts.pendingSeen = sum, true
			return errTargetsSettling
		}
	}
	ts.fileHash, ts.fileSeen = sum, true
	doc, problems := ts.cfg.parseTargets(ts.file, filepath.Dir(ts.file), data, ts.static)
	if len(problems) > 0 {
		ts.rejected.WithLabelValues(source).Inc()
		for _, p := range problems {
			ts.log.Error("targets file refused; keeping the running targets", "problem", p.Error(), "source", source)
		}
		return problems
	}
	if err := ts.apply(doc, source); err != nil {
		ts.rejected.WithLabelValues(source).Inc()
		ts.log.Error("targets not applied; keeping the running targets", "err", err, "source", source)
		return err
	}
	return nil
}

// watch checks the targets file every poll period until ctx ends. A
// check stats the file and reads it only when its size or mtime moved, or
// at every tenth check (a rewrite within one mtime tick); the content's
// hash then says whether it changed. A changed content is applied when
// the next check reads it again.
func (ts *targetSet) watch(ctx context.Context) {
	t := time.NewTicker(ts.poll)
	defer t.Stop()
	last, idle, settling := statFile(ts.file), 0, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := statFile(ts.file)
		if st == last && idle < 9 && !settling {
			idle++
			continue
		}
		last, idle = st, 0
		// Problems are logged and counted by reloadFile.
		settling = errors.Is(ts.reloadFile(targetsFromFile), errTargetsSettling)
	}
}

// fileStamp is what a stat says of a file, to notice changes cheaply.
type fileStamp struct {
	size  int64
	mtime int64
}

func statFile(path string) fileStamp {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{size: -1}
	}
	return fileStamp{size: st.Size(), mtime: st.ModTime().UnixNano()}
}

// persist writes the dynamic list to the targets file atomically (a
// temporary file in its directory, then a rename), so that a restart keeps
// the API's changes; ts.mu is held. Without a targets file it does nothing.
func (ts *targetSet) persist(doc TargetsDoc) error {
	if ts.file == "" {
		return nil
	}
	data, err := marshalTargets(doc)
	if err != nil {
		return err
	}
	dir := filepath.Dir(ts.file)
	f, err := os.CreateTemp(dir, ".targets-*.yaml")
	if err != nil {
		return fmt.Errorf("write targets file: %w", err)
	}
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), ts.file)
	}
	if werr != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write targets file: %w", werr)
	}
	ts.fileHash, ts.fileSeen = sha256.Sum256(data), true
	ts.pendingHash, ts.pendingSeen = ts.fileHash, true
	return nil
}

// marshalTargets renders a targets file, leaving out the keys a target
// leaves at their zero value (they take the defaults).
func marshalTargets(doc TargetsDoc) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode targets: %w", err)
	}
	prune(&n)
	var b bytes.Buffer
	b.WriteString("# netfeat targets file (targets_file), written by the targets API.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("encode targets: %w", err)
	}
	return b.Bytes(), enc.Close()
}

// prune removes the mapping entries whose value is empty, zero or null.
func prune(n *yaml.Node) {
	for _, c := range n.Content {
		prune(c)
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	var kept []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		v := n.Content[i+1]
		key, empty := n.Content[i].Value, false
		switch v.Kind {
		case yaml.ScalarNode:
			// retries is a pointer: an explicit 0 is not the default 1.
			empty = v.Tag == "!!null" || v.Value == "" || v.Value == "0s" || v.Value == "false" ||
				v.Value == "0" && key != "retries"
		case yaml.MappingNode:
			empty = len(v.Content) == 0
		case yaml.SequenceNode:
			// Keep the two lists even when empty: the file says what it is.
			empty = len(v.Content) == 0 && key != "targets"
		}
		if empty {
			continue
		}
		kept = append(kept, n.Content[i], v)
	}
	n.Content = kept
}

// targetBody is the body of POST /v1/targets: one target, under the key of
// its protocol.
type targetBody struct {
	SNMP *snmp.Target `yaml:"snmp"`
	GNMI *gnmi.Target `yaml:"gnmi"`
}

// TargetProblem is one problem of a refused target, as the API reports
// it: the line of the request body and the key, as config check does.
type TargetProblem struct {
	Line    int    `json:"line,omitempty"`
	Key     string `json:"key,omitempty"`
	Message string `json:"message"`
}

// TargetInfo is one target of GET /v1/targets.
type TargetInfo struct {
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	Address  string `json:"address"`
	// Origin is config (the configuration file: changed by a restart) or
	// dynamic (the targets file and the API).
	Origin string `json:"origin"`
	State  string `json:"state,omitempty"`
}

// TargetsList is the answer of GET /v1/targets.
type TargetsList struct {
	Targets []TargetInfo `json:"targets"`
	// TargetsFile is where API changes are kept; empty: in memory only,
	// until the process exits.
	TargetsFile string `json:"targets_file,omitempty"`
}

// TargetChange is the answer of POST and DELETE /v1/targets.
type TargetChange struct {
	// Op is add, change, remove or unchanged.
	Op       string `json:"op"`
	Name     string `json:"name"`
	Protocol string `json:"protocol"`
	// Persisted says whether the change was written to the targets file;
	// Note says what that means.
	Persisted bool   `json:"persisted"`
	Note      string `json:"note"`
}

const (
	notePersisted = "written to the targets file: kept across restarts"
	noteMemory    = "no targets_file configured: kept in memory only, lost at restart"
)

// mountTargets mounts GET, POST /v1/targets and DELETE /v1/targets/{name}:
// reading needs the read scope, changing the admin scope. They answer 503
// until the collectors have started.
func (s *Service) mountTargets() {
	if s.targets == nil {
		return
	}
	ts := s.targets
	s.http.Handle("GET /v1/targets", s.withScope(scopeRead, http.HandlerFunc(ts.serveList)))
	s.http.Handle("POST /v1/targets", s.withScope(scopeAdmin, http.HandlerFunc(ts.serveAdd)))
	s.http.Handle("DELETE /v1/targets/{name}", s.withScope(scopeAdmin, http.HandlerFunc(ts.serveRemove)))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (ts *targetSet) serveList(w http.ResponseWriter, _ *http.Request) {
	p := &ts.svc.pipe
	states := map[string]schema.DeviceState{}
	if p.snmp != nil {
		for _, d := range p.snmp.DeviceStates() {
			states["snmp/"+d.Device] = d
		}
	}
	if p.gnmi != nil {
		for _, d := range p.gnmi.DeviceStates() {
			states["gnmi/"+d.Device] = d
		}
	}
	ts.mu.Lock()
	dyn := map[string]bool{}
	for _, nk := range ts.dyn.names() {
		dyn[nk.protocol+"/"+nk.name] = true
	}
	ts.mu.Unlock()
	out := TargetsList{Targets: []TargetInfo{}, TargetsFile: ts.file}
	for key, d := range states {
		proto, _, _ := strings.Cut(key, "/")
		origin := "config"
		if dyn[key] {
			origin = "dynamic"
		}
		out.Targets = append(out.Targets, TargetInfo{Name: d.Device, Protocol: proto, Address: d.Address, Origin: origin, State: d.State})
	}
	sort.Slice(out.Targets, func(i, j int) bool {
		a, b := out.Targets[i], out.Targets[j]
		return a.Name < b.Name || a.Name == b.Name && a.Protocol < b.Protocol
	})
	writeJSON(w, http.StatusOK, out)
}

// targetKeyRE matches the key of the request's target in a problem
// checked as part of the whole list.
var targetKeyRE = regexp.MustCompile(`^(snmp|gnmi)\.targets\[(\d+)\]`)

func (ts *targetSet) serveAdd(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxTargetBody+1))
	if err != nil {
		jsonError(w, http.StatusBadRequest, fmt.Sprintf("read body: %v", err))
		return
	}
	if len(data) > maxTargetBody {
		jsonError(w, http.StatusRequestEntityTooLarge, "body over 1 MiB")
		return
	}
	const file = "request"
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := syntaxLineRE.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "")
		ts.refuse(w, ConfigErrors{{File: file, Line: yamlSyntaxLine(err, data), Msg: "syntax error: " + msg}})
		return
	}
	keys := indexKeys(&root)
	var (
		body     targetBody
		problems ConfigErrors // the decoder's, reported with the checks'
	)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&body); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			ts.refuse(w, ConfigErrors{{File: file, Msg: err.Error()}})
			return
		}
		for _, msg := range te.Errors {
			problems = append(problems, typeProblem(file, msg, keys))
		}
	}
	if (body.SNMP == nil) == (body.GNMI == nil) {
		ts.refuse(w, append(problems, ConfigError{File: file, Line: 1,
			Msg: `want one target under "snmp" or "gnmi", e.g. {"snmp": {"name": "r1", "address": "192.0.2.1"}}`}))
		return
	}

	ts.mu.Lock()
	defer ts.mu.Unlock()
	doc := ts.dyn
	doc.SNMP.Targets = slices.Clone(doc.SNMP.Targets)
	doc.GNMI.Targets = slices.Clone(doc.GNMI.Targets)
	var (
		proto, name string
		idx         = -1
		op          = "add"
	)
	if t := body.SNMP; t != nil {
		proto, name = "snmp", t.Name
		if name == "" {
			name = t.Address
		}
		for i, o := range doc.SNMP.Targets {
			if o.Name == name || o.Name == "" && o.Address == name {
				idx, op = i, "change"
				doc.SNMP.Targets[i] = *t
			}
		}
		if idx < 0 {
			idx = len(doc.SNMP.Targets)
			doc.SNMP.Targets = append(doc.SNMP.Targets, *t)
		}
	} else {
		t := body.GNMI
		proto, name = "gnmi", t.Name
		for i, o := range doc.GNMI.Targets {
			if o.Name == name {
				idx, op = i, "change"
				doc.GNMI.Targets[i] = *t
			}
		}
		if idx < 0 {
			idx = len(doc.GNMI.Targets)
			doc.GNMI.Targets = append(doc.GNMI.Targets, *t)
		}
	}
	dir := ""
	if ts.file != "" {
		dir = filepath.Dir(ts.file)
	}
	if errs := ts.cfg.checkTargets(&doc, dir, ts.static); len(errs) > 0 || len(problems) > 0 {
		// The request's target is at idx of the list checked: report its
		// problems at the body's lines and keys ("snmp.address").
		for _, p := range fieldProblems(file, errors.Join(errs...), keyIndex{}) {
			if m := targetKeyRE.FindStringSubmatch(p.Key); m != nil && m[1] == proto && m[2] == fmt.Sprint(idx) {
				p.Key = proto + strings.TrimPrefix(p.Key, m[0])
				p.Line = keys.lineOf(p.Key)
			}
			problems = append(problems, p)
		}
		sort.SliceStable(problems, func(i, j int) bool { return problems[i].Line < problems[j].Line })
		ts.refuse(w, problems)
		return
	}
	if op == "change" && ts.same(doc) {
		op = "unchanged"
	}
	ts.commit(w, doc, TargetChange{Op: op, Name: name, Protocol: proto})
}

// same reports whether doc is the running dynamic list; ts.mu is held.
func (ts *targetSet) same(doc TargetsDoc) bool {
	a, _ := marshalTargets(doc)
	b, _ := marshalTargets(ts.dyn)
	return bytes.Equal(a, b)
}

func (ts *targetSet) serveRemove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if st, ok := ts.static[name]; ok {
		jsonError(w, http.StatusConflict, fmt.Sprintf("target %q is in the configuration file (%s): remove it there and restart", name, st.key))
		return
	}
	doc := ts.dyn
	doc.SNMP.Targets, doc.GNMI.Targets = nil, nil
	proto := ""
	for _, t := range ts.dyn.SNMP.Targets {
		if t.Name == name || t.Name == "" && t.Address == name {
			proto = "snmp"
			continue
		}
		doc.SNMP.Targets = append(doc.SNMP.Targets, t)
	}
	for _, t := range ts.dyn.GNMI.Targets {
		if t.Name == name {
			proto = "gnmi"
			continue
		}
		doc.GNMI.Targets = append(doc.GNMI.Targets, t)
	}
	if proto == "" {
		jsonError(w, http.StatusNotFound, fmt.Sprintf("no target %q", name))
		return
	}
	ts.commit(w, doc, TargetChange{Op: "remove", Name: name, Protocol: proto})
}

// commit writes doc to the targets file, applies it and answers; ts.mu is
// held. A change that cannot be applied puts the file back.
func (ts *targetSet) commit(w http.ResponseWriter, doc TargetsDoc, ch TargetChange) {
	prev := ts.dyn
	if err := ts.persist(doc); err != nil {
		ts.rejected.WithLabelValues(targetsFromAPI).Inc()
		ts.log.Error("target change refused: targets file not written", "target", ch.Name, "err", err)
		jsonError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if err := ts.apply(doc, targetsFromAPI); err != nil {
		ts.rejected.WithLabelValues(targetsFromAPI).Inc()
		if perr := ts.persist(prev); perr != nil {
			ts.log.Error("targets file not restored", "err", perr)
		}
		jsonError(w, http.StatusBadRequest, err.Error())
		return
	}
	ch.Persisted, ch.Note = ts.file != "", noteMemory
	if ch.Persisted {
		ch.Note = notePersisted
	}
	status := http.StatusOK
	if ch.Op == "add" {
		status = http.StatusCreated
	}
	writeJSON(w, status, ch)
}

// refuse answers 400 with every problem, rendered as config check renders
// them ("request:3: snmp.address: ...") and as a list, and counts it.
func (ts *targetSet) refuse(w http.ResponseWriter, problems ConfigErrors) {
	ts.rejected.WithLabelValues(targetsFromAPI).Inc()
	list := make([]TargetProblem, len(problems))
	for i, p := range problems {
		list[i] = TargetProblem{Line: p.Line, Key: p.Key, Message: p.Msg}
	}
	ts.log.Warn("target refused", "problems", problems.Error())
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": problems.Error(), "problems": list})
}

// ReloadTargets re-reads the targets file now and applies what changed
// (SIGHUP). Without a targets file it does nothing. On error the running
// targets stay and the error lists the file's problems.
func (s *Service) ReloadTargets() error {
	if s.targets == nil {
		return nil
	}
	return s.targets.reloadFile(targetsFromSIGHUP)
}

// ReloadConfigFile reads the configuration file at path again, adjust
// (when not nil) applying the command line's overrides to it, and hands
// it to ReloadConfig. A file that does not load changes nothing: its
// problems are returned and counted in netfeat_targets_rejected_total.
func (s *Service) ReloadConfigFile(path string, adjust func(*Config)) (restart []string, err error) {
	cfg, err := LoadConfig(path)
	if err != nil {
		if s.targets != nil {
			s.targets.rejected.WithLabelValues(targetsFromSIGHUP).Inc()
		}
		return nil, err
	}
	if adjust != nil {
		adjust(cfg)
	}
	return s.ReloadConfig(cfg)
}

// ReloadConfig applies the targets of cfg, the configuration file read
// again (SIGHUP): its own targets (snmp.targets, snmp.targets_file,
// gnmi.targets) replace the running ones, and only the difference reaches
// the collectors, as for the targets file. A target of the targets file or
// the API whose name the configuration now takes refuses the reload. Other
// keys that changed take effect only at a restart: they are returned in
// restart (and logged by the caller). On error the running targets stay.
func (s *Service) ReloadConfig(cfg *Config) (restart []string, err error) {
	restart = changedKeys(&s.loaded, cfg)
	ts := s.targets
	if ts == nil {
		return restart, nil
	}
	static, err := cfg.staticTargets()
	if err != nil {
		ts.rejected.WithLabelValues(targetsFromSIGHUP).Inc()
		return restart, err
	}
	staticSNMP, err := cfg.SNMP.AllTargets()
	if err != nil {
		ts.rejected.WithLabelValues(targetsFromSIGHUP).Inc()
		return restart, fmt.Errorf("snmp.targets_file: %w", err)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var clash ConfigErrors
	for _, nk := range ts.dyn.names() {
		if st, ok := static[nk.name]; ok {
			where := "the targets API (in memory)"
			if ts.file != "" {
				where = ts.file
			}
			clash = append(clash, ConfigError{Key: st.key, Msg: fmt.Sprintf("%q is already a target of %s (%s); remove it there first", nk.name, where, nk.key)})
		}
	}
	if len(clash) > 0 {
		ts.rejected.WithLabelValues(targetsFromSIGHUP).Inc()
		return restart, clash
	}
	if err := ts.applyWith(ts.dyn, staticSet{static, staticSNMP, slices.Clone(cfg.GNMI.Targets)}, targetsFromSIGHUP); err != nil {
		ts.rejected.WithLabelValues(targetsFromSIGHUP).Inc()
		return restart, err
	}
	return restart, nil
}

// changedKeys lists the top-level configuration keys (by their YAML
// names, gnmi and snmp by their sub-keys) whose values differ between a
// and b, other than the targets ReloadConfig applies.
func changedKeys(a, b *Config) []string {
	x, y := *a, *b
	x.SNMP.Targets, y.SNMP.Targets = nil, nil
	x.SNMP.TargetsFile, y.SNMP.TargetsFile = "", ""
	x.GNMI.Targets, y.GNMI.Targets = nil, nil
	var out []string
	diff := func(prefix string, va, vb reflect.Value) {
		t := va.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
				out = append(out, prefix+name)
			}
		}
	}
	va, vb := reflect.ValueOf(x), reflect.ValueOf(y)
	t := va.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() || reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			continue
		}
		if (name == "snmp" || name == "gnmi") && f.Type.Kind() == reflect.Struct {
			diff(name+".", va.Field(i), vb.Field(i))
			continue
		}
		out = append(out, name)
	}
	return out
}

// addTargetsWatch adds the component that watches the targets file, after
// the collectors and the cluster node it changes.
func (s *Service) addTargetsWatch() {
	ts := s.targets
	if ts == nil || ts.file == "" {
		return
	}
	var (
		cancel context.CancelFunc
		done   chan struct{}
	)
	s.group.Add(ComponentFuncs{
		ComponentName: "targets",
		StartFunc: func(ctx context.Context) error {
			wctx, c := context.WithCancel(context.WithoutCancel(ctx))
			cancel, done = c, make(chan struct{})
			go func() {
				defer close(done)
				ts.watch(wctx)
			}()
			ts.log.Info("watching the targets file", "file", ts.file, "every", ts.poll,
				"snmp", len(ts.dyn.SNMP.Targets), "gnmi", len(ts.dyn.GNMI.Targets))
			return nil
		},
		StopFunc: func(ctx context.Context) error {
			if cancel == nil {
				return nil
			}
			cancel()
			select {
			case <-done:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("targets: stop: %w", ctx.Err())
			}
		},
	})
}
