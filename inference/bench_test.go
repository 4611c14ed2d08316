package inference

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/internal/testkit"
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
	reportTail(b, lat, false)
}

// reportTail sorts lat (µs) and reports its p50, p99 and p999 and, with
// withMax, its maximum.
func reportTail(b *testing.B, lat []float64, withMax bool) {
	slices.Sort(lat)
	q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(q(0.999), "p999-µs")
	if withMax {
		b.ReportMetric(lat[len(lat)-1], "max-µs")
	}
}

// reportDecide sorts decide (µs: the runtime's share, before NATS) and
// reports its p50 and p99.
func reportDecide(b *testing.B, decide []float64) {
	slices.Sort(decide)
	b.ReportMetric(decide[len(decide)/2], "decide-p50-µs")
	b.ReportMetric(decide[min(len(decide)-1, len(decide)*99/100)], "decide-p99-µs")
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
		rc, err := receive(m)
		if err != nil {
			b.Errorf("decode: %v", err)
			return
		}
		now, i, us := rc.at, rc.end-base, rc.decideUS
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
	cpu0 := testkit.ProcessCPU()
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
	cpu := testkit.ProcessCPU() - cpu0

	mu.Lock()
	defer mu.Unlock()
	reportTail(b, lat, true)
	// The runtime's share: HandleRow to the decision made (before NATS).
	reportDecide(b, decide)
	b.ReportMetric(float64(cpu.Microseconds())/float64(i-1), "cpu-µs/row")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu-cores")
	b.ReportMetric(testutil.ToFloat64(r.m.rowsDropped.WithLabelValues("interface_1m")), "dropped-rows")
}

// received is what the harness takes from a decision on arrival.
type received struct {
	at       int64   // receive time, Unix ns
	end      int64   // window end, Unix ns
	decideUS float64 // ingest_to_decision_us
}

