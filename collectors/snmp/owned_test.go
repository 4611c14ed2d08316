package snmp

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

// pollLog is an ObservationSink that records when each device's polls
// arrived.
type pollLog struct {
	mu    sync.Mutex
	polls map[string][]time.Time
}

func (l *pollLog) Observe(_ context.Context, b []schema.Observation) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.polls == nil {
		l.polls = map[string][]time.Time{}
	}
	l.polls[b[0].Device] = append(l.polls[b[0].Device], time.Now())
	return nil
}

func (l *pollLog) count(dev string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.polls[dev])
}

// ownedPoller starts a poller of three simulated devices a, b and c,
// polled every interval, after calling SetOwned(before) unless before is
// nil.
func ownedPoller(t *testing.T, interval time.Duration, before []string) (*Poller, *pollLog) {
	t.Helper()
	addrs, _ := simulate(t,
		snmpagent.DeviceOptions{Name: "timos#a", Community: "public"},
		snmpagent.DeviceOptions{Name: "timos#b", Community: "public"},
		snmpagent.DeviceOptions{Name: "timos#c", Community: "public"},
	)
	cfg := DefaultConfig()
	cfg.Defaults.Interval = interval
	for i, n := range []string{"a", "b", "c"} {
		cfg.Targets = append(cfg.Targets, Target{Name: n, Address: addrs[i]})
	}
	sink := &pollLog{}
	p, err := New(cfg, IFMIBPlan, sink, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		p.SetOwned(before)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return p, sink
}

func deviceState(p *Poller, dev string) string {
	for _, s := range p.DeviceStates() {
		if s.Device == dev {
			return s.State
		}
	}
	return ""
}

// TestOwnedBeforeStart: without SetOwned every device is polled (a
// standalone node); with it, only the owned ones, the others reported as
// not owned.
func TestOwnedBeforeStart(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before []string // nil: SetOwned not called
		polled []string
	}{
		{"standalone: every device", nil, []string{"a", "b", "c"}},
		{"two owned", []string{"a", "c", "gnmi-only"}, []string{"a", "c"}},
		{"none owned", []string{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, sink := ownedPoller(t, 200*time.Millisecond, tc.before)
			testkit.Eventually(t, "owned devices polled twice", func() bool {
				for _, d := range tc.polled {
					if sink.count(d) < 2 {
						return false
					}
				}
				return true
			})
			for _, d := range []string{"a", "b", "c"} {
				owned := slices.Contains(tc.polled, d)
				if n := sink.count(d); owned != (n > 0) {
					t.Errorf("%s: %d polls, owned %v", d, n, owned)
				}
				if st := deviceState(p, d); owned != (st != StateNotOwned) {
					t.Errorf("%s: state %s, owned %v", d, st, owned)
				}
			}
		})
	}
}

// TestOwnedAtRunTime: a device that becomes owned is polled at once, not
// at its slot in a long interval; one that stops being owned is stopped
// before SetOwned returns and not polled again.
func TestOwnedAtRunTime(t *testing.T) {
	type step struct {
		owned      []string
		polledNow  []string // polled within a second of SetOwned
		notPolled  []string // not polled at all after SetOwned returns
		stateAfter map[string]string
	}
	for _, tc := range []struct {
		name     string
		interval time.Duration
		steps    []step
	}{
		{"taken targets poll at once", time.Hour, []step{
			{owned: []string{"a"}, polledNow: []string{"a"}, notPolled: []string{"b", "c"}},
			{owned: []string{"a", "b", "c"}, polledNow: []string{"b", "c"}},
		}},
		{"released targets stop, retaken poll at once", 100 * time.Millisecond, []step{
			{owned: []string{"a", "b"}, polledNow: []string{"a", "b"}, notPolled: []string{"c"}},
			{owned: []string{"b"}, notPolled: []string{"a", "c"},
				stateAfter: map[string]string{"a": StateNotOwned, "c": StateNotOwned, "b": StateUp}},
			{owned: []string{}, notPolled: []string{"a", "b", "c"}},
			{owned: []string{"a"}, polledNow: []string{"a"}, notPolled: []string{"b", "c"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, sink := ownedPoller(t, tc.interval, []string{})
			for i, s := range tc.steps {
				base := map[string]int{}
				for _, d := range []string{"a", "b", "c"} {
					base[d] = sink.count(d)
				}
				p.SetOwned(s.owned)
				after := map[string]int{}
				for _, d := range []string{"a", "b", "c"} {
					after[d] = sink.count(d)
				}
				testkit.EventuallyWithin(t, time.Second, "newly owned devices polled", func() bool {
					for _, d := range s.polledNow {
						if sink.count(d) == base[d] {
							return false
						}
					}
					return true
				})
				time.Sleep(3 * time.Duration(min(tc.interval, 100*time.Millisecond)))
				for _, d := range s.notPolled {
					if n := sink.count(d); n != after[d] {
						t.Errorf("step %d: %s polled %d times after it stopped being owned", i, d, n-after[d])
					}
				}
				for d, want := range s.stateAfter {
					if got := deviceState(p, d); got != want {
						t.Errorf("step %d: %s state %s, want %s", i, d, got, want)
					}
				}
			}
		})
	}
}
