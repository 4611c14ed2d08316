package gnmitarget

import (
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
)

// Snapshot returns, without the network or Start, what a SAMPLE
// subscription receives at instant now when the simulation began at start:
// one notification per leaf with its value then, timestamped now. It is how
// the digital twin (netfeat twin) samples a target on a virtual clock; the
// server's own clock, cache and streams are left alone.
func (s *Server) Snapshot(start, now time.Time) []*gpb.Notification {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	elapsed := now.Sub(start)
	ts := now.UnixNano()
	out := make([]*gpb.Notification, 0, len(s.model.leaves))
	for _, l := range s.model.leaves {
		out = append(out, &gpb.Notification{
			Timestamp: ts,
			Prefix:    &gpb.Path{Target: s.opts.Name, Origin: l.origin},
			Update:    []*gpb.Update{{Path: &gpb.Path{Elem: l.elems}, Val: l.value(elapsed)}},
		})
	}
	return out
}

// LinkEvents returns, without the network or Start, the oper-status
// updates an ON_CHANGE subscription receives for the scenario's link
// changes at instants strictly between from and to, when the simulation
// began at start: one notification per oper-status leaf of a link whose
// state changes, timestamped at the change, in time order. With Snapshot
// at each sample instant it is what the digital twin reads between two
// samples.
func (s *Server) LinkEvents(start, from, to time.Time) []*gpb.Notification {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	var out []*gpb.Notification
	lo, hi := from.Sub(start), to.Sub(start)
	for el := lo; ; {
		next, found := time.Duration(0), false
		for _, k := range s.model.links {
			if k.plan == nil {
				continue
			}
			if t, ok := k.plan.NextLinkChange(el); ok && (!found || t < next) {
				next, found = t, true
			}
		}
		if !found || next >= hi {
			return out
		}
		el = next
		for _, x := range s.model.xr {
			k := s.model.links[x.name]
			if k.plan == nil || k.down(next) == k.down(next-1) {
				continue
			}
			for _, l := range k.operLeafs {
				out = append(out, &gpb.Notification{
					Timestamp: start.Add(next).UnixNano(),
					Prefix:    &gpb.Path{Target: s.opts.Name, Origin: l.origin},
					Update:    []*gpb.Update{{Path: &gpb.Path{Elem: l.elems}, Val: l.value(next)}},
				})
			}
		}
	}
}
