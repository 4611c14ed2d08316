package cluster

import (
	"encoding/json"
	"slices"
	"strings"
)

// view is a node's copy of the bucket, fed by one watch of the whole
// bucket. One watch delivers every key in the order the server stored
// them, so an owner record naming a lease is never seen before that
// lease.
type view struct {
	revs   map[string]uint64 // key → last revision applied
	nodes  map[string]nodeRecord
	drains map[string]bool
	owners map[string]ownerEntry
}

// ownerEntry is an owner record and its revision, for compare-and-set.
type ownerEntry struct {
	rec ownerRecord
	rev uint64
}

func newView() *view {
	return &view{
		revs: map[string]uint64{}, nodes: map[string]nodeRecord{},
		drains: map[string]bool{}, owners: map[string]ownerEntry{},
	}
}

// set applies a key's value (or its deletion) at revision rev, unless the
// view already has that revision or a later one.
func (v *view) set(key string, rev uint64, value []byte, deleted bool) {
	if rev <= v.revs[key] {
		return
	}
	v.revs[key] = rev
	var prefix string
	for _, p := range []string{nodesPrefix, ownersPrefix, drainPrefix} {
		if strings.HasPrefix(key, p) {
			prefix = p
		}
	}
	if prefix == "" {
		return
	}
	name, err := unescape(key[len(prefix):])
	if err != nil {
		return
	}
	switch prefix {
	case nodesPrefix:
		var r nodeRecord
		if deleted || json.Unmarshal(value, &r) != nil || r.Node != name {
			delete(v.nodes, name)
			return
		}
		v.nodes[name] = r
	case ownersPrefix:
		var r ownerRecord
		if deleted || json.Unmarshal(value, &r) != nil || r.Target != name {
			delete(v.owners, name)
			return
		}
		v.owners[name] = ownerEntry{rec: r, rev: rev}
	case drainPrefix:
		if deleted {
			delete(v.drains, name)
		} else {
			v.drains[name] = true
		}
	}
}

// holds reports whether the lease that took an owner record still lives.
func (v *view) holds(r ownerRecord) bool {
	n, ok := v.nodes[r.Node]
	return ok && n.Incarnation == r.Incarnation
}

// live returns the nodes holding a lease and not draining, sorted.
func (v *view) live() []string {
	var out []string
	for name := range v.nodes {
		if !v.drains[name] {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
