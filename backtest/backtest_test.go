package backtest

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/sim/scenario"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestScore(t *testing.T) {
	// Two congestion episodes on r1/a, one link-down on r1/b, over one hour.
	eps := []Episode{
		{Kind: "congestion", Device: "r1", Component: "a", Start: at(100), End: at(200)},
		{Kind: "congestion", Device: "r1", Component: "a", Start: at(1000), End: at(1100)},
		{Kind: "link-down", Device: "r1", Component: "b", Start: at(500), End: at(560)},
	}
	v1, v2 := Version{"m", "v1"}, Version{"m", "v2"}
	fire := func(v Version, comp string, s int) Firing {
		return Firing{Model: v.Model, Version: v.Version, Device: "r1", Component: comp, Time: at(s)}
	}
	opt := Options{Grace: 30 * time.Second, From: at(0), To: at(3600)}
	// Non-incident time: 3600 − (130 + 130 + 90) s = 3250 s.
	hours := 3250.0 / 3600
	tests := []struct {
		name     string
		firings  []Firing
		kinds    []string
		want     Result
		lead     map[string]float64 // kind → mean lead seconds
		undetect []string           // kinds with no lead time
	}{
		{
			name:    "all detected, no false action",
			firings: []Firing{fire(v1, "a", 110), fire(v1, "a", 1020), fire(v1, "b", 505)},
			want:    Result{Precision: 1, Recall: 1, F1: 1, Actions: 3, TrueActions: 3, Episodes: 3, Detected: 3},
			lead:    map[string]float64{"congestion": 15, "link-down": 5},
		},
		{
			name:    "one missed, one false",
			firings: []Firing{fire(v1, "a", 110), fire(v1, "a", 2000), fire(v1, "b", 505)},
			want: Result{Precision: 2.0 / 3, Recall: 2.0 / 3, F1: 2.0 / 3, FalseActionsPerHour: 1 / hours,
				Actions: 3, TrueActions: 2, FalseActions: 1, Episodes: 3, Detected: 2},
			lead: map[string]float64{"congestion": 10, "link-down": 5},
		},
		{
			name:    "within grace counts, after grace is false",
			firings: []Firing{fire(v1, "a", 225), fire(v1, "a", 1131)},
			kinds:   []string{"congestion"},
			want: Result{Precision: 0.5, Recall: 0.5, F1: 0.5, FalseActionsPerHour: 1 / hours,
				Actions: 2, TrueActions: 1, FalseActions: 1, Episodes: 2, Detected: 1},
			lead: map[string]float64{"congestion": 125},
		},
		{
			name:     "wrong entity is false",
			firings:  []Firing{fire(v1, "b", 150)},
			kinds:    []string{"congestion"},
			want:     Result{FalseActionsPerHour: 1 / hours, Actions: 1, FalseActions: 1, Episodes: 2},
			undetect: []string{"congestion"},
		},
		{
			name: "action during another kind's episode is neither true nor false",
			// The congestion model fires during the link-down: not a
			// congestion, not a false action either.
			firings: []Firing{fire(v1, "b", 520), fire(v1, "a", 150)},
			kinds:   []string{"congestion"},
			want:    Result{Precision: 1, Recall: 0.5, F1: 2.0 / 3, Actions: 2, TrueActions: 1, Episodes: 2, Detected: 1},
			lead:    map[string]float64{"congestion": 50},
		},
		{
			name:     "other versions' firings are ignored",
			firings:  []Firing{fire(v2, "a", 110)},
			want:     Result{Episodes: 3},
			undetect: []string{"congestion", "link-down"},
		},
		{
			name:    "several firings on one episode: one detection, earliest lead",
			firings: []Firing{fire(v1, "a", 180), fire(v1, "a", 120)},
			kinds:   []string{"congestion"},
			want:    Result{Precision: 1, Recall: 0.5, F1: 2.0 / 3, Actions: 2, TrueActions: 2, Episodes: 2, Detected: 1},
			lead:    map[string]float64{"congestion": 20},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := opt
			o.Kinds = tc.kinds
			rs, err := Score(eps, tc.firings, []Version{v1}, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 {
				t.Fatalf("%d results, want 1", len(rs))
			}
			r, w := rs[0], tc.want
			if r.Model != v1.Model || r.Version != v1.Version {
				t.Errorf("version %s %s", r.Model, r.Version)
			}
			if !near(r.Precision, w.Precision) || !near(r.Recall, w.Recall) || !near(r.F1, w.F1) ||
				!near(r.FalseActionsPerHour, w.FalseActionsPerHour) {
				t.Errorf("P/R/F1/FA/h = %v/%v/%v/%v, want %v/%v/%v/%v", r.Precision, r.Recall, r.F1, r.FalseActionsPerHour,
					w.Precision, w.Recall, w.F1, w.FalseActionsPerHour)
			}
			if r.Actions != w.Actions || r.TrueActions != w.TrueActions || r.FalseActions != w.FalseActions ||
				r.Episodes != w.Episodes || r.Detected != w.Detected {
				t.Errorf("counts %d/%d/%d episodes %d/%d, want %d/%d/%d episodes %d/%d", r.Actions, r.TrueActions, r.FalseActions,
					r.Detected, r.Episodes, w.Actions, w.TrueActions, w.FalseActions, w.Detected, w.Episodes)
			}
			if !near(r.NonIncidentHours, hours) {
				t.Errorf("non-incident hours %v, want %v", r.NonIncidentHours, hours)
			}
			for k, lead := range tc.lead {
				ks := r.Kinds[k]
				if ks.LeadTimeMeanSeconds == nil || !near(*ks.LeadTimeMeanSeconds, lead) {
					t.Errorf("%s lead time %v, want %v", k, ks.LeadTimeMeanSeconds, lead)
				}
			}
			for _, k := range tc.undetect {
				if ks := r.Kinds[k]; ks.LeadTimeMeanSeconds != nil || ks.Detected != 0 {
					t.Errorf("%s: detected %d, lead %v; want none", k, ks.Detected, ks.LeadTimeMeanSeconds)
				}
			}
		})
	}
}

