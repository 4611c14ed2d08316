package federated

import (
	"context"
	"math"
	"math/rand/v2"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// logistic is a small L2-regularised logistic regression trained by full
// batch gradient descent on feature rows: the test trainer (package
// learning brings the real one). Weights: one per feature, then the bias.
type logistic struct {
	rows   [][]float64
	labels []float64
	epochs int
	lr, l2 float64
}

func (l *logistic) Train(ctx context.Context, global []float64) ([]float64, int, error) {
	w := append([]float64(nil), global...)
	d := len(w) - 1
	g := make([]float64, len(w))
	for range l.epochs {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		clear(g)
		for i, x := range l.rows {
			e := sigmoid(dot(w[:d], x)+w[d]) - l.labels[i]
			for j, v := range x {
				g[j] += e * v
			}
			g[d] += e
		}
		for j := range w {
			reg := 0.0
			if j < d {
				reg = l.l2 * w[j]
			}
			w[j] -= l.lr * (g[j]/float64(len(l.rows)) + reg)
		}
	}
	for j := range w {
		w[j] -= global[j]
	}
	return w, len(l.rows), nil
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// dataset draws n rows of dim features labelled by a hidden linear model
// (truth, with its bias last) and some noise; shift moves this edge's
// feature distribution (non-IID edges).
func dataset(r *rand.Rand, truth []float64, n int, shift float64) ([][]float64, []float64) {
	d := len(truth) - 1
	rows := make([][]float64, n)
	labels := make([]float64, n)
	for i := range rows {
		x := make([]float64, d)
		for j := range x {
			x[j] = r.NormFloat64() + shift
		}
		rows[i] = x
		if dot(truth[:d], x)+truth[d]+0.3*r.NormFloat64() > 0 {
			labels[i] = 1
		}
	}
	return rows, labels
}

// f1 scores weights on rows: positive when the probability exceeds 0.5.
func f1(w []float64, rows [][]float64, labels []float64) float64 {
	d := len(w) - 1
	var tp, fp, fn float64
	for i, x := range rows {
		p := sigmoid(dot(w[:d], x)+w[d]) > 0.5
		switch {
		case p && labels[i] == 1:
			tp++
		case p:
			fp++
		case labels[i] == 1:
			fn++
		}
	}
	if tp == 0 {
		return 0
	}
	return 2 * tp / (2*tp + fp + fn)
}

// startServer starts an in-process NATS server on a random loopback port,
// with a leafnode listener when leaf is true, shut down at the end.
func startServer(t testing.TB, leaf bool) (*server.Server, *server.Options) {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, MaxPayload: 8 << 20}
	if leaf {
		opts.LeafNode = server.LeafNodeOpts{Host: "127.0.0.1", Port: -1}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv, opts
}

// startLeaf starts an edge's server as a leaf node of the hub whose
// leafnode port is port, denying netfeat.> both ways as the service does.
func startLeaf(t testing.TB, name string, port int) *server.Server {
	t.Helper()
	u, _ := url.Parse("nats-leaf://127.0.0.1:" + strconv.Itoa(port))
	opts := &server.Options{
		ServerName: name, Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		LeafNode: server.LeafNodeOpts{
			ReconnectInterval: 100 * time.Millisecond,
			Remotes: []*server.RemoteLeafOpts{{
				URLs: []*url.URL{u}, DenyImports: []string{"netfeat.>"}, DenyExports: []string{"netfeat.>"},
			}},
		},
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("leaf server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("leaf server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	waitFor(t, 10*time.Second, "leaf connected", func() bool { return srv.NumLeafNodes() > 0 })
	return srv
}

func connect(t testing.TB, srv *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
