package inference

// The registry operations in Go (Models, Model, AddVersion, SetShadow,
// Promote, Rollback). They run on the caller's goroutine (an HTTP handler's,
// for the API), after Start, and take Runtime.regM: one registry change at
// a time, and the live set of a slot is swapped as a whole, so workers
// never wait for them.

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/netfeat/netfeat/backtest"
	"github.com/netfeat/netfeat/schema"
)

func (r *Runtime) modelSlot(name string) (*slot, error) {
	s, ok := r.slots[name]
	if !ok {
		return nil, fmt.Errorf("%q: %w", name, ErrUnknownModel)
	}
	if s.isRule {
		return nil, fmt.Errorf("%s: %w", name, ErrRuleNotVersioned)
	}
	return s, nil
}

// Models returns the registry state of every configured model and rule, in
// configuration order (rules first).
func (r *Runtime) Models(ctx context.Context) ([]ModelInfo, error) {
	out := make([]ModelInfo, 0, len(r.order))
	for _, s := range r.order {
		mi, err := r.Model(ctx, s.name)
		if err != nil {
			return nil, err
		}
		out = append(out, mi)
	}
	return out, nil
}

// Model returns the registry state of one model or rule.
func (r *Runtime) Model(ctx context.Context, name string) (ModelInfo, error) {
	if err := ctx.Err(); err != nil {
		return ModelInfo{}, err
	}
	s, ok := r.slots[name]
	if !ok {
		return ModelInfo{}, fmt.Errorf("%q: %w", name, ErrUnknownModel)
	}
	mi := ModelInfo{Name: s.name, Kind: s.kind, View: s.view}
	if s.isRule {
		live := s.set.Load().live.info
		mi.Live, mi.Versions = live.Version, []VersionInfo{live}
		return mi, nil
	}
	r.regM.Lock()
	defer r.regM.Unlock()
	st, err := r.reg.state(name)
	if err != nil {
		return ModelInfo{}, err
	}
	mi.Live, mi.Shadow, mi.History, mi.Failed = st.Live, st.Shadow, st.History, st.Failed
	if mi.Versions, err = r.reg.versions(name); err != nil {
		return ModelInfo{}, err
	}
	return mi, nil
}

// AddVersion stores artifact as a new version of model (named version, or
// v<N+1> when version is empty) after checking that it loads. It does not
// change what scores: follow with SetShadow or Promote.
func (r *Runtime) AddVersion(ctx context.Context, model, version string, artifact []byte) (VersionInfo, error) {
	return r.InstallVersion(ctx, model, version, artifact, "upload")
}

// InstallVersion is AddVersion with the version's source (VersionInfo.Source)
// named by the caller, for versions that arrive by another way than an
// upload (the fleet roll-out says "hub"). It checks the artifact exactly as
// an upload is checked: a model file that does not load is refused with the
// same error, and the registry is left as it was. Installing the same
// content under an existing name is a no-op that returns the stored
// version; other content under a taken name is ErrVersionExists.
func (r *Runtime) InstallVersion(ctx context.Context, model, version string, artifact []byte, source string) (vi VersionInfo, err error) {
	if err := ctx.Err(); err != nil {
		return VersionInfo{}, err
	}
	s, err := r.modelSlot(model)
	if err != nil {
		return VersionInfo{}, err
	}
	if _, err := buildScorer(s.kind, artifact, s.cfg.Features, s.cfg.Optional); err != nil {
		return VersionInfo{}, fmt.Errorf("model %s: new version does not load: %w", model, err)
	}
	defer func() {
		if err == nil {
			r.notify(RegistryChange{Model: model, Op: OpAdd, Version: vi.Version})
		}
	}() // deferred before the lock, so it runs after the unlock
	r.regM.Lock()
	defer r.regM.Unlock()
	vi, err = r.reg.add(model, s.kind, version, artifact, source)
	if err != nil {
		return VersionInfo{}, err
	}
	r.m.swaps.WithLabelValues(model, "add").Inc()
	r.log.Info("model version added", "model", model, "version", vi.Version, "sha256", vi.SHA256)
	return vi, nil
}

