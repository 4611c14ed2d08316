package service

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/netfeat/netfeat/federated"
)

// TestFederatedConfigCheck holds `netfeat config check` of the federated
// section to a message per problem.
func TestFederatedConfigCheck(t *testing.T) {
	const hub = "role: hub\nnats: {url: \"nats://a:4222\"}\n"
	const edge = "role: edge\nsite: paris\nnats:\n  leaf: {remotes: [{urls: [\"nats-leaf://hub1:7422\"]}]}\n"
	for _, tc := range []struct {
		name, cfg string
		want      []string
	}{
		{"hub", hub + "federated: {model: congestion, dim: 17, interval: 10m, min_edges: 5, deadline: 20s, clip_norm: 0.5, scale: 65536}\n", nil},
		{"edge", edge + "federated: {model: congestion, dim: 17}\n", nil},
		{"standalone", "federated: {model: congestion, dim: 17}\n", []string{"federated: runs on a fleet: needs role hub or edge"}},
		{"bad values", hub + "federated: {model: \"a.b\", dim: 0, min_edges: 1, clip_norm: -1}\n", []string{
			"federated.model: must be a non-empty subject token", "federated.dim: must be in [1, 1048576]",
			"federated.min_edges: must be at least 2", "federated.clip_norm: must be positive"}},
		{"netfeat prefix", hub + "federated: {model: m, dim: 3, subject_prefix: netfeat}\n", []string{"federated.subject_prefix:"}},
		{"unknown key", hub + "federated: {model: m, dim: 3, rounds: 4}\n", []string{"rounds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("netfeat.yaml", []byte(tc.cfg))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want %q, got a valid configuration", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestFederatedHubServesRounds runs a hub with a federated section over an
// in-process JetStream server and two edges' participants on it: the hub
// runs its scheduled rounds and GET /v1/fl/rounds reports them.
func TestFederatedHubServesRounds(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats not ready")
	}
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Role = RoleHub
	cfg.NATS.URL = srv.ClientURL()
	cfg.Fleet.Hub.Replicas = 1
	cfg.Fleet.Rollout.Replicas = 1
	fc := federated.Config{Model: "m", Dim: 3, MinEdges: 2, Expect: 2, Interval: time.Second, Deadline: 5 * time.Second}
	cfg.Federated = &fc
	svc := startService(t, &cfg)

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for i, site := range []string{"paris", "lyon"} {
		u := []float64{0.1 * float64(i+1), 0, 0}
		c, err := FederatedParticipantComponent(fc, site, func() *nats.Conn { return nc },
			federated.TrainerFunc(func(context.Context, []float64) ([]float64, int, error) { return append([]float64(nil), u...), 10, nil }), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Stop(context.Background()) }()
	}

	url := "http://" + svc.HTTP().Addr() + "/v1/fl/rounds"
	var (
		st   federated.Status
		done *federated.RoundStatus
	)
	deadline := time.Now().Add(30 * time.Second)
	for done == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no completed round: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
		resp, err := http.Get(url)
		if err != nil {
			continue
		}
		st = federated.Status{}
		if resp.StatusCode == http.StatusOK {
			err = json.NewDecoder(resp.Body).Decode(&st)
		}
		resp.Body.Close()
		if err != nil {
			continue
		}
		for i := range st.Rounds {
			if st.Rounds[i].Result == "completed" {
				done = &st.Rounds[i]
			}
		}
	}
	if st.Model != "m" || done == nil || done.Updates != 2 || done.Samples != 20 || done.Version != st.Version {
		t.Fatalf("status: %+v", st)
	}
}
