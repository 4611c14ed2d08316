// Package backtest scores the actions of model versions against ground
// truth: incident episodes (a kind, an entity, a start and an end), from a
// digital twin's scenarios or a labelled export. An action counts as a true
// positive when it fires on an episode's entity between the episode's start
// and its end plus a grace period; every other action is a false action.
// Score reports per model version precision, recall, F1, false actions per
// hour of non-incident time and, per incident kind, how many episodes were
// detected and how long after their start (docs/learning.md, "Twin and
// backtest").
package backtest

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// ErrNoLabels is returned by Score for a run without ground truth: with no
// episode, recall and precision mean nothing, so no zeros are reported.
var ErrNoLabels = errors.New("the run has no labels (no incident episodes): nothing to score against")

// Episode is one scripted or labelled incident on one entity.
type Episode struct {
	// Kind is the incident kind: congestion, hot (congestion without
	// drops), errors, link-down, or a label's name.
	Kind string `json:"kind"`
	// Device and Component name the entity (Component is the interface).
	Device    string `json:"device"`
	Component string `json:"component,omitempty"`
	// Start and End bound the incident (event time).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Firing is one action a model version asked for: the transition of its
// (model, entity) action to firing.
type Firing struct {
	Model     string    `json:"model"`
	Version   string    `json:"version"`
	Device    string    `json:"device"`
	Component string    `json:"component,omitempty"`
	Time      time.Time `json:"time"` // event time the action began
	Action    string    `json:"action,omitempty"`
}

// Options tune scoring.
type Options struct {
	// Grace extends each episode's end: an action that fires this long
	// after the incident ended still counts as detecting it (the features
	// of a window lag the incident by up to the window length).
	Grace time.Duration
	// Kinds are the incident kinds the versions are meant to detect: recall
	// counts only their episodes and only actions on them are true
	// positives. An action during an episode of another kind is neither
	// true nor false. Empty: every kind in the labels.
	Kinds []string
	// From and To bound the run (event time); false actions per hour are
	// over [From, To) less the time any episode (with its grace) lasts.
	// When the episodes cover the whole run, the run's span is used.
	From, To time.Time
}

// Version names a model version being scored.
type Version struct {
	Model   string `json:"model"`
	Version string `json:"version"`
}

// KindScore is the result of one version on the episodes of one kind.
type KindScore struct {
	Episodes int     `json:"episodes"`
	Detected int     `json:"detected"`
	Recall   float64 `json:"recall"`
	// TrueActions are the actions that fired on an episode of this kind.
	TrueActions int `json:"true_actions"`
	// LeadTimeMeanSeconds and LeadTimeMaxSeconds are, over the detected
	// episodes, the time from the episode's start to the first action on
	// it (absent when none was detected).
	LeadTimeMeanSeconds *float64 `json:"lead_time_mean_seconds,omitempty"`
	LeadTimeMaxSeconds  *float64 `json:"lead_time_max_seconds,omitempty"`
}

// Result is the score of one model version.
type Result struct {
	Model               string  `json:"model"`
	Version             string  `json:"version"`
	Precision           float64 `json:"precision"`
	Recall              float64 `json:"recall"`
	F1                  float64 `json:"f1"`
	FalseActionsPerHour float64 `json:"false_actions_per_hour"`
	// Actions is every firing; TrueActions those on a target episode;
	// FalseActions those outside any episode.
	Actions      int `json:"actions"`
	TrueActions  int `json:"true_actions"`
	FalseActions int `json:"false_actions"`
	Episodes     int `json:"episodes"`
	Detected     int `json:"detected"`
	// NonIncidentHours is the time the false actions are counted over.
	NonIncidentHours float64              `json:"non_incident_hours"`
	Kinds            map[string]KindScore `json:"kinds"`
}

// Metric returns the named metric of r: precision, recall, f1 (higher is
// better) or false_actions_per_hour (lower is better).
func (r Result) Metric(name string) (float64, error) {
	switch name {
	case "precision":
		return r.Precision, nil
	case "recall":
		return r.Recall, nil
	case "f1":
		return r.F1, nil
	case "false_actions_per_hour":
		return r.FalseActionsPerHour, nil
	}
	return 0, fmt.Errorf("metric %q: want precision, recall, f1 or false_actions_per_hour", name)
}

// Metrics lists the metrics Result.Metric knows.
var Metrics = []string{"f1", "precision", "recall", "false_actions_per_hour"}

// Worse reports whether a candidate's value of metric is worse than the
// baseline's: lower for precision, recall and f1, higher for false actions
// per hour.
func Worse(metric string, candidate, baseline float64) (bool, error) {
	if !slices.Contains(Metrics, metric) {
		return false, fmt.Errorf("metric %q: want one of %v", metric, Metrics)
	}
	if metric == "false_actions_per_hour" {
		return candidate > baseline, nil
	}
	return candidate < baseline, nil
}

// Score scores each version's firings against episodes. versions fixes the
// order of the results (a version without firings scores zero recall).
// It returns ErrNoLabels when episodes is empty.
func Score(episodes []Episode, firings []Firing, versions []Version, opt Options) ([]Result, error) {
	if len(episodes) == 0 {
		return nil, ErrNoLabels
	}
	target := map[string]bool{}
	for _, k := range opt.Kinds {
		target[k] = true
	}
	isTarget := func(kind string) bool { return len(target) == 0 || target[kind] }
	// Episodes by entity, sorted by start.
	byEntity := map[[2]string][]int{}
	for i, e := range episodes {
		k := [2]string{e.Device, e.Component}
		byEntity[k] = append(byEntity[k], i)
	}
	hours := nonIncidentHours(episodes, opt)
	out := make([]Result, 0, len(versions))
	for _, v := range versions {
		r := Result{Model: v.Model, Version: v.Version, Kinds: map[string]KindScore{}, NonIncidentHours: hours}
		first := make([]time.Time, len(episodes)) // first action on each episode
		for _, f := range firings {
			if f.Model != v.Model || f.Version != v.Version {
				continue
			}
			r.Actions++
			during, hit := false, false
			for _, i := range byEntity[[2]string{f.Device, f.Component}] {
				e := episodes[i]
				if f.Time.Before(e.Start) || f.Time.After(e.End.Add(opt.Grace)) {
					continue
				}
				during = true
				if isTarget(e.Kind) {
					hit = true
					if first[i].IsZero() || f.Time.Before(first[i]) {
						first[i] = f.Time
					}
					ks := r.Kinds[e.Kind]
					ks.TrueActions++
					r.Kinds[e.Kind] = ks
				}
			}
			switch {
			case hit:
				r.TrueActions++
			case !during:
				r.FalseActions++
			}
		}
		leads := map[string][]float64{}
		for i, e := range episodes {
			if !isTarget(e.Kind) {
				continue
			}
			ks := r.Kinds[e.Kind]
			ks.Episodes++
			r.Episodes++
			if !first[i].IsZero() {
				ks.Detected++
				r.Detected++
				leads[e.Kind] = append(leads[e.Kind], first[i].Sub(e.Start).Seconds())
			}
			r.Kinds[e.Kind] = ks
		}
		for k, ks := range r.Kinds {
			if ks.Episodes > 0 {
				ks.Recall = float64(ks.Detected) / float64(ks.Episodes)
			}
			if l := leads[k]; len(l) > 0 {
				mean, mx := 0.0, math.Inf(-1)
				for _, x := range l {
					mean += x
					mx = max(mx, x)
				}
				mean /= float64(len(l))
				ks.LeadTimeMeanSeconds, ks.LeadTimeMaxSeconds = &mean, &mx
			}
			r.Kinds[k] = ks
		}
		if judged := r.TrueActions + r.FalseActions; judged > 0 {
			r.Precision = float64(r.TrueActions) / float64(judged)
		}
		if r.Episodes > 0 {
			r.Recall = float64(r.Detected) / float64(r.Episodes)
		}
		if r.Precision+r.Recall > 0 {
			r.F1 = 2 * r.Precision * r.Recall / (r.Precision + r.Recall)
		}
		if hours > 0 {
			r.FalseActionsPerHour = float64(r.FalseActions) / hours
		}
		out = append(out, r)
	}
	return out, nil
}

// nonIncidentHours is [From, To) less the union of the episodes' spans
// (with grace), in hours; the whole of [From, To) when the episodes cover
// it. Without bounds, the run is taken as the episodes' span.
func nonIncidentHours(episodes []Episode, opt Options) float64 {
	type span struct{ a, b time.Time }
	spans := make([]span, 0, len(episodes))
	var first, last time.Time
	for i, e := range episodes {
		s := span{e.Start, e.End.Add(opt.Grace)}
		spans = append(spans, s)
		if i == 0 || s.a.Before(first) {
			first = s.a
		}
		if i == 0 || s.b.After(last) {
			last = s.b
		}
	}
	from, to := cmp.Or(opt.From, first), cmp.Or(opt.To, last)
	if !to.After(from) {
		return 0
	}
	slices.SortFunc(spans, func(x, y span) int { return x.a.Compare(y.a) })
	busy := time.Duration(0)
	var cur span
	flush := func() {
		a, b := maxTime(cur.a, from), minTime(cur.b, to)
		if b.After(a) {
			busy += b.Sub(a)
		}
	}
	for i, s := range spans {
		if i > 0 && !s.a.After(cur.b) {
			cur.b = maxTime(cur.b, s.b)
			continue
		}
		if i > 0 {
			flush()
		}
		cur = s
	}
	if len(spans) > 0 {
		flush()
	}
	if busy >= to.Sub(from) {
		// Incidents (with their grace) cover the whole run: count false
		// actions over the run rather than over no time at all.
		return to.Sub(from).Hours()
	}
	return (to.Sub(from) - busy).Hours()
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// SortEpisodes orders episodes by start, then entity and kind.
func SortEpisodes(eps []Episode) {
	slices.SortFunc(eps, func(a, b Episode) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.Device, b.Device),
			cmp.Compare(a.Component, b.Component), cmp.Compare(a.Kind, b.Kind))
	})
}
