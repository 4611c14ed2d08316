package normalize

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/schema"
)

type entryKind uint8

const (
	entryMetric entryKind = iota
	entryName
	entryIgnore
	entryUnmapped
)

// entry is what a path or OID resolved to: cached per device (gNMI paths)
// or shared by the devices of a profile (SNMP OIDs, see oidCache).
type entry struct {
	kind    entryKind
	uptime  bool   // sysUpTime.0: a decrease is a device-wide reset
	shared  bool   // in an oidCache: immutable, targets bound in device.binds
	id      uint32 // a shared entry's id in its oidCache
	index   string // SNMP instance (suffix removed); gNMI parent path
	keys    []gnmipath.Key
	targets []target
	table   int // names table for entryName
	pref    int // preference of the column within its names table
	un      *unmappedStat
	label   string // path label for unmapped accounting
}

// target is one mapping applied to an entry's observations.
type target struct {
	m    *mapping
	comp *component
	ser  *series
	gen  uint32 // names generation the component was resolved at
	ok   bool
	// lim is set when a limit refused the component or series (comp and
	// ser are then nil), or when its name held invalid UTF-8 (replaced).
	lim limitKind
}

// limitKind names an input limit of a device.
type limitKind uint8

const (
	limitNone       limitKind = iota
	limitSeries               // max_series_per_device: refused
	limitNameLength           // max_name_length: refused
	limitUTF8                 // invalid UTF-8 in the component name: replaced
	limitAhead                // device time ahead of the receive time
	limitBehind               // device time too far behind it
	nLimits
)

var limitReasons = [nLimits]string{limitSeries: "series_limit", limitNameLength: "name_too_long",
	limitUTF8: "invalid_utf8", limitAhead: "clock_ahead", limitBehind: "clock_behind"}

// component is one entity of a device.
type component struct {
	name    string
	epoch   uint32 // bumped by a discontinuity leaf change: every series rebases
	speed   float64
	disc    uint64 // hash of the discontinuity leaf's last value
	discSet bool

	// One reset can be seen several ways — a discontinuity leaf change and
	// drops of each of the component's counters, in one notification or
	// spread over several, in any order. It is counted once: resetSeq
	// numbers the resets counted for the component, resetTS is the event
	// time of the last one, and awaitMark says that it was found by a drop
	// and a discontinuity leaf change may still arrive for it.
	resetSeq  uint32
	resetTS   int64
	awaitMark bool
}

// resetConfirmWindow is how far apart (event time) a counter drop and a
// discontinuity leaf change may be and still be one reset.
const resetConfirmWindow = int64(5 * time.Minute)

type seriesKey struct {
	comp, metric string
}

// series is the state kept per counter series for rates. Its fields are
// ordered to fit 64 bytes: a polled device has one per counter.
type series struct {
	comp    *component
	raw     uint64
	ts      int64
	primary uint64
	mapID   int32 // mapping that last fed it; -1 after a state restore, mapIDUnknown after a profile change
	// resetSeq is the component reset (component.resetSeq) this series is
	// known to be past: it dropped for it, or counted on normally after it.
	resetSeq uint32
	devEpoch uint32
	epoch    uint32
	has      bool
	// fallbackFed is true when that mapping is a fallback one.
	fallbackFed bool
}

type pendKey struct {
	combo int
	inst  string
}

type pending struct {
	batch    uint64
	seen     uint64
	sum      float64
	t        *target
	ts, recv int64
	proto    schema.Protocol
	label    string
	conv     *mapping
}

type unmappedKey struct {
	path, reason string
}

type unmappedStat struct {
	path, reason string
	count        uint64
	ctr          prometheus.Counter
}

type cacheKey struct {
	origin, path string
}

// nameRow holds the candidate names of one index, by column preference.
type nameRow struct {
	vals []string
	eff  string // the effective name counted in nameTable.uses
}

// nameTable is one names table of a device: index → names, and how many
// indexes carry each effective name, so that a name shared by several rows
// (ISAM's many " ONT" interfaces) can be made unique.
type nameTable struct {
	rows map[string]*nameRow
	uses map[string]int
}

func (t *nameTable) recount(row *nameRow) {
	eff := ""
	for _, v := range row.vals {
		if v != "" {
			eff = v
			break
		}
	}
	if eff == row.eff {
		return
	}
	if row.eff != "" {
		t.uses[row.eff]--
	}
	row.eff = eff
	if eff != "" {
		t.uses[eff]++
	}
}

