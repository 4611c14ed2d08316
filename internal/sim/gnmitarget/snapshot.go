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
