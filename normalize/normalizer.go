package normalize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/schema"
)

// Well-known OIDs the normalizer itself interprets.
const (
	oidSysDescr    = "1.3.6.1.2.1.1.1.0"
	oidSysObjectID = "1.3.6.1.2.1.1.2.0"
	oidSysUpTime   = "1.3.6.1.2.1.1.3.0"
)

// Profiles used when nothing more specific matches.
const (
	DefaultSNMPProfile = "generic"
	DefaultGNMIProfile = "openconfig"
)

// Limits that keep bad or hostile input from growing state without bound.
const (
	maxStringValue   = 256    // longer strings are rejected as values
	maxUnmappedPaths = 2000   // distinct unmapped paths tracked per device
	maxCacheEntries  = 200000 // resolved paths cached per device
	maxCacheBytes    = 64 << 20
	maxCachedPath    = 4096 // longer origin+path are not cached
	otherPath        = "(other)"
	// maxLabelDevices is how many devices not in the inventory get their
	// own value of the device label of the normalizer's metrics; later
	// ones share otherDevice. Inventory devices always have their own.
	maxLabelDevices = 10000
	otherDevice     = "(other)"
	// limitLogEvery is how often a device's limit is logged again after
	// the first line.
	limitLogEvery = 10 * time.Minute
)

// Reasons an observation produced no sample, as used in the unmapped
// counter's reason label.
const (
	ReasonNoMapping   = "no_mapping"   // no profile mapping for the path or OID
	ReasonBadType     = "bad_type"     // the value's kind cannot carry the metric
	ReasonBadValue    = "bad_value"    // NaN, ±Inf, negative counter, absurd string
	ReasonUnknownEnum = "unknown_enum" // an enumeration name or number not in the mapping
	ReasonException   = "exception"    // SNMP noSuchObject/noSuchInstance/endOfMibView
	ReasonBadPath     = "bad_path"     // a gNMI path that does not parse
	ReasonIncomplete  = "incomplete"   // a combined value missing one of its parts
	ReasonAbsent      = "absent"       // a value the device uses for "no reading"
)

// UnmappedStat counts observations of one device and path that produced no
// sample, for one reason.
type UnmappedStat struct {
	Device string `json:"device"`
	// Path is the SNMP OID with its index, or "origin:schema/path" for gNMI
	// (list keys removed, so that one leaf of many interfaces is one path).
	Path   string `json:"path"`
	Reason string `json:"reason"`
	Count  uint64 `json:"count"`
}

// Normalizer turns raw observations into canonical samples using vendor
// profiles. It implements schema.ObservationSink; samples are written to the
// SampleAppender given to New, one Append per device per Observe call. It is
// safe for concurrent use; batches of one device are processed one at a time.
type Normalizer struct {
	cfg Config
	out schema.SampleAppender
	log *slog.Logger
	met *metrics

	set     atomic.Pointer[profileSet]
	version atomic.Uint64
	// forced is the profile each target's own `profile` key forces, by
	// device (SetTargetProfiles); nil when no target has one.
	forced atomic.Pointer[map[string]string]

	mu      sync.RWMutex
	devices map[string]*device
	labeled int // devices outside the inventory with their own label

	reloadMu sync.Mutex
	dirStamp string

	lifeMu sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

type metrics struct {
	observations    prometheus.Counter
	samples         prometheus.Counter
	unmapped        *prometheus.CounterVec
	discontinuities *prometheus.CounterVec
	wraps           *prometheus.CounterVec
	shadowed        *prometheus.CounterVec
	reloads         *prometheus.CounterVec
	clockSkew       *prometheus.CounterVec
	refused         *prometheus.CounterVec
	invalidUTF8     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		observations: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "netfeat", Subsystem: "normalize", Name: "observations_total",
			Help: "Raw observations received by the normalizer."}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "netfeat", Subsystem: "normalize", Name: "samples_total",
			Help: "Canonical samples produced (including derived rates)."}),
		unmapped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "netfeat", Subsystem: "normalize", Name: "unmapped_total",
			Help: "Observations that produced no sample, by device, path (OID or gNMI schema path) and reason."},
			[]string{"device", "path", "reason"}),
		discontinuities: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "netfeat", Subsystem: "normalize", Name: "counter_discontinuities_total",
			Help: "Counter resets detected (agent restart, cleared counters, unexplainable drops); each yields no rate."},
			[]string{"device"}),
		wraps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "netfeat", Subsystem: "normalize", Name: "counter_wraps_total",
			Help: "Counter wraps (32- or 64-bit) bridged when computing rates."},
			[]string{"device"}),
		shadowed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "netfeat", Subsystem: "normalize", Name: "shadowed_counter_values_total",
			Help: "Counter values left out because another source feeds the same series (e.g. OpenConfig in-octets and IOS-XR generic-counters bytes-received)."},
			[]string{"device"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "netfeat", Subsystem: "normalize", Name: "profile_reloads_total",
			Help: "Profile reloads by result (ok, error)."},
			[]string{"result"}),
		clockSkew: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "netfeat", Subsystem: "normalize", Name: "clock_skew_total",
			Help: "Values whose device timestamp was more than max_clock_skew ahead of (direction=ahead) or max_sample_age behind (behind) the receive time, restamped with the receive time or dropped (action)."},
			[]string{"device", "direction", "action"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "netfeat", Subsystem: "normalize", Name: "refused_total",
			Help: "Values refused by a limit: series_limit (max_series_per_device) or name_too_long (max_name_length)."},
			[]string{"device", "reason"}),
		invalidUTF8: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "netfeat", Subsystem: "normalize", Name: "invalid_utf8_total",
			Help: "Samples whose component name held invalid UTF-8, replaced with U+FFFD."},
			[]string{"device"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.observations, m.samples, m.unmapped, m.discontinuities, m.wraps, m.shadowed, m.reloads,
			m.clockSkew, m.refused, m.invalidUTF8} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register normalizer metrics: %w", err)
			}
		}
	}
	return m, nil
}

