package inference

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// rule evaluates a RuleConfig per entity: the condition must hold for For
// (in window time) before the rule fires, and a firing rule stays active
// until the value crosses back past Clear (hysteresis).
type rule struct {
	cfg   RuleConfig
	clear float64
	bind  binding
	mu    sync.Mutex
	state map[schema.Entity]*ruleState
}

type ruleState struct {
	since  int64 // window end when the condition started to hold; 0 = not holding
	firing bool
	used   atomic.Int64 // wall clock of the last score, for forget
}

// forget drops the state of entities not scored since cutoff (Unix ns).
func (r *rule) forget(cutoff int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for e, st := range r.state {
		if st.used.Load() < cutoff {
			delete(r.state, e)
			n++
		}
	}
	return n
}

func newRule(cfg RuleConfig) *rule {
	r := &rule{cfg: cfg, clear: cfg.Threshold, state: map[schema.Entity]*ruleState{}}
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

// score advances the entity's state with the row and reports 1 while the
// rule fires, 0 otherwise. A missing value (NaN) leaves the state as it was.
func (r *rule) score(row *schema.FeatureRow, res *result) error {
	v, err := r.value(row)
	if err != nil {
		return err
	}
	r.mu.Lock()
	st, ok := r.state[row.Entity]
	if !ok {
		st = &ruleState{}
		r.state[row.Entity] = st
	}
	r.mu.Unlock()
	st.used.Store(time.Now().UnixNano())
	// Only the worker that owns the entity touches st.
	res.features = map[string]float64{r.cfg.Feature: v}
	var buf [160]byte
	b := append(buf[:0], r.cfg.Feature...)
	// b is the feature's name; cond appends "=v [not ]op threshold".
	cond := func(b []byte, not bool) []byte {
		b = append(appendG4(append(b, '='), v), ' ')
		if not {
			b = append(b, "not "...)
		}
		return appendG4(append(append(b, r.cfg.Op...), ' '), r.cfg.Threshold)
	}
	switch {
	case math.IsNaN(v):
		b = append(b, " has no data; state kept"...)
	case st.firing:
		if r.holds(v, r.clear) {
			b = append(append(appendG4(append(b, '='), v), " still "...), r.cfg.Op...)
			b = appendG4(append(b, " clear level "...), r.clear)
		} else {
			st.firing, st.since = false, 0
			b = append(appendG4(append(appendG4(append(b, '='), v), " crossed back past clear level "...), r.clear), ": cleared"...)
		}
	case r.holds(v, r.cfg.Threshold):
		if st.since == 0 {
			st.since = row.WindowEnd
		}
		held := time.Duration(row.WindowEnd - st.since)
		b = cond(b, false)
		if held >= r.cfg.For {
			st.firing = true
			if r.cfg.For > 0 {
				b = append(append(b, " for "...), held.String()...)
			}
		} else {
			b = append(append(append(append(b, " for "...), held.String()...), " of "...), r.cfg.For.String()...)
		}
	default:
		st.since = 0
		b = cond(b, true)
	}
	res.reason = string(b)
	res.score = 0
	if st.firing {
		res.score = 1
	}
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
