package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/schema"
)

func TestCountFields(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"cpu value=1 1700000000\n", 1},
		{"ifmib,agent_host=127.0.0.1:1,ifName=1/1/1 a=1i,b=2i,c=3i 1700000000\n", 3},
		{`m,t=x s="a, b c",n=1 17` + "\n", 2},
		{`m\ with\ space,t=a\,b f=1,g=2`, 2},
		{"m f=1\nm f=2,g=3\n\n# comment\n", 3},
		{`m s="line\nbreak",x=1 1` + "\n" + `m y=1`, 3},
		{"", 0},
	} {
		if got := countFields([]byte(tc.in)); got != tc.want {
			t.Errorf("countFields(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestWindowBook checks the bench's bookkeeping of which batch closed which
// window and how many decisions each window should produce.
func TestWindowBook(t *testing.T) {
	sec := int64(time.Second)
	base := 1000 * sec
	b := newWindowBook(time.Second, 0, 10)
	t0 := time.Unix(0, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	b.sent(0, base+100e6, at(0))      // first batch: window [1000s,1001s)
	b.sent(1, base+900e6, at(1))      // device 1, same window
	b.sent(0, base+sec+1, at(2))      // closes the window ending at 1001s
	b.sent(1, base+sec+5, at(3))      // already closed: no new trigger
	b.sent(0, base+3*sec+2e6, at(10)) // closes 1002s (device 0, 1) and 1003s (empty)
	for _, tc := range []struct {
		end  int64
		ok   bool
		sent time.Time
	}{
		{base, false, time.Time{}},
		{base + sec, true, at(2)},
		{base + 2*sec, true, at(10)},
		{base + 3*sec, true, at(10)},
		{base + 4*sec, false, time.Time{}},
	} {
		got, ok := b.trigger(tc.end)
		if ok != tc.ok || !got.Equal(tc.sent) {
			t.Errorf("trigger(%d) = %v, %v; want %v, %v", tc.end/sec, got, ok, tc.sent, tc.ok)
		}
	}
	n, ends := b.expectedBetween(at(0), at(5))
	if n != 20 || len(ends) != 1 || ends[0] != base+sec {
		t.Errorf("expectedBetween(0, 5ms) = %d %v, want 20 (2 devices × 10 interfaces) for the window ending at 1001s", n, ends)
	}
	n, ends = b.expectedBetween(at(5), at(20))
	if n != 20 || len(ends) != 2 {
		t.Errorf("expectedBetween(5ms, 20ms) = %d %v, want 20 over two windows", n, ends)
	}

	// With lateness, a window closes only once event time passes its end
	// plus the lateness.
	b = newWindowBook(time.Second, 100*time.Millisecond, 1)
	b.sent(0, base+500e6, at(0))
	b.sent(0, base+sec+50e6, at(1))
	if _, ok := b.trigger(base + sec); ok {
		t.Error("window closed within the allowed lateness")
	}
	b.sent(0, base+sec+100e6, at(2))
	if got, ok := b.trigger(base + sec); !ok || !got.Equal(at(2)) {
		t.Errorf("trigger with lateness = %v, %v; want %v", got, ok, at(2))
	}
}

// TestInjectorPacing checks that the injector holds the asked rate, stamps
// every batch with increasing event times and counts what it sent.
func TestInjectorPacing(t *testing.T) {
	var got, batches int
	var lastTS int64
	sink := schema.ObservationSinkFunc(func(_ context.Context, b []schema.Observation) error {
		batches++
		got += len(b)
		for _, o := range b {
			if o.DeviceTime < lastTS || o.RecvTime != o.DeviceTime {
				t.Errorf("event time %d after %d (recv %d)", o.DeviceTime, lastTS, o.RecvTime)
			}
			if !strings.HasPrefix(o.Path, "interfaces/interface[name=") || o.Kind != schema.KindCounter64 {
				t.Errorf("unexpected observation %+v", o)
			}
		}
		lastTS = b[0].DeviceTime
		return nil
	})
	in := newInjector(sink, newWindowBook(100*time.Millisecond, 0, 2), []int{0, 1, 2}, 2)
	const rate = 8000.0 // 16 observations per batch: 500 batches/s
	start := time.Now()
	in.run(context.Background(), rate, start.Add(time.Second))
	el := time.Since(start).Seconds()
	if int64(got) != in.obs.Load() {
		t.Fatalf("sink got %d observations, injector counted %d", got, in.obs.Load())
	}
	if achieved := float64(got) / el; achieved < 0.9*rate || achieved > 1.1*rate {
		t.Errorf("achieved %.0f obs/s over %.2fs, want %.0f ±10%%", achieved, el, rate)
	}
	if batches < 3 {
		t.Fatalf("only %d batches", batches)
	}
}

func TestGeneratorCost(t *testing.T) {
	ns := generatorCost(10)
	if ns <= 0 || ns > 1000 {
		t.Fatalf("generator cost %.2f ns per observation, want a small positive figure", ns)
	}
}

func TestOptionsValidate(t *testing.T) {
	ok := DefaultOptions()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	pinned := DefaultOptions()
	pinned.Workload, pinned.Binary, pinned.ServiceCPUs, pinned.SimCPUs = WorkloadSNMP, "x", "0", "1,2-3"
	if err := pinned.Validate(); err != nil {
		t.Fatalf("pinned snmp run invalid: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"no workload", func(o *Options) { o.Workload = "" }, "want inject, snmp or gnmi"},
		{"snmp without binary", func(o *Options) { o.Workload = WorkloadSNMP }, "binary"},
		{"telegraf with inject", func(o *Options) { o.PeerTelegraf = "/usr/bin/telegraf" }, "Telegraf"},
		{"ceiling with gnmi", func(o *Options) { o.Workload, o.Binary, o.Ceiling = WorkloadGNMI, "x", true }, "ceiling"},
		{"zero rate", func(o *Options) { o.Rate = 0 }, "rate"},
		{"tiny hop", func(o *Options) { o.Hop = time.Millisecond }, "hop"},
		{"too many injectors", func(o *Options) { o.Injectors = 1000 }, "injectors"},
		{"bad share", func(o *Options) { o.PointShare = 2 }, "point share"},
		{"pinned inject", func(o *Options) { o.ServiceCPUs = "0" }, "taskset"},
		{"simulator CPUs with gnmi", func(o *Options) { o.Workload, o.Binary, o.SimCPUs = WorkloadGNMI, "x", "1" }, "simulator CPUs"},
		{"bad CPU list", func(o *Options) { o.Workload, o.Binary, o.SimCPUs = WorkloadSNMP, "x", "one" }, "CPU list"},
		{"pinned child and profile", func(o *Options) {
			o.Workload, o.Binary, o.ServiceCPUs, o.CPUProfile = WorkloadSNMP, "x", "0", "cpu.prof"
		}, "profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.mod(&o)
			err := o.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// TestServiceSetupParses checks that the configuration the bench writes is
// one the service accepts, for every workload.
func TestServiceSetupParses(t *testing.T) {
	for _, s := range []serviceSetup{
		{dataDir: "/tmp/x", httpListen: "127.0.0.1:0", natsListen: "127.0.0.1:0", memoryBudget: 1 << 30, hop: time.Second},
		{dataDir: "/tmp/x", httpListen: "127.0.0.1:1", natsListen: "127.0.0.1:2", memoryBudget: 1 << 26, memoryLimit: 400 << 20, hop: 10 * time.Second, interval: 10 * time.Second,
			snmp: []endpoint{{"snmp-0001", "127.0.0.1:16100"}, {"snmp-0002", "127.0.0.1:16101"}}},
		{dataDir: "/tmp/x", httpListen: "127.0.0.1:1", natsListen: "127.0.0.1:2", memoryBudget: 1 << 26, hop: 500 * time.Millisecond, lateness: 100 * time.Millisecond, interval: time.Second,
			gnmi: []endpoint{{"xr-0001", "127.0.0.1:57400"}}},
	} {
		if _, err := parseServiceConfig(s.yaml()); err != nil {
			t.Errorf("configuration rejected: %v\n%s", err, s.yaml())
		}
	}
}