// New loads and compiles the profiles (embedded plus cfg.ProfilesDir) and
// returns a Normalizer writing to out. reg may be nil (metrics are then not
// exported); a nil log discards.
func New(cfg Config, out schema.SampleAppender, reg prometheus.Registerer, log *slog.Logger) (*Normalizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("normalize config: %w", err)
	}
	if out == nil {
		return nil, errors.New("normalize: nil SampleAppender")
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg = cfg.withDefaults()
	met, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	n := &Normalizer{cfg: cfg, out: out, log: log, met: met, devices: map[string]*device{}}
	if err := n.Reload(); err != nil {
		return nil, err
	}
	return n, nil
}

// Reload re-reads the profiles. On error the previous profiles stay in use.
// Devices re-match their profile on their next batch; counter state is kept,
// so rates continue across a reload.
func (n *Normalizer) Reload() error {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	stamp := dirStamp(n.cfg.ProfilesDir)
	srcs, err := loadProfileSources(n.cfg.ProfilesDir)
	if err == nil {
		var set *profileSet
		set, err = compileSet(srcs)
		if err == nil {
			for _, name := range []string{DefaultSNMPProfile, DefaultGNMIProfile} {
				if set.byName[name] == nil {
					err = fmt.Errorf("%w: default profile %q missing", ErrProfile, name)
				}
			}
			if err == nil {
				n.set.Store(set)
				n.version.Add(1)
			}
		}
	}
	n.dirStamp = stamp
	if err != nil {
		n.met.reloads.WithLabelValues("error").Inc()
		n.log.Error("profile reload failed; keeping the previous profiles", "dir", n.cfg.ProfilesDir, "err", err)
		return fmt.Errorf("reload profiles: %w", err)
	}
	n.met.reloads.WithLabelValues("ok").Inc()
	n.log.Info("profiles loaded", "dir", n.cfg.ProfilesDir, "profiles", len(srcs))
	return nil
}

// dirStamp summarises the profile files of dir (names, sizes, mtimes) so
// that a change can be noticed by polling.
func dirStamp(dir string) string {
	if dir == "" {
		return ""
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "error:" + err.Error()
	}
	var b strings.Builder
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d;", filepath.Base(e.Name()), info.Size(), info.ModTime().UnixNano())
	}
	return b.String()
}

// Start watches ProfilesDir (when set) and reloads the profiles when its
// files change. It returns at once.
func (n *Normalizer) Start(ctx context.Context) error {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.cancel != nil {
		return errors.New("normalize: already started")
	}
	ctx, cancel := context.WithCancel(ctx)
	n.cancel, n.done = cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		if n.cfg.ProfilesDir == "" {
			<-ctx.Done()
			return
		}
		t := time.NewTicker(n.cfg.ReloadInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n.reloadMu.Lock()
				changed := dirStamp(n.cfg.ProfilesDir) != n.dirStamp
				n.reloadMu.Unlock()
				if changed {
					_ = n.Reload() // logged and counted by Reload
				}
			}
		}
	}()
	return nil
}

// Stop ends the profile watcher and waits for it within ctx's deadline.
func (n *Normalizer) Stop(ctx context.Context) error {
	n.lifeMu.Lock()
	cancel, done := n.cancel, n.done
	n.cancel = nil
	n.lifeMu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("normalize: stop: %w", ctx.Err())
	}
}

