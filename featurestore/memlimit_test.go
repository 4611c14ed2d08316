package featurestore

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fillHot appends n batches of 10,000 rows to a store that is not
// started (the test drives the hot tier itself); each batch seals a
// chunk of about 200KB.
func fillHot(t *testing.T, s *Store, n int) {
	t.Helper()
	now := time.Now()
	for b := range n {
		batch := genBatch(10000, b*10000)
		recs := make([]rec, len(batch))
		for i, x := range batch {
			recs[i] = rec{ts: now.UnixNano() + int64(b*10000+i), sid: s.series.intern(x.Device, x.Component, x.Metric, ""), value: x.Value}
		}
		s.hot.append(recs, uint64(b+1), now)
	}
}

// TestLimitHot lowers and restores the hot tier's budget under a process
// memory limit: the oldest chunks go first, the tier ends under the
// budget, the drops are counted under memory_limit, and the budget
// reported is the one in force.
func TestLimitHot(t *testing.T) {
	const full = 8 << 20
	tests := []struct {
		name       string
		budget     int64
		wantBudget int64
		wantShed   bool
	}{
		{"half the budget", 1 << 20, 1 << 20, true},
		{"a quarter of what is held", 600 << 10, 600 << 10, true},
		{"above what is held", 4 << 20, 4 << 20, false},
		{"zero restores memory_budget", 0, full, false},
		{"above memory_budget is memory_budget", 16 << 20, full, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openStore(t, t.TempDir(), Config{SealRows: 10000, MemoryBudget: full}, nil)
			fillHot(t, s, 12)
			_, before := s.HotUsage()
			if before > 4<<20 || before < 2<<20 {
				t.Fatalf("hot tier holds %d bytes before the limit: the cases assume 2–4MiB", before)
			}
			shed := s.LimitHot(tc.budget)
			_, after := s.HotUsage()
			if got := s.HotBudget(); got != tc.wantBudget {
				t.Errorf("HotBudget = %d, want %d", got, tc.wantBudget)
			}
			if after > s.HotBudget() {
				t.Errorf("hot tier holds %d bytes over the budget %d", after, s.HotBudget())
			}
			if (shed > 0) != tc.wantShed || before-after != shed {
				t.Errorf("shed %d bytes (held %d, then %d); want shed: %v", shed, before, after, tc.wantShed)
			}
			drops := testutil.ToFloat64(s.m.chunksDropped.WithLabelValues(string(dropLimit)))
			if (drops > 0) != tc.wantShed {
				t.Errorf("%v chunks counted as dropped for memory_limit", drops)
			}
			// What is left is the newest: every remaining sealed chunk is
			// younger than every dropped one.
			if sealed := s.hot.view.Load().sealed; tc.wantShed && len(sealed) > 0 {
				if first := sealed[0].firstSeq; first != uint64(drops)+1 {
					t.Errorf("oldest chunk left starts at batch %d after %v drops: not the oldest first", first, drops)
				}
			}
			// The next retention pass keeps to the lowered budget.
			if got := s.HotShed(); got != shed {
				t.Errorf("HotShed = %d after LimitHot shed %d", got, shed)
			}
			fillHot(t, s, 4)
			_, filled := s.HotUsage()
			s.maintainHot(time.Now())
			_, held := s.HotUsage()
			if held > s.HotBudget() {
				t.Errorf("after maintenance the tier holds %d bytes over the budget %d", held, s.HotBudget())
			}
			// Under a lowered budget those drops are the limit's too.
			wantShed := shed
			if s.HotBudget() < full {
				wantShed += filled - held
			}
			if got := s.HotShed(); got != wantShed {
				t.Errorf("HotShed = %d after maintenance, want %d", got, wantShed)
			}
		})
	}
}