// device is the normalizer's state for one device.
type device struct {
	mu    sync.Mutex
	name  string // as the collectors name it (inventory and state key)
	clean string // name with invalid UTF-8 replaced: the samples' Device
	label string // device label of the metrics: clean, or otherDevice
	n     *Normalizer

	version  uint64
	set      *profileSet
	prof     *compiled
	profBy   string // inventory, snmp, gnmi, default
	profRank int

	sysObjectID, sysDescr string
	uptime                uint64
	uptimeSet             bool
	epoch                 uint32

	// cache holds the resolved paths with an origin, paths the ones
	// without (every SNMP OID): keyed by the path alone, a slot is 24
	// bytes rather than 40.
	cache      map[cacheKey]*entry
	paths      map[string]*entry
	cacheBytes int // origin and path bytes held by cache and paths
	// oids is the oidCache of the device's profile as of generation
	// oidsGen; local gives, for each of its metric entries the device
	// has seen, the index of its targets' bindings in binds.
	oids    *oidCache
	oidsGen uint32
	// sharedAdded and sharedBytes are the entries (and their path bytes)
	// this device added to oids in generation oidsGen: its share.
	sharedAdded, sharedBytes int
	local                    map[*entry]int32
	binds                    []target
	seq                      []seqSlot // by batch position, see slotAt
	names                    []*nameTable
	namesGen                 uint32
	comps                    map[string]*component
	series                   map[seriesKey]*series
	pend                     map[pendKey]*pending
	unmapped                 map[unmappedKey]*unmappedStat

	batch uint64
	// scratch and out are process's buffers while it runs (from
	// procBufs), nil between batches.
	scratch []*entry
	slots   []int32 // localTargets of each shared entry in scratch
	out     []schema.Sample

	disc, wraps, shadowed prometheus.Counter

	// Input limits: series created (derived rates included), the
	// counters of each limit (resolved on first use), and when each was
	// last logged and how often it bit since.
	nseries int
	limCtr  [nLimits]prometheus.Counter
	limLog  [nLimits]time.Time
	limN    [nLimits]uint64
}

func newDevice(name, label string, n *Normalizer) *device {
	return &device{
		name: name, clean: validName(name), label: label, n: n,
		cache:    map[cacheKey]*entry{},
		paths:    map[string]*entry{},
		local:    map[*entry]int32{},
		comps:    map[string]*component{},
		series:   map[seriesKey]*series{},
		pend:     map[pendKey]*pending{},
		unmapped: map[unmappedKey]*unmappedStat{},
		disc:     n.met.discontinuities.WithLabelValues(label),
		wraps:    n.met.wraps.WithLabelValues(label),
		shadowed: n.met.shadowed.WithLabelValues(label),
	}
}

// setProfile switches the device to c, dropping resolved paths (counter
// state is kept: it is keyed by component and metric).
func (d *device) setProfile(c *compiled, by string, rank int) {
	if d.prof == c {
		d.profBy, d.profRank = by, rank
		return
	}
	d.prof, d.profBy, d.profRank = c, by, rank
	d.clearCache()
	d.names = make([]*nameTable, len(c.names))
	for i := range d.names {
		d.names[i] = &nameTable{rows: map[string]*nameRow{}, uses: map[string]int{}}
	}
	d.namesGen++
	// Mapping ids are the compiled profile's: the next value of each series
	// rebases on whichever source feeds it now, and none is shadowed.
	for _, s := range d.series {
		if s.mapID != -1 {
			s.mapID = mapIDUnknown
		}
	}
	d.n.log.Debug("device profile", "device", d.name, "profile", c.name, "matched_by", by)
}

// chooseProfile picks the device's profile before a batch is processed.
func (d *device) chooseProfile(batch []schema.Observation) {
	if v := d.n.version.Load(); v != d.version {
		d.version, d.set = v, d.n.set.Load()
		old := d.prof
		d.prof = nil
		if old != nil && d.profBy == "gnmi" {
			if c := d.set.byName[old.name]; c != nil {
				d.setProfile(c, "gnmi", d.profRank)
			}
		}
		if d.prof == nil {
			d.clearCache()
		}
	}
	if info, ok := d.n.cfg.Inventory[d.name]; ok && info.Profile != "" {
		if c := d.set.byName[info.Profile]; c != nil {
			d.setProfile(c, "inventory", 1<<30)
			return
		}
	}
	if p := d.n.forcedProfile(d.name); p != "" {
		if c := d.set.byName[p]; c != nil {
			d.setProfile(c, "target", 1<<30)
			return
		}
	} else if d.profBy == "target" {
		// The target no longer forces a profile: match again.
		d.prof, d.profBy, d.profRank = nil, "", 0
		d.sysObjectID, d.sysDescr = "", ""
		d.clearCache()
	}
	// SNMP: system scalars in the batch (all three are 17 characters).
	var oid, descr string
	snmp := false
	for i := range batch {
		o := &batch[i]
		if o.Protocol != schema.ProtocolSNMP && o.Protocol != schema.ProtocolTrap {
			continue
		}
		snmp = true
		if len(o.Path) != len(oidSysObjectID) {
			continue
		}
		switch o.Path {
		case oidSysObjectID:
			oid = strings.TrimPrefix(o.Str, ".")
		case oidSysDescr:
			descr = o.Str
		}
	}
	if snmp && (oid != "" || descr != "") && (oid != d.sysObjectID || descr != d.sysDescr || d.profBy != "snmp") {
		d.sysObjectID, d.sysDescr = strings.Clone(oid), strings.Clone(descr)
		if c := d.set.matchSNMP(oid, descr); c != nil {
			d.setProfile(c, "snmp", 0)
			return
		}
	}
	if d.prof != nil {
		return
	}
	if snmp {
		d.setProfile(d.set.byName[DefaultSNMPProfile], "default", 0)
		return
	}
	// gNMI: the best profile for any origin in the batch.
	var best *compiled
	rank := 0
	for i := range batch {
		o := &batch[i]
		origin := o.Origin
		if originClass(origin) == "openconfig" {
			if j := strings.IndexByte(o.Path, ':'); j > 0 && j < strings.IndexAny(o.Path+"/", "/[") {
				origin = o.Path[:j]
			}
		}
		if c, r := d.set.matchOrigin(origin); r > rank {
			best, rank = c, r
		}
	}
	if best == nil {
		d.setProfile(d.set.byName[DefaultGNMIProfile], "gnmi", 0)
		return
	}
	d.setProfile(best, "gnmi", rank)
}

