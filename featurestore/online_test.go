package featurestore

import (
	"strconv"
	"testing"

	"github.com/netfeat/netfeat/schema"
)

// TestRowQueueLimit: the row writer's queue holds a hop's closes of every
// entity of the views (twice their number), and at least maxQueuedRows.
func TestRowQueueLimit(t *testing.T) {
	tests := []struct {
		name     string
		entities []int // per view
		want     int64
	}{
		{"no entity yet", []int{0}, maxQueuedRows},
		{"a small site", []int{400, 40}, maxQueuedRows},
		{"5,000 routers of 50 interfaces and their devices", []int{250_000, 5_000}, 2 * 255_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Store{}
			for _, n := range tc.entities {
				o := newOnlineView()
				for i := range n {
					o.set(&schema.FeatureRow{Entity: schema.Entity{Device: "r", Component: strconv.Itoa(i)}, WindowEnd: 1})
					o.set(&schema.FeatureRow{Entity: schema.Entity{Device: "r", Component: strconv.Itoa(i)}, WindowEnd: 2}) // the same entity again
				}
				s.online = append(s.online, o)
			}
			if got := s.rowQueueLimit(); got != tc.want {
				t.Errorf("rowQueueLimit() = %d, want %d", got, tc.want)
			}
		})
	}
}
