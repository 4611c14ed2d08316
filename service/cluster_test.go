package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/collectors/snmp"
	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/internal/testkit"
)

func TestClusterConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // exact error lines; none: valid
	}{
		{"off: nothing checked", "cluster:\n  lease_ttl: 1ms\n", nil},
		{"defaults, node named after the host", "cluster:\n  enabled: true\n", nil},
		{"short settings", "cluster:\n  enabled: true\n  node: n1\n  lease_ttl: 3s\n  renew: 500ms\n  replicas: 3\n", nil},
		{"fractional lease", "cluster:\n  enabled: true\n  node: n1\n  lease_ttl: 2500ms\n", []string{
			`f.yaml:4: cluster.lease_ttl: 2.5s: want a whole number of seconds, at least 2s`}},
		{"renew too long", "cluster:\n  enabled: true\n  node: n1\n  lease_ttl: 3s\n  renew: 1s\n", []string{
			`f.yaml:5: cluster.renew: 1s: want more than 0 and less than (lease_ttl - 1s)/2 = 1s`}},
		{"bad bucket and replicas", "cluster:\n  enabled: true\n  node: n1\n  bucket: a.b\n  replicas: 7\n", []string{
			`f.yaml:4: cluster.bucket: "a.b": want letters, digits, '-' and '_'`,
			`f.yaml:5: cluster.replicas: 7: want 1 to 5`}},
		{"no JetStream", "nats:\n  jetstream: false\ncluster:\n  enabled: true\n  node: n1\n", []string{
			`f.yaml:4: cluster.enabled: needs JetStream: set nats.jetstream or nats.url`}},
		{"on a hub", "role: hub\nnats:\n  url: nats://127.0.0.1:4222\ncluster:\n  enabled: true\n  node: n1\n", []string{
			`f.yaml:5: cluster.enabled: a hub polls no targets: the cluster is for the nodes of one site`}},
		{"node name too long", "cluster:\n  enabled: true\n  node: " + strings.Repeat("n", 256) + "\n", []string{
			`f.yaml:3: cluster.node: name longer than 255 bytes`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("f.yaml", []byte(tt.yaml))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("valid configuration refused: %v", err)
				}
				return
			}
			var ce ConfigErrors
			if !errors.As(err, &ce) {
				t.Fatalf("want ConfigErrors, got %v", err)
			}
			if got := ce.Error(); got != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", got, strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestClusterSharesTargets runs two services of one site, the second on
// the first's embedded NATS: together they poll every device, each
// device on one of them, the others shown as not owned; when one stops,
// the other takes its devices at once.
func TestClusterSharesTargets(t *testing.T) {
	mib, err := snmpagent.LoadMIB(filepath.Join("..", "testdata", "snmp", "timos.snmprec"))
	if err != nil {
		t.Fatal(err)
	}
	sim := snmpagent.NewSimulator(nil)
	const n = 6
	for i := range n {
		d, err := snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: fmt.Sprint("pe", i), Community: "public"})
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.Add(d, "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Stop(context.Background()) })

	config := func(node, natsURL string) *Config {
		cfg := DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.HTTP.Listen = "127.0.0.1:0"
		cfg.NATS.Listen = "127.0.0.1:0"
		cfg.NATS.URL = natsURL
		cfg.ShutdownTimeout = 10 * time.Second
		cfg.SNMP.Defaults.Interval = time.Second
		cfg.SNMP.Defaults.Community = "public"
		for _, ep := range sim.Endpoints() {
			cfg.SNMP.Targets = append(cfg.SNMP.Targets, snmp.Target{Name: ep.Device.Name(), Address: ep.Addr})
		}
		cfg.Cluster = ClusterConfig{Enabled: true, Node: node, LeaseTTL: 2 * time.Second}
		return &cfg
	}
	a := startService(t, config("a", ""))
	b, err := New(config("b", a.NATS().ClientURL()), NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	bStopped := false
	t.Cleanup(func() {
		if !bStopped {
			_ = b.Stop()
		}
	})
	owned := func(s *Service) []string {
		var out []string
		for _, d := range s.pipe.snmp.DeviceStates() {
			if d.State != snmp.StateNotOwned {
				out = append(out, d.Device)
			}
		}
		return out
	}
	testkit.Eventually(t, "every device owned by exactly one node, both nodes owning some", func() bool {
		oa, ob := owned(a), owned(b)
		for _, d := range oa {
			if slices.Contains(ob, d) {
				return false
			}
		}
		return len(oa)+len(ob) == n && len(oa) > 0 && len(ob) > 0
	})
	if err := b.Stop(); err != nil {
		t.Fatal(err)
	}
	bStopped = true
	testkit.EventuallyWithin(t, time.Second, "a owns every device once b has stopped", func() bool { return len(owned(a)) == n })
	testkit.Eventually(t, "a polls every device", func() bool {
		for _, d := range a.pipe.snmp.DeviceStates() {
			if d.State != snmp.StateUp {
				return false
			}
		}
		return true
	})
}

// TestClusterTargetsFile runs two nodes of one site that read one targets
// file: a device written to it is taken by exactly one node and polled;
// one removed from it is polled by neither.
func TestClusterTargetsFile(t *testing.T) {
	mib, err := snmpagent.LoadMIB(filepath.Join("..", "testdata", "snmp", "timos.snmprec"))
	if err != nil {
		t.Fatal(err)
	}
	sim := snmpagent.NewSimulator(nil)
	devs := map[string]*snmpagent.Device{}
	for i := range 4 {
		d, err := snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: fmt.Sprint("pe", i), Community: "public"})
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.Add(d, "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		devs[d.Name()] = d
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Stop(context.Background()) })
	addr := map[string]string{}
	for _, ep := range sim.Endpoints() {
		addr[ep.Device.Name()] = ep.Addr
	}
	file := filepath.Join(t.TempDir(), "targets.yaml")
	write := func(names ...string) {
		t.Helper()
		var b strings.Builder
		b.WriteString("snmp:\n  targets:\n")
		for _, n := range names {
			fmt.Fprintf(&b, "    - name: %s\n      address: %s\n", n, addr[n])
		}
		if err := os.WriteFile(file+".tmp", []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
	}
	write()
	start := func(node, natsURL string) *Service {
		cfg := DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.HTTP.Listen = "127.0.0.1:0"
		cfg.NATS.Listen = "127.0.0.1:0"
		cfg.NATS.URL = natsURL
		cfg.ShutdownTimeout = 10 * time.Second
		cfg.SNMP.Defaults.Interval = 500 * time.Millisecond
		cfg.SNMP.Targets = []snmp.Target{{Name: "pe0", Address: addr["pe0"]}, {Name: "pe1", Address: addr["pe1"]}}
		cfg.TargetsFile = file
		cfg.Cluster = ClusterConfig{Enabled: true, Node: node, LeaseTTL: 2 * time.Second}
		s, err := New(&cfg, NewRegistry(), nil)
		if err != nil {
			t.Fatal(err)
		}
		s.targets.poll = 20 * time.Millisecond
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Stop() })
		return s
	}
	a := start("a", "")
	b := start("b", a.NATS().ClientURL())
	owners := func(dev string) (n int, up bool) {
		for _, s := range []*Service{a, b} {
			for _, d := range s.pipe.snmp.DeviceStates() {
				if d.Device == dev && d.State != snmp.StateNotOwned {
					n++
					up = d.State == snmp.StateUp
				}
			}
		}
		return n, up
	}
	for _, step := range []struct {
		name    string
		file    []string
		owned   []string // each owned by exactly one node and polled
		removed []string // listed by neither node, polled no more
	}{
		{name: "configuration targets", owned: []string{"pe0", "pe1"}},
		{name: "two devices written to the file", file: []string{"pe2", "pe3"}, owned: []string{"pe0", "pe1", "pe2", "pe3"}},
		{name: "one removed from the file", file: []string{"pe3"}, owned: []string{"pe0", "pe1", "pe3"}, removed: []string{"pe2"}},
	} {
		t.Run(step.name, func(t *testing.T) {
			write(step.file...)
			for _, dev := range step.owned {
				testkit.Eventually(t, dev+" owned by one node and up", func() bool {
					n, up := owners(dev)
					return n == 1 && up
				})
			}
			for _, dev := range step.removed {
				// Counted once the device is stopped: no request after.
				testkit.Eventually(t, dev+" removed by both nodes", func() bool {
					return testutil.ToFloat64(a.targets.changes.WithLabelValues("remove", "file")) == 1 &&
						testutil.ToFloat64(b.targets.changes.WithLabelValues("remove", "file")) == 1
				})
				for _, s := range []*Service{a, b} {
					for _, d := range s.pipe.snmp.DeviceStates() {
						if d.Device == dev {
							t.Errorf("%s still listed", dev)
						}
					}
				}
				before, other := devs[dev].Stats().Requests, devs["pe0"].Stats().Requests
				testkit.Eventually(t, "pe0 polled twice more", func() bool { return devs["pe0"].Stats().Requests >= other+2 })
				if n := devs[dev].Stats().Requests; n != before {
					t.Errorf("%s received %d requests after its removal", dev, n-before)
				}
			}
		})
	}
}