// SetShadow makes version score beside the live version; its decisions
// are recorded (the `decisions` table, shadow = true) but not published.
// An empty version stops the shadow.
func (r *Runtime) SetShadow(ctx context.Context, model, version string) error {
	return r.change(ctx, model, OpShadow, func(st modelState, vs []VersionInfo) (modelState, error) {
		if version != "" && !hasVersion(vs, version) {
			return st, fmt.Errorf("%s %s: %w", model, version, ErrUnknownVersion)
		}
		if version != "" && version == st.Live {
			return st, fmt.Errorf("%s %s is live already", model, version)
		}
		st.Shadow = version
		return st.cleared(version), nil
	})
}

// Promote makes version live (the shadow version when version is empty);
// the version that was live becomes the rollback target and fallback. A
// failed version scores again once promoted by name; a failed shadow is
// not promoted without its name (ErrVersionFailed).
func (r *Runtime) Promote(ctx context.Context, model, version string) error {
	return r.PromoteGated(ctx, model, version, Gate{})
}

// PromoteGated is Promote behind the promotion gate: with a gate metric,
// it refuses (ErrGateRefused) a version whose stored backtest is worse on
// that metric than the live version's, unless the gate is forced.
func (r *Runtime) PromoteGated(ctx context.Context, model, version string, g Gate) error {
	if g.Metric != "" && !slices.Contains(backtest.Metrics, g.Metric) {
		return badRequest{fmt.Errorf("gate metric %q: want one of %v", g.Metric, backtest.Metrics)}
	}
	return r.change(ctx, model, OpPromote, func(st modelState, vs []VersionInfo) (modelState, error) {
		if version == "" {
			if st.Shadow == "" {
				return st, fmt.Errorf("%s: %w to promote", model, ErrNoShadow)
			}
			if st.failed(st.Shadow) {
				return st, fmt.Errorf("%s: shadow %s: %w (%s); promote it by name to score it again",
					model, st.Shadow, ErrVersionFailed, st.Failed[st.Shadow])
			}
			version = st.Shadow
		}
		if !hasVersion(vs, version) {
			return st, fmt.Errorf("%s %s: %w", model, version, ErrUnknownVersion)
		}
		if err := r.gateCheck(model, g, versionOf(vs, version), versionOf(vs, st.Live)); err != nil {
			return st, err
		}
		return promoted(st.cleared(version), version), nil
	})
}

// RemoveVersion deletes a version of model from the registry, its record
// and its file. The live and shadow versions and the rollback target (the
// last of History, the live version's fallback) are refused
// (ErrVersionInUse); an older entry of History is dropped from it.
func (r *Runtime) RemoveVersion(ctx context.Context, model, version string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := r.modelSlot(model); err != nil {
		return err
	}
	r.regM.Lock()
	defer r.regM.Unlock()
	st, err := r.reg.state(model)
	if err != nil {
		return err
	}
	if version == st.Live || version == st.Shadow || (len(st.History) > 0 && st.History[len(st.History)-1] == version) {
		return fmt.Errorf("%s %s: %w (live %q, shadow %q, rollback target %v)", model, version, ErrVersionInUse, st.Live, st.Shadow, st.History)
	}
	vi, err := r.reg.version(model, version)
	if err != nil {
		return err
	}
	if slices.Contains(st.History, version) || st.Failed[version] != "" {
		st.History = slices.DeleteFunc(slices.Clone(st.History), func(v string) bool { return v == version })
		delete(st.Failed, version)
		if err := r.reg.setState(model, st); err != nil {
			return err
		}
	}
	return r.reg.remove(vi)
}

// Rollback makes the previous live version live again.
func (r *Runtime) Rollback(ctx context.Context, model string) error {
	return r.change(ctx, model, OpRollback, func(st modelState, _ []VersionInfo) (modelState, error) {
		n := len(st.History)
		if n == 0 {
			return st, fmt.Errorf("%s: %w", model, ErrNoPrevious)
		}
		st.Live, st.History = st.History[n-1], slices.Clone(st.History[:n-1])
		if st.Shadow == st.Live {
			st.Shadow = ""
		}
		return st.cleared(st.Live), nil
	})
}