// process normalizes one device's run of observations and appends the
// samples.
func (d *device) process(ctx context.Context, n *Normalizer, batch []schema.Observation) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	// The batch's scratch and output buffers come from a pool shared by
	// every device: kept per device they were most of a polled device's
	// memory (1,300 samples of 88 bytes, idle between polls).
	b, _ := procBufs.Get().(*procBuf)
	if b == nil {
		b = &procBuf{}
	}
	d.scratch, d.slots, d.out = b.scratch[:0], b.slots[:0], b.out[:0]
	defer func() {
		if d.scratch != nil || d.out != nil {
			clear(d.scratch)
			clear(d.out)
			b.scratch, b.slots, b.out = d.scratch[:0], d.slots[:0], d.out[:0]
		}
		d.scratch, d.slots, d.out = nil, nil, nil
		procBufs.Put(b)
	}()
	d.batch++
	d.chooseProfile(batch)
	if len(d.cache)+len(d.paths)+len(d.local) > maxCacheEntries || d.cacheBytes > maxCacheBytes {
		d.clearCache()
	}
	shared := d.prof.oids
	d.attach(shared)

	// Pass 1: resolve every observation to its entry; take names and
	// sysUpTime first so that pass 2 sees this poll's names and resets.
	// The profile's shared entries are read under its read lock, taken
	// once for the run of them rather than per value.
	scratch, slots := d.scratch[:0], d.slots[:0]
	locked := false
	for i := range batch {
		o := &batch[i]
		var e *entry
		var slot int32
		if sharable(o) {
			if !locked {
				shared.mu.RLock()
				locked = true
			}
			if e = shared.entries[o.Path]; e == nil {
				shared.mu.RUnlock()
				locked = false
				e = d.resolveShared(o)
			}
			if e.shared {
				slot = d.slotAt(i, e)
			}
		} else {
			if locked {
				shared.mu.RUnlock()
				locked = false
			}
			if o.Origin == "" {
				e = d.paths[o.Path]
			} else {
				e = d.cache[cacheKey{o.Origin, o.Path}]
			}
			if e == nil {
				e = d.resolve(o)
				if e == nil { // the profile changed under a gNMI origin: restart
					d.scratch, d.slots = scratch, slots
					return d.processRestart(ctx, n, batch)
				}
			}
		}
		scratch = append(scratch, e)
		slots = append(slots, slot)
		switch e.kind {
		case entryName:
			d.setName(e, o)
		case entryMetric:
			// Only a poll's sysUpTime announces a reset: a trap's is the
			// notification originator's (and anyone on the device's
			// address can send one), so it must not throw away the rates
			// of every counter (found by make soak).
			if e.uptime && o.Kind == schema.KindTimeTicks && o.Protocol != schema.ProtocolTrap {
				if d.uptimeSet && o.Uint < d.uptime {
					d.epoch++
					d.disc.Inc()
				}
				d.uptime, d.uptimeSet = o.Uint, true
			}
		}
	}
	if locked {
		shared.mu.RUnlock()
	}
	d.scratch, d.slots = scratch, slots

	// Pass 2: resolve components, apply discontinuities, note which series
	// have a primary (non-fallback) source in this batch.
	for i, e := range scratch {
		if e.kind != entryMetric {
			continue
		}
		tg := d.targetsOf(e, slots[i])
		for j := range tg {
			t := &tg[j]
			if !t.ok || t.gen != d.namesGen {
				d.bind(e, t)
			}
			if t.lim != limitNone && t.lim != limitUTF8 {
				continue
			}
			switch {
			case t.m.role == RoleDiscontinuity:
				d.marker(t.comp, &batch[i])
			case t.ser != nil && !t.m.fallback:
				t.ser.primary = d.batch
			}
		}
	}

	// Pass 3: values.
	samples := 0
	for i, e := range scratch {
		o := &batch[i]
		switch e.kind {
		case entryUnmapped:
			u := e.un
			if u == nil { // shared: the device's own count
				u = d.unmappedStat(e.label, ReasonNoMapping)
			}
			u.count++
			u.ctr.Inc()
			continue
		case entryMetric:
		default:
			continue
		}
		tg := d.targetsOf(e, slots[i])
		for j := range tg {
			t := &tg[j]
			m := t.m
			if m.role != RoleMetric {
				continue
			}
			switch t.lim {
			case limitNone:
			case limitUTF8:
				d.limit(limitUTF8, t, "")
			default:
				d.limit(t.lim, t, "")
				continue
			}
			if m.fallback && t.ser.primary == d.batch {
				continue
			}
			if m.combo != nil {
				d.addPart(e, t, o)
				continue
			}
			samples += d.emit(t, m, o, e.label)
		}
	}
	samples += d.finishCombos()
	n.met.observations.Add(float64(len(batch)))
	n.met.samples.Add(float64(samples))
	if len(d.out) == 0 {
		return nil
	}
	err := n.out.Append(ctx, d.out)
	clear(d.out) // drop string references held by the reused buffer
	d.out = d.out[:0]
	if err != nil {
		return fmt.Errorf("normalize: append samples of %s: %w", d.name, err)
	}
	return nil
}

