package fleet

import (
	"math"
	"testing"
	"time"
)

func nan() float64 { return math.NaN() }

// TestFleetDelivers: what an edge publishes reaches the hub's sink exactly
// once, tagged with the edge's site, and publishing it again adds nothing.
func TestFleetDelivers(t *testing.T) {
	w := newWorld(t, HubConfig{})
	const n = 40
	for i := range n {
		publishAll(t, w.edge, i)
	}
	// Published again (a retry after a lost acknowledgement): the same ids.
	for i := range 5 {
		publishAll(t, w.edge, i)
	}
	w.waitAll(t, n, 20*time.Second)
}
