package normalize

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/schema"
)

// logCapture is a slog handler that keeps the records' messages and
// attributes.
type logCapture struct {
	mu    sync.Mutex
	lines []map[string]string
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logCapture) WithGroup(string) slog.Handler            { return h }
func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	h.mu.Lock()
	h.lines = append(h.lines, m)
	h.mu.Unlock()
	return nil
}

// count returns how many lines say a limit bit device.
func (h *logCapture) count(device, limit string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.lines {
		if l["msg"] == "device input limited" && l["device"] == device && l["limit"] == limit {
			n++
		}
	}
	return n
}

func newLimitTest(t *testing.T, cfg Config) (*Normalizer, *collector, *logCapture) {
	t.Helper()
	c, h := &collector{}, &logCapture{}
	n, err := New(cfg, c, prometheus.NewRegistry(), slog.New(h))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return n, c, h
}

// inOctets is an OpenConfig in-octets update of device's interface name.
func inOctets(device, name string, v uint64, devTime, recv int64) schema.Observation {
	return schema.Observation{Device: device, Protocol: schema.ProtocolGNMI, Origin: "openconfig-interfaces",
		Path: "interfaces/interface[name=" + name + "]/state/counters/in-octets", Kind: schema.KindCounter64, Uint: v,
		DeviceTime: devTime, RecvTime: recv}
}

func observe(t *testing.T, n *Normalizer, c *collector, batch ...schema.Observation) []schema.Sample {
	t.Helper()
	c.samples = nil
	if err := n.Observe(context.Background(), batch); err != nil {
		t.Fatalf("Observe: %v", err)
	}
	return c.samples
}

// TestDeviceClock: a device timestamp more than max_clock_skew ahead of the
// receive time (issue #20: one notification dated 2200-01-01) or more than
// max_sample_age behind it is replaced with the receive time, or the value
// dropped, counted per device and logged once per device.
func TestDeviceClock(t *testing.T) {
	recv := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC).UnixNano()
	y2200 := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	tests := []struct {
		name      string
		cfg       Config
		devTime   int64
		wantTS    int64 // 0: no sample
		direction string
		action    string
	}{
		{"in time", Config{}, recv - 2*sec, recv - 2*sec, "", ""},
		{"slightly ahead", Config{}, recv + 4*sec, recv + 4*sec, "", ""},
		{"2200-01-01 restamped", Config{}, y2200, recv, "ahead", "restamped"},
		{"6s ahead restamped", Config{}, recv + 6*sec, recv, "ahead", "restamped"},
		{"a day old restamped", Config{}, recv - 24*3600*sec, recv, "behind", "restamped"},
		{"2200-01-01 dropped", Config{ClockSkewAction: ClockDrop}, y2200, 0, "ahead", "dropped"},
		{"a day old dropped", Config{ClockSkewAction: ClockDrop}, recv - 24*3600*sec, 0, "behind", "dropped"},
		{"a day old within max_sample_age", Config{MaxSampleAge: 48 * time.Hour}, recv - 24*3600*sec, recv - 24*3600*sec, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, c, logs := newLimitTest(t, tc.cfg)
			var got []schema.Sample
			for i := range 3 { // three notifications, all with this clock
				got = append(got, observe(t, n, c, inOctets("g1", "e1", uint64(i), tc.devTime+int64(i)*sec, recv+int64(i)*sec))...)
			}
			if tc.wantTS == 0 {
				if len(got) != 0 {
					t.Fatalf("samples %+v, want none", got)
				}
			} else {
				if len(got) == 0 || got[0].TS != tc.wantTS {
					t.Fatalf("samples %+v, want the first at %d", got, tc.wantTS)
				}
				for _, s := range got {
					if s.TS > s.IngestTS+int64(DefaultMaxClockSkew) {
						t.Fatalf("sample %+v ahead of its receive time", s)
					}
				}
			}
			if tc.direction == "" {
				return
			}
			if v := testutil.ToFloat64(n.met.clockSkew.WithLabelValues("g1", tc.direction, tc.action)); v != 3 {
				t.Fatalf("clock_skew_total{g1,%s,%s} = %v, want 3", tc.direction, tc.action, v)
			}
			if k := logs.count("g1", "clock_"+tc.direction); k != 1 {
				t.Fatalf("%d log lines, want 1", k)
			}
		})
	}
}

