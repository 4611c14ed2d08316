package inference

// Rules: a threshold on one feature, configured rather than versioned. A
// rule is immutable after New and evaluated by the worker goroutines
// concurrently.

import (
	"fmt"
	"math"

	"github.com/netfeat/netfeat/schema"
)

// rule evaluates a RuleConfig on a row: the feature against the threshold,
// or, while the rule's action fires, against the clear level (hysteresis).
// How long the condition must hold (For) and what follows is the action
// lifecycle's (lifecycle.go); the rule itself keeps no state.
type rule struct {
	cfg   RuleConfig
	clear float64
	bind  binding
}

func newRule(cfg RuleConfig) *rule {
	r := &rule{cfg: cfg, clear: cfg.Threshold}
	if cfg.Clear != nil {
		r.clear = *cfg.Clear
	}
	r.bind.names = []string{cfg.Feature}
	return r
}

// version is the rule's version string: rules live in the configuration,
// so their version is a digest of it.
func (r *rule) version() string {
	c := r.cfg
	return "config-" + shortHash(fmt.Sprintf("%s|%s|%s|%v|%v|%v|%s", c.View, c.Feature, c.Op, c.Threshold, r.clear, c.For, c.Action))
}

func (r *rule) holds(v, limit float64) bool {
	switch r.cfg.Op {
	case ">":
		return v > limit
	case ">=":
		return v >= limit
	case "<":
		return v < limit
	}
	return v <= limit
}

func (r *rule) value(row *schema.FeatureRow) (float64, error) {
	idx, err := r.bind.indexes(row)
	if err != nil {
		return 0, err
	}
	return row.Values[idx[0]], nil
}

// score is eval of a rule whose action does not fire; it makes a rule a
// scorer.
func (r *rule) score(row *schema.FeatureRow, res *result) error { return r.eval(row, false, res) }

// eval scores 1 when the condition holds and 0 otherwise: against the
// threshold, or against the clear level when firing. A missing value (NaN)
// is reported in res.missing, so that the action's state is kept.
func (r *rule) eval(row *schema.FeatureRow, firing bool, res *result) error {
	v, err := r.value(row)
	if err != nil {
		return err
	}
	res.features = map[string]float64{r.cfg.Feature: v}
	res.score = 0
	var buf [160]byte
	b := append(buf[:0], r.cfg.Feature...)
	switch {
	case math.IsNaN(v):
		b = append(b, " has no data"...)
		res.missing = []string{r.cfg.Feature}
		res.score = math.NaN()
	case firing && r.clear != r.cfg.Threshold:
		b = append(appendG4(append(b, '='), v), ' ')
		if r.holds(v, r.clear) {
			res.score = 1
			b = append(append(b, "still "...), r.cfg.Op...)
		} else {
			b = append(append(b, "back past "...), r.cfg.Op...)
		}
		b = appendG4(append(b, " clear level "...), r.clear)
	default:
		b = append(appendG4(append(b, '='), v), ' ')
		if r.holds(v, r.cfg.Threshold) {
			res.score = 1
		} else {
			b = append(b, "not "...)
		}
		b = appendG4(append(append(b, r.cfg.Op...), ' '), r.cfg.Threshold)
	}
	res.reason = string(b)
	return nil
}

// instant evaluates the threshold alone, without touching the state: it is
// what a model falls back to when it cannot score.
func (r *rule) instant(row *schema.FeatureRow, res *result) error {
	v, err := r.value(row)
	if err != nil {
		return err
	}
	if math.IsNaN(v) {
		return fmt.Errorf("rule %s: %s has no data", r.cfg.Name, r.cfg.Feature)
	}
	res.features = map[string]float64{r.cfg.Feature: v}
	res.score = 0
	if r.holds(v, r.cfg.Threshold) {
		res.score = 1
		res.reason = fmt.Sprintf("%s=%.4g %s %.4g", r.cfg.Feature, v, r.cfg.Op, r.cfg.Threshold)
	} else {
		res.reason = fmt.Sprintf("%s=%.4g not %s %.4g", r.cfg.Feature, v, r.cfg.Op, r.cfg.Threshold)
	}
	return nil
}