// Inventory returns what the configuration says about device.
func (n *Normalizer) Inventory(device string) (DeviceInfo, bool) {
	d, ok := n.cfg.Inventory[device]
	return d, ok
}

// DeviceProfile returns the profile a device is currently normalized with.
func (n *Normalizer) DeviceProfile(device string) (string, bool) {
	n.mu.RLock()
	d := n.devices[device]
	n.mu.RUnlock()
	if d == nil {
		return "", false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.prof == nil {
		return "", false
	}
	return d.prof.name, true
}

// Profiles returns the names of the loaded profiles, sorted.
func (n *Normalizer) Profiles() []string {
	set := n.set.Load()
	out := make([]string, 0, len(set.list))
	for _, c := range set.list {
		out = append(out, c.name)
	}
	return out
}

// SNMPPlan tells the SNMP poller what to fetch from device with this
// sysObjectID and sysDescr: the profile's name (the one the inventory or
// the device's target forces, else the one they match), the scalar OIDs
// to GET (with their ".0") and the table column OIDs to walk. The OIDs are
// sorted numerically and include sysDescr, sysObjectID and sysUpTime.
func (n *Normalizer) SNMPPlan(device, sysObjectID, sysDescr string) (profile string, scalars []string, columns []string) {
	set := n.set.Load()
	var c *compiled
	if info, ok := n.cfg.Inventory[device]; ok && info.Profile != "" {
		c = set.byName[info.Profile]
	} else if p := n.forcedProfile(device); p != "" {
		c = set.byName[p]
	}
	if c == nil {
		c = set.matchSNMP(strings.TrimPrefix(sysObjectID, "."), sysDescr)
	}
	if c == nil {
		c = set.byName[DefaultSNMPProfile]
	}
	return c.name, append([]string(nil), c.scalars...), append([]string(nil), c.columns...)
}

// Unmapped returns what was observed but produced no sample, per device,
// path and reason, sorted by device then path.
func (n *Normalizer) Unmapped() []UnmappedStat {
	n.mu.RLock()
	devs := make([]*device, 0, len(n.devices))
	for _, d := range n.devices {
		devs = append(devs, d)
	}
	n.mu.RUnlock()
	var out []UnmappedStat
	for _, d := range devs {
		d.mu.Lock()
		for _, u := range d.unmapped {
			out = append(out, UnmappedStat{Device: d.name, Path: u.path, Reason: u.reason, Count: u.count})
		}
		d.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Device != out[j].Device {
			return out[i].Device < out[j].Device
		}
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

// Observe normalizes a batch and appends the resulting samples. Runs of
// observations of the same device are processed together: a poll is one
// batch per device. See schema.ObservationSink for the contract.
func (n *Normalizer) Observe(ctx context.Context, batch []schema.Observation) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for start := 0; start < len(batch); {
		end := start + 1
		for end < len(batch) && batch[end].Device == batch[start].Device {
			end++
		}
		d := n.device(batch[start].Device)
		if err := d.process(ctx, n, batch[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

func (n *Normalizer) device(name string) *device {
	n.mu.RLock()
	d := n.devices[name]
	n.mu.RUnlock()
	if d != nil {
		return d
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if d = n.devices[name]; d == nil {
		d = newDevice(strings.Clone(name), n.label(name), n)
		n.devices[strings.Clone(name)] = d
	}
	return d
}

// SetTargetProfiles sets the profiles that targets force by their own
// `profile` key, by device name, as the inventory's profile does (the
// inventory's wins for a device that has both). A device whose forced
// profile is removed matches its profile again from its next values.
// Called when targets change at run time.
func (n *Normalizer) SetTargetProfiles(profiles map[string]string) {
	if len(profiles) == 0 {
		n.forced.Store(nil)
		return
	}
	m := maps.Clone(profiles)
	n.forced.Store(&m)
}

// forcedProfile returns the profile device's target forces, or "".
func (n *Normalizer) forcedProfile(device string) string {
	if m := n.forced.Load(); m != nil {
		return (*m)[device]
	}
	return ""
}

// SetDevices replaces Config.Devices, the configured devices that get
// their own label on per-device metrics, when targets change at run time.
// Devices already seen keep the label they were given.
func (n *Normalizer) SetDevices(devices []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cfg.Devices = append([]string{}, devices...) // never nil: nil means "label the first 10,000"
}

// label returns the device label value of a new device (under n.mu):
// its name for inventory devices and configured devices (Config.Devices),
// or, without that list, for the first maxLabelDevices others;
// otherDevice for the rest, so that devices appearing without end
// cannot grow the metrics without end.
func (n *Normalizer) label(name string) string {
	if _, ok := n.cfg.Inventory[name]; !ok {
		if n.cfg.Devices != nil {
			if !slices.Contains(n.cfg.Devices, name) {
				return otherDevice
			}
			return validName(name)
		}
		if n.labeled >= maxLabelDevices {
			return otherDevice
		}
		n.labeled++
	}
	return validName(name)
}

// validName returns s with invalid UTF-8 replaced by U+FFFD.
func validName(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// float conversion helpers -------------------------------------------------

// numeric extracts a float value. reason is non-empty when the observation
// cannot carry a number.
func numeric(o *schema.Observation) (float64, string) {
	switch o.Kind {
	case schema.KindCounter32, schema.KindCounter64, schema.KindGauge, schema.KindTimeTicks:
		return float64(o.Uint), ""
	case schema.KindInteger, schema.KindBool:
		return float64(o.Int), ""
	case schema.KindFloat:
		if math.IsNaN(o.Float) || math.IsInf(o.Float, 0) {
			return 0, ReasonBadValue
		}
		return o.Float, ""
	case schema.KindString, schema.KindEnum:
		if o.Kind == schema.KindEnum && o.Str == "" {
			return float64(o.Int), ""
		}
		if len(o.Str) > 64 {
			return 0, ReasonBadValue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(o.Str), 64)
		if err != nil {
			return 0, ReasonBadType
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, ReasonBadValue
		}
		return f, ""
	case schema.KindNoSuchObject, schema.KindNoSuchInstance, schema.KindEndOfMibView:
		return 0, ReasonException
	}
	return 0, ReasonBadType
}

// counterValue extracts an unsigned counter and its wrap width in bits
// (0 when the wire type gives no width: a drop is then a reset).
func counterValue(o *schema.Observation) (uint64, uint8, string) {
	switch o.Kind {
	case schema.KindCounter32:
		return o.Uint, 32, ""
	case schema.KindCounter64:
		return o.Uint, 64, ""
	case schema.KindGauge, schema.KindTimeTicks:
		return o.Uint, 0, ""
	case schema.KindInteger:
		if o.Int < 0 {
			return 0, 0, ReasonBadValue
		}
		return uint64(o.Int), 0, ""
	case schema.KindString:
		if len(o.Str) > 64 {
			return 0, 0, ReasonBadValue
		}
		if u, err := strconv.ParseUint(o.Str, 10, 64); err == nil {
			return u, 0, ""
		}
		if strings.HasPrefix(o.Str, "-") {
			return 0, 0, ReasonBadValue
		}
	}
	f, reason := numeric(o)
	if reason != "" {
		return 0, 0, reason
	}
	if f < 0 || f >= 1<<64 {
		return 0, 0, ReasonBadValue
	}
	return uint64(f), 0, ""
}

// enumValue maps an enumeration value through m's table without allocating.
func enumValue(m *mapping, o *schema.Observation) (float64, string) {
	var buf [64]byte
	var key []byte
	switch o.Kind {
	case schema.KindString, schema.KindEnum:
		s := o.Str
		if s == "" && o.Kind == schema.KindEnum {
			key = strconv.AppendInt(buf[:0], o.Int, 10)
			break
		}
		if len(s) > len(buf) {
			return 0, ReasonUnknownEnum
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			buf[i] = c
		}
		key = buf[:len(s)]
	case schema.KindInteger, schema.KindGauge, schema.KindBool:
		v := o.Int
		if o.Kind == schema.KindGauge {
			v = int64(o.Uint)
		}
		key = strconv.AppendInt(buf[:0], v, 10)
	case schema.KindNoSuchObject, schema.KindNoSuchInstance, schema.KindEndOfMibView:
		return 0, ReasonException
	default:
		return 0, ReasonBadType
	}
	v, ok := m.enum[string(key)]
	if !ok {
		return 0, ReasonUnknownEnum
	}
	return float64(v), ""
}

// hashValue summarises a discontinuity leaf's value so that a change can be
// seen without keeping a copy of the string.
func hashValue(o *schema.Observation) uint64 {
	h := uint64(14695981039346656037)
	mix := func(b byte) { h ^= uint64(b); h *= 1099511628211 }
	for i := 0; i < len(o.Str); i++ {
		mix(o.Str[i])
	}
	for _, v := range [...]uint64{o.Uint, uint64(o.Int), math.Float64bits(o.Float), uint64(o.Kind)} {
		for i := 0; i < 8; i++ {
			mix(byte(v >> (8 * i)))
		}
	}
	return h
}