// TestDeviceClockRestampedSeriesKeepRates: once restamped, a counter
// yields rates by receive time, so a device with a wrong clock still has
// its rates.
func TestDeviceClockRestampedSeriesKeepRates(t *testing.T) {
	n, c, _ := newLimitTest(t, Config{})
	y2200 := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	observe(t, n, c, inOctets("g1", "e1", 1000, y2200, 10*sec))
	s := observe(t, n, c, inOctets("g1", "e1", 2000, y2200, 20*sec))
	if v, ok := find(s, "e1", "interface.in.bps"); !ok || v != 800 {
		t.Fatalf("in.bps = %v, %v; want 800 (1000 octets in 10 s)", v, ok)
	}
}

// TestDeviceLimits: issue #20's cardinality and bytes. A device that
// reports 200 new interface names per poll stops at max_series_per_device
// (counted, logged once) while its existing series continue; an overlong
// component name is refused; invalid UTF-8 is replaced with U+FFFD and
// counted.
func TestDeviceLimits(t *testing.T) {
	t.Run("200 new interface names per poll", func(t *testing.T) {
		const limit = 600 // in-octets, in.bps, in.utilization: 3 series per interface
		n, c, logs := newLimitTest(t, Config{MaxSeriesPerDevice: limit})
		series := map[[2]string]bool{}
		admitted := map[string]bool{}
		for p := range 5 {
			at := int64(p+1) * 10 * sec
			batch := []schema.Observation{inOctets("g1", "steady", uint64(p)*1000, at, at)}
			for i := range 200 {
				batch = append(batch, inOctets("g1", fmt.Sprintf("e%d-%d", p, i), 1, at, at))
			}
			out := observe(t, n, c, batch...)
			steady := false
			for _, s := range out {
				series[[2]string{s.Component, s.Metric}] = true
				admitted[s.Component] = true
				steady = steady || s.Component == "steady"
			}
			if !steady {
				t.Fatalf("poll %d: the steady interface got no sample", p)
			}
		}
		if len(series) > limit {
			t.Fatalf("%d series, want at most %d", len(series), limit)
		}
		refused := 5*201 - (len(admitted) - 1) - 5 // every observation but the admitted ones
		if v := testutil.ToFloat64(n.met.refused.WithLabelValues("g1", "series_limit")); int(v) != refused {
			t.Fatalf("refused_total{series_limit} = %v, want %d", v, refused)
		}
		if k := logs.count("g1", "series_limit"); k != 1 {
			t.Fatalf("%d log lines, want 1", k)
		}
	})
	t.Run("SNMP names table growing every poll", func(t *testing.T) {
		const limit = 30
		n, c, logs := newLimitTest(t, Config{MaxSeriesPerDevice: limit})
		for p := range 5 {
			var batch []schema.Observation
			for i := range 200 {
				idx := fmt.Sprint(p*200 + i + 1)
				batch = append(batch, snmpObs("1.3.6.1.2.1.31.1.1.1.1."+idx, schema.KindString, "if"+idx),
					snmpObs("1.3.6.1.2.1.31.1.1.1.6."+idx, schema.KindCounter64, uint64(p)))
			}
			poll(t, n, c, int64(p+1)*10*sec, batch...)
		}
		for i, tbl := range n.device("r1").names {
			if len(tbl.rows) > limit {
				t.Fatalf("names table %d holds %d rows, want at most %d", i, len(tbl.rows), limit)
			}
		}
		if k := logs.count("r1", "series_limit"); k != 1 {
			t.Fatalf("%d log lines, want 1", k)
		}
	})
	t.Run("1 MiB component name", func(t *testing.T) {
		n, c, logs := newLimitTest(t, Config{})
		long := strings.Repeat("x", 1<<20)
		out := observe(t, n, c, inOctets("g1", long, 1, sec, sec), inOctets("g1", strings.Repeat("y", DefaultMaxNameLength), 1, sec, sec))
		if len(out) != 1 || out[0].Component != strings.Repeat("y", DefaultMaxNameLength) {
			t.Fatalf("samples %d, want only the one with a %d-byte name", len(out), DefaultMaxNameLength)
		}
		if v := testutil.ToFloat64(n.met.refused.WithLabelValues("g1", "name_too_long")); v != 1 {
			t.Fatalf("refused_total{name_too_long} = %v, want 1", v)
		}
		if k := logs.count("g1", "name_too_long"); k != 1 {
			t.Fatalf("%d log lines, want 1", k)
		}
		for k := range n.device("g1").cache {
			if len(k.path) > maxCachedPath {
				t.Fatalf("a path of %d bytes is cached", len(k.path))
			}
		}
		for p := range n.device("g1").paths {
			if len(p) > maxCachedPath {
				t.Fatalf("a path of %d bytes is cached", len(p))
			}
		}
		// SNMP: an overlong ifName is not taken as a name.
		s := poll(t, n, c, sec, snmpObs(oidIfName, schema.KindString, long), snmpObs(oidIfHCInOctets, schema.KindCounter64, uint64(5)))
		for _, x := range s {
			if len(x.Component) > DefaultMaxNameLength {
				t.Fatalf("component of %d bytes stored", len(x.Component))
			}
		}
	})
	t.Run("invalid UTF-8", func(t *testing.T) {
		n, c, _ := newLimitTest(t, Config{})
		out := observe(t, n, c, inOctets("g\xff1", "\xff\xfe\xfd", 1, sec, sec), inOctets("g\xff1", "ok\xc3", 1, sec, sec))
		if len(out) != 2 || out[0].Component != "\uFFFD" || out[1].Component != "ok\uFFFD" || out[0].Device != "g\uFFFD1" {
			t.Fatalf("samples %+v, want components \\uFFFD and ok\\uFFFD of device g\\uFFFD1", out)
		}
		if v := testutil.ToFloat64(n.met.invalidUTF8.WithLabelValues("g\uFFFD1")); v != 2 {
			t.Fatalf("invalid_utf8_total = %v, want 2", v)
		}
		// SNMP ifName.
		s := poll(t, n, c, sec, snmpObs(oidIfName, schema.KindString, "\xff\xfe\xfd"), snmpObs(oidIfHCInOctets, schema.KindCounter64, uint64(5)))
		if len(s) == 0 || s[0].Component != "\uFFFD" {
			t.Fatalf("SNMP samples %+v, want component \\uFFFD", s)
		}
	})
}

