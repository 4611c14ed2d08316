package backtest

import (
	"time"

	"github.com/netfeat/netfeat/internal/sim/scenario"
)

// Hot is the kind of a congestion episode without queue drops: a busy
// link, not congestion.
const Hot = "hot"

// FromScenario returns the episodes a device's scenario scripts between
// start and start+d, repetitions included: one per event and repetition,
// from the event's start to its end (the end of the repetition, or of the
// run, for an event without one), clipped to the run. The component is
// the event's interface as the scenario names it.
func FromScenario(device string, sc *scenario.Scenario, start time.Time, d time.Duration) []Episode {
	var out []Episode
	for rep := time.Duration(0); rep < d; rep += sc.Repeat {
		for _, e := range sc.Events {
			a := rep + e.At
			b := rep + e.Until
			if e.Until == 0 {
				b = d
				if sc.Repeat > 0 {
					b = rep + sc.Repeat
				}
			}
			b = min(b, d)
			if a >= d || b <= a {
				continue
			}
			kind := string(e.Kind)
			if e.Kind == scenario.Congestion && e.DiscardsPerSecond <= 0 {
				kind = Hot
			}
			out = append(out, Episode{Kind: kind, Device: device, Component: e.Interface, Start: start.Add(a), End: start.Add(b)})
		}
		if sc.Repeat <= 0 {
			break
		}
	}
	return out
}
