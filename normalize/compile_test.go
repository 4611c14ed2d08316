package normalize

import "testing"

// TestExpandCombo: a single source keeps its mapping; a combination gets
// one copy per source sharing one combo, signed + for the first and the
// plus sources and - for the minus ones.
func TestExpandCombo(t *testing.T) {
	c := &compiled{nextMapID: 10, nextCombo: 3}
	m := &mapping{id: 9}
	if got := c.expandCombo(m, 1, 0); len(got) != 1 || got[0] != m || m.combo != nil || c.nextMapID != 10 {
		t.Fatalf("single source: %v, combo %v", got, m.combo)
	}
	got := c.expandCombo(m, 4, 2)
	if len(got) != 4 || m.combo == nil || m.combo.id != 3 || m.combo.parts != 4 || m.combo.conv != m || c.nextCombo != 4 {
		t.Fatalf("combination: %d mappings, combo %+v", len(got), m.combo)
	}
	for i, want := range []int{1, 1, 1, -1} {
		pm := got[i]
		if pm == m || pm.combo != m.combo || pm.part != i || int(pm.sign) != want || pm.id != 10+i {
			t.Fatalf("part %d: %+v, want sign %d id %d sharing combo", i, pm, want, 10+i)
		}
	}
}
