package inference

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/netfeat/netfeat/schema"
)

func TestAppendDecisionJSONMatchesEncodingJSON(t *testing.T) {
	base := schema.Decision{
		SchemaVersion: 1, ID: "0190d3c4-7e1a-7b3e-9f00-1234567890ab",
		Time:   time.Date(2026, 3, 1, 12, 0, 1, 234567891, time.UTC),
		Entity: schema.Entity{Device: "pe1.lab", Component: "HundredGigE0/0/0/0"}, View: "interface_1m",
		Model: "congestion", ModelVersion: "v1", Score: 0.9219961762428284, Action: "reroute",
		Reason: "xgboost score 0.922", Features: map[string]float64{"b": 1e-7, "a": 2000, "c": 0, "d": -1.5e22, "e": 123456789.125},
		Window:             schema.Window{Start: time.Date(2026, 3, 1, 11, 59, 0, 0, time.UTC), End: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		IngestToDecisionUS: 412,
	}
	edits := []struct {
		name string
		edit func(*schema.Decision)
	}{
		{"plain", func(*schema.Decision) {}},
		{"device only, fallback", func(d *schema.Decision) {
			d.Entity.Component = ""
			d.Fallback = "previous version v1: v2 took 1.2ms, over the 200µs budget"
		}},
		{"escapes", func(d *schema.Decision) {
			d.Reason = "a \"quoted\" <b>&\\ \n\t\r\x01\x7f é \u2028 \u2029 \xff end"
			d.Entity.Component = "Gi0/0/0/1 «uplink»"
		}},
		{"nil features, local time", func(d *schema.Decision) {
			d.Features = nil
			d.Time = time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("X", 5*3600+1800))
		}},
		{"score forms", func(d *schema.Decision) { d.Score = 1e21 }},
		{"small score", func(d *schema.Decision) { d.Score = -3e-9 }},
		{"empty features", func(d *schema.Decision) { d.Features = map[string]float64{} }},
		{"whole seconds", func(d *schema.Decision) { d.Time = time.Date(2026, 3, 1, 12, 0, 1, 0, time.UTC) }},
		{"fraction with trailing zeros", func(d *schema.Decision) { d.Time = time.Date(2026, 3, 1, 12, 0, 1, 120000000, time.UTC) }},
		{"one nanosecond, early year", func(d *schema.Decision) { d.Time = time.Date(2, 1, 2, 3, 4, 5, 1, time.UTC) }},
		{"lifecycle, event, missing", func(d *schema.Decision) {
			d.State, d.Since, d.Transition, d.Fingerprint, d.Flapping = "firing", d.Time.Add(-time.Second), true, "0123456789abcdef", true
			d.Trigger, d.TriggerToDecisionUS = "event", 87
			d.Event = &schema.DecisionEvent{Metric: "interface.oper_status", State: "down", Prev: "up", Time: d.Time}
			d.MissingFeatures = []string{"a", "b \"q\""}
		}},
		{"event first seen", func(d *schema.Decision) {
			d.State, d.Trigger = "resolved", "timer"
			d.Event = &schema.DecisionEvent{Metric: "interface.oper_status", State: "up", Time: d.Time}
		}},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			d := base
			e.edit(&d)
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(&d); err != nil {
				t.Fatal(err)
			}
			want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			if got := appendDecisionJSON(nil, &d); !bytes.Equal(got, want) {
				t.Fatalf("\n got %s\nwant %s", got, want)
			}
		})
	}
	t.Run("non-finite", func(t *testing.T) {
		d := base
		d.Score = math.NaN()
		d.Features = map[string]float64{"x": math.NaN(), "y": 1, "z": math.Inf(1)}
		var back schema.Decision
		if err := json.Unmarshal(appendDecisionJSON(nil, &d), &back); err != nil {
			t.Fatal(err)
		}
		if back.Score != 0 || len(back.Features) != 1 || back.Features["y"] != 1 {
			t.Fatalf("decoded %+v", back)
		}
	})
}

func TestAppendG4MatchesFmt(t *testing.T) {
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1, 0.95, 0.921996, 1234.5, 12345.678, 1e-7, -3e-9, 1e21, 123456789,
		0.00012345, math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64} {
		if got, want := string(appendG4(nil, v)), fmt.Sprintf("%.4g", v); got != want {
			t.Errorf("appendG4(%v) = %q, fmt says %q", v, got, want)
		}
	}
}

func BenchmarkEncodeDecision(b *testing.B) {
	r := row("pe1", "Gi0/1", time.Now(), congested)
	// UTC, as the runtime makes decisions.
	d := schema.Decision{SchemaVersion: 1, ID: "0190d3c4-7e1a-7b3e-9f00-1234567890ab", Time: time.Now().UTC(),
		Entity: r.Entity, View: r.View, Model: "congestion", ModelVersion: "v1", Score: 0.92, Action: "reroute",
		Reason: "xgboost score 0.92", Features: map[string]float64{}}
	for i, n := range r.Names {
		d.Features[n] = r.Values[i]
	}
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(&d)
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = appendDecisionJSON(buf[:0], &d)
		}
	})
}
