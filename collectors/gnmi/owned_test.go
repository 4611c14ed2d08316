package gnmi_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
	"github.com/netfeat/netfeat/internal/testkit"
)

// TestSetOwned drives a collector of two simulated targets through
// changes of its owned set: owned targets subscribe (at once, also after
// Start), released ones have their stream closed before SetOwned returns
// and deliver nothing more, and the others are reported as not owned.
func TestSetOwned(t *testing.T) {
	type step struct {
		owned []string
		want  []string // streaming after the step
	}
	for _, tc := range []struct {
		name   string
		before []string // SetOwned before Start; nil: not called (standalone)
		steps  []step
	}{
		{"standalone: every target", nil, []step{{owned: nil, want: []string{"x1", "x2"}}}},
		{"owned before start", []string{"x2", "snmp-only"}, []step{{owned: nil, want: []string{"x2"}}}},
		{"taken and released at run time", []string{}, []step{
			{owned: []string{"x1"}, want: []string{"x1"}},
			{owned: []string{"x1", "x2"}, want: []string{"x1", "x2"}},
			{owned: []string{"x2"}, want: []string{"x2"}},
			{owned: []string{}, want: nil},
			{owned: []string{"x1"}, want: []string{"x1"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sims := map[string]*gnmitarget.Server{
				"x1": startSim(t, gnmitarget.Options{Interval: 20 * time.Millisecond}),
				"x2": startSim(t, gnmitarget.Options{Interval: 20 * time.Millisecond}),
			}
			var cfg gnmi.Config
			for _, n := range []string{"x1", "x2"} {
				cfg.Targets = append(cfg.Targets, gnmi.Target{Name: n, Address: sims[n].Addr(), Platform: gnmi.PlatformIOSXR,
					Insecure: true, SampleInterval: 20 * time.Millisecond})
			}
			cfg.RedialMin, cfg.RedialMax = 10*time.Millisecond, 50*time.Millisecond
			rec := &recorder{}
			reg := prometheus.NewRegistry()
			c, err := gnmi.New(cfg, rec, reg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.before != nil {
				c.SetOwned(tc.before)
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
				return len(rec.values(dev, "openconfig-interfaces", ocInOctets))
			}
			for i, s := range tc.steps {
				if s.owned != nil {
					c.SetOwned(s.owned)
				}
				after := map[string]int{"x1": count("x1"), "x2": count("x2")}
				testkit.Eventually(t, "owned targets streaming", func() bool {
					for _, d := range s.want {
						if count(d) < after[d]+3 {
							return false
						}
					}
					return true
				})
				for _, d := range []string{"x1", "x2"} {
					owned := slices.Contains(s.want, d)
					connected := testutil.ToFloat64(mustCounter(t, reg, "netfeat_gnmi_connected", d))
					if owned != (connected == 1) {
						t.Errorf("step %d: %s connected = %v, owned %v", i, d, connected, owned)
					}
					if !owned {
						if n := count(d); n != after[d] {
							t.Errorf("step %d: %s delivered %d values after it stopped being owned", i, d, n-after[d])
						}
					}
					for _, st := range c.DeviceStates() {
						if st.Device == d && owned != (st.State != gnmi.StateNotOwned) {
							t.Errorf("step %d: %s state %s, owned %v", i, d, st.State, owned)
						}
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := c.WaitSynced(ctx); err != nil {
				t.Fatalf("WaitSynced waits for owned targets only: %v", err)
			}
		})
	}
}
