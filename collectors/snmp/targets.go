package snmp

import (
	"fmt"
	"reflect"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/schema"
)

// TargetChanges names the targets a SetTargets call added, changed and
// removed.
type TargetChanges = schema.TargetChanges

// AllTargets returns the section's targets followed by those of its
// targets_file, unresolved: the list the poller starts with.
func (c *Config) AllTargets() ([]Target, error) {
	out := append([]Target(nil), c.Targets...)
	if c.TargetsFile != "" {
		more, err := readTargetsFile(c.TargetsFile)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

// SetTargets replaces every target, those read from the targets_file
// included (the file is not read again: AllTargets gives its targets to
// keep them), while the poller runs. The list is resolved and validated
// with the configuration's defaults as New does; on error nothing
// changes. Devices whose resolved settings are unchanged keep polling
// untouched; a removed device is stopped (its poll in flight cut off, its
// session closed, its metric series deleted) before SetTargets returns; a
// changed one is stopped, then started again with its new settings; a new
// one is polled at once. Devices this node does not own (SetOwned) are
// kept but not started.
//
// The trap receiver keeps the target addresses it was built with: traps
// from a device added here are accepted only under trap_sources or
// trap_accept_any. It is safe for concurrent use with SetOwned.
func (p *Poller) SetTargets(targets []Target) (TargetChanges, error) {
	cfg := p.cfg
	cfg.Targets, cfg.TargetsFile = targets, ""
	resolved, err := cfg.resolve()
	if err != nil {
		return TargetChanges{}, fmt.Errorf("snmp: invalid targets: %w", err)
	}
	p.ownMu.Lock()
	defer p.ownMu.Unlock()
	want := make(map[string]target, len(resolved))
	for _, t := range resolved {
		want[t.name] = t
	}
	var (
		ch       TargetChanges
		stopping []*devRun
		kept     = map[string]*device{}
	)
	p.mu.Lock()
	for _, d := range p.devices {
		t, ok := want[d.t.name]
		if ok && reflect.DeepEqual(t, d.t) {
			kept[d.t.name] = d
			continue
		}
		if ok {
			ch.Changed = append(ch.Changed, d.t.name)
		} else {
			ch.Removed = append(ch.Removed, d.t.name)
		}
		if r, ok := p.runs[d]; ok {
			r.cancel()
			delete(p.runs, d)
			stopping = append(stopping, r)
		}
	}
	// Until the stopped devices' goroutines return, only the kept devices
	// are listed.
	old := p.devices
	p.devices = make([]*device, 0, len(kept))
	for _, d := range old {
		if kept[d.t.name] != nil {
			p.devices = append(p.devices, d)
		}
	}
	p.mu.Unlock()
	for _, r := range stopping {
		<-r.done
	}
	for _, name := range ch.Removed {
		p.m.forget(name)
	}
	p.mu.Lock()
	changed := map[string]bool{}
	for _, n := range ch.Changed {
		changed[n] = true
	}
	devices := make([]*device, 0, len(resolved))
	for _, t := range resolved {
		if d := kept[t.name]; d != nil {
			devices = append(devices, d)
			continue
		}
		if !changed[t.name] {
			ch.Added = append(ch.Added, t.name)
		}
		d := newDevice(t, p)
		devices = append(devices, d)
		switch {
		case !p.owns(d):
			d.setState(StateNotOwned)
		case p.running():
			p.startDevice(d, true)
		}
	}
	p.devices = devices
	p.mu.Unlock()
	if !ch.Empty() {
		p.log.Info("snmp targets changed", "devices", len(resolved), "added", ch.Added, "changed", ch.Changed, "removed", ch.Removed)
	}
	return ch, nil
}

// deviceList returns the devices, for iterating without p.mu.
func (p *Poller) deviceList() []*device {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.devices
}

// forget deletes a removed device's series.
func (m *metrics) forget(device string) {
	l := prometheus.Labels{"device": device}
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.polls, m.skipped, m.observations, m.lastDuration, m.lastSuccess, m.backoff, m.state, m.valuesDrop} {
		v.DeletePartialMatch(l)
	}
}