// change applies a state transition: it loads the new versions first, so
// a version that does not load leaves everything as it was, then stores
// the state in Badger and swaps the live set.
func (r *Runtime) change(ctx context.Context, model, op string, f func(modelState, []VersionInfo) (modelState, error)) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	s, err := r.modelSlot(model)
	if err != nil {
		return err
	}
	defer func() {
		if err == nil {
			r.notify(RegistryChange{Model: model, Op: op})
		}
	}() // deferred before the lock, so it runs after the unlock
	r.regM.Lock()
	defer r.regM.Unlock()
	st, err := r.reg.state(model)
	if err != nil {
		return err
	}
	vs, err := r.reg.versions(model)
	if err != nil {
		return err
	}
	next, err := f(st, vs)
	if err != nil {
		return err
	}
	for _, v := range []string{next.Live, next.Shadow} {
		if next.failed(v) {
			continue // not scored: apply leaves it out
		}
		if _, err := r.load(s, v); err != nil {
			return err
		}
	}
	if err := r.reg.setState(model, next); err != nil {
		return err
	}
	if err := r.apply(s, next); err != nil {
		return err
	}
	r.m.swaps.WithLabelValues(model, op).Inc()
	r.log.Info("model registry changed", "model", model, "op", op, "live", next.Live, "shadow", next.Shadow)
	return nil
}

func hasVersion(vs []VersionInfo, v string) bool {
	return slices.ContainsFunc(vs, func(x VersionInfo) bool { return x.Version == v })
}

// versionOf returns the version named v of vs (zero when absent).
func versionOf(vs []VersionInfo, v string) VersionInfo {
	for _, vi := range vs {
		if vi.Version == v {
			return vi
		}
	}
	return VersionInfo{}
}

// VersionScorer returns a function that scores one feature vector (values
// of names, in that order) with a stored version of model, built afresh
// from its artifact: the promotion gate compares a candidate with the live
// version on held-out windows with it. A detector's scorer learns from
// the vectors it is given, in order. The function is not safe for
// concurrent use.
func (r *Runtime) VersionScorer(ctx context.Context, model, version string, names []string) (func(x []float64) (float64, error), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := r.modelSlot(model)
	if err != nil {
		return nil, err
	}
	r.regM.Lock()
	vi, err := r.reg.version(model, version)
	var b []byte
	if err == nil {
		b, err = r.reg.artifact(vi)
	}
	r.regM.Unlock()
	if err != nil {
		return nil, err
	}
	sc, err := buildScorer(vi.Kind, b, s.cfg.Features, s.cfg.Optional)
	if err != nil {
		return nil, fmt.Errorf("model %s %s: %w", model, version, err)
	}
	row := &schema.FeatureRow{View: s.view, Entity: schema.Entity{Device: "holdout"}, Names: names}
	var t int64
	return func(x []float64) (float64, error) {
		if len(x) != len(names) {
			return 0, fmt.Errorf("%d values for %d features", len(x), len(names))
		}
		t += 1e9
		row.Values, row.WindowStart, row.WindowEnd = x, t-1e9, t
		var res result
		if err := sc.score(row, &res); err != nil {
			return 0, err
		}
		if len(res.missing) > 0 || math.IsNaN(res.score) {
			return 0, fmt.Errorf("not scored: %s", res.reason)
		}
		return res.score, nil
	}, nil
}

// Threshold returns the score at or above which model acts.
func (r *Runtime) Threshold(model string) (float64, error) {
	s, err := r.modelSlot(model)
	if err != nil {
		return 0, err
	}
	return s.threshold, nil
}

// LiveVersion returns model's live version, or "" when it has none.
func (r *Runtime) LiveVersion(ctx context.Context, model string) (string, error) {
	mi, err := r.Model(ctx, model)
	if err != nil {
		return "", err
	}
	return mi.Live, nil
}

// ModelFeatures returns the feature names model's live version reads, in
// its input order, and the view it scores.
func (r *Runtime) ModelFeatures(model string) ([]string, string, error) {
	s, err := r.modelSlot(model)
	if err != nil {
		return nil, "", err
	}
	set := s.set.Load()
	if set == nil || set.live == nil || set.live.sc == nil {
		return nil, s.view, fmt.Errorf("model %s: no live version loaded", model)
	}
	switch sc := set.live.sc.(type) {
	case *treeScorer:
		return slices.Clone(sc.names), s.view, nil
	case *detectorScorer:
		return slices.Clone(sc.spec.Features), s.view, nil
	}
	return nil, s.view, fmt.Errorf("model %s: kind %s has no feature list", model, s.kind)
}
