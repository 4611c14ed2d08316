package inference

// Operator feedback on actions (POST /v1/actions/{fingerprint}/feedback):
// a verdict, true or false positive, stored in the runtime's Badger
// database under fb/<fingerprint>/<big-endian Unix ns>, and the labelled
// windows derived from it for training (LabelledWindows): the live
// decisions of the episode it judged (LabelledWindows).

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/dgraph-io/badger/v4"

	"github.com/netfeat/netfeat/learning"
	"github.com/netfeat/netfeat/schema"
)

// Feedback labels.
const (
	// LabelTruePositive: the action was right; its windows are positives.
	LabelTruePositive = "true_positive"
	// LabelFalsePositive: the action was wrong; its windows are negatives.
	LabelFalsePositive = "false_positive"
)

// ErrUnknownAction: no current action has that fingerprint.
var ErrUnknownAction = errors.New("unknown action")

// Feedback is an operator's verdict on one action, with what the action
// was when it was given.
type Feedback struct {
	Fingerprint  string        `json:"fingerprint"`
	Label        string        `json:"label"`
	Note         string        `json:"note,omitempty"`
	Time         time.Time     `json:"time"`
	Model        string        `json:"model"`
	ModelVersion string        `json:"model_version"`
	View         string        `json:"view"`
	Entity       schema.Entity `json:"entity"`
	State        string        `json:"state"`
	Action       string        `json:"action"`
	// Since is when the action entered its state; LastDecision the time
	// of its last decision. The windows decided in between are labelled.
	Since        time.Time `json:"since"`
	LastDecision time.Time `json:"last_decision"`
}

const feedbackPrefix = "fb/"

// maxNote bounds a feedback note.
const maxNote = 4096

// AddFeedback records the verdict label (LabelTruePositive or
// LabelFalsePositive) on the current action with the given fingerprint
// (GET /v1/actions lists them). It is stored durably and read back by
// Feedbacks and LabelledWindows.
func (r *Runtime) AddFeedback(ctx context.Context, fingerprint, label, note string) (Feedback, error) {
	if err := ctx.Err(); err != nil {
		return Feedback{}, err
	}
	if label != LabelTruePositive && label != LabelFalsePositive {
		r.m.feedbackRefused.Inc()
		return Feedback{}, badRequest{fmt.Errorf("label %q: want %s or %s", label, LabelTruePositive, LabelFalsePositive)}
	}
	if len(note) > maxNote {
		r.m.feedbackRefused.Inc()
		return Feedback{}, badRequest{fmt.Errorf("note: %d bytes, at most %d", len(note), maxNote)}
	}
	var a *ActionState
	for _, x := range r.Actions() {
		if x.Fingerprint == fingerprint {
			a = &x
			break
		}
	}
	if a == nil {
		r.m.feedbackRefused.Inc()
		return Feedback{}, fmt.Errorf("action %q: %w (GET /v1/actions lists the current ones)", fingerprint, ErrUnknownAction)
	}
	fb := Feedback{
		Fingerprint: fingerprint, Label: label, Note: note, Time: time.Now().UTC(), Model: a.Model,
		ModelVersion: a.ModelVersion, View: a.View, Entity: a.Entity, State: a.State, Action: a.Action,
		Since: a.Since, LastDecision: a.LastDecision,
	}
	b, err := json.Marshal(fb)
	if err != nil {
		return Feedback{}, err
	}
	key := binary.BigEndian.AppendUint64([]byte(feedbackPrefix+fingerprint+"/"), uint64(fb.Time.UnixNano()))
	if err := r.db.Update(func(txn *badger.Txn) error { return txn.Set(key, b) }); err != nil {
		return Feedback{}, fmt.Errorf("store feedback on %s: %w", fingerprint, err)
	}
	r.m.feedback.WithLabelValues(fb.Model, label).Inc()
	r.log.Info("action feedback", "fingerprint", fingerprint, "model", fb.Model, "entity", fb.Entity.String(), "label", label)
	return fb, nil
}

// Feedbacks returns every stored feedback, oldest first.
func (r *Runtime) Feedbacks(ctx context.Context) ([]Feedback, error) {
	var out []Feedback
	err := r.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(feedbackPrefix), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var fb Feedback
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &fb) }); err != nil {
				return fmt.Errorf("feedback %q: %w", it.Item().Key(), err)
			}
			out = append(out, fb)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read feedback: %w", err)
	}
	slices.SortStableFunc(out, func(a, b Feedback) int { return a.Time.Compare(b.Time) })
	return out, nil
}

