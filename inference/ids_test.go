package inference

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

func TestDecisionIDIsANameBasedUUID(t *testing.T) {
	e := schema.Entity{Device: "pe1", Component: "Gi0/1"}
	id := decisionID("congestion", "interface_1m", e, 10, 20, "")
	// The same construction through the uuid package: namespace, then the
	// NUL-separated names and the window.
	data := []byte("congestion\x00interface_1m\x00pe1\x00Gi0/1\x00")
	data = binary.BigEndian.AppendUint64(data, 10)
	data = binary.BigEndian.AppendUint64(data, 20)
	if want := uuid.NewSHA1(decisionNamespace, data).String(); id != want {
		t.Fatalf("id %s, uuid.NewSHA1 gives %s", id, want)
	}
	if u := uuid.MustParse(id); u.Version() != 5 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("id %s: version %d variant %v", id, u.Version(), u.Variant())
	}
	others := []struct {
		name string
		id   string
	}{
		{"another model", decisionID("out_util_high", "interface_1m", e, 10, 20, "")},
		{"another view", decisionID("congestion", "interface_5m", e, 10, 20, "")},
		{"another component", decisionID("congestion", "interface_1m", schema.Entity{Device: "pe1", Component: "Gi0/2"}, 10, 20, "")},
		{"names that concatenate alike", decisionID("congestion", "interface_1m", schema.Entity{Device: "pe1Gi0", Component: "/1"}, 10, 20, "")},
		{"another window", decisionID("congestion", "interface_1m", e, 20, 30, "")},
		{"a shadow version", decisionID("congestion", "interface_1m", e, 10, 20, "v2")},
	}
	for _, o := range others {
		if o.id == id {
			t.Errorf("%s: same id %s", o.name, id)
		}
	}
}

// TestRedeliveredWindowIsOneDecisionInTheStream hands the same closed
// window to the runtime twice, as the feature store does for the windows
// closed after its last persisted mark when it restarts after a crash: the
// decisions carry the same Nats-Msg-Id, and JetStream keeps one of each.
func TestRedeliveredWindowIsOneDecisionInTheStream(t *testing.T) {
	srv := startNATS(t, -1, t.TempDir())
	nc := connect(t, srv.ClientURL())
	cfg := testConfig()
	cfg.JetStream.Stream = "REDELIVERY"
	r := newRuntime(t, cfg, nc, t.TempDir())
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for range 2 {
		r.HandleRow(row("pe1", "Gi0/1", end, congested))
	}
	r.HandleRow(row("pe1", "Gi0/1", end.Add(10*time.Second), congested)) // a new window: new decisions
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var msgs uint64
	testkit.Eventually(t, "6 acknowledged decisions, 4 in the stream", func() bool {
		// 6 decisions acknowledged (model and rule, 3 rows; JetStream
		// acknowledges a duplicate too), 4 distinct. The stream is read
		// only once all six are acknowledged, so its count is final.
		if testutil.ToFloat64(r.m.published) != 6 {
			return false
		}
		st, err := js.Stream(ctx, cfg.JetStream.Stream)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		if err != nil {
			return false
		}
		msgs = info.State.Msgs
		return true
	})
	if msgs != 4 {
		t.Fatalf("stream holds %d decisions, want 4 (the repeated window's two dropped as duplicates)", msgs)
	}
}

// TestRuleReasons checks every reason a rule's decision gives: the rule's
// own wording and what the lifecycle adds.
func TestRuleReasons(t *testing.T) {
	clear := 0.8
	cfg := DefaultConfig()
	cfg.Publish = PublishAll
	cfg.Rules = []RuleConfig{{Name: "hot", View: "interface_1m", Feature: "interface_out_utilization__mean_1m",
		Op: ">", Threshold: 0.9, Clear: &clear, For: 20 * time.Second, Action: "alert"}}
	r := newRuntime(t, cfg, nil, t.TempDir())
	f := cfg.Rules[0].Feature
	end := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	steps := []struct {
		v    float64
		want string
	}{
		{0.5, fmt.Sprintf("%s=%.4g not %s %.4g", f, 0.5, ">", 0.9)},
		{0.95, fmt.Sprintf("%s=%.4g %s %.4g; pending for %v of %v", f, 0.95, ">", 0.9, time.Duration(0), 20*time.Second)},
		{0.97, fmt.Sprintf("%s=%.4g %s %.4g; pending for %v of %v", f, 0.97, ">", 0.9, 10*time.Second, 20*time.Second)},
		{0.99, fmt.Sprintf("%s=%.4g %s %.4g; firing after %v", f, 0.99, ">", 0.9, 20*time.Second)},
		{math.NaN(), fmt.Sprintf("%s has no data", f)},
		{0.85, fmt.Sprintf("%s=%.4g still %s clear level %.4g", f, 0.85, ">", 0.8)},
		{0.123456, fmt.Sprintf("%s=%.4g back past %s clear level %.4g; resolved", f, 0.123456, ">", 0.8)},
	}
	for i, st := range steps {
		r.HandleRow(&schema.FeatureRow{View: "interface_1m", Entity: schema.Entity{Device: "pe1"}, WindowEnd: end.Add(time.Duration(i) * 10 * time.Second).UnixNano(),
			Names: []string{f}, Values: []float64{st.v}})
		testkit.Eventually(t, "len(r.rec.snapshot()) == i+1", func() bool { return len(r.rec.snapshot()) == i+1 })
		if got := r.rec.snapshot()[i].d.Reason; got != st.want {
			t.Errorf("step %d (%v): reason %q, want %q", i, st.v, got, st.want)
		}
	}
}
