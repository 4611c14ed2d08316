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

// change says what a set changed.
type change int

const (
	changedNothing change = iota
	changedMembers        // a lease appeared, ended or changed incarnation, or a drain
	changedOwner          // a target's owner record
)

// set applies a key's value (or its deletion) at revision rev, unless the
// view already has that revision or a later one, and says what changed
// (with the target's name for an owner record).
func (v *view) set(key string, rev uint64, value []byte, deleted bool) (change, string) {
	if rev <= v.revs[key] {
		return changedNothing, ""
	}
	v.revs[key] = rev
	var prefix string
	for _, p := range []string{nodesPrefix, ownersPrefix, drainPrefix} {
		if strings.HasPrefix(key, p) {
			prefix = p
		}
	}
	if prefix == "" {
		return changedNothing, ""
	}
	name, err := unescape(key[len(prefix):])
	if err != nil {
		return changedNothing, ""
	}
	switch prefix {
	case nodesPrefix:
		old, had := v.nodes[name]
		var r nodeRecord
		if deleted || json.Unmarshal(value, &r) != nil || r.Node != name {
			delete(v.nodes, name)
			if had {
				return changedMembers, ""
			}
			return changedNothing, ""
		}
		v.nodes[name] = r
		if !had || old.Incarnation != r.Incarnation {
			return changedMembers, ""
		}
		return changedNothing, ""
	case ownersPrefix:
		var r ownerRecord
		if deleted || json.Unmarshal(value, &r) != nil || r.Target != name {
			delete(v.owners, name)
		} else {
			v.owners[name] = ownerEntry{rec: r, rev: rev}
		}
		return changedOwner, name
	default:
		had := v.drains[name]
		if deleted {
			delete(v.drains, name)
		} else {
			v.drains[name] = true
		}
		if had == !deleted {
			return changedNothing, ""
		}
		return changedMembers, ""
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
