package federated

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// BenchmarkHubRound measures the hub's own work in a round of 10 edges of
// a 16-feature model (17 weights), 2 of which drop out after sending their
// keys: decoding the keys, encoding the peers, decoding and summing 8
// masked updates, decoding 8 reveals and removing 16 masks, and the
// aggregate's checks and the new global's encoding. No NATS.
func BenchmarkHubRound(b *testing.B) {
	const dim, edges, dropped = 17, 10, 2
	cfg := Config{Model: "m", Dim: dim, MinEdges: 3}.WithDefaults()
	c, err := NewCoordinator(cfg, &nats.Conn{}, nil, quiet)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	names := make([]string, edges)
	updates := make([][]float64, edges)
	ns := make([]int, edges)
	for i := range names {
		names[i] = fmt.Sprintf("site%02d", i)
		updates[i] = make([]float64, dim)
		for j := range updates[i] {
			updates[i][j] = 0.1 * r.NormFloat64()
		}
		ns[i] = 100 + r.IntN(1000)
	}
	masked, seeds := maskedInputs(b, names, updates, ns, cfg.Scale)
	keyMsgs, maskedMsgs, revealMsgs := make([][]byte, edges), make([][]byte, edges), make([][]byte, edges)
	for i, e := range names {
		k, _ := NewKey()
		keyMsgs[i], _ = json.Marshal(Keys{Round: 1, Edge: e, Pub: k.PublicKey().Bytes()})
		maskedMsgs[i], _ = json.Marshal(Masked{Round: 1, Edge: e, Vec: masked[i]})
		rv := Reveal{Round: 1, Edge: e}
		for _, d := range names[edges-dropped:] {
			s := seeds[i][d]
			rv.Seeds = append(rv.Seeds, RevealedSeed{Edge: d, Seed: s[:]})
		}
		revealMsgs[i], _ = json.Marshal(rv)
	}
	survivor := map[string]bool{}
	for _, e := range names[:edges-dropped] {
		survivor[e] = true
	}
	b.ReportAllocs()
	for b.Loop() {
		rd := &round{c: c, keys: map[string][]byte{}, masked: map[string]bool{}, revealed: map[string]bool{}, sum: make(Ring, dim+1)}
		rd.st.Round = 1
		for i, e := range names {
			rd.takeKeys(e, keyMsgs[i])
		}
		peers := Peers{Round: 1}
		for _, e := range names {
			peers.Peers = append(peers.Peers, Peer{Edge: e, Pub: rd.keys[e]})
		}
		if _, err := json.Marshal(peers); err != nil {
			b.Fatal(err)
		}
		for i, e := range names[:edges-dropped] {
			rd.takeMasked(e, maskedMsgs[i])
		}
		rd.dropped = names[edges-dropped:]
		for i, e := range names[:edges-dropped] {
			rd.takeReveal(e, revealMsgs[i], survivor)
		}
		if len(rd.revealed) != edges-dropped {
			b.Fatal("reveals refused")
		}
		mean, _ := Dequantize(rd.sum, cfg.Scale)
		if Norm(mean) > cfg.ClipNorm+1e-3 {
			b.Fatal("aggregate out of range")
		}
		if _, err := json.Marshal(Global{Model: "m", Version: 1, Weights: mean}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundNATS runs whole rounds of 10 edges (17 weights, fixed
// updates: no training) over an in-process NATS server: the coordinator,
// the 10 participants and the server in one process. cpu-ms/round is the
// process's CPU time per round (getrusage), an upper bound of the hub's;
// hub-in-B/round and hub-out-B/round the payload bytes the hub received
// and published.
func BenchmarkRoundNATS(b *testing.B) {
	const dim, edges = 17, 10
	srv, _ := startServer(b, false)
	cfg := Config{Model: "m", Dim: dim, MinEdges: 3, Expect: edges, Deadline: 10 * time.Second}
	c, err := NewCoordinator(cfg, connect(b, srv), nil, quiet)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Subscribe(); err != nil {
		b.Fatal(err)
	}
	defer c.unsubscribe()
	for i := range edges {
		u := make([]float64, dim)
		u[i%dim] = 0.01
		p, err := NewParticipant(cfg, fmt.Sprintf("site%02d", i), connect(b, srv), fixed(u, 100+i), nil, quiet)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = p.Stop(context.Background()) }()
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	in0, out0 := testutil.ToFloat64(c.m.bytes.WithLabelValues("in")), testutil.ToFloat64(c.m.bytes.WithLabelValues("out"))
	start := cpu()
	n := 0
	for b.Loop() {
		if st := c.RunRound(context.Background()); st.Result != "completed" || st.Updates != edges {
			b.Fatalf("round: %+v", st)
		}
		n++
	}
	b.ReportMetric(float64(cpu()-start)/1e6/float64(n), "cpu-ms/round")
	b.ReportMetric((testutil.ToFloat64(c.m.bytes.WithLabelValues("in"))-in0)/float64(n), "hub-in-B/round")
	b.ReportMetric((testutil.ToFloat64(c.m.bytes.WithLabelValues("out"))-out0)/float64(n), "hub-out-B/round")
}