// clearCache forgets every resolved path.
func (d *device) clearCache() {
	clear(d.cache)
	clear(d.paths)
	d.cacheBytes = 0
	d.clearBinds()
}

// procBuf is the buffers one device.process uses while it runs.
type procBuf struct {
	scratch []*entry
	slots   []int32
	out     []schema.Sample
}

var procBufs sync.Pool

func (d *device) processRestart(ctx context.Context, n *Normalizer, batch []schema.Observation) error {
	d.mu.Unlock()
	defer d.mu.Lock()
	return d.process(ctx, n, batch)
}

// emit converts one observation and appends its sample(s). It returns the
// number of samples appended.
func (d *device) emit(t *target, m *mapping, o *schema.Observation, label string) int {
	ts, ok := d.stamp(o)
	if !ok {
		return 0
	}
	if m.kind == schema.KindCounterMetric {
		raw, width, reason := counterValue(o)
		if reason != "" {
			d.bad(label, reason)
			return 0
		}
		if m.bits != 0 && width != 32 && (m.bits != 32 || raw < 1<<32) {
			// The model's width: a YANG uint32 counter over gNMI wraps
			// at 2³² although the wire value has no width (or 64). A
			// value beyond 32 bits shows the device keeps a wider
			// counter than its model says; the wire width stands.
			width = m.bits
		}
		return d.counter(t, m, raw, width, ts, o.RecvTime, o.Protocol)
	}
	var v float64
	var reason string
	if m.enum != nil {
		v, reason = enumValue(m, o)
	} else {
		v, reason = numeric(o)
	}
	if reason != "" {
		d.bad(label, reason)
		return 0
	}
	for _, a := range m.absent {
		if v == a {
			d.bad(label, ReasonAbsent)
			return 0
		}
	}
	v = m.apply(v)
	if m.dbm {
		if v <= 0 {
			d.bad(label, ReasonBadValue)
			return 0
		}
		v = 10 * math.Log10(v)
	}
	if m.speed {
		t.comp.speed = v
	}
	d.append(ts, o.RecvTime, t.comp.name, m.metric, v, m.sources[o.Protocol])
	return 1
}

func (d *device) append(ts, recv int64, comp, metric string, v float64, src string) {
	d.out = append(d.out, schema.Sample{
		TS: ts, IngestTS: recv, Entity: schema.Entity{Device: d.clean, Component: comp},
		Metric: metric, Value: v, Source: src,
	})
}

// mapIDUnknown marks a series whose source's mapping belongs to a profile
// the device no longer uses.
const mapIDUnknown = -2

// sourceHold is how long a counter series keeps to the source that feeds
// it before another source of the same series may take over (a primary
// source takes over from a fallback one at once).
const sourceHold = 2 * time.Minute

// Wrap plausibility: a drop is bridged as a wrap only when the wrapped
// delta is less than half (32-bit) or a quarter (64-bit) of the range, and,
// for octet counters of an interface with a known speed, when the implied
// rate is at most twice that speed. Anything else is a reset.
const (
	maxWrap32 = 1 << 31
	maxWrap64 = 1 << 62
)