// receive stamps m's arrival and reads its window end and decide time
// without decoding the whole document, so that the harness costs little
// beside what it measures.
func receive(m *nats.Msg) (received, error) {
	at := time.Now().UnixNano()
	end, err := windowEnd(m.Data)
	if err != nil {
		return received{}, err
	}
	return received{at: at, end: end.UnixNano(), decideUS: ingestToDecision(m.Data)}, nil
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
	w := &worker{r: r, sc: newScratch()}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.process(rows[i&1], w)
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
			r, err := New(cfg, connOf(nc), b.TempDir(), nil, nil)
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

// BenchmarkEndToEnd measures the whole loop the way an operator sees it:
// samples go into a feature store through Append, its window closes feed
// the runtime (congestion model and its rule: two decisions per row), and
// a separate NATS connection subscribed to netfeat.decisions.> on the
// embedded server (random port, TCP) receives the decisions; the runtime
// publishes over an in-process connection, as netfeat serve does. Ingest is paced at
// 100,000 samples/s (interface_1m: 4 metrics per interface, 24 samples per
// row), with event time running faster than the wall clock so that
// windows close at 4,166 rows/s (8,333 decisions/s). Two shapes of that
// load:
//
//   - rows_per_hop=4: 4 interfaces × 4 metrics × 6 samples (96) every
//     0.96 ms, each batch crossing a hop boundary: 4 windows close per
//     batch;
//   - rows_per_hop=25: 25 interfaces × 4 metrics × 2 samples (200) every
//     2 ms, every third batch crossing a hop boundary: 25 windows close at
//     once every 6 ms (the view's watermark closes every entity's window
//     together, and a hop's rows are scored one after another).
//
// Samples are laid out time first (each sampling round covers every
// series), and a hop boundary falls in the middle of the batch that
// crosses it, so that batch holds the last samples of every window it
// closes. Latency runs from the start of that batch's Append call to the
// subscriber's callback, over every decision. One op is one batch; run
// with a fixed count:
//
//	go test -tags duckdb_arrow ./inference -run '^$' -bench EndToEnd -benchtime 6000x -count 5
//
// cpu-s/M-samples is the CPU time of the whole process (store, runtime,
// NATS server, subscriber, load generator) per million samples. The
// decision_log=off variant runs without the decision log, which at
// these 8,333 decisions/s writes a block of about 800 decisions every
// 100 ms.
//
// The outside_subscriber variant receives in a separate process (this test
// binary run again as benchSubscriber), the outside subscriber of the
// target; the others receive on a separate connection in this process.
func BenchmarkEndToEnd(b *testing.B) {
	for _, c := range []struct {
		ents, perSeries, batchesPerHop int
		log, outside                   bool
	}{
		{4, 6, 1, true, false},
		{4, 6, 1, true, true},
		{4, 6, 1, false, false},
		{4, 6, 1, false, true},
		{25, 2, 3, true, false},
	} {
		name := fmt.Sprintf("rows_per_hop=%d/decision_log=on", c.ents)
		if !c.log {
			name = fmt.Sprintf("rows_per_hop=%d/decision_log=off", c.ents)
		}
		if c.outside {
			name = "outside_subscriber/" + name
		}
		b.Run(name, func(b *testing.B) {
			benchEndToEnd(b, c.ents, c.perSeries, c.batchesPerHop, c.log, c.outside)
		})
	}
}

// benchSubscriberEnv names the NATS URL that makes this test binary a
// decision subscriber (TestMain): it records window end, receive time and
// ingest_to_decision_us of every decision, answers "bench.count" with how
// many it has, and "bench.dump" by writing them to the file the request
// names.
const benchSubscriberEnv = "NETFEAT_BENCH_SUBSCRIBER"

// benchSubscriber is the outside subscriber of BenchmarkEndToEnd.
func benchSubscriber(url string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	var (
		mu   sync.Mutex
		recs []byte // per decision: window end, receive time, decide µs (3 × int64)
		n    int
	)
	sub, err := nc.Subscribe("netfeat.decisions.>", func(m *nats.Msg) {
		rc, err := receive(m)
		if err != nil {
			return
		}
		mu.Lock()
		recs = binary.LittleEndian.AppendUint64(recs, uint64(rc.end))
		recs = binary.LittleEndian.AppendUint64(recs, uint64(rc.at))
		recs = binary.LittleEndian.AppendUint64(recs, uint64(rc.decideUS))
		n++
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return err
	}
	done := make(chan error, 1)
	if _, err := nc.Subscribe("bench.count", func(m *nats.Msg) {
		mu.Lock()
		c := n
		mu.Unlock()
		_ = m.Respond([]byte(strconv.Itoa(c)))
	}); err != nil {
		return err
	}
	if _, err := nc.Subscribe("bench.dump", func(m *nats.Msg) {
		mu.Lock()
		err := os.WriteFile(string(m.Data), recs, 0o644)
		mu.Unlock()
		_ = m.Respond(nil)
		done <- err
	}); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	if err := nc.Publish("bench.ready", nil); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	return <-done
}

// outsideSubscriber starts benchSubscriber in a new process on srv and
// waits until it subscribes.
func outsideSubscriber(b *testing.B, nc *nats.Conn, url string) {
	ready, err := nc.SubscribeSync("bench.ready")
	if err != nil {
		b.Fatal(err)
	}
	defer ready.Unsubscribe()
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), benchSubscriberEnv+"="+url)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if _, err := ready.NextMsg(20 * time.Second); err != nil {
		b.Fatalf("outside subscriber: %v", err)
	}
}

