package gnmi

import (
	"fmt"
	"reflect"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/schema"
)

// TargetChanges names the targets a SetTargets call added, changed and
// removed.
type TargetChanges = schema.TargetChanges

// SetTargets replaces the collector's targets while it runs. The list is
// validated as New does; on error nothing changes. Targets whose settings
// are unchanged keep their subscription untouched; a removed target has
// its stream and connection closed, what it decoded flushed and its metric
// series deleted before SetTargets returns; a changed one is stopped, then
// started again with its new settings; a new one connects at once.
// Targets this node does not own (SetOwned) are kept but not started. It
// is safe for concurrent use with SetOwned.
func (c *Collector) SetTargets(targets []Target) (TargetChanges, error) {
	cfg := c.cfg
	cfg.Targets = targets
	if err := cfg.Validate(); err != nil {
		return TargetChanges{}, fmt.Errorf("gnmi: invalid targets: %w", err)
	}
	cfg = cfg.withDefaults()
	c.ownMu.Lock()
	defer c.ownMu.Unlock()
	want := make(map[string]Target, len(cfg.Targets))
	for _, t := range cfg.Targets {
		want[t.Name] = t
	}
	c.mu.Lock()
	var (
		ch       TargetChanges
		stopping []*targetRun
		kept     = map[string]*target{}
		fresh    = map[string]*target{}
	)
	// Build the new targets first: a target that cannot be built (its TLS
	// files) leaves everything as it was.
	for _, tc := range cfg.Targets {
		if old := c.find(tc.Name); old != nil && reflect.DeepEqual(old.cfg, tc) {
			kept[tc.Name] = old
			continue
		}
		t, err := newTarget(c, tc)
		if err != nil {
			c.mu.Unlock()
			return TargetChanges{}, fmt.Errorf("gnmi target %q: %w", tc.Name, err)
		}
		fresh[tc.Name] = t
	}
	var remaining []*target
	for _, t := range c.targets {
		if kept[t.cfg.Name] != nil {
			remaining = append(remaining, t)
			continue
		}
		if _, ok := want[t.cfg.Name]; ok {
			ch.Changed = append(ch.Changed, t.cfg.Name)
		} else {
			ch.Removed = append(ch.Removed, t.cfg.Name)
		}
		if r, ok := c.runs[t]; ok {
			r.cancel()
			delete(c.runs, t)
			stopping = append(stopping, r)
		}
	}
	c.targets = remaining
	c.mu.Unlock()
	for _, r := range stopping {
		<-r.done
	}
	for _, name := range ch.Removed {
		c.m.forget(name)
	}
	changed := map[string]bool{}
	for _, n := range ch.Changed {
		changed[n] = true
	}
	c.mu.Lock()
	list := make([]*target, 0, len(cfg.Targets))
	for _, tc := range cfg.Targets {
		if t := kept[tc.Name]; t != nil {
			list = append(list, t)
			continue
		}
		if !changed[tc.Name] {
			ch.Added = append(ch.Added, tc.Name)
		}
		t := fresh[tc.Name]
		list = append(list, t)
		switch {
		case !c.owns(t):
			t.setState(StateNotOwned)
		case c.running():
			c.startTarget(t)
		}
	}
	c.targets = list
	c.mu.Unlock()
	if !ch.Empty() {
		c.log.Info("gnmi targets changed", "targets", len(list), "added", ch.Added, "changed", ch.Changed, "removed", ch.Removed)
	}
	return ch, nil
}

// find returns the target named name, or nil; c.mu is held.
func (c *Collector) find(name string) *target {
	for _, t := range c.targets {
		if t.cfg.Name == name {
			return t
		}
	}
	return nil
}

// targetList returns the targets, for iterating without c.mu.
func (c *Collector) targetList() []*target {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.targets
}

// forget deletes a removed target's series.
func (m *metrics) forget(name string) {
	l := prometheus.Labels{"target": name}
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.connected, m.updates, m.notifications, m.errors, m.reconnects, m.syncs, m.syncSeconds, m.duplicates} {
		v.DeletePartialMatch(l)
	}
}
