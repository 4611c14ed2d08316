package featurestore

import "testing"

// TestSeriesTableHashCollision drives the hash index's collision path: a
// key whose hash slot another series holds gets its own id, and both
// resolve to theirs afterwards.
func TestSeriesTableHashCollision(t *testing.T) {
	a := seriesKey{"r1", "Gi0/0", "interface.in.octets"}
	b := seriesKey{"r1", "Gi0/1", "interface.in.octets"}
	c := seriesKey{"r2", "Gi0/0", "interface.in.octets"}
	tests := []struct {
		name    string
		collide bool // b's hash slot taken by a before b is interned
	}{
		{"distinct hashes", false},
		{"b collides with a", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newSeriesTable(0)
			ia := st.intern(a.device, a.component, a.metric, "snmp")
			if tc.collide {
				st.ids[st.hash(b)] = ia
			}
			ib := st.intern(b.device, b.component, b.metric, "snmp")
			ic := st.intern(c.device, c.component, c.metric, "snmp")
			if ia == ib || ib == ic || ia == ic {
				t.Fatalf("ids %d, %d, %d: want distinct", ia, ib, ic)
			}
			for _, w := range []struct {
				k  seriesKey
				id int32
			}{{a, ia}, {b, ib}, {c, ic}} {
				if got, ok := st.lookup(w.k); !ok || got != w.id {
					t.Errorf("lookup(%v) = %d, %v; want %d", w.k, got, ok, w.id)
				}
				if got := st.intern(w.k.device, w.k.component, w.k.metric, "snmp"); got != w.id {
					t.Errorf("intern(%v) again = %d, want %d", w.k, got, w.id)
				}
			}
			if got := len(st.coll); got != map[bool]int{false: 0, true: 1}[tc.collide] {
				t.Errorf("%d keys in the collision map", got)
			}
			if _, ok := st.lookup(seriesKey{"r3", "x", "y"}); ok {
				t.Error("an unknown key was found")
			}
		})
	}
}