// TestDeviceLabelCap: devices outside the inventory get their own metric
// label up to maxLabelDevices, then share "(other)"; inventory devices
// always have theirs.
func TestDeviceLabelCap(t *testing.T) {
	n, _, _ := newLimitTest(t, Config{Inventory: map[string]DeviceInfo{"pe1": {}}})
	n.labeled = maxLabelDevices - 1
	if d := n.device("a"); d.label != "a" {
		t.Fatalf("label %q, want a", d.label)
	}
	if d := n.device("b"); d.label != otherDevice {
		t.Fatalf("label %q, want %q", d.label, otherDevice)
	}
	if d := n.device("pe1"); d.label != "pe1" {
		t.Fatalf("inventory device label %q, want pe1", d.label)
	}
}

// TestDeviceLabelsOnlyConfigured: with the service's list of configured
// devices, only they and inventory devices get their own label.
func TestDeviceLabelsOnlyConfigured(t *testing.T) {
	n, _, _ := newLimitTest(t, Config{Inventory: map[string]DeviceInfo{"pe1": {}}, Devices: []string{"nokia-7210"}})
	for dev, want := range map[string]string{"nokia-7210": "nokia-7210", "pe1": "pe1", "10.9.9.9": otherDevice} {
		if d := n.device(dev); d.label != want {
			t.Errorf("device %s: label %q, want %q", dev, d.label, want)
		}
	}
}

// TestSetDevices: a device added to the configured list at run time gets
// its own label; an empty list still labels only inventory devices (it is
// not the nil "label the first 10,000").
func TestSetDevices(t *testing.T) {
	n, _, _ := newLimitTest(t, Config{Inventory: map[string]DeviceInfo{"pe1": {}}, Devices: []string{"nokia-7210"}})
	for _, tc := range []struct {
		set  []string
		dev  string
		want string
	}{
		{set: []string{"nokia-7210", "r2"}, dev: "r2", want: "r2"},
		{set: nil, dev: "r3", want: otherDevice},
		{set: nil, dev: "pe1", want: "pe1"},
		{set: []string{"r4"}, dev: "r4", want: "r4"},
	} {
		n.SetDevices(tc.set)
		if d := n.device(tc.dev); d.label != tc.want {
			t.Errorf("devices %v: %s labelled %q, want %q", tc.set, tc.dev, d.label, tc.want)
		}
	}
}
