package snmp

import (
	"context"
	"time"
)

// StateNotOwned is DeviceState.State of a device this node does not poll
// because another node of its site's cluster owns it (docs/cluster.md).
const StateNotOwned = "not_owned"

// devRun is one device's running schedule.
type devRun struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the device's goroutine has returned
}

// SetOwned restricts polling to the devices named in names (other names
// are ignored): a device that joins the set is polled at once, not at its
// next slot, and one that leaves it is stopped, its poll in flight cut
// off and its session closed, before SetOwned returns. Its DeviceState
// says StateNotOwned until it is owned again. Without a call every device
// is owned; an empty set owns none.
//
// It is the callback of a cluster.Node (OnChange). It may be called before
// Start (Start then polls only the owned devices) and is safe for
// concurrent use; calls are applied one at a time.
func (p *Poller) SetOwned(names []string) {
	p.ownMu.Lock()
	defer p.ownMu.Unlock()
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	var (
		stopping []*devRun
		added    int
		removed  []*device
	)
	p.mu.Lock()
	old := p.owned
	p.owned = set
	for _, d := range p.devices {
		was, now := old == nil || old[d.t.name], set[d.t.name]
		switch {
		case now && !was:
			added++
			d.setState(StateUnknown)
			if p.running() {
				p.startDevice(d, true)
			}
		case was && !now:
			removed = append(removed, d)
			if r, ok := p.runs[d]; ok {
				r.cancel()
				delete(p.runs, d)
				stopping = append(stopping, r)
			}
		}
	}
	p.mu.Unlock()
	for _, r := range stopping {
		<-r.done
	}
	for _, d := range removed {
		d.setState(StateNotOwned)
	}
	if added > 0 || len(removed) > 0 {
		p.log.Info("snmp owned devices changed", "owned", p.ownedCount(), "added", added, "removed", len(removed))
	}
}

// owns reports whether d is owned here; p.mu is held.
func (p *Poller) owns(d *device) bool { return p.owned == nil || p.owned[d.t.name] }

// ownedCount counts the owned devices.
func (p *Poller) ownedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, d := range p.devices {
		if p.owns(d) {
			n++
		}
	}
	return n
}

// running reports whether device goroutines may be started; p.mu is held.
func (p *Poller) running() bool { return p.started && !p.stopped }

// startDevice starts d's schedule; p.mu is held and the poller running.
// With now, the first poll is at once; otherwise at the device's spread
// offset into its interval.
func (p *Poller) startDevice(d *device, now bool) {
	ctx, cancel := context.WithCancel(p.runCtx)
	r := &devRun{cancel: cancel, done: make(chan struct{})}
	p.runs[d] = r
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(r.done)
		defer cancel()
		var first time.Time
		if now {
			first = time.Now()
		}
		d.run(ctx, first)
		d.close()
	}()
}

// setState sets the device's reported state and its state metric.
func (d *device) setState(state string) {
	d.mu.Lock()
	d.state.State = state
	d.mu.Unlock()
	d.p.m.setState(d.t.name, state)
}