// counter appends the counter sample and, from the second sample of an
// unbroken series on, its derived rates.
func (d *device) counter(t *target, m *mapping, raw uint64, width uint8, ts, recv int64, proto schema.Protocol) int {
	s := t.ser
	mapID := int32(m.id)
	if m.combo != nil {
		mapID = int32(m.combo.conv.id)
	}
	if s.has && s.mapID >= 0 && s.mapID != mapID && ts-s.ts < int64(sourceHold) && (t.m.fallback || !s.fallbackFed) {
		// Another source feeds this series and has within sourceHold: keep
		// to it. Two counters of one thing (OpenConfig in-octets and
		// IOS-XR bytes-received) arrive in different notifications, and
		// alternating between them would rebase the series every time.
		// A primary source still takes over from a fallback one.
		d.shadowed.Inc()
		return 0
	}
	s.fallbackFed = t.m.fallback
	src := m.sources[proto]
	d.append(ts, recv, t.comp.name, m.metric, m.apply(float64(raw)), src)
	n := 1
	if !s.has || s.mapID != mapID && s.mapID != -1 || s.devEpoch != d.epoch || s.epoch != t.comp.epoch {
		// First value, another source, or a reset announced by sysUpTime or
		// a discontinuity leaf (counted where it was detected).
		d.rebase(s, raw, ts, mapID, t.comp)
		return n
	}
	dt := ts - s.ts
	if dt <= 0 {
		return n // duplicate or out of order: keep the newer baseline
	}
	var delta uint64
	if raw >= s.raw {
		delta = raw - s.raw
	} else {
		wrapped := raw - s.raw // modular arithmetic: correct for 64-bit
		ok := false
		switch width {
		case 32:
			wrapped = raw + (1 << 32) - s.raw
			ok = s.raw < 1<<32 && wrapped < maxWrap32
		case 64:
			ok = wrapped < maxWrap64
		}
		if ok && t.comp.speed > 0 && len(m.rates) > 0 && m.rates[0].util != "" {
			ok = float64(wrapped)*m.scale*m.rates[0].scale/(float64(dt)/1e9) <= 2*t.comp.speed
		}
		if !ok {
			d.dropReset(s, t.comp, ts)
			d.rebase(s, raw, ts, mapID, t.comp)
			return n
		}
		d.wraps.Inc()
		delta = wrapped
	}
	perSec := float64(delta) * m.scale / (float64(dt) / 1e9)
	for _, r := range m.rates {
		v := perSec * r.scale
		d.append(ts, recv, t.comp.name, r.metric, v, src)
		n++
		if r.util != "" && t.comp.speed > 0 {
			d.append(ts, recv, t.comp.name, r.util, v/t.comp.speed, src)
			n++
		}
	}
	s.raw, s.ts = raw, ts
	if ts >= t.comp.resetTS {
		s.resetSeq = t.comp.resetSeq // counted on normally past the last reset
	}
	return n
}

// dropReset accounts for a counter drop that no wrap explains. It is the
// series' share of the component's last reset when the series has not yet
// shown that reset and its previous value is not newer than it (a
// discontinuity leaf changed first, or a sibling counter dropped first);
// otherwise it is a new reset, counted once, which a discontinuity leaf
// change may still confirm (see marker).
func (d *device) dropReset(s *series, c *component, ts int64) {
	if s.resetSeq == c.resetSeq || s.ts > c.resetTS {
		d.disc.Inc()
		c.resetSeq++
		c.resetTS, c.awaitMark = ts, true
	}
	s.resetSeq = c.resetSeq
}

