package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func bt(f1, fah float64) Backtest {
	return Backtest{Run: "test", Metrics: map[string]float64{"f1": f1, "precision": f1, "recall": f1, "false_actions_per_hour": fah}}
}

func TestPromotionGate(t *testing.T) {
	tests := []struct {
		name       string
		live, cand *Backtest // nil: none recorded
		gate       Gate
		configured string // the runtime's gate metric (SetGateMetric)
		wantErr    error  // nil: promoted
		forced     float64
	}{
		{name: "no gate", live: ptr(bt(0.9, 0)), cand: ptr(bt(0.5, 0)), gate: Gate{}},
		{name: "better f1", live: ptr(bt(0.5, 0)), cand: ptr(bt(0.9, 0)), gate: Gate{Metric: "f1"}},
		{name: "equal f1", live: ptr(bt(0.5, 0)), cand: ptr(bt(0.5, 0)), gate: Gate{Metric: "f1"}},
		{name: "worse f1", live: ptr(bt(0.9, 0)), cand: ptr(bt(0.5, 0)), gate: Gate{Metric: "f1"}, wantErr: ErrGateRefused},
		{name: "worse f1 forced", live: ptr(bt(0.9, 0)), cand: ptr(bt(0.5, 0)), gate: Gate{Metric: "f1", Force: true}, forced: 1},
		{name: "more false actions", live: ptr(bt(0.5, 1)), cand: ptr(bt(0.9, 2)), gate: Gate{Metric: "false_actions_per_hour"}, wantErr: ErrGateRefused},
		{name: "fewer false actions", live: ptr(bt(0.9, 2)), cand: ptr(bt(0.5, 1)), gate: Gate{Metric: "false_actions_per_hour"}},
		{name: "candidate never backtested", live: ptr(bt(0.9, 0)), gate: Gate{Metric: "f1"}},
		{name: "live never backtested", cand: ptr(bt(0.1, 0)), gate: Gate{Metric: "f1"}},
		{name: "unknown metric", live: ptr(bt(0.9, 0)), cand: ptr(bt(0.5, 0)), gate: Gate{Metric: "accuracy"}, wantErr: errBadRequest},
		{name: "configured metric, request names none", live: ptr(bt(0.9, 0)), cand: ptr(bt(0.5, 0)), configured: "f1", wantErr: ErrGateRefused},
		{name: "request's metric over the configured one", live: ptr(bt(0.9, 1)), cand: ptr(bt(0.5, 0)), gate: Gate{Metric: "false_actions_per_hour"}, configured: "f1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			reg := prometheus.NewRegistry()
			r, err := New(testConfig(), nil, t.TempDir(), reg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = r.Stop(context.Background()) })
			r.SetGateMetric(tc.configured)
			if _, err := r.AddVersion(ctx, "congestion", "v2", variant(t, 5, -1)); err != nil {
				t.Fatal(err)
			}
			if tc.live != nil {
				if _, err := r.RecordBacktest(ctx, "congestion", "v1", *tc.live); err != nil {
					t.Fatal(err)
				}
			}
			if tc.cand != nil {
				if _, err := r.RecordBacktest(ctx, "congestion", "v2", *tc.cand); err != nil {
					t.Fatal(err)
				}
			}
			srv := httptest.NewServer(r.Handler())
			defer srv.Close()
			body, _ := json.Marshal(map[string]any{"version": "v2", "gate_metric": tc.gate.Metric, "force": tc.gate.Force})
			resp, err := http.Post(srv.URL+"/v1/models/congestion/promote", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mi, err := r.Model(ctx, "congestion")
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantErr == nil:
				if resp.StatusCode != http.StatusOK || mi.Live != "v2" {
					t.Fatalf("HTTP %d %s, live %s; want v2 promoted", resp.StatusCode, msg, mi.Live)
				}
			case errors.Is(tc.wantErr, ErrGateRefused):
				if resp.StatusCode != http.StatusConflict || mi.Live != "v1" || !bytes.Contains(msg, []byte("promotion gate refused")) {
					t.Fatalf("HTTP %d %s, live %s; want 409 and v1 live", resp.StatusCode, msg, mi.Live)
				}
			default:
				if resp.StatusCode != http.StatusBadRequest || mi.Live != "v1" {
					t.Fatalf("HTTP %d %s, live %s; want 400 and v1 live", resp.StatusCode, msg, mi.Live)
				}
			}
			if got := testutil.ToFloat64(r.m.gateForced.WithLabelValues("congestion")); got != tc.forced {
				t.Errorf("forced promotions %v, want %v", got, tc.forced)
			}
		})
	}
}

var errBadRequest = errors.New("bad request")

func ptr[T any](v T) *T { return &v }

func TestRecordBacktest(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, testConfig(), nil, t.TempDir())
	if _, err := r.RecordBacktest(ctx, "congestion", "v9", bt(1, 0)); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("unknown version: %v", err)
	}
	if _, err := r.RecordBacktest(ctx, "congestion", "v1", Backtest{Metrics: map[string]float64{"f1": 1}}); err == nil {
		t.Fatal("a backtest without every metric was stored")
	}
	if _, err := r.RecordBacktest(ctx, "congestion", "v1", bt(0.75, 3)); err != nil {
		t.Fatal(err)
	}
	mi, err := r.Model(ctx, "congestion")
	if err != nil {
		t.Fatal(err)
	}
	if b := mi.Versions[0].Backtest; b == nil || b.Metrics["f1"] != 0.75 || b.Metrics["false_actions_per_hour"] != 3 || b.Recorded.IsZero() {
		t.Fatalf("stored backtest %+v", b)
	}
	// The artifact endpoint serves the version's file.
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/models/congestion/versions/v1/artifact")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || digest(b) != mi.Versions[0].SHA256 {
		t.Fatalf("artifact: HTTP %d, %d bytes", resp.StatusCode, len(b))
	}
}
