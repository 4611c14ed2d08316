package featurestore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// latestWalk collects what EachLatest hands over, checking the chunks.
func latestWalk(t *testing.T, s *Store, rank func(string) int) []LatestSample {
	t.Helper()
	var out []LatestSample
	err := s.EachLatest(rank, func(chunk []LatestSample) error {
		if len(chunk) == 0 || len(chunk) > latestChunk {
			t.Fatalf("chunk of %d samples", len(chunk))
		}
		for _, x := range chunk {
			if x.Metric != chunk[0].Metric {
				t.Fatalf("chunk mixes %s and %s", chunk[0].Metric, x.Metric)
			}
		}
		out = append(out, chunk...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEachLatest: every series' newest sample (not the last appended, when
// an older one arrives late), grouped by the caller's rank, series of a
// skipped metric left out, chunks of one metric; the same after a restart
// (from the WAL) and an error from fn stopping the walk.
func TestEachLatest(t *testing.T) {
	dir := t.TempDir()
	s, _ := openStore(t, dir, Config{}, nil)
	start(t, s)
	sec := int64(time.Second)
	const ifaces = 1500 // more than a chunk
	metrics := []string{"interface.in.bps", "interface.oper_status", "system.uptime"}
	var batch []schema.Sample
	for step := range 3 {
		batch = batch[:0]
		for i := range ifaces {
			for m, metric := range metrics {
				batch = append(batch, schema.Sample{TS: testBase + int64(step)*sec, Entity: schema.Entity{Device: fmt.Sprintf("r%d", i%7), Component: fmt.Sprintf("if%d", i)},
					Metric: metric, Value: float64(step*10000 + i*10 + m)})
			}
		}
		if err := s.Append(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	// A late sample, older than the newest: not the latest.
	if err := s.Append(context.Background(), []schema.Sample{{TS: testBase, Entity: schema.Entity{Device: "r0", Component: "if0"}, Metric: "interface.in.bps", Value: -1}}); err != nil {
		t.Fatal(err)
	}
	order := map[string]int{"interface.oper_status": 0, "interface.in.bps": 1, "system.uptime": -1}
	rank := func(m string) int { return order[m] }
	check := func(t *testing.T, got []LatestSample) {
		t.Helper()
		if len(got) != 2*ifaces {
			t.Fatalf("%d samples, want %d", len(got), 2*ifaces)
		}
		for j, x := range got {
			metric, i := "interface.oper_status", j
			if j >= ifaces {
				metric, i = "interface.in.bps", j-ifaces
			}
			m := map[string]int{"interface.in.bps": 0, "interface.oper_status": 1}[metric]
			want := LatestSample{Device: fmt.Sprintf("r%d", i%7), Component: fmt.Sprintf("if%d", i), Metric: metric,
				TS: testBase + 2*sec, Value: float64(20000 + i*10 + m)}
			if x != want {
				t.Fatalf("sample %d: %+v, want %+v", j, x, want)
			}
		}
	}
	check(t, latestWalk(t, s, rank))

	stop := errors.New("stop")
	calls := 0
	if err := s.EachLatest(rank, func([]LatestSample) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("EachLatest with a failing fn: %v after %d calls, want stop after 1", err, calls)
	}
	if got := latestWalk(t, s, func(string) int { return -1 }); len(got) != 0 {
		t.Fatalf("every metric skipped: %d samples", len(got))
	}

	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2, _ := openStore(t, dir, Config{}, nil)
	start(t, s2)
	check(t, latestWalk(t, s2, rank))
	// A new series after the restart joins its metric's group.
	if err := s2.Append(context.Background(), []schema.Sample{{TS: testBase + 5*sec, Entity: schema.Entity{Device: "new", Component: "if0"}, Metric: "interface.in.bps", Value: math.Pi}}); err != nil {
		t.Fatal(err)
	}
	got := latestWalk(t, s2, rank)
	if n := len(got); n != 2*ifaces+1 || got[n-1].Device != "new" || got[n-1].Value != math.Pi {
		t.Fatalf("after a new series: %d samples, last %+v", n, got[len(got)-1])
	}
}

// TestLatestRows: the online view's rows, one per entity; false for an
// unknown view.
func TestLatestRows(t *testing.T) {
	v := cpuView([]time.Duration{10 * time.Second}, 10*time.Second, 0)
	s, _ := openStore(t, t.TempDir(), Config{}, []schema.FeatureView{v})
	var rows collector
	s.Subscribe(rows.handle)
	start(t, s)
	if got, ok := s.LatestRows("cpu"); !ok || len(got) != 0 {
		t.Fatalf("empty view: %d rows, %v", len(got), ok)
	}
	sec := int64(time.Second)
	base := (testBase / (10 * sec)) * 10 * sec
	var batch []schema.Sample
	for i := range 4 {
		for c := range 3 {
			batch = append(batch, schema.Sample{TS: base + int64(i)*10*sec, Entity: schema.Entity{Device: "r1", Component: fmt.Sprintf("cpu%d", c)},
				Metric: "system.cpu.utilization", Value: float64(i)})
		}
	}
	if err := s.Append(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	rows.waitRows(t, 9)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := s.LatestRows("cpu")
		seen := map[schema.Entity]int64{}
		for _, r := range got {
			seen[r.Entity] = r.WindowEnd
		}
		if len(got) == 3 && len(seen) == 3 && seen[schema.Entity{Device: "r1", Component: "cpu2"}] == base+30*sec {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("online view: %v", seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := s.LatestRows("nope"); ok {
		t.Fatal("LatestRows(nope) found a view")
	}
	if vs := s.Views(); len(vs) != 1 || vs[0].Name != "cpu" {
		t.Fatalf("Views: %v", vs)
	}
}
