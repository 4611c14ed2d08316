package main

import (
	"encoding/csv"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/sim/scenario"
)

// TestCongestionLabels checks the ground truth the training set is labelled
// with: congestion with drops at >= 85% load, at least half ramped up, is
// congested; a hot link, drops at a moderate load and faults are not.
func TestCongestionLabels(t *testing.T) {
	sc, err := scenario.Parse("test", []byte(`
repeat: 10m
events:
  - {kind: congestion, interface: up, at: 60s, until: 180s, ramp: 20s, utilization: 0.98, discards_per_second: 500}
  - {kind: congestion, interface: up, at: 300s, until: 400s, utilization: 0.95, discards_per_second: -1}
  - {kind: congestion, interface: mid, at: 60s, until: 180s, utilization: 0.70, discards_per_second: 50}
  - {kind: errors, interface: mid, at: 300s, until: 400s}
  - {kind: link-down, interface: mid, at: 400s, until: 460s}
`))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		device, component string
		end               time.Time
		congested         string
		incident          string
	}{
		{"r1", "up", at(55), "0", ""},
		{"r1", "up", at(65), "0", "congestion"},       // a quarter ramped up
		{"r1", "up", at(70), "1", "congestion"},       // half
		{"r1", "up", at(179), "1", "congestion"},      // full strength
		{"r1", "up", at(180), "", "congestion-ended"}, // over, but the window saw it
		{"r1", "up", at(239), "", "congestion-ended"},
		{"r1", "up", at(240), "0", ""}, // a minute later the window is clear
		{"r1", "up", at(350), "0", "hot"},
		{"r1", "up", at(600 + 100), "1", "congestion"}, // the next repetition
		{"r1", "mid", at(100), "0", "congestion"},      // drops at 70% load
		{"r1", "mid", at(350), "0", "errors"},
		{"r1", "mid", at(430), "0", "link-down"},
		{"other", "up", at(100), "0", ""}, // a device without a scenario
	}
	windows := make([]windowKey, len(tests))
	for i, tc := range tests {
		windows[i] = windowKey{device: tc.device, component: tc.component, end: tc.end}
	}
	out, positives := congestionLabels(windows, map[string]*scenario.Scenario{"r1": sc}, start)
	rows, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "ts,device,component,congested,incident" {
		t.Fatalf("header %s", got)
	}
	if len(rows) != len(tests)+1 || positives != 3 {
		t.Fatalf("%d rows, %d positives; want %d, 3", len(rows)-1, positives, len(tests))
	}
	for i, tc := range tests {
		r := rows[i+1]
		if r[0] != strconv.FormatInt(tc.end.UnixNano(), 10) || r[1] != tc.device || r[2] != tc.component || r[3] != tc.congested || r[4] != tc.incident {
			t.Errorf("window %s/%s at +%v: %v, want congested %s incident %q", tc.device, tc.component, tc.end.Sub(start), r, tc.congested, tc.incident)
		}
	}
}
