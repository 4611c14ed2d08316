package inference

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/schema"
)

// samplesPerRow is how many samples one interface_1m row summarises: four
// metrics sampled every 10 s over a 1 m window.
const samplesPerRow = 4 * 6

// BenchmarkDecisionLatency measures the time from HandleRow to the decision
// arriving at a NATS subscriber (a separate connection to an embedded
// server on loopback), with the congestion model and its rule (two
// decisions per row). Rows are paced at a fixed rate; burst > 1 hands rows
// over in groups, as a window engine closing many entities' windows at one
// hop boundary does. Run with a fixed count, for example:
//
//	go test ./inference -run '^$' -bench DecisionLatency -benchtime 20000x
//
// Metrics: p50/p99/p999 in µs over both decisions of every row, and cpu/op
// as CPU time of the whole process (runtime, NATS server, subscriber) per
// row.
func BenchmarkDecisionLatency(b *testing.B) {
	cases := []struct {
		rowsPerSec int
		burst      int
		jetstream  bool
	}{
		{100_000 / samplesPerRow, 1, false},
		{100_000 / samplesPerRow, 1, true},
		{100_000 / samplesPerRow, 100, false},
		{20_000, 1, false},
	}
	for _, c := range cases {
		name := fmt.Sprintf("samples_per_s=%d/rows_per_s=%d/burst=%d/jetstream=%v", c.rowsPerSec*samplesPerRow, c.rowsPerSec, c.burst, c.jetstream)
		b.Run(name, func(b *testing.B) { benchLatency(b, c.rowsPerSec, c.burst, c.jetstream) })
	}
	// The floor: the same documents published straight to NATS from the
	// sending goroutine, two per row, at the steady 100k samples/s rate.
	b.Run(fmt.Sprintf("baseline_nats_only/rows_per_s=%d", 100_000/samplesPerRow), func(b *testing.B) {
		benchNATSOnly(b, 100_000/samplesPerRow)
	})
}

