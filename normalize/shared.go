package normalize

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/netfeat/netfeat/schema"
)

// oidCache holds the resolved SNMP entries of one compiled profile, shared
// by every device on that profile. What an OID resolves to (its kind,
// instance, mappings, names table) depends on the profile alone, so one
// entry serves a thousand routers polled with the same OIDs; per device
// remain only the bindings of its metric entries (device.local and
// device.binds). Kept per device, the entries, their path copies and
// cache slots were about 200 bytes for each of the ~1,300 OIDs of a
// polled router (issue #22).
//
// Shared entries are immutable: their targets carry the mapping only
// (comp, ser and the rest stay zero), and unmapped ones have no un.
type oidCache struct {
	mu      sync.RWMutex
	entries map[string]*entry // by OID path as polled (leading dot kept)
	bytes   int               // path bytes held by entries
	// gen is bumped when the cache is emptied for being full: devices
	// then drop their bindings, which point at the old entries.
	gen atomic.Uint32
	// users is how many devices took the cache up; the cache is bounded
	// at maxCacheEntries (and maxCacheBytes) per user, the bound each
	// device had when it kept its own.
	users atomic.Int64
	// next is the id of the next entry added (c.mu held for writing).
	// Never reset: an entry of a new generation must not take the id of
	// one a device still remembers in its seq within the running batch.
	next uint32
}

// seqSlot remembers, for one position in a device's batches, the shared
// entry seen there last (by id) and its bindings' slot.
type seqSlot struct {
	id   uint32
	slot int32
}

// maxSeq bounds a device's seq: positions past it take the map lookup.
const maxSeq = 1 << 14

func newOIDCache() *oidCache {
	return &oidCache{entries: map[string]*entry{}}
}

// sharable reports whether o's entry is kept in the profile's oidCache:
// SNMP values and traps (OIDs, no origin). gNMI paths may switch the
// device's profile while they resolve and stay per device.
func sharable(o *schema.Observation) bool {
	return o.Protocol != schema.ProtocolGNMI && o.Origin == ""
}

// resolveShared resolves o in the device profile's oidCache, adding the
// entry if no device resolved it yet. An entry that cannot be kept (an
// absurd path) is returned private, resolved again at its next value.
func (d *device) resolveShared(o *schema.Observation) *entry {
	c := d.prof.oids
	// A device that added its share of the cache (the bound each device
	// had when it kept its own) resolves the rest without keeping them:
	// one device answering endless OIDs (a table whose indexes never
	// repeat, junk traps) cannot fill the cache of every device on its
	// profile, nor empty it for them by filling it. An over-long path is
	// resolved again each time too: the cache is bounded in bytes.
	if len(o.Path) > maxCachedPath || d.sharedAdded >= maxCacheEntries || d.sharedBytes+len(o.Path) > maxCacheBytes {
		return d.resolvePrivate(o)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[o.Path]; e != nil {
		return e
	}
	// The entry's strings (label, index) are substrings of one copy of
	// the path, which is also the cache key.
	oc := *o
	oc.Path = strings.Clone(o.Path)
	e := d.resolveSNMP(&oc)
	users := max(c.users.Load(), 1)
	if int64(len(c.entries)) >= maxCacheEntries*users || int64(c.bytes+len(oc.Path)) > maxCacheBytes*users {
		c.reset()
	}
	e.shared = true
	e.id = c.next
	c.next++
	c.entries[oc.Path] = e
	c.bytes += len(oc.Path)
	d.sharedAdded++
	d.sharedBytes += len(oc.Path)
	return e
}

// resolvePrivate resolves o for this value only, keeping nothing in the
// profile's cache: an over-long path, or a device over its share.
func (d *device) resolvePrivate(o *schema.Observation) *entry {
	oc := *o
	oc.Path = strings.Clone(o.Path)
	e := d.resolveSNMP(&oc)
	if e.kind == entryUnmapped {
		e.un = d.unmappedStat(e.label, ReasonNoMapping)
	}
	return e
}

// reset empties the cache; c.mu is held for writing.
func (c *oidCache) reset() {
	clear(c.entries)
	c.bytes = 0
	c.gen.Add(1)
}

// attach makes the device's bindings those of its profile's current
// oidCache generation, dropping them when the cache changed.
func (d *device) attach(c *oidCache) {
	gen := c.gen.Load()
	if c == d.oids && gen == d.oidsGen {
		return
	}
	if c != d.oids {
		if d.oids != nil {
			d.oids.users.Add(-1)
		}
		c.users.Add(1)
	}
	d.oids, d.oidsGen = c, gen
	d.sharedAdded, d.sharedBytes = 0, 0
	d.clearBinds()
}

// localTargets returns the device's bindings of a shared entry's targets,
// as the index of the first in d.binds, allocating them (unbound) the
// first time the device sees the entry. Entries without targets take
// nothing.
func (d *device) localTargets(e *entry) int32 {
	if len(e.targets) == 0 {
		return 0
	}
	if i, ok := d.local[e]; ok {
		return i
	}
	i := int32(len(d.binds))
	d.binds = append(d.binds, e.targets...)
	d.local[e] = i
	return i
}

// slotAt is localTargets for the shared entry e at position i of a
// batch. A device's polls list the same OIDs in the same order poll after
// poll, so the entry at a position is nearly always the one seen there in
// the previous batch: d.seq remembers it, which saves the map lookup.
func (d *device) slotAt(i int, e *entry) int32 {
	if i < len(d.seq) && d.seq[i].id == e.id {
		return d.seq[i].slot
	}
	slot := d.localTargets(e)
	switch {
	case i < len(d.seq):
		d.seq[i] = seqSlot{e.id, slot}
	case i == len(d.seq) && i < maxSeq:
		d.seq = append(d.seq, seqSlot{e.id, slot})
	}
	return slot
}

// targetsOf returns the targets to use for entry e of a batch, slot being
// what localTargets returned for it.
func (d *device) targetsOf(e *entry, slot int32) []target {
	if !e.shared {
		return e.targets
	}
	return d.binds[slot : slot+int32(len(e.targets)) : slot+int32(len(e.targets))]
}

func (d *device) clearBinds() {
	clear(d.local)
	clear(d.binds)
	d.binds = d.binds[:0]
	d.seq = d.seq[:0]
}