func TestScoreSideBySide(t *testing.T) {
	eps := []Episode{{Kind: "congestion", Device: "r", Component: "a", Start: at(0), End: at(60)}}
	fs := []Firing{
		{Model: "m", Version: "good", Device: "r", Component: "a", Time: at(10)},
		{Model: "m", Version: "bad", Device: "r", Component: "a", Time: at(600)},
	}
	rs, err := Score(eps, fs, []Version{{"m", "good"}, {"m", "bad"}}, Options{From: at(0), To: at(3600)})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].Version != "good" || rs[0].F1 != 1 || rs[1].F1 != 0 || rs[1].FalseActions != 1 {
		t.Fatalf("got %+v", rs)
	}
	worse, err := Worse("f1", rs[1].F1, rs[0].F1)
	if err != nil || !worse {
		t.Fatalf("bad not worse on f1: %v %v", worse, err)
	}
	worse, _ = Worse("false_actions_per_hour", rs[0].FalseActionsPerHour, rs[1].FalseActionsPerHour)
	if worse {
		t.Fatal("good worse on false actions per hour")
	}
	if _, err := Worse("accuracy", 1, 0); err == nil {
		t.Fatal("unknown metric accepted")
	}
}

func TestScoreAllIncident(t *testing.T) {
	// The episode and its grace cover the run: false actions are per hour
	// of the run, not divided by zero.
	eps := []Episode{{Kind: "c", Device: "r", Component: "a", Start: at(0), End: at(1800)}}
	fs := []Firing{{Model: "m", Version: "v", Device: "r", Component: "b", Time: at(100)}}
	rs, err := Score(eps, fs, []Version{{"m", "v"}}, Options{Grace: time.Hour, From: at(0), To: at(3600)})
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].NonIncidentHours != 1 || rs[0].FalseActionsPerHour != 1 {
		t.Fatalf("non-incident hours %v, false actions per hour %v; want 1 and 1", rs[0].NonIncidentHours, rs[0].FalseActionsPerHour)
	}
}

func TestScoreNoLabels(t *testing.T) {
	_, err := Score(nil, []Firing{{Model: "m", Version: "v"}}, []Version{{"m", "v"}}, Options{})
	if !errors.Is(err, ErrNoLabels) {
		t.Fatalf("err %v, want ErrNoLabels", err)
	}
}

func TestFromScenario(t *testing.T) {
	sc := &scenario.Scenario{Repeat: 3 * time.Minute, Events: []scenario.Event{
		{Kind: scenario.Congestion, Interface: "a", At: 20 * time.Second, Until: 95 * time.Second, DiscardsPerSecond: 1000},
		{Kind: scenario.Congestion, Interface: "c", At: 10 * time.Second, Until: 20 * time.Second, DiscardsPerSecond: -1},
		{Kind: scenario.LinkDown, Interface: "b", At: 150 * time.Second},
	}}
	tests := []struct {
		d    time.Duration
		want []Episode
	}{
		{d: 60 * time.Second, want: []Episode{
			{Kind: "congestion", Device: "r", Component: "a", Start: at(20), End: at(60)},
			{Kind: Hot, Device: "r", Component: "c", Start: at(10), End: at(20)},
		}},
		{d: 200 * time.Second, want: []Episode{
			{Kind: "congestion", Device: "r", Component: "a", Start: at(20), End: at(95)},
			{Kind: Hot, Device: "r", Component: "c", Start: at(10), End: at(20)},
			{Kind: "link-down", Device: "r", Component: "b", Start: at(150), End: at(180)},
			{Kind: Hot, Device: "r", Component: "c", Start: at(190), End: at(200)},
		}},
	}
	for _, tc := range tests {
		got := FromScenario("r", sc, t0, tc.d)
		if len(got) != len(tc.want) {
			t.Fatalf("%v: %d episodes %+v, want %d", tc.d, len(got), got, len(tc.want))
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%v: episode %d = %+v, want %+v", tc.d, i, got[i], tc.want[i])
			}
		}
	}
}
