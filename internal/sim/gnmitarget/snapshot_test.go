package gnmitarget

import (
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/sim/scenario"
)

func TestSnapshotAndLinkEvents(t *testing.T) {
	sc := &scenario.Scenario{Events: []scenario.Event{{Kind: scenario.LinkDown, Interface: "GigabitEthernet0/0/0/1", At: 7 * time.Second, Until: 12 * time.Second}}}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Listen: "127.0.0.1:0", Platform: "iosxr", Scenario: sc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	snap := s.Snapshot(start, start.Add(5*time.Second))
	if len(snap) != s.Leaves() {
		t.Fatalf("%d notifications, want one per leaf (%d)", len(snap), s.Leaves())
	}
	for _, n := range snap {
		if n.GetTimestamp() != start.Add(5*time.Second).UnixNano() {
			t.Fatalf("timestamp %d", n.GetTimestamp())
		}
	}
	tests := []struct {
		from, to time.Duration
		want     []string // OpenConfig oper-status values, in order
		at       []time.Duration
	}{
		{0, 5 * time.Second, nil, nil},
		{5 * time.Second, 10 * time.Second, []string{"DOWN"}, []time.Duration{7 * time.Second}},
		{0, 20 * time.Second, []string{"DOWN", "UP"}, []time.Duration{7 * time.Second, 12 * time.Second}},
		// Strictly between: a change at either bound is the sample's.
		{7 * time.Second, 12 * time.Second, nil, nil},
	}
	for _, tc := range tests {
		var got []string
		var at []time.Duration
		for _, n := range s.LinkEvents(start, start.Add(tc.from), start.Add(tc.to)) {
			if n.GetPrefix().GetOrigin() != "openconfig-interfaces" && n.GetPrefix().GetOrigin() != "openconfig" {
				continue
			}
			got = append(got, n.GetUpdate()[0].GetVal().GetStringVal())
			at = append(at, time.Unix(0, n.GetTimestamp()).Sub(start))
		}
		if len(got) != len(tc.want) {
			t.Fatalf("%v–%v: %v at %v, want %v at %v", tc.from, tc.to, got, at, tc.want, tc.at)
		}
		for i := range got {
			if got[i] != tc.want[i] || at[i] != tc.at[i] {
				t.Errorf("%v–%v: %v at %v, want %v at %v", tc.from, tc.to, got, at, tc.want, tc.at)
			}
		}
	}
}