// feedbackLookback is how far before an action's current state the
// decision log is read to find the start of the episode its feedback is
// about.
const feedbackLookback = 24 * time.Hour

// LabelledWindows returns a training set for model over the features
// names, from the feedback on its actions (LabelledDecisions). Decisions
// without a value for one of the features are skipped. Rows are in time
// order.
func (r *Runtime) LabelledWindows(ctx context.Context, model string, names []string) (*learning.Dataset, error) {
	ls, err := r.LabelledDecisions(ctx, model)
	if err != nil {
		return nil, err
	}
	ds := &learning.Dataset{Names: names}
	x := make([]float64, len(names))
rows:
	for _, l := range ls {
		for j, n := range names {
			v, ok := l.Features[n]
			if !ok {
				continue rows
			}
			x[j] = v
		}
		if err := ds.Add(x, l.Label); err != nil {
			return nil, err
		}
	}
	return ds, nil
}

// Labelled is one live decision labelled by feedback.
type Labelled struct {
	// WindowEnd is the end of the window decided.
	WindowEnd time.Time
	// Feedback is the verdict that labels it.
	Feedback *Feedback
	// Features are the decision's inputs (those with data).
	Features map[string]float64
	// Label is 1 for a true positive, 0 for a false positive.
	Label float64
}

// LabelledDecisions returns the live decisions of model ("" for every
// model) that feedback labels, in time order: for each action (the latest
// feedback on it counts), the episode the feedback judged — the last run
// of pending or firing decisions up to the action's last decision when the
// feedback was given, found in the decision log
// (inference.decision_retention, at most 24 h before the action's state
// began) — labelled 1 for a true positive and 0 for a false positive.
func (r *Runtime) LabelledDecisions(ctx context.Context, model string) ([]Labelled, error) {
	fbs, err := r.Feedbacks(ctx)
	if err != nil {
		return nil, err
	}
	latest := map[string]*Feedback{}
	var from, to int64 = math.MaxInt64, math.MinInt64
	for i := range fbs {
		fb := &fbs[i]
		if model != "" && fb.Model != model {
			continue
		}
		latest[fb.Fingerprint] = fb
		from, to = min(from, fb.Since.Add(-feedbackLookback).UnixNano()), max(to, fb.LastDecision.UnixNano())
	}
	if len(latest) == 0 {
		return nil, nil
	}
	recs, err := r.DecisionHistory(ctx, from, to+1)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, rec := range recs {
			rec.Release()
		}
	}()
	sc := schema.DecisionsSchema
	col := func(name string) int { return sc.FieldIndices(name)[0] }
	type dec struct {
		t     int64
		state string
		feats string
	}
	byFP := map[string][]dec{}
	for _, rec := range recs {
		shadow := rec.Column(col("shadow")).(*array.Boolean)
		fp := rec.Column(col("fingerprint")).(*array.String)
		end := rec.Column(col("window_end")).(*array.Timestamp)
		feats := rec.Column(col("features")).(*array.String)
		trig := rec.Column(col("trigger")).(*array.String)
		state := rec.Column(col("state")).(*array.String)
		for i := range int(rec.NumRows()) {
			if shadow.Value(i) || trig.Value(i) == schema.TriggerDrift {
				continue
			}
			fb, ok := latest[fp.Value(i)]
			t := int64(end.Value(i))
			if !ok || t > fb.LastDecision.UnixNano() {
				continue
			}
			byFP[fp.Value(i)] = append(byFP[fp.Value(i)], dec{t: t, state: state.Value(i), feats: feats.Value(i)})
		}
	}
	var out []Labelled
	for fp, ds := range byFP {
		fb := latest[fp]
		label := 0.0
		if fb.Label == LabelTruePositive {
			label = 1
		}
		slices.SortStableFunc(ds, func(a, b dec) int { return cmp.Compare(a.t, b.t) })
		i := len(ds) - 1
		for i >= 0 && ds[i].state != schema.StateFiring && ds[i].state != schema.StatePending {
			i-- // the resolve (and anything after it) is not the episode
		}
		for ; i >= 0 && (ds[i].state == schema.StateFiring || ds[i].state == schema.StatePending); i-- {
			var m map[string]float64
			if err := json.Unmarshal([]byte(ds[i].feats), &m); err != nil {
				continue
			}
			out = append(out, Labelled{WindowEnd: time.Unix(0, ds[i].t).UTC(), Feedback: fb, Features: m, Label: label})
		}
	}
	slices.SortStableFunc(out, func(a, b Labelled) int { return a.WindowEnd.Compare(b.WindowEnd) })
	return out, nil
}
