package inference

// What happens when a model version misbehaves while scoring (issue #20).
// A panic in a scorer is recovered, counted and disables the version; so
// do maxOverruns consecutive scores over the model's latency budget. A
// disabled (failed) live version falls back (previous version, then the
// fallback rule), a failed shadow is no longer scored, and the failure is
// kept in the registry state, so a restart does not score it again. Go
// cannot stop a goroutine that loops forever: the loaders' validation (no
// cycles, bounded depth) is what keeps a scorer from hanging.
//
// Scoring and judging run on the worker goroutine that scored (failStuck
// on Stop's); recording a failure in the registry takes Runtime.regM.

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// maxOverruns is how many consecutive scores over the latency budget
// disable a version.
const maxOverruns = 3

// ErrScoreStuck is returned by Stop when a score did not return within
// its context and a grace period: Go cannot stop it, so Stop records the
// version as failed and returns without waiting for it.
var ErrScoreStuck = errors.New("a model score did not return")

// stuckGrace is how long Stop waits, once its context is done, for the
// workers to finish the row at hand.
const stuckGrace = 2 * time.Second

// errScorerPanicked marks the error a recovered scorer panic becomes.
var errScorerPanicked = errors.New("scorer panicked")

// scoreSafely scores row with version v, returning a panic as an error
// that wraps errScorerPanicked (with the stack, for the log). v counts the
// scores in progress, so that Stop can tell which version does not return.
func scoreSafely(v *version, row *schema.FeatureRow, res *result) (err error) {
	v.inScore.Add(1)
	defer func() {
		v.inScore.Add(-1)
		if p := recover(); p != nil {
			err = &panicError{val: p, stack: debug.Stack()}
		}
	}()
	return v.sc.score(row, res)
}

// failStuck marks failed every version with a score in progress and
// returns them as "model version".
func (r *Runtime) failStuck() []string {
	var out []string
	for _, s := range r.order {
		set := s.set.Load()
		if s.isRule || set == nil {
			continue
		}
		for _, v := range []*version{set.live, set.shadow, set.prev} {
			if v != nil && v.inScore.Load() > 0 {
				r.fail(s, v, "hang", "a score did not return (still running when the runtime stopped)")
				out = append(out, s.name+" "+v.info.Version)
			}
		}
	}
	return out
}

type panicError struct {
	val   any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("scorer panicked: %v", e.val) }
func (e *panicError) Unwrap() error { return errScorerPanicked }

// judge looks at how version v of s scored: a panic disables it at once,
// maxOverruns consecutive scores over the budget disable it, a score
// within the budget resets the count.
func (r *Runtime) judge(s *slot, v *version, took time.Duration, err error) {
	if err != nil {
		// Declared here: errors.As makes pe escape, and the common path
		// should not allocate it.
		var pe *panicError
		if errors.As(err, &pe) {
			r.m.scorePanics.WithLabelValues(s.name, v.info.Version).Inc()
			r.logLimited(s.name+"/"+v.info.Version+"/panic", "model version panicked while scoring", "model", s.name,
				"version", v.info.Version, "panic", fmt.Sprint(pe.val), "stack", string(pe.stack))
			r.fail(s, v, "panic", fmt.Sprintf("panicked while scoring: %v", pe.val))
		}
		return
	}
	if s.budget > 0 && took > s.budget {
		if n := v.overruns.Add(1); n >= maxOverruns {
			r.fail(s, v, "budget", fmt.Sprintf("%d consecutive scores over the %v latency budget (last %v)",
				n, s.budget, took.Round(time.Microsecond)))
		}
		return
	}
	if v.overruns.Load() != 0 {
		v.overruns.Store(0)
	}
}

// fail disables version v of s: from now on it is not scored, and the
// registry records it as failed, so that it is not scored after a restart
// either. Only the first call for a version does anything.
func (r *Runtime) fail(s *slot, v *version, reason, why string) {
	v.why.Store(&why)
	if !v.failed.CompareAndSwap(false, true) {
		return
	}
	r.m.versionsFailed.WithLabelValues(s.name, v.info.Version, reason).Inc()
	r.log.Error("model version disabled: it is not scored until promoted again", "model", s.name,
		"version", v.info.Version, "why", why)
	r.regM.Lock()
	defer r.regM.Unlock()
	st, err := r.reg.state(s.name)
	if err == nil {
		f := make(map[string]string, len(st.Failed)+1)
		for k, w := range st.Failed {
			f[k] = w
		}
		f[v.info.Version] = time.Now().UTC().Format(time.RFC3339) + ": " + why
		st.Failed = f
		if err = r.reg.setState(s.name, st); err == nil {
			err = r.apply(s, st)
		}
	}
	if err != nil {
		// The version stays disabled in this process all the same.
		r.log.Error("could not record a failed model version", "model", s.name, "version", v.info.Version, "err", err)
	}
}

// whyFailed is the reason a failed version gives in a decision's fallback.
func (v *version) whyFailed() string {
	if w := v.why.Load(); w != nil {
		return *w
	}
	return "failed"
}

// evalRuleSafely and instantRuleSafely run a rule, returning a panic as an
// error: rules are configuration, so one that panics is not disabled, but
// it does not end the process either.
func evalRuleSafely(ru *rule, row *schema.FeatureRow, firing bool, res *result) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{val: p, stack: debug.Stack()}
		}
	}()
	return ru.eval(row, firing, res)
}

func instantRuleSafely(ru *rule, row *schema.FeatureRow, res *result) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{val: p, stack: debug.Stack()}
		}
	}()
	return ru.instant(row, res)
}
