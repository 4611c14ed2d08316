package cluster

import (
	"testing"
	"time"
)

func TestTimeline(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	events := []Ownership{
		{Time: at(1), Node: "a", Owned: []string{"x", "y"}},
		{Time: at(2), Node: "b", Owned: []string{"z"}},
		{Time: at(3), Node: "a", Owned: []string{"x"}},        // y released
		{Time: at(3.5), Node: "b", Owned: []string{"z", "y"}}, // y taken after 0.5 s
		{Time: at(5), Node: "a", Owned: nil},                  // a dies
		{Time: at(7), Node: "b", Owned: []string{"x", "y", "z"}},
	}
	g := LongestGap(events, []string{"x", "y", "z"}, at(0), at(10))
	// z is unowned from 0 to 2 (start), x from 5 to 7: both 2 s; the
	// first found wins only if strictly longer, so check the length.
	if g.Duration() != 2*time.Second {
		t.Fatalf("longest gap %v (%s), want 2s", g.Duration(), g.Target)
	}
	g = LongestGap(events, []string{"x", "y", "z"}, at(2.5), at(10))
	if g.Target != "x" || g.Duration() != 2*time.Second {
		t.Fatalf("longest gap from 2.5 s: %v %s, want x 2s", g.Duration(), g.Target)
	}
	g = LongestGap(events, []string{"w"}, at(0), at(10))
	if g.Target != "w" || g.Duration() != 10*time.Second {
		t.Fatalf("never-owned target: %+v", g)
	}
	if o := Overlaps(events); len(o) != 0 {
		t.Fatalf("overlaps %v in a clean handover", o)
	}
	bad := append(events, Ownership{Time: at(8), Node: "a", Owned: []string{"z"}})
	o := Overlaps(bad)
	if len(o) != 1 || o[0].Target != "z" || o[0].Nodes != [2]string{"b", "a"} {
		t.Fatalf("overlaps = %+v, want z owned by b and a", o)
	}

	var tl Timeline
	tl.Observer("a")([]string{"x"})
	tl.Record("a", nil)
	if ev := tl.Events(); len(ev) != 2 || ev[0].Owned[0] != "x" || len(ev[1].Owned) != 0 {
		t.Fatalf("recorded %+v", ev)
	}
}