// benchSubscribe subscribes to every decision on url: in another process
// (outsideSubscriber; read its records with outsideRecords) when outside,
// else on subConn, handing got each decision's arrival.
func benchSubscribe(b *testing.B, subConn *nats.Conn, url string, outside bool, got func(received)) {
	if outside {
		outsideSubscriber(b, subConn, url)
		return
	}
	sub, err := subConn.Subscribe("netfeat.decisions.>", func(m *nats.Msg) {
		rc, err := receive(m)
		if err != nil {
			b.Errorf("decode: %v", err)
			return
		}
		got(rc)
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		b.Fatal(err)
	}
	if err := subConn.Flush(); err != nil {
		b.Fatal(err)
	}
}

// outsideRecords waits until the outside subscriber has want decisions,
// then reads them back: window end, receive time, decide µs.
func outsideRecords(b *testing.B, nc *nats.Conn, want int) [][3]int64 {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		m, err := nc.Request("bench.count", nil, 5*time.Second)
		if err != nil {
			b.Fatalf("outside subscriber: %v", err)
		}
		if have, _ := strconv.Atoi(string(m.Data)); have >= want {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("outside subscriber received %s of %d decisions", m.Data, want)
		}
	}
	path := filepath.Join(b.TempDir(), "received")
	if _, err := nc.Request("bench.dump", []byte(path), 10*time.Second); err != nil {
		b.Fatalf("outside subscriber: %v", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	out := make([][3]int64, len(raw)/24)
	for i := range out {
		for j := range 3 {
			out[i][j] = int64(binary.LittleEndian.Uint64(raw[24*i+8*j:]))
		}
	}
	return out
}

// benchEndToEnd runs one shape; log false turns the decision log
// off (inference.decision_retention 0), to show what it costs; outside
// receives in another process.
func benchEndToEnd(b *testing.B, ents, perSeries, batchesPerHop int, log, outside bool) {
	const perSec = 100_000
	srv := startNATS(b, -1, b.TempDir())
	// The runtime's connection is in-process, as netfeat serve connects to
	// its embedded server (service/nats.go); the subscriber comes in over
	// TCP like any outside client.
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.MaxReconnects(-1))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	subConn := connect(b, srv.ClientURL())
	st, err := featurestore.New(featurestore.Config{}, []schema.FeatureView{congestionView}, b.TempDir(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Stop(context.Background()) })
	cfg := testConfig()
	if !log {
		cfg.DecisionRetention = 0
	}
	r := newRuntime(b, cfg, nc, b.TempDir())
	st.Subscribe(r.HandleRow)
	if err := st.Start(context.Background()); err != nil {
		b.Fatal(err)
	}

	var mu sync.Mutex
	closedBy := map[int64]int64{} // window end → Unix ns the Append that closed it started
	lat := make([]float64, 0, 1<<18)
	decide := make([]float64, 0, 1<<18)
	benchSubscribe(b, subConn, srv.ClientURL(), outside, func(rc received) {
		mu.Lock()
		if t0, ok := closedBy[rc.end]; ok {
			lat = append(lat, float64(rc.at-t0)/1e3)
			decide = append(decide, rc.decideUS)
		}
		mu.Unlock()
	})

	var series []schema.Sample
	for e := range ents {
		for _, m := range congestionView.Metrics {
			series = append(series, schema.Sample{Entity: schema.Entity{Device: fmt.Sprintf("pe%d", e/5), Component: fmt.Sprintf("Gi0/0/0/%d", e%5)}, Metric: m})
		}
	}
	batch := make([]schema.Sample, 0, len(series)*perSeries)
	for range perSeries {
		batch = append(batch, series...)
	}
	hop := int64(congestionView.Hop)
	step := hop / int64(batchesPerHop) // event time per batch
	round := step / int64(perSeries)
	ts := (time.Now().UnixNano()/hop)*hop - step/2 // a hop boundary in the middle of every batchesPerHop-th batch
	interval := time.Second * time.Duration(len(batch)) / perSec
	closes := 0
	send := func(record bool) {
		now := time.Now().UnixNano()
		for i := range batch {
			r, k := i/len(series), i%len(series)
			batch[i].TS = ts + int64(r)*round + int64(k+1)*round/int64(len(series)+1)
			// Utilisation 0-0.9 across interfaces and time, so that the
			// model and the rule decide both ways.
			batch[i].IngestTS, batch[i].Value = now, float64((k+int(ts/step))%10)/10
		}
		last := batch[len(batch)-1].TS
		boundary := (last / hop) * hop
		t0 := time.Now().UnixNano()
		if boundary > ts && record {
			mu.Lock()
			closedBy[boundary] = t0
			mu.Unlock()
			closes++
		}
		if err := st.Append(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		ts += step
	}
	for range 12 * batchesPerHop { // fill a window; the first closes are not measured
		send(false)
	}
	time.Sleep(50 * time.Millisecond)
	cpu0 := testkit.ProcessCPU()
	begin := time.Now()
	n := 0
	b.ResetTimer()
	for b.Loop() {
		if d := time.Until(begin.Add(time.Duration(n) * interval)); d > 0 {
			time.Sleep(d)
		}
		send(true)
		n++
	}
	want := (len(cfg.Models) + len(cfg.Rules)) * ents * closes
	if outside {
		// The warm-up's decisions came too: measure those of recorded closes.
		all := outsideRecords(b, subConn, want)
		mu.Lock()
		for _, r := range all {
			if t0, ok := closedBy[r[0]]; ok {
				lat = append(lat, float64(r[1]-t0)/1e3)
				decide = append(decide, float64(r[2]))
			}
		}
		mu.Unlock()
	}
	awaitLen(b, &mu, &lat, want)
	b.StopTimer()
	wall := time.Since(begin)
	cpu := testkit.ProcessCPU() - cpu0

	mu.Lock()
	defer mu.Unlock()
	reportTailSplit(b, lat, decide)
	reportTail(b, lat, true)
	// The runtime's share: ingest of the window's last sample (the batch was
	// built just before Append) to the decision made, before NATS.
	reportDecide(b, decide)
	samples := float64(n * len(batch))
	b.ReportMetric(samples/wall.Seconds(), "samples/s")
	b.ReportMetric(float64(want)/(wall.Seconds()*float64(len(cfg.Models)+len(cfg.Rules))), "rows/s")
	b.ReportMetric(cpu.Seconds()/(samples/1e6), "cpu-s/M-samples")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu-cores")
	b.ReportMetric(testutil.ToFloat64(r.m.rowsDropped.WithLabelValues("interface_1m")), "dropped-rows")
}

// awaitLen waits up to 30 s until *lat, guarded by mu, holds want
// latencies.
func awaitLen(b *testing.B, mu *sync.Mutex, lat *[]float64, want int) {
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		have := len(*lat)
		mu.Unlock()
		if have >= want {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("received %d of %d decisions", have, want)
		}
	}
}

// reportTailSplit reports, for the decisions between p98 and p99.5 of lat,
// the median of their runtime share (decide, µs) and of the rest (NATS:
// publish to the subscriber's handler), to show where the tail is spent.
func reportTailSplit(b *testing.B, lat, decide []float64) {
	idx := make([]int, len(lat))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(x, y int) int { return cmp.Compare(lat[x], lat[y]) })
	var ds, ns []float64
	for _, i := range idx[len(idx)*98/100 : len(idx)*995/1000] {
		ds = append(ds, decide[i])
		ns = append(ns, lat[i]-decide[i])
	}
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	slices.Sort(ns)
	b.ReportMetric(ds[len(ds)/2], "tail-decide-µs")
	b.ReportMetric(ns[len(ns)/2], "tail-nats-µs")
}

