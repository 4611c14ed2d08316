package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netfeat/netfeat/federated"
)

// TestFederatedDemonstration runs `netfeat fl demo` as by default (5
// rounds, three edges, min_edges 3): edge B, which never saw a congestion,
// cannot detect its held-out one alone, and detects it with the federated
// model; all three edges take part in every round, each exchanges at most
// 10 kB a round with the hub, and none of the edges' feature values crosses
// to the hub. Five rounds, not three: edge C's windows, never congested,
// dilute A's congested ones in the weighted average (after 3 rounds F1 is
// 0.783, docs/learning.md, "Demonstration").
func TestFederatedDemonstration(t *testing.T) {
	const rounds = 5
	o := flDemoOptions{rounds: rounds, epochs: 20, lr: 2, l2: 1e-3, posWeight: 20, clipNorm: 10, log: slog.New(slog.DiscardHandler)}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := runFLDemo(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	printFLDemo(&text, rep)
	t.Logf("netfeat fl demo --rounds %d:\n%s", rounds, text.String())

	// The data: A has congested windows, B and C none; B's held-out set
	// has.
	if len(rep.Edges) != 3 {
		t.Fatalf("%d edges, want 3", len(rep.Edges))
	}
	a, b, c, held := rep.Edges[0], rep.Edges[1], rep.Edges[2], rep.HeldOut
	if a.Edge != "edge-a" || b.Edge != "edge-b" || c.Edge != "edge-c" {
		t.Fatalf("edges %s, %s, %s", a.Edge, b.Edge, c.Edge)
	}
	if a.Positives == 0 || b.Positives != 0 || c.Positives != 0 || held.Positives == 0 || b.Windows == 0 || c.Windows == 0 || held.Windows <= held.Positives {
		t.Fatalf("data: A %d/%d congested, B %d/%d, C %d/%d, held-out %d/%d",
			a.Positives, a.Windows, b.Positives, b.Windows, c.Positives, c.Windows, held.Positives, held.Windows)
	}
	if e := rep.Episode; e.Kind != "congestion" || e.Device != "cisco-xr1" || e.Component != "GigabitEthernet0/0/0/0" {
		t.Fatalf("held-out episode %+v", e)
	}

	// B alone: no positives to learn from, no detection.
	if rep.BLocalOnlyF1 > 0.2 || rep.BLocalOnlyDetection.Detected || rep.BLocalOnlyDetection.TP != 0 {
		t.Fatalf("B alone: F1 %.3f, %+v", rep.BLocalOnlyF1, rep.BLocalOnlyDetection)
	}

	// Federated: the rounds complete with all three edges' updates, F1
	// rises from the zero model's to at least 0.85 (measured: 0.923), and B
	// detects its congestion within 30 s (measured: +15 s; the shipped
	// congestion model, trained centrally, detects the demo's at +15 s).
	if len(rep.Rounds) != rounds {
		t.Fatalf("%d rounds", len(rep.Rounds))
	}
	for i, r := range rep.Rounds {
		if r.Result != "completed" || r.Edges != 3 || r.Updates != 3 || r.F1Before == nil || r.F1After == nil ||
			r.Samples != int64(a.Windows+b.Windows+c.Windows) {
			t.Fatalf("round %d: %+v", i+1, r)
		}
	}
	for _, r := range rep.Status.Rounds {
		if r.Edges != 3 || r.Updates != 3 || len(r.Dropped) != 0 {
			t.Fatalf("status round %d: %d edges, %d updates, dropped %v: want all 3 edges", r.Round, r.Edges, r.Updates, r.Dropped)
		}
	}
	first, last := rep.Rounds[0], rep.Rounds[rounds-1]
	if *first.F1Before > 0.2 || *last.F1After < 0.85 {
		t.Fatalf("F1 %.3f before round 1, %.3f after round %d: want ≤ 0.2 and ≥ 0.85", *first.F1Before, *last.F1After, rounds)
	}
	ep := rep.Episode
	if !last.Detected || last.LeadSeconds == nil || *last.LeadSeconds < 0 || *last.LeadSeconds > 30 || last.Recall < 0.8 {
		t.Fatalf("after round %d: %+v, want the episode detected within 30 s of its start", rounds, last.flDetection)
	}
	if !ep.Start.Before(ep.End) {
		t.Fatalf("episode %+v", ep)
	}

	// The coordinator's status, as netfeat fl status --json prints it,
	// carries f1_before and f1_after for every round.
	raw, err := json.Marshal(rep.Status)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Rounds []map[string]any `json:"rounds"`
	}
	if err := json.Unmarshal(raw, &st); err != nil || len(st.Rounds) != rounds {
		t.Fatalf("status %v: %s", err, raw)
	}
	for _, r := range st.Rounds {
		if _, ok := r["f1_before"]; !ok {
			t.Fatalf("status round without f1_before: %v", r)
		}
		if _, ok := r["f1_after"]; !ok {
			t.Fatalf("status round without f1_after: %v", r)
		}
	}

	// Bytes: at most 10 kB per edge per round, counted at the hub, and
	// every edge's counted in every round.
	if rep.MaxBytesPerEdgeRound <= 0 || rep.MaxBytesPerEdgeRound > 10_000 || len(rep.BytesPerRound) != rounds {
		t.Fatalf("bytes: %d per edge and round at most, %v per round", rep.MaxBytesPerEdgeRound, rep.BytesPerRound)
	}
	for _, r := range rep.Rounds {
		for _, e := range rep.Edges {
			if n := r.BytesPerEdge[e.Edge]; n <= 0 || n > 10_000 {
				t.Fatalf("round %d: %s exchanged %d bytes with the hub", r.Round, e.Edge, n)
			}
		}
	}

	// What crossed to the hub: the rounds' federated messages only, and no
	// feature value of any edge's windows (raw or transformed), as
	// decimal text (at least 8 characters: "0" or "0.25" could be in any
	// JSON) or as the 8 bytes of its float64.
	if len(rep.msgs) == 0 {
		t.Fatal("the spy saw nothing")
	}
	needles := map[string]bool{}
	for _, row := range rep.rows {
		for _, x := range row {
			if s := strconv.FormatFloat(x, 'g', -1, 64); len(s) >= 8 {
				needles[s] = true
			}
			if x != 0 && !math.IsNaN(x) {
				var b [8]byte
				binary.LittleEndian.PutUint64(b[:], math.Float64bits(x))
				needles[string(b[:])] = true
			}
		}
	}
	if len(needles) < 100 {
		t.Fatalf("only %d distinct feature values to look for", len(needles))
	}
	sent := map[string]map[string]int{} // phase → edge → messages
	for _, m := range rep.msgs {
		rnd, phase, edge, ok := parseFLSubject(m.subj)
		if !ok || rnd < 1 || rnd > rounds {
			t.Fatalf("a message on %q crossed to the hub", m.subj)
		}
		switch phase {
		case federated.PhaseStart, federated.PhasePeers, federated.PhaseGlobal:
			if edge != "" {
				t.Fatalf("%s: a hub message from an edge", m.subj)
			}
		case federated.PhaseKeys, federated.PhaseMasked:
			if edge != "edge-a" && edge != "edge-b" && edge != "edge-c" {
				t.Fatalf("%s: from an unknown edge", m.subj)
			}
			if sent[phase] == nil {
				sent[phase] = map[string]int{}
			}
			sent[phase][edge]++
		default:
			t.Fatalf("%s: phase %s in a round where no edge dropped", m.subj, phase)
		}
		for n := range needles {
			if strings.Contains(string(m.data), n) {
				t.Fatalf("%s carries an edge's feature value %q", m.subj, n)
			}
		}
	}
	for _, phase := range []string{federated.PhaseKeys, federated.PhaseMasked} {
		for _, e := range []string{"edge-a", "edge-b", "edge-c"} {
			if sent[phase][e] != rounds {
				t.Fatalf("%s sent %d %s messages in %d rounds", e, sent[phase][e], phase, rounds)
			}
		}
	}
	t.Logf("%d messages at the hub, none with any of %d feature values", len(rep.msgs), len(needles))
}