func benchNATSOnly(b *testing.B, rowsPerSec int) {
	srv := startNATS(b, -1, b.TempDir())
	nc := connect(b, srv.ClientURL())
	subConn := connect(b, srv.ClientURL())
	var mu sync.Mutex
	lat := make([]float64, 0, 1<<17)
	got := make(chan struct{}, 1<<20)
	sub, err := subConn.Subscribe("netfeat.decisions.>", func(m *nats.Msg) {
		now := time.Now().UnixNano()
		var sent int64
		for _, c := range m.Data[len(m.Data)-20:] {
			if c >= '0' && c <= '9' {
				sent = sent*10 + int64(c-'0')
			}
		}
		mu.Lock()
		lat = append(lat, float64(now-sent)/1e3)
		mu.Unlock()
		got <- struct{}{}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = subConn.Flush()
	d := schema.Decision{SchemaVersion: 1, ID: "0190d3c4-7e1a-7b3e-9f00-1234567890ab", Time: time.Now(),
		Entity: schema.Entity{Device: "pe1", Component: "Gi0/1"}, View: "interface_1m", Model: "congestion",
		ModelVersion: "v1", Score: 0.92, Action: "reroute", Reason: "xgboost score 0.92", Features: congested}
	doc := appendDecisionJSON(nil, &d)
	interval := time.Second / time.Duration(rowsPerSec)
	start := time.Now()
	n := 0
	for b.Loop() {
		if due := start.Add(time.Duration(n) * interval); time.Until(due) > 0 {
			time.Sleep(time.Until(due))
		}
		for range 2 {
			// The send time rides at the end of the document.
			msg := append(append([]byte(nil), doc...), fmt.Sprintf(" %020d", time.Now().UnixNano())...)
			if err := nc.Publish("netfeat.decisions.congestion.pe1", msg); err != nil {
				b.Fatal(err)
			}
		}
		n++
	}
	timeout := time.After(30 * time.Second)
	for i := 0; i < 2*n; i++ {
		select {
		case <-got:
		case <-timeout:
			b.Fatalf("received %d of %d", i, 2*n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(q(0.999), "p999-µs")
}

func benchLatency(b *testing.B, rowsPerSec, burst int, js bool) {
	srv := startNATS(b, -1, b.TempDir())
	nc := connect(b, srv.ClientURL())
	subConn := connect(b, srv.ClientURL())
	cfg := testConfig()
	if js {
		cfg.JetStream.Stream = "BENCH"
	}
	r := newRuntime(b, cfg, nc, b.TempDir())

	var mu sync.Mutex
	sent := make([]int64, 0, 1<<16)
	lat := make([]float64, 0, 1<<17)
	decide := make([]float64, 0, 1<<17)
	got := make(chan struct{}, 1<<20)
	sub, err := subConn.Subscribe("netfeat.decisions.>", func(m *nats.Msg) {
		now := time.Now().UnixNano()
		// Find the window end without decoding the whole document, so the
		// harness costs little beside what it measures.
		end, err := windowEnd(m.Data)
		if err != nil {
			b.Errorf("decode: %v", err)
			return
		}
		i := end.UnixNano() - base
		us := ingestToDecision(m.Data)
		mu.Lock()
		lat = append(lat, float64(now-sent[i])/1e3)
		decide = append(decide, us)
		mu.Unlock()
		got <- struct{}{}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		b.Fatal(err)
	}
	_ = subConn.Flush()

	// Warm up: a first decision through the whole path.
	mu.Lock()
	sent = append(sent, time.Now().UnixNano())
	mu.Unlock()
	r.HandleRow(benchRow(0))
	<-got
	<-got
	mu.Lock()
	lat, decide = lat[:0], decide[:0]
	mu.Unlock()

	interval := time.Second / time.Duration(rowsPerSec)
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	i := int64(1)
	b.ResetTimer()
	for b.Loop() {
		if (i-1)%int64(burst) == 0 {
			due := start.Add(time.Duration(i-1) * interval)
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		row := benchRow(i)
		mu.Lock()
		sent = append(sent, time.Now().UnixNano())
		mu.Unlock()
		row.LastIngestTS = sent[i]
		r.HandleRow(row)
		i++
	}
	want := 2 * int(i-1)
	timeout := time.After(30 * time.Second)
	for n := 0; n < want; n++ {
		select {
		case <-got:
		case <-timeout:
			b.Fatalf("received %d of %d decisions", n, want)
		}
	}
	b.StopTimer()
	wall := time.Since(start)
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond

	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(q(0.999), "p999-µs")
	b.ReportMetric(lat[len(lat)-1], "max-µs")
	// The runtime's share: HandleRow to the decision made (before NATS).
	slices.Sort(decide)
	b.ReportMetric(decide[len(decide)/2], "decide-p50-µs")
	b.ReportMetric(decide[min(len(decide)-1, len(decide)*99/100)], "decide-p99-µs")
	b.ReportMetric(float64(cpu.Microseconds())/float64(i-1), "cpu-µs/row")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu-cores")
	b.ReportMetric(testutil.ToFloat64(r.m.rowsDropped.WithLabelValues("interface_1m")), "dropped-rows")
}

// ingestToDecision reads the trailing ingest_to_decision_us of a decision
// document.
func ingestToDecision(doc []byte) float64 {
	i := bytes.LastIndexByte(doc, ':')
	v, _ := strconv.ParseFloat(string(bytes.TrimSuffix(doc[i+1:], []byte("}"))), 64)
	return v
}

// windowEnd reads window.end from a decision document.
func windowEnd(doc []byte) (time.Time, error) {
	const key = `"window":{"start":"`
	i := bytes.Index(doc, []byte(key))
	if i < 0 {
		return time.Time{}, fmt.Errorf("no window in %s", doc)
	}
	rest := doc[i+len(key):]
	j := bytes.Index(rest, []byte(`"end":"`))
	if j < 0 {
		return time.Time{}, fmt.Errorf("no window end in %s", doc)
	}
	rest = rest[j+len(`"end":"`):]
	k := bytes.IndexByte(rest, '"')
	if k < 0 {
		return time.Time{}, fmt.Errorf("bad window end in %s", doc)
	}
	return time.Parse(time.RFC3339Nano, string(rest[:k]))
}

// base is the window end of bench row 0; row i ends base+i ns, which the
// subscriber uses to find the row's send time.
var base = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()

func benchRow(i int64) *schema.FeatureRow {
	v := congested
	if i%2 == 0 {
		v = idle
	}
	r := row(fmt.Sprintf("pe%d", i%50), fmt.Sprintf("Gi0/%d", i%48), time.Unix(0, base+i), v)
	return r
}

// BenchmarkProcessRow measures the runtime's own work per row (score the
// congestion model and its rule, build, record and encode both decisions),
// with the publisher's queue drained by a goroutine that discards.
func BenchmarkProcessRow(b *testing.B) {
	r, err := New(testConfig(), nil, b.TempDir(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Stop(context.Background())
	done := make(chan struct{})
	go func() {
		for range r.pub.in {
		}
		close(done)
	}()
	rows := []*schema.FeatureRow{benchRow(1), benchRow(2)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.process(rows[i&1])
		i++
	}
	b.StopTimer()
	close(r.pub.in)
	<-done
	r.pub.in = make(chan *outMsg) // Stop closes it again
	close(r.stopCh)
	r.started = false
}

// BenchmarkOutboxDrain measures how fast a backlog left by a NATS outage
// reaches JetStream (acknowledged) or core NATS (flushed): each op stores
// 10,000 decisions in the outbox and drains them.
func BenchmarkOutboxDrain(b *testing.B) {
	for _, js := range []bool{false, true} {
		b.Run(fmt.Sprintf("jetstream=%v", js), func(b *testing.B) {
			srv := startNATS(b, -1, b.TempDir())
			nc := connect(b, srv.ClientURL())
			cfg := testConfig()
			if js {
				cfg.JetStream.Stream = "DRAIN"
			}
			r, err := New(cfg, nc, b.TempDir(), nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Stop(context.Background())
			d := schema.Decision{SchemaVersion: 1, ID: "x", Time: time.Now(), Entity: schema.Entity{Device: "pe1", Component: "Gi0/1"},
				View: "interface_1m", Model: "congestion", ModelVersion: "v1", Score: 0.9, Action: "reroute",
				Reason: "xgboost score 0.9", Features: congested}
			const n = 10_000
			msgs := make([]*outMsg, n)
			seq := 0
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for i := range msgs {
					seq++
					d.ID = fmt.Sprintf("id-%d", seq)
					msgs[i] = &outMsg{subject: "netfeat.decisions.congestion.pe1", id: d.ID, data: appendDecisionJSON(nil, &d)}
				}
				if _, err := r.pub.ob.append(msgs, n); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				r.pub.drain(time.Now().Add(time.Minute))
				if r.pub.ob.count != 0 {
					b.Fatalf("%d left", r.pub.ob.count)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}
