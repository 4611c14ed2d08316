package snmp

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/internal/testkit"
)

// TestSetTargets changes a running poller's targets step by step: only
// the devices a step adds, changes or removes are started or stopped;
// the others keep their running schedule (the same goroutine, so no poll
// is skipped or repeated), and a removed device is polled no more.
func TestSetTargets(t *testing.T) {
	addrs, _ := simulate(t,
		snmpagent.DeviceOptions{Name: "timos#a", Community: "public"},
		snmpagent.DeviceOptions{Name: "timos#b", Community: "public"},
		snmpagent.DeviceOptions{Name: "timos#c", Community: "public"},
		snmpagent.DeviceOptions{Name: "timos#d", Community: "public"},
	)
	const iv = 100 * time.Millisecond
	tgt := func(name string, i int) Target { return Target{Name: name, Address: addrs[i]} }
	slow := func(t Target) Target { t.Interval = 3 * iv; return t }
	cfg := DefaultConfig()
	cfg.Defaults.Interval = iv
	cfg.Targets = []Target{tgt("a", 0), tgt("b", 1), tgt("c", 2)}
	sink := &pollLog{}
	reg := prometheus.NewRegistry()
	p, err := New(cfg, IFMIBPlan, sink, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	runOf := func() map[string]*devRun {
		p.mu.Lock()
		defer p.mu.Unlock()
		out := map[string]*devRun{}
		for d, r := range p.runs {
			out[d.t.name] = r
		}
		return out
	}
	steps := []struct {
		name    string
		targets []Target
		want    TargetChanges
		wantErr string
	}{
		{name: "same list", targets: []Target{tgt("a", 0), tgt("b", 1), tgt("c", 2)}},
		{name: "add d", targets: []Target{tgt("a", 0), tgt("b", 1), tgt("c", 2), tgt("d", 3)},
			want: TargetChanges{Added: []string{"d"}}},
		{name: "change b", targets: []Target{tgt("a", 0), slow(tgt("b", 1)), tgt("c", 2), tgt("d", 3)},
			want: TargetChanges{Changed: []string{"b"}}},
		{name: "remove c", targets: []Target{tgt("a", 0), slow(tgt("b", 1)), tgt("d", 3)},
			want: TargetChanges{Removed: []string{"c"}}},
		{name: "bad address refused", targets: []Target{tgt("a", 0), {Name: "x", Address: "127.0.0.1:99999"}},
			wantErr: `targets[1].address: bad port in "127.0.0.1:99999"`},
		{name: "duplicate refused", targets: []Target{tgt("a", 0), tgt("a", 1)},
			wantErr: `targets[1].name: device "a" is also targets[0]`},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			testkit.Eventually(t, "every target running", func() bool { return len(runOf()) == len(p.deviceList()) })
			before := runOf()
			got, err := p.SetTargets(st.targets)
			if st.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), st.wantErr) {
					t.Fatalf("error %v, want one with %q", err, st.wantErr)
				}
				if after := runOf(); len(after) != len(before) {
					t.Fatalf("a refused list changed the running devices: %d, were %d", len(after), len(before))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Added, st.want.Added) || !slices.Equal(got.Changed, st.want.Changed) || !slices.Equal(got.Removed, st.want.Removed) {
				t.Fatalf("changes %+v, want %+v", got, st.want)
			}
			after := runOf()
			touched := slices.Concat(got.Added, got.Changed, got.Removed)
			for name, r := range before {
				if slices.Contains(touched, name) {
					if after[name] == r {
						t.Errorf("%s: still its old schedule", name)
					}
					continue
				}
				if after[name] != r {
					t.Errorf("%s: untouched by the change but restarted", name)
				}
			}
			for _, name := range got.Removed {
				if s := deviceState(p, name); s != "" {
					t.Errorf("%s removed but still listed (%s)", name, s)
				}
				if n := testutil.CollectAndCount(reg, "netfeat_snmp_device_state"); n != 5*len(st.targets) {
					t.Errorf("%d device state series, want %d (the removed device's deleted)", n, 5*len(st.targets))
				}
				// Stopped before SetTargets returned: no poll of it
				// arrives while the others poll twice more.
				polls, a := sink.count(name), sink.count("a")
				testkit.Eventually(t, "a polled twice more", func() bool { return sink.count("a") >= a+2 })
				if n := sink.count(name); n != polls {
					t.Errorf("%s polled %d times after its removal", name, n-polls)
				}
			}
			for _, name := range slices.Concat(got.Added, got.Changed) {
				n := sink.count(name)
				testkit.Eventually(t, name+" polled", func() bool { return sink.count(name) > n })
			}
		})
	}
}