// TestFLDemoCmd runs the command with --json: the fields a user reads.
func TestFLDemoCmd(t *testing.T) {
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"fl", "demo", "--rounds", "2", "--json"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatalf("fl demo: %v\n%s", err, errOut.String())
	}
	var rep struct {
		Edges []struct {
			Edge string `json:"edge"`
		} `json:"edges"`
		Rounds []struct {
			Edges        int            `json:"edges"`
			BytesPerEdge map[string]int `json:"bytes_per_edge"`
			F1Before     *float64       `json:"f1_before"`
			F1After      *float64       `json:"f1_after"`
		} `json:"rounds"`
		BytesPerRound []int            `json:"bytes_per_round"`
		BLocalOnlyF1  *float64         `json:"b_local_only_f1"`
		Status        federated.Status `json:"status"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode: %v\n%s", err, out.String())
	}
	if len(rep.Rounds) != 2 || rep.Rounds[1].F1Before == nil || rep.Rounds[1].F1After == nil || len(rep.BytesPerRound) != 2 ||
		rep.BLocalOnlyF1 == nil || len(rep.Status.Rounds) != 2 || rep.Status.Rounds[1].F1After == nil ||
		len(rep.Edges) != 3 || rep.Rounds[1].Edges != 3 || len(rep.Rounds[1].BytesPerEdge) != 3 {
		t.Fatalf("report: %s", out.String())
	}

	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"--rounds", "0"}, "--rounds must be in [1, 100]"},
		{[]string{"--speed", "-1"}, "--speed must not be negative"},
		{[]string{"--positive-weight", "0"}, "--positive-weight must be positive"},
		{[]string{"--clip-norm", "-1"}, "--clip-norm must be positive"},
	} {
		_, err := runCmd(t, append([]string{"fl", "demo"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Fatalf("%v: err %v, want %q", tc.args, err, tc.err)
		}
	}
}
