package federated

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// TestStateSurvivesRestart runs a round with a coordinator keeping its
// state in a KV bucket, then starts another coordinator over the same
// bucket: it holds the same global and version, and numbers its next
// round after the last one.
func TestStateSurvivesRestart(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, JetStream: true, StoreDir: t.TempDir()}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	cfg := Config{Model: "m", Dim: 3, MinEdges: 3, Expect: 3, Deadline: 5 * time.Second}
	hub := connect(t, srv)
	js, err := jetstream.New(hub)
	if err != nil {
		t.Fatal(err)
	}
	edges := []edgeData{{name: "a", tr: fixed([]float64{0.1, 0, 0}, 1)}, {name: "b", tr: fixed([]float64{0, 0.2, 0}, 1)}, {name: "c", tr: fixed([]float64{0, 0, 0.3}, 2)}}
	startParticipants(t, cfg, edges, sameConn(connect(t, srv), len(edges)))

	c1, _ := newCoordinator(t, cfg, hub)
	c1.SetStateStore(NewKVStateStore(js, "", 1))
	if st := c1.RunRound(context.Background()); st.Result != "completed" {
		t.Fatalf("round: %+v", st)
	}
	w1, v1 := c1.Global()
	c1.unsubscribe()

	c2, _ := newCoordinator(t, cfg, hub)
	c2.SetStateStore(NewKVStateStore(js, "", 1))
	st := c2.RunRound(context.Background())
	if st.Round != 2 || st.Result != "completed" {
		t.Fatalf("round after restart: %+v", st)
	}
	w2, v2 := c2.Global()
	if v1 != 1 || v2 != 2 {
		t.Fatalf("versions %d, %d", v1, v2)
	}
	// The second round started from the first one's weights: it added the
	// same mean update again.
	for i := range w1 {
		if d := w2[i] - 2*w1[i]; d > 1e-6 || d < -1e-6 {
			t.Fatalf("weights %v after %v", w2, w1)
		}
	}
	if slices.Equal(w1, w2) {
		t.Fatal("no update")
	}
}