// marker handles one value of a component's discontinuity leaf (OpenConfig
// last-clear, IOS-XR last-discontinuity-time, IOS-XE discontinuity-time). A
// change is a reset: every series of the component rebases at its next
// value, and the reset is counted, unless it is the first reading of the
// leaf after a reset already counted from a drop and within
// resetConfirmWindow of it (the leaf reported the clear later than the
// counters did).
func (d *device) marker(c *component, o *schema.Observation) {
	h := hashValue(o)
	ts, ok := d.stamp(o)
	if !ok {
		return
	}
	switch {
	case !c.discSet:
	case c.disc != h:
		if c.awaitMark && abs64(ts-c.resetTS) <= resetConfirmWindow {
			c.awaitMark = false
			break
		}
		c.epoch++
		d.disc.Inc()
		c.resetSeq++
		c.resetTS, c.awaitMark = ts, false
	case ts > c.resetTS:
		c.awaitMark = false // read after the drop and unchanged: not a clear
	}
	c.disc, c.discSet = h, true
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func (d *device) rebase(s *series, raw uint64, ts int64, mapID int32, c *component) {
	s.has, s.raw, s.ts, s.mapID, s.devEpoch, s.epoch = true, raw, ts, mapID, d.epoch, c.epoch
}

// addPart accumulates one part of a combined value.
func (d *device) addPart(e *entry, t *target, o *schema.Observation) {
	m := t.m
	v, reason := numeric(o)
	if reason != "" {
		d.bad(e.label, reason)
		return
	}
	k := pendKey{combo: m.combo.id, inst: e.index}
	p := d.pend[k]
	if p == nil && len(d.pend) >= d.n.cfg.MaxSeriesPerDevice {
		d.limit(limitSeries, t, "")
		return
	}
	if p == nil {
		p = &pending{}
		d.pend[pendKey{combo: m.combo.id, inst: strings.Clone(e.index)}] = p
	}
	if p.batch != d.batch {
		*p = pending{batch: d.batch}
	}
	bit := uint64(1) << uint(m.part)
	if p.seen&bit == 0 {
		p.sum += m.sign * v
	}
	p.seen |= bit
	if m.part == 0 || p.t == nil {
		ts, ok := d.stamp(o)
		if !ok {
			return // counted by stamp; the combination is then incomplete
		}
		p.t, p.label = t, e.label
		p.ts = ts
		p.recv, p.proto, p.conv = o.RecvTime, o.Protocol, m.combo.conv
	}
}

// finishCombos emits combined values whose parts all arrived in this batch.
func (d *device) finishCombos() int {
	n := 0
	for _, p := range d.pend {
		if p.batch != d.batch || p.t == nil {
			continue
		}
		m := p.conv
		if p.seen != (uint64(1)<<uint(m.combo.parts))-1 {
			d.bad(p.label, ReasonIncomplete)
			p.t = nil
			continue
		}
		if m.kind == schema.KindCounterMetric {
			if p.sum < 0 {
				d.bad(p.label, ReasonBadValue)
			} else {
				n += d.counter(p.t, m, uint64(p.sum), 0, p.ts, p.recv, p.proto)
			}
		} else {
			d.append(p.ts, p.recv, p.t.comp.name, m.metric, m.apply(p.sum), m.sources[p.proto])
			n++
		}
		p.t = nil
	}
	return n
}

// bad counts an observation of a mapped path that could not be converted.
func (d *device) bad(label, reason string) {
	u := d.unmappedStat(label, reason)
	u.count++
	u.ctr.Inc()
}

func (d *device) unmappedStat(label, reason string) *unmappedStat {
	u := d.unmapped[unmappedKey{label, reason}]
	if u != nil {
		return u
	}
	if len(d.unmapped) >= maxUnmappedPaths {
		label = otherPath
		if u = d.unmapped[unmappedKey{label, reason}]; u != nil {
			return u
		}
	}
	label = strings.Clone(label)
	u = &unmappedStat{path: label, reason: reason, ctr: d.n.met.unmapped.WithLabelValues(d.label, validName(label), reason)}
	d.unmapped[unmappedKey{label, reason}] = u
	return u
}

// setName records one names-table value. Integer names (slot and port
// numbers) are formatted into a stack buffer and only copied when they
// change, so a steady poll does not allocate.
func (d *device) setName(e *entry, o *schema.Observation) {
	var buf [24]byte
	var b []byte
	v := o.Str
	switch o.Kind {
	case schema.KindString, schema.KindBytes:
	case schema.KindInteger:
		b = strconv.AppendInt(buf[:0], o.Int, 10)
	case schema.KindGauge:
		b = strconv.AppendUint(buf[:0], o.Uint, 10)
	default:
		return
	}
	if len(v) > maxStringValue || len(v) > d.n.cfg.MaxNameLength {
		d.bad(e.label, ReasonBadValue)
		return
	}
	tbl := d.names[e.table]
	row := tbl.rows[e.index]
	if row == nil && len(tbl.rows) >= d.n.cfg.MaxSeriesPerDevice {
		// More names than the device may have series: the rows of a
		// table that grows without end are not kept.
		d.limit(limitSeries, nil, "")
		return
	}
	if row == nil {
		row = &nameRow{vals: make([]string, len(d.prof.names[e.table].OIDs))}
		tbl.rows[e.index] = row
	}
	if b != nil {
		if row.vals[e.pref] != string(b) {
			row.vals[e.pref] = string(b)
			tbl.recount(row)
			d.namesGen++
		}
		return
	}
	if row.vals[e.pref] != v {
		row.vals[e.pref] = strings.Clone(v)
		tbl.recount(row)
		d.namesGen++
	}
}

// lookupName returns the name of idx in a names table: the first non-empty
// column value (suffixed with "#index" when unique is set and other rows
// share it), or the index itself when the table has no name for it.
func (d *device) lookupName(table int, idx string, unique bool) string {
	t := d.names[table]
	if row := t.rows[idx]; row != nil && row.eff != "" {
		if unique && t.uses[row.eff] > 1 {
			return row.eff + "#" + idx
		}
		return row.eff
	}
	return idx
}

// bind resolves a target's component and series.
func (d *device) bind(e *entry, t *target) {
	name := d.render(t.m.tmpl, e)
	t.comp, t.ser, t.gen, t.ok, t.lim = nil, nil, d.namesGen, true, limitNone
	if len(name) > d.n.cfg.MaxNameLength {
		t.lim = limitNameLength
		return
	}
	if !utf8.ValidString(name) {
		name = strings.ToValidUTF8(name, "\uFFFD")
		t.lim = limitUTF8
	}
	c := d.comps[name]
	var s *series
	if t.m.role == RoleMetric {
		k := seriesKey{name, t.m.metric}
		if s = d.series[k]; s == nil {
			w := 1 + len(t.m.rates)
			for _, r := range t.m.rates {
				if r.util != "" {
					w++
				}
			}
			if d.nseries+w > d.n.cfg.MaxSeriesPerDevice {
				t.lim = limitSeries
				return
			}
			d.nseries += w
		}
	}
	if c == nil {
		if len(d.comps) >= d.n.cfg.MaxSeriesPerDevice {
			t.lim = limitSeries
			return
		}
		c = &component{name: name}
		d.comps[name] = c
	}
	t.comp = c
	if t.m.role == RoleMetric {
		if s == nil {
			s = &series{comp: c}
			d.series[seriesKey{name, t.m.metric}] = s
		}
		t.ser = s
	}
}

// stamp returns the event time of o: the device's time if it has one
// within max_clock_skew ahead of and max_sample_age behind the receive
// time, else (counted and logged) the receive time, or ok false when the
// action is drop. One device's clock thus never moves the store's
// watermark for everyone.
func (d *device) stamp(o *schema.Observation) (ts int64, ok bool) {
	ts = o.DeviceTime
	if ts == 0 {
		return o.RecvTime, true
	}
	if o.RecvTime == 0 {
		return ts, true
	}
	var k limitKind
	switch {
	case ts-o.RecvTime > int64(d.n.cfg.MaxClockSkew):
		k = limitAhead
	case o.RecvTime-ts > int64(d.n.cfg.MaxSampleAge):
		k = limitBehind
	default:
		return ts, true
	}
	d.limit(k, nil, time.Unix(0, ts).UTC().Format(time.RFC3339Nano))
	if d.n.cfg.ClockSkewAction == ClockDrop {
		return 0, false
	}
	return o.RecvTime, true
}

// limit counts one value that a limit changed or refused and logs the
// device's first, then at most one line per limitLogEvery.
func (d *device) limit(k limitKind, t *target, detail string) {
	c := d.limCtr[k]
	if c == nil {
		switch k {
		case limitAhead, limitBehind:
			action := "restamped"
			if d.n.cfg.ClockSkewAction == ClockDrop {
				action = "dropped"
			}
			c = d.n.met.clockSkew.WithLabelValues(d.label, strings.TrimPrefix(limitReasons[k], "clock_"), action)
		case limitUTF8:
			c = d.n.met.invalidUTF8.WithLabelValues(d.label)
		default:
			c = d.n.met.refused.WithLabelValues(d.label, limitReasons[k])
		}
		d.limCtr[k] = c
	}
	c.Inc()
	d.limN[k]++
	now := time.Now()
	if !d.limLog[k].IsZero() && now.Sub(d.limLog[k]) < limitLogEvery {
		return
	}
	first := d.limLog[k].IsZero()
	d.limLog[k] = now
	attrs := []any{"device", d.clean, "limit", limitReasons[k], "count", d.limN[k], "first", first}
	switch k {
	case limitAhead:
		attrs = append(attrs, "device_time", detail, "max_clock_skew", d.n.cfg.MaxClockSkew, "action", d.n.cfg.ClockSkewAction)
	case limitBehind:
		attrs = append(attrs, "device_time", detail, "max_sample_age", d.n.cfg.MaxSampleAge, "action", d.n.cfg.ClockSkewAction)
	case limitSeries:
		attrs = append(attrs, "series", d.nseries, "max_series_per_device", d.n.cfg.MaxSeriesPerDevice)
	case limitNameLength:
		attrs = append(attrs, "max_name_length", d.n.cfg.MaxNameLength)
	}
	if t != nil && t.m != nil {
		attrs = append(attrs, "metric", t.m.metric)
	}
	d.n.log.Warn("device input limited", attrs...)
}

func (d *device) render(t template, e *entry) string {
	if len(t) == 0 {
		return ""
	}
	var b strings.Builder
	for _, s := range t {
		switch s.kind {
		case segLiteral:
			b.WriteString(s.text)
		case segIndex:
			b.WriteString(e.index)
		case segIndexArc:
			b.WriteString(arc(e.index, s.arc))
		case segName:
			idx := e.index
			if s.arc >= 0 {
				idx = arc(idx, s.arc)
			}
			if s.table < len(d.names) {
				// A template that is just a name must stay unique per row;
				// composite ones ("{name.A.0} {name.B}") are made unique by
				// their other parts.
				b.WriteString(d.lookupName(s.table, idx, len(t) == 1))
			} else {
				b.WriteString(idx)
			}
		case segKey:
			for i := len(e.keys) - 1; i >= 0; i-- {
				if e.keys[i].Name == s.text {
					b.WriteString(e.keys[i].Value)
					break
				}
			}
		}
	}
	return b.String()
}

// arc returns the n-th dot-separated arc of idx, or "" if it has fewer.
func arc(idx string, n int) string {
	for ; n > 0; n-- {
		i := strings.IndexByte(idx, '.')
		if i < 0 {
			return ""
		}
		idx = idx[i+1:]
	}
	if i := strings.IndexByte(idx, '.'); i >= 0 {
		return idx[:i]
	}
	return idx
}

// resolve builds (and caches) the entry for an observation not seen
// before. It returns nil when it switched the device's profile, so that
// the caller restarts the batch.
func (d *device) resolve(o *schema.Observation) *entry {
	// The entry's strings (label, index) are substrings of one copy of
	// the path, which is also the cache key: the collector's buffers are
	// reused, and one copy per path is the least a cache can hold.
	oc := *o
	oc.Origin, oc.Path = strings.Clone(o.Origin), strings.Clone(o.Path)
	o = &oc
	var e *entry
	if o.Protocol == schema.ProtocolGNMI {
		var switched bool
		e, switched = d.resolveGNMI(o)
		if switched {
			return nil
		}
	} else {
		e = d.resolveSNMP(o)
	}
	if e.kind == entryUnmapped && e.un == nil {
		e.un = d.unmappedStat(e.label, ReasonNoMapping)
	}
	if n := len(o.Origin) + len(o.Path); n <= maxCachedPath {
		// An absurd path (a 1 MiB list key) is resolved again each time
		// rather than kept: the cache is bounded in bytes too.
		if o.Origin == "" {
			d.paths[o.Path] = e
		} else {
			d.cache[cacheKey{o.Origin, o.Path}] = e
		}
		d.cacheBytes += n
	}
	return e
}

func (d *device) resolveSNMP(o *schema.Observation) *entry {
	oid := strings.TrimPrefix(o.Path, ".")
	e := &entry{label: oid}
	p := d.prof
	// Names tables first: a names column is not also a metric.
	for i := len(oid); i > 0; i = strings.LastIndexByte(oid[:i], '.') {
		col := oid[:i]
		if nc, ok := p.nameCols[col]; ok && i < len(oid) {
			e.kind, e.table, e.pref, e.index = entryName, nc.table, nc.pref, oid[i+1:]
			return e
		}
		ms := p.snmp[col]
		if len(ms) == 0 || i == len(oid) {
			continue
		}
		idx := oid[i+1:]
		for _, m := range ms {
			if m.scalar && idx != "0" {
				continue
			}
			inst := idx
			if m.suffix != "" {
				if !strings.HasSuffix(idx, m.suffix) || len(idx) == len(m.suffix) {
					continue
				}
				inst = idx[:len(idx)-len(m.suffix)]
			}
			if e.index == "" {
				e.index = inst
			} else if e.index != inst {
				continue // one entry, one instance: first mapping wins
			}
			e.targets = append(e.targets, target{m: m})
		}
		if len(e.targets) > 0 {
			e.kind = entryMetric
			e.uptime = oid == oidSysUpTime
			return e
		}
		break
	}
	for _, ig := range p.ignore {
		if oid == ig || strings.HasPrefix(oid, ig+".") {
			e.kind = entryIgnore
			return e
		}
	}
	e.kind = entryUnmapped
	return e
}

func (d *device) resolveGNMI(o *schema.Observation) (*entry, bool) {
	pp, err := gnmipath.SplitPath(o.Path)
	origin := o.Origin
	if err == nil && originClass(origin) == "openconfig" && pp.Module != "" {
		origin = pp.Module
	}
	class := originClass(origin)
	if err != nil {
		e := &entry{kind: entryUnmapped, label: class + ":" + o.Path}
		e.un = d.unmappedStat(e.label, ReasonBadPath)
		return e, false
	}
	e := &entry{label: class + ":" + pp.Schema, keys: pp.Keys}
	ms := d.prof.gnmi[gnmiKey{class: class, schema: pp.Schema}]
	if len(ms) == 0 {
		// A model the current profile does not map may select a better one
		// (a device first seen with OpenConfig paths, then IOS-XR native).
		if d.profBy == "gnmi" || d.profBy == "default" {
			if c, r := d.set.matchOrigin(origin); c != nil && r > d.profRank && c != d.prof {
				d.setProfile(c, "gnmi", r)
				return nil, true
			}
		}
		e.kind = entryUnmapped
		return e, false
	}
	if i := strings.LastIndexByte(o.Path, '/'); i > 0 {
		e.index = o.Path[:i]
	}
	for _, m := range ms {
		e.targets = append(e.targets, target{m: m})
	}
	e.kind = entryMetric
	return e, false
}
