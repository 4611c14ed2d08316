package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/netfeat/netfeat/federated"
	"github.com/netfeat/netfeat/learning"
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
		{"hub with features", hub + "federated: {model: m, dim: 3, features: [{name: a, scale: 1}]}\n", []string{"federated.dim: is 3, but features name 1"}},
		{"hub", hub + "federated: {model: congestion, dim: 17, interval: 10m, min_edges: 5, deadline: 20s, clip_norm: 0.5, scale: 65536}\n", nil},
		{"edge without features", edge + "federated: {model: congestion, dim: 17}\n", []string{"federated.features: an edge trains on a fixed feature space"}},
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
	cfg.Federated = &FederatedConfig{Config: fc}
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

// flEdgeConfig is an edge's configuration with a view of one feature,
// the labels model busy and the federated model fl (a starting file
// that calls nothing busy), completed by a federated section.
const flEdgeConfig = `
role: edge
site: %s
data_dir: %s
shutdown_timeout: 5s
http: {listen: "127.0.0.1:0"}
nats:
  listen: 127.0.0.1:0
  leaf: {remotes: [{urls: ["%s"]}]}
views:
  - name: traffic
    entity: component
    metrics: [interface.in.bps]
    aggregations: [mean]
    windows: [1s]
    hop: 1s
    allowed_lateness: 0s
inference:
  decision_retention: 24h
  models:
    - {name: busy, kind: logistic, view: traffic, file: %s}
    - {name: fl, kind: logistic, view: traffic, file: %s}
`

// flFeature is the view's one feature, and flSpace the federated feature
// space over it: log1p, so that 200 bps is about −1 and 300 bps +1.
const flFeature = "interface_in_bps__mean_1s"

var flSpace = learning.FeatureSpace{{Name: flFeature, Log1p: true, Center: 5.5, Scale: 0.2}}

// flStartFile writes the federated model's starting file: the space's
// weights with a bias of −10, which calls nothing busy.
func flStartFile(t *testing.T) string {
	t.Helper()
	m, err := learning.FederatedModel(flSpace, []float64{0, -10}, 0, learning.TrainInfo{Source: "start"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "fl-start.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFederatedEdgeConfigCheck holds the edge's federated keys to a
// message per problem.
func TestFederatedEdgeConfigCheck(t *testing.T) {
	base := fmt.Sprintf(flEdgeConfig, "paris", t.TempDir(), "nats-leaf://127.0.0.1:7422", trainBusy(t), flStartFile(t))
	const feat = "features: [{name: " + flFeature + ", log1p: true, center: 5.5, scale: 0.2}]"
	for _, tc := range []struct {
		name, fed string
		want      []string
	}{
		{"valid", "{model: fl, dim: 2, labels: busy, " + feat + "}", nil},
		{"valid, live, trainer options", "{model: fl, dim: 2, labels: busy, install: live, min_rows: 5, train: {epochs: 10, learning_rate: 1, l2: 0.01, positive_weight: 5}, " + feat + "}", nil},
		{"labels default to the model", "{model: fl, dim: 2, " + feat + "}", nil},
		{"install off needs no model", "{model: other, dim: 2, labels: busy, install: off, " + feat + "}", nil},
		{"dim", "{model: fl, dim: 17, labels: busy, " + feat + "}", []string{"federated.dim: is 17, but features name 1: the weights are one per feature and the bias, dim must be 2"}},
		{"unknown feature", "{model: fl, dim: 2, labels: busy, features: [{name: interface_out_bps__mean_1s, scale: 1}]}", []string{
			`federated.features[0].name: "interface_out_bps__mean_1s" is not a feature of view traffic (labels model busy's view)`,
			`federated.features[0].name: "interface_out_bps__mean_1s" is not a feature of view traffic (installed model fl's view)`}},
		{"zero scale", "{model: fl, dim: 2, labels: busy, features: [{name: " + flFeature + ", scale: 0}]}", []string{"federated.features: feature space: " + flFeature + ": scale 0 must be a positive finite number"}},
		{"feature twice", "{model: fl, dim: 3, labels: busy, features: [{name: " + flFeature + ", scale: 1}, {name: " + flFeature + ", scale: 2}]}", []string{"federated.features: feature space: feature 2: name \"" + flFeature + "\" empty or given twice"}},
		{"unknown transform", "{model: fl, dim: 2, labels: busy, features: [{name: " + flFeature + ", sqrt: true, scale: 1}]}", []string{"sqrt"}},
		{"unknown labels model", "{model: fl, dim: 2, labels: ghost, " + feat + "}", []string{`federated.labels: "ghost" is not a model in inference.models`}},
		{"install value", "{model: fl, dim: 2, labels: busy, install: maybe, " + feat + "}", []string{`federated.install: must be shadow, live or off, got "maybe"`}},
		{"no model to install into", "{model: other, dim: 2, labels: busy, " + feat + "}", []string{`federated.install: shadow installs each global as a version of inference model "other"`}},
		{"train options", "{model: fl, dim: 2, labels: busy, train: {learning_rate: -1, epochs: -2}, " + feat + "}", []string{"federated.train: federated trainer: epochs -2"}},
		{"min rows", "{model: fl, dim: 2, labels: busy, min_rows: -1, " + feat + "}", []string{"federated.min_rows: must be at least 1, got -1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("netfeat.yaml", []byte(base+"federated: "+tc.fed+"\n"))
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
	// A model that lists its features must list the space's: the labels
	// model all of them, the installed model exactly them.
	withFeatures := strings.Replace(base, "file: "+trainBusyPathIn(base)+"}", "file: "+trainBusyPathIn(base)+", features: [interface_in_bps__max_1s]}", 1)
	if _, err := ParseConfig("netfeat.yaml", []byte(withFeatures+"federated: {model: fl, dim: 2, labels: busy, "+feat+"}\n")); err == nil ||
		!strings.Contains(err.Error(), `"`+flFeature+`" is not read by the labels model busy`) {
		t.Errorf("a labels model that does not read the feature: %v", err)
	}
}

// trainBusyPathIn returns the busy model's file path in an flEdgeConfig.
func trainBusyPathIn(cfg string) string {
	_, rest, _ := strings.Cut(cfg, "{name: busy, kind: logistic, view: traffic, file: ")
	path, _, _ := strings.Cut(rest, "}")
	return path
}
