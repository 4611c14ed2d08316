package gnmi

import "context"

// StateNotOwned is DeviceState.State of a target this node does not
// subscribe to because another node of its site's cluster owns it
// (docs/cluster.md).
const StateNotOwned = "not_owned"

// targetRun is one target's running subscription loop.
type targetRun struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the target's goroutine has returned
}

// SetOwned restricts the collector to the targets named in names (other
// names are ignored): a target that joins the set connects and subscribes
// at once; one that leaves it has its stream and connection closed, and
// what it decoded flushed to the sink, before SetOwned returns. Its
// DeviceState says StateNotOwned until it is owned again. Without a call
// every target is owned; an empty set owns none.
//
// It is the callback of a cluster.Node (OnChange). It may be called before
// Start (Start then subscribes only the owned targets) and is safe for
// concurrent use; calls are applied one at a time.
func (c *Collector) SetOwned(names []string) {
	c.ownMu.Lock()
	defer c.ownMu.Unlock()
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	var (
		stopping []*targetRun
		added    int
		removed  []*target
	)
	c.mu.Lock()
	old := c.owned
	c.owned = set
	for _, t := range c.targets {
		was, now := old == nil || old[t.cfg.Name], set[t.cfg.Name]
		switch {
		case now && !was:
			added++
			t.setState(StateConnecting)
			if c.running() {
				c.startTarget(t)
			}
		case was && !now:
			removed = append(removed, t)
			if r, ok := c.runs[t]; ok {
				r.cancel()
				delete(c.runs, t)
				stopping = append(stopping, r)
			}
		}
	}
	owned := c.ownedLocked()
	c.mu.Unlock()
	for _, r := range stopping {
		<-r.done
	}
	for _, t := range removed {
		t.setState(StateNotOwned)
	}
	if added > 0 || len(removed) > 0 {
		c.log.Info("gnmi owned targets changed", "owned", owned, "added", added, "removed", len(removed))
	}
}

// owns reports whether t is owned here; c.mu is held.
func (c *Collector) owns(t *target) bool { return c.owned == nil || c.owned[t.cfg.Name] }

// ownedLocked counts the owned targets; c.mu is held.
func (c *Collector) ownedLocked() int {
	n := 0
	for _, t := range c.targets {
		if c.owns(t) {
			n++
		}
	}
	return n
}

// running reports whether target goroutines may be started; c.mu is held.
func (c *Collector) running() bool { return c.started && !c.stopped }

// startTarget starts t's subscription loop; c.mu is held and the
// collector running.
func (c *Collector) startTarget(t *target) {
	ctx, cancel := context.WithCancel(c.runCtx)
	r := &targetRun{cancel: cancel, done: make(chan struct{})}
	c.runs[t] = r
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(r.done)
		defer cancel()
		t.run(ctx)
	}()
}