// BenchmarkNATSFloor is the NATS leg of BenchmarkEndToEnd alone: the same
// decision documents, 8 every 0.96 ms (4 rows per hop, model and rule),
// published on an in-process connection as the runtime publishes, timed
// from the publish call to the subscriber's handler. Nothing else runs:
// no store, no runtime, no decision log. Its p99 is the floor under the
// end-to-end p99 on this machine. One op is one burst of 8:
//
//	go test -tags duckdb_arrow ./inference -run '^$' -bench NATSFloor -benchtime 6000x -count 5
//
// The raw_tcp variant has no NATS at all: the same 8 documents every
// 0.96 ms written to a TCP connection on loopback and read by another
// process, the floor under any cross-process subscriber.
func BenchmarkNATSFloor(b *testing.B) {
	for _, outside := range []bool{false, true} {
		name := "subscriber=same_process"
		if outside {
			name = "subscriber=outside"
		}
		b.Run(name, func(b *testing.B) { benchNATSFloor(b, outside) })
	}
	b.Run("raw_tcp/receiver=outside", benchTCPFloor)
}

// benchTCPSinkEnv names the TCP address that makes this test binary the
// receiver of BenchmarkNATSFloor/raw_tcp (TestMain): it reads frames of
// tcpFrame bytes, each starting with its send time, and when the sender
// closes its side writes back send and receive time of every frame.
const benchTCPSinkEnv = "NETFEAT_BENCH_TCP_SINK"

// tcpFrame is about the size of a decision document.
const tcpFrame = 640

