package gnmi_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

// devCounts is a sink that counts the observations of each device.
type devCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func (d *devCounts) Observe(_ context.Context, batch []schema.Observation) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range batch {
		d.n[o.Device]++
	}
	return nil
}

func (d *devCounts) count(dev string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n[dev]
}

// TestSetTargets changes a running collector's targets step by step: only
// the targets a step adds, changes or removes open a new subscription
// (the others keep their session: no new sync_response), a removed target
// delivers nothing more and its series are deleted, and a refused list
// changes nothing.
func TestSetTargets(t *testing.T) {
	sims := map[string]*gnmitarget.Server{}
	for _, n := range []string{"x1", "x2", "x3"} {
		sims[n] = startSim(t, gnmitarget.Options{Interval: 20 * time.Millisecond})
	}
	tgt := func(name string, iv time.Duration) gnmi.Target {
		return gnmi.Target{Name: name, Address: sims[name].Addr(), Platform: gnmi.PlatformIOSXR, Insecure: true, SampleInterval: iv}
	}
	const iv = 20 * time.Millisecond
	cfg := gnmi.Config{Targets: []gnmi.Target{tgt("x1", iv), tgt("x2", iv)}, RedialMin: 10 * time.Millisecond, RedialMax: 50 * time.Millisecond}
	rec := &devCounts{n: map[string]int{}}
	reg := prometheus.NewRegistry()
	c, err := gnmi.New(cfg, rec, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stop collector: %v", err)
		}
	})
	count := func(dev string) int {
		return int(testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_updates_total", dev)))
	}
	syncs := func(dev string) float64 {
		return testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_sync_responses_total", dev))
	}
	steps := []struct {
		name    string
		targets []gnmi.Target
		want    gnmi.TargetChanges
		wantErr string
		running []string
	}{
		{name: "same list", targets: []gnmi.Target{tgt("x1", iv), tgt("x2", iv)}, running: []string{"x1", "x2"}},
		{name: "add x3", targets: []gnmi.Target{tgt("x1", iv), tgt("x2", iv), tgt("x3", iv)},
			want: gnmi.TargetChanges{Added: []string{"x3"}}, running: []string{"x1", "x2", "x3"}},
		{name: "change x2", targets: []gnmi.Target{tgt("x1", iv), tgt("x2", 2*iv), tgt("x3", iv)},
			want: gnmi.TargetChanges{Changed: []string{"x2"}}, running: []string{"x1", "x2", "x3"}},
		{name: "remove x1", targets: []gnmi.Target{tgt("x2", 2*iv), tgt("x3", iv)},
			want: gnmi.TargetChanges{Removed: []string{"x1"}}, running: []string{"x2", "x3"}},
		{name: "unknown platform refused", targets: []gnmi.Target{{Name: "x9", Address: "127.0.0.1:1", Platform: "junos", Insecure: true}},
			wantErr: `targets[0].platform: must be one of`, running: []string{"x2", "x3"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			testkit.Eventually(t, "running targets synced", func() bool {
				for _, d := range st.running {
					if syncs(d) == 0 && !slices.Contains(st.want.Added, d) {
						return false
					}
				}
				return true
			})
			before := map[string]float64{}
			for _, d := range []string{"x1", "x2", "x3"} {
				before[d] = syncs(d)
			}
			got, err := c.SetTargets(st.targets)
			if st.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), st.wantErr) {
					t.Fatalf("error %v, want one with %q", err, st.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Added, st.want.Added) || !slices.Equal(got.Changed, st.want.Changed) || !slices.Equal(got.Removed, st.want.Removed) {
				t.Fatalf("changes %+v, want %+v", got, st.want)
			}
			restarted := slices.Concat(got.Added, got.Changed)
			for _, d := range restarted {
				testkit.Eventually(t, d+" subscribed again", func() bool { return syncs(d) > before[d] })
			}
			// A removed target's series are deleted: what it delivered is
			// in the sink.
			removed := map[string]int{}
			for _, d := range got.Removed {
				removed[d] = rec.count(d)
			}
			for _, d := range st.running {
				n := count(d)
				testkit.Eventually(t, d+" streaming", func() bool { return count(d) >= n+3 })
				if !slices.Contains(restarted, d) && syncs(d) != before[d] {
					t.Errorf("%s: untouched by the change but subscribed again", d)
				}
			}
			for d, n := range removed {
				if got := rec.count(d); got != n {
					t.Errorf("%s delivered %d values after its removal", d, got-n)
				}
			}
			if n := testutil.CollectAndCount(reg, "netfeat_gnmi_connected"); n != len(st.running) {
				t.Errorf("%d connected series, want %d", n, len(st.running))
			}
			var listed []string
			for _, s := range c.DeviceStates() {
				listed = append(listed, s.Device)
			}
			if !slices.Equal(listed, st.running) {
				t.Errorf("listed %v, want %v", listed, st.running)
			}
		})
	}
}
