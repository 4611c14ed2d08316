package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

func decision(model, device, action string, score float64) schema.Decision {
	return schema.Decision{
		SchemaVersion: 1, ID: "id-" + model + device, Time: time.Date(2026, 3, 1, 12, 0, 1, 234e6, time.UTC),
		Entity: schema.Entity{Device: device, Component: "HundredGigE0/0/0/0"}, View: "interface_1m",
		Model: model, ModelVersion: "v1", Score: score, Action: action, Reason: "xgboost score 0.9",
		IngestToDecisionUS: 420,
	}
}

func TestPrinter(t *testing.T) {
	var buf bytes.Buffer
	p := NewPrinter(&buf, Options{UTC: true})
	for _, d := range []schema.Decision{
		decision("congestion", "pe1.lab", "reroute", 0.92199),
		decision("a_model_with_a_very_long_name_indeed", "pe2", "none", 1e-5),
	} {
		d.State, d.Transition = "inactive", false
		if d.Action != "none" {
			d.State, d.Transition = "firing", true
		}
		b, _ := json.Marshal(d)
		if ok, err := p.Print(b); !ok || err != nil {
			t.Fatalf("Print: %v %v", ok, err)
		}
	}
	if ok, _ := p.Print([]byte("{")); ok {
		t.Fatal("broken JSON shown as a decision")
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	want := []string{
		"TIME          MODEL@VERSION                   ENTITY                                 SCORE  ACTION     STATE         LATENCY  REASON",
		"12:00:01.234  congestion@v1                   pe1.lab/HundredGigE0/0/0/0            0.9220  reroute    →firing         420µs  xgboost score 0.9",
		"12:00:01.234  a_model_with_a_very_long_name…  pe2/HundredGigE0/0/0/0              1.00e-05  none       inactive        420µs  xgboost score 0.9",
	}
	for i, w := range want {
		if i >= len(lines) || lines[i] != w {
			t.Fatalf("line %d:\n got %q\nwant %q", i, lines[min(i, len(lines)-1)], w)
		}
	}
	if !strings.HasPrefix(lines[3], "! undecodable decision") {
		t.Fatalf("last line %q", lines[3])
	}
}

func TestSubject(t *testing.T) {
	cases := []struct {
		o    Options
		want string
	}{
		{Options{}, "netfeat.decisions.*.*"},
		{Options{Model: "congestion"}, "netfeat.decisions.congestion.*"},
		{Options{Device: "pe1.lab"}, "netfeat.decisions.*.pe1_lab"},
	}
	for _, c := range cases {
		if got := c.o.Subject(); got != c.want {
			t.Fatalf("%+v: %q, want %q", c.o, got, c.want)
		}
	}
}

func TestRun(t *testing.T) {
	nc := testkit.ConnectNATS(t, testkit.StartNATS(t, server.Options{}).ClientURL())

	var out testkit.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), nc, Options{Device: "pe1.lab", ActionsOnly: true, Count: 1, UTC: true}, &out)
	}()
	// Publish until the subscription is in place: the filtered-out
	// decisions (other device, action none) must not count.
	for deadline := time.Now().Add(5 * time.Second); ; {
		for _, d := range []schema.Decision{
			decision("congestion", "pe2", "reroute", 0.9),
			decision("congestion", "pe1.lab", "none", 0.1),
			decision("congestion", "pe1.lab", "reroute", 0.9),
		} {
			b, _ := json.Marshal(d)
			if err := nc.Publish(schema.DecisionSubject(d.Model, d.Entity.Device), b); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			s := out.String()
			if strings.Count(s, "\n") != 2 || !strings.Contains(s, "pe1.lab/HundredGigE0/0/0/0") || !strings.Contains(s, "reroute") {
				t.Fatalf("output:\n%s", s)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("watch did not return")
		}
	}
}