// benchTCPSink is the receiving process of BenchmarkNATSFloor/raw_tcp.
func benchTCPSink(addr string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	var out []byte
	buf := make([]byte, 64<<10)
	var pending []byte
	for {
		n, err := c.Read(buf)
		at := time.Now().UnixNano()
		pending = append(pending, buf[:n]...)
		for len(pending) >= tcpFrame {
			out = append(out, pending[:8]...)
			out = binary.LittleEndian.AppendUint64(out, uint64(at))
			pending = pending[tcpFrame:]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	_, err = c.Write(out)
	return err
}

func benchTCPFloor(b *testing.B) {
	const perBurst = 8
	interval := 960 * time.Microsecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), benchTCPSinkEnv+"="+ln.Addr().String())
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	c, err := ln.Accept()
	if err != nil {
		_ = cmd.Process.Kill()
		b.Fatal(err)
	}
	defer c.Close()
	frame := make([]byte, tcpFrame)
	begin := time.Now()
	n := 0
	b.ResetTimer()
	for b.Loop() {
		if d := time.Until(begin.Add(time.Duration(n) * interval)); d > 0 {
			time.Sleep(d)
		}
		for range perBurst {
			binary.LittleEndian.PutUint64(frame, uint64(time.Now().UnixNano()))
			if _, err := c.Write(frame); err != nil {
				b.Fatal(err)
			}
		}
		n++
	}
	b.StopTimer()
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		b.Fatal(err)
	}
	raw, err := io.ReadAll(c)
	if err != nil {
		b.Fatal(err)
	}
	if len(raw) != 16*n*perBurst {
		b.Fatalf("receiver timed %d of %d frames", len(raw)/16, n*perBurst)
	}
	lat := make([]float64, 0, n*perBurst)
	for i := 0; i < len(raw); i += 16 {
		lat = append(lat, float64(int64(binary.LittleEndian.Uint64(raw[i+8:]))-int64(binary.LittleEndian.Uint64(raw[i:])))/1e3)
	}
	reportTail(b, lat, true)
}

func benchNATSFloor(b *testing.B, outside bool) {
	const perBurst = 8
	interval := 960 * time.Microsecond
	srv := startNATS(b, -1, b.TempDir())
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	subConn := connect(b, srv.ClientURL())

	var mu sync.Mutex
	var sent []int64 // by window end - base
	lat := make([]float64, 0, 1<<18)
	benchSubscribe(b, subConn, srv.ClientURL(), outside, func(rc received) {
		mu.Lock()
		lat = append(lat, float64(rc.at-sent[rc.end-base])/1e3)
		mu.Unlock()
	})
	d := schema.Decision{SchemaVersion: 1, ID: "0190d3c4-7e1a-7b3e-9f00-1234567890ab",
		Entity: schema.Entity{Device: "pe1", Component: "Gi0/1"}, View: "interface_1m", Model: "congestion",
		ModelVersion: "v1", Score: 0.92, Action: "reroute", Reason: "xgboost score 0.92", Features: congested}
	var doc []byte
	mu.Lock()
	sent = make([]int64, 0, b.N*perBurst)
	mu.Unlock()
	cpu0 := testkit.ProcessCPU()
	begin := time.Now()
	n := 0
	b.ResetTimer()
	for b.Loop() {
		if d := time.Until(begin.Add(time.Duration(n) * interval)); d > 0 {
			time.Sleep(d)
		}
		for range perBurst {
			mu.Lock()
			k := int64(len(sent))
			now := time.Now()
			sent = append(sent, now.UnixNano())
			mu.Unlock()
			d.Time = now
			d.Window = schema.Window{Start: time.Unix(0, base+k-int64(time.Minute)).UTC(), End: time.Unix(0, base+k).UTC()}
			doc = appendDecisionJSON(doc[:0], &d)
			if err := nc.Publish("netfeat.decisions.congestion.pe1", doc); err != nil {
				b.Fatal(err)
			}
		}
		n++
	}
	want := n * perBurst
	if outside {
		all := outsideRecords(b, subConn, want)
		mu.Lock()
		for _, r := range all {
			if i := r[0] - base; i >= 0 && i < int64(len(sent)) {
				lat = append(lat, float64(r[1]-sent[i])/1e3)
			}
		}
		mu.Unlock()
	}
	awaitLen(b, &mu, &lat, want)
	b.StopTimer()
	wall := time.Since(begin)
	cpu := testkit.ProcessCPU() - cpu0
	mu.Lock()
	defer mu.Unlock()
	reportTail(b, lat, true)
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu-cores")
}
