package cluster

import (
	"slices"
	"sync"
	"time"
)

// Timeline records the owned sets that several nodes deliver through
// OnChange, in the order they were delivered, so that a test or a
// benchmark can measure ownership gaps and overlaps afterwards. A zero
// Timeline is ready to use; it is safe for concurrent use.
type Timeline struct {
	mu     sync.Mutex
	events []Ownership
}

// Ownership is one node's owned set from Time on.
type Ownership struct {
	Time  time.Time
	Node  string
	Owned []string
}

// Observer returns the OnChange callback that records node's sets.
func (tl *Timeline) Observer(node string) func(owned []string) {
	return func(owned []string) { tl.Record(node, owned) }
}

// Record notes that node owns exactly owned from now on (an empty set
// when a node is killed).
func (tl *Timeline) Record(node string, owned []string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.events = append(tl.events, Ownership{Time: time.Now(), Node: node, Owned: slices.Clone(owned)})
}

// Events returns the recorded sets in order.
func (tl *Timeline) Events() []Ownership {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return slices.Clone(tl.events)
}

// Overlap is a moment when two nodes owned the same target.
type Overlap struct {
	Time   time.Time
	Target string
	// Nodes are the node that already owned the target and the node
	// whose change made the overlap.
	Nodes [2]string
}

// Overlaps replays events in order and returns every moment at which a
// target was owned by more than one node.
func Overlaps(events []Ownership) []Overlap {
	sets := map[string]map[string]bool{} // node → set
	var out []Overlap
	for _, e := range events {
		set := map[string]bool{}
		for _, t := range e.Owned {
			set[t] = true
			for other, os := range sets {
				if other != e.Node && os[t] {
					out = append(out, Overlap{Time: e.Time, Target: t, Nodes: [2]string{other, e.Node}})
				}
			}
		}
		sets[e.Node] = set
	}
	return out
}

// Gap is the longest time one target was owned by no node.
type Gap struct {
	Target     string
	Start, End time.Time
}

// Duration is the gap's length.
func (g Gap) Duration() time.Duration { return g.End.Sub(g.Start) }

// LongestGap replays events and returns the longest interval within
// [from, to] during which one of targets was owned by no node (a target
// never owned in it counts from from to to). This is the failover figure
// the fleet benchmark reports as failover_max_gap_s.
func LongestGap(events []Ownership, targets []string, from, to time.Time) Gap {
	owners := map[string]int{}           // target → number of nodes owning it
	sets := map[string]map[string]bool{} // node → set
	unowned := map[string]time.Time{}    // target → since when
	for _, t := range targets {
		unowned[t] = from
	}
	var best Gap
	note := func(t string, start, end time.Time) {
		if start.Before(from) {
			start = from
		}
		if end.After(to) {
			end = to
		}
		if end.Sub(start) > best.Duration() {
			best = Gap{Target: t, Start: start, End: end}
		}
	}
	for _, e := range events {
		if e.Time.After(to) {
			break
		}
		for t := range sets[e.Node] {
			owners[t]--
		}
		set := map[string]bool{}
		for _, t := range e.Owned {
			set[t] = true
			owners[t]++
		}
		sets[e.Node] = set
		for _, t := range targets {
			since, isUnowned := unowned[t]
			switch {
			case owners[t] > 0 && isUnowned:
				note(t, since, e.Time)
				delete(unowned, t)
			case owners[t] == 0 && !isUnowned:
				unowned[t] = e.Time
			}
		}
	}
	for t, since := range unowned {
		note(t, since, to)
	}
	return best
}
