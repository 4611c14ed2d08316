package integration

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/normalize"
	"github.com/netfeat/netfeat/schema"
)

// rowSink collects closed windows per device.
type rowSink struct {
	mu   sync.Mutex
	ends map[string]map[int64]float64 // device → window end → sample count
}

func (r *rowSink) handle(row *schema.FeatureRow) {
	n, _ := row.Feature(schema.FeatureName("interface.in.bps", schema.AggCount, 10*time.Second))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ends == nil {
		r.ends = map[string]map[int64]float64{}
	}
	if r.ends[row.Device] == nil {
		r.ends[row.Device] = map[int64]float64{}
	}
	r.ends[row.Device][row.WindowEnd] = n
}

func (r *rowSink) count(device string, end int64) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ends[device][end]
}

// TestWrongDeviceClockStopsNothing is issue #20 through the normalizer and
// the store: a gNMI target sends one notification dated 2200-01-01 among
// its normal ones. Every device's windows, the healthy one's and its own,
// keep closing with all their samples, also after a restart of both
// (store replay, normalizer state).
func TestWrongDeviceClockStopsNothing(t *testing.T) {
	dir := t.TempDir()
	view := schema.FeatureView{Name: "ifdev", Entity: schema.EntityDevice, Metrics: []string{"interface.in.bps"},
		Aggregations: []schema.Aggregation{schema.AggCount}, Windows: []time.Duration{10 * time.Second},
		Hop: 10 * time.Second, AllowedLateness: time.Second}
	const sec = int64(time.Second)
	base := time.Now().Add(-10*time.Minute).Truncate(10*time.Second).UnixNano() + sec/2
	y2200 := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	obs := func(device string, i int, devTime int64) schema.Observation {
		return schema.Observation{Device: device, Protocol: schema.ProtocolGNMI, Origin: "openconfig-interfaces",
			Path: "interfaces/interface[name=e1]/state/counters/in-octets", Kind: schema.KindCounter64,
			Uint: uint64(i) * 1000, DeviceTime: devTime, RecvTime: base + int64(i)*sec}
	}
	var state []byte
	run := func(from, to int, sink *rowSink) {
		t.Helper()
		ctx := context.Background()
		st, err := featurestore.New(featurestore.Config{}, []schema.FeatureView{view}, dir, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = st.Stop(context.Background()) }()
		st.Subscribe(sink.handle)
		if err := st.Start(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := normalize.New(normalize.Config{}, st, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if state != nil {
			if err := n.UnmarshalState(state); err != nil {
				t.Fatal(err)
			}
		}
		for i := from; i <= to; i++ {
			ts := base + int64(i)*sec
			batch := []schema.Observation{obs("good", i, ts), obs("bad", i, ts)}
			if i == 15 {
				batch[1] = obs("bad", i, y2200)
			}
			for _, o := range batch {
				if err := n.Observe(ctx, []schema.Observation{o}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if state, err = n.MarshalState(); err != nil {
			t.Fatal(err)
		}
		if err := st.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	winEnd := func(k int64) int64 { return base - sec/2 + k*10*sec }
	check := func(sink *rowSink, first, last int64) {
		t.Helper()
		for _, dev := range []string{"good", "bad"} {
			for k := first; k <= last; k++ {
				// 10 rate samples a window; the very first counter value
				// yields none.
				want := 10.0
				if k == 1 {
					want = 9
				}
				if got := sink.count(dev, winEnd(k)); got != want {
					t.Errorf("%s: window ending %d holds %v rate samples, want %v", dev, winEnd(k), got, want)
				}
			}
		}
	}
	var before, after rowSink
	run(0, 40, &before) // Close drains: every window a sample completed is delivered
	check(&before, 1, 4)
	run(41, 70, &after)
	check(&after, 5, 7)
}
