package inference

// Scorers: what turns a row into a score (trees, detectors, rules), and
// how feature names bind to a row's columns. Tree scorers are immutable
// and shared by the workers; a detector keeps per-entity state that only
// the worker owning that entity touches (its janitor pass runs on the
// janitor goroutine under the detector's own lock).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/netfeat/netfeat/inference/anomaly"
	"github.com/netfeat/netfeat/inference/onnx"
	"github.com/netfeat/netfeat/inference/xgboost"
	"github.com/netfeat/netfeat/learning"
	"github.com/netfeat/netfeat/schema"
)

// ErrMissingFeature is returned when a row lacks a feature a model reads.
var ErrMissingFeature = errors.New("feature not in row")

// result is one score of one row.
type result struct {
	score    float64
	reason   string
	features map[string]float64
	// ruled: a fallback rule scored (1 fires, 0 does not), so the model's
	// threshold does not apply.
	ruled bool
	// missing lists required features the row had no data for: the model
	// did not decide (its score is NaN, its action none).
	missing []string
	// noWindow: an event came before the entity's first closed window.
	noWindow bool
}

// scorer scores rows for one model version. Calls for the same entity never
// overlap (rows are sharded onto workers by entity); calls for different
// entities may run concurrently.
type scorer interface {
	score(row *schema.FeatureRow, res *result) error
}

// buildScorer turns a version's artifact into a scorer. features overrides
// the feature names of tree models when not empty; optional gives the
// features the model may do without and the values used in their place.
//
// A loader that panics on a file it did not expect is a bug; the panic is
// returned as an ErrInvalidModel error, so that an upload or a restart
// refuses the file instead of ending the process.
func buildScorer(kind Kind, artifact []byte, features []string, optional map[string]float64) (sc scorer, err error) {
	defer func() {
		if p := recover(); p != nil {
			sc, err = nil, fmt.Errorf("%w: %s loader panicked: %v", ErrInvalidModel, kind, p)
		}
	}()
	switch kind {
	case KindXGBoost:
		m, err := xgboost.Load(bytes.NewReader(artifact))
		if err != nil {
			return nil, err
		}
		names, err := treeFeatures(m.FeatureNames(), features, m.NumFeature())
		if err != nil {
			return nil, err
		}
		return &treeScorer{kind: kind, names: names, bind: binding{names: names}, predict: m.Predict, opt: optionals(names, optional)}, nil
	case KindLightGBM:
		m, err := loadLightGBM(artifact)
		if err != nil {
			return nil, err
		}
		names, err := treeFeatures(lightGBMFeatureNames(artifact), features, m.nFeatures)
		if err != nil {
			return nil, err
		}
		return &treeScorer{kind: kind, names: names, bind: binding{names: names}, predict: m.predict, opt: optionals(names, optional)}, nil
	case KindONNX:
		m, err := onnx.Load(artifact)
		if err != nil {
			return nil, err
		}
		names, err := treeFeatures(m.FeatureNames(), features, m.NumFeature())
		if err != nil {
			return nil, err
		}
		return &treeScorer{kind: kind, names: names, bind: binding{names: names}, predict: m.Predict, opt: optionals(names, optional)}, nil
	case KindLogistic:
		m, err := learning.LoadLogistic(artifact)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidModel, err)
		}
		names, err := treeFeatures(m.FeatureNames(), features, m.NumFeature())
		if err != nil {
			return nil, err
		}
		return &treeScorer{kind: kind, names: names, bind: binding{names: names}, predict: m.Predict, opt: optionals(names, optional), profile: m.Profile}, nil
	case KindEWMA, KindMAD, KindSeasonal:
		var spec detectorSpec
		dec := json.NewDecoder(bytes.NewReader(artifact))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil {
			return nil, fmt.Errorf("decode %s detector spec: %w", kind, err)
		}
		if len(spec.Features) == 0 {
			return nil, fmt.Errorf("%s detector spec names no features", kind)
		}
		if errs := spec.Params.validate("params", kind); len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		if b := spec.Baseline; b != nil {
			if kind == KindMAD {
				return nil, fmt.Errorf("%w: a mad detector takes no baseline (it keeps a window of values)", ErrInvalidModel)
			}
			if err := b.Check(spec.Features); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidModel, err)
			}
			slots := spec.Params.withDefaults(kind).Slots
			for _, f := range b.Features {
				if kind == KindSeasonal && f.Slots != nil && len(f.Slots) != slots {
					return nil, fmt.Errorf("%w: baseline of %s has %d slots, the detector %d", ErrInvalidModel, f.Name, len(f.Slots), slots)
				}
			}
		}
		return &detectorScorer{
			kind: kind, spec: spec, params: spec.Params.withDefaults(kind),
			bind: binding{names: spec.Features}, state: map[schema.Entity]*detState{}, opt: optionals(spec.Features, optional),
		}, nil
	}
	return nil, fmt.Errorf("unknown model kind %q", kind)
}

// detectorSpec is the artifact of a detector version: what it watches and
// how it learns.
type detectorSpec struct {
	Features []string       `json:"features"`
	Params   DetectorParams `json:"params"`
	// Baseline, when present, seeds each entity's detectors (ewma,
	// seasonal) with trained statistics, so they score from the first
	// window (learning.FitBaseline, `netfeat train --kind`).
	Baseline *learning.Baseline `json:"baseline,omitempty"`
}

func treeFeatures(inModel, override []string, n int) ([]string, error) {
	names := inModel
	if len(override) > 0 {
		names = override
	}
	if len(names) == 0 {
		return nil, errors.New("the model file stores no feature names: list them in the model's features")
	}
	if len(names) != n {
		return nil, fmt.Errorf("%d feature names for a model of %d features", len(names), n)
	}
	return names, nil
}

// lightGBMFeatureNames reads the feature_names= line of a LightGBM text
// model header.
func lightGBMFeatureNames(artifact []byte) []string {
	sc := bufio.NewScanner(bytes.NewReader(artifact))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "feature_names="); ok {
			return strings.Fields(v)
		}
		if strings.HasPrefix(line, "Tree=") {
			break
		}
	}
	return nil
}

// binding maps a model's feature names to positions in rows of one view.
// Rows of a view share one Names slice, so the binding is cached by the
// slice's address and recomputed only when another slice arrives.
type binding struct {
	names []string
	cache atomic.Pointer[boundIdx]
}

type boundIdx struct {
	key *string
	n   int
	idx []int
	err error
}

func (b *binding) indexes(row *schema.FeatureRow) ([]int, error) {
	key := unsafe.SliceData(row.Names)
	if c := b.cache.Load(); c != nil && c.key == key && c.n == len(row.Names) {
		return c.idx, c.err
	}
	c := &boundIdx{key: key, n: len(row.Names), idx: make([]int, len(b.names))}
	pos := make(map[string]int, len(row.Names))
	for i, n := range row.Names {
		pos[n] = i
	}
	var missing []string
	for i, n := range b.names {
		j, ok := pos[n]
		if !ok {
			missing = append(missing, n)
		}
		c.idx[i] = j
	}
	if missing != nil {
		c.err = fmt.Errorf("%w: view %s has no %s", ErrMissingFeature, row.View, strings.Join(missing, ", "))
	}
	b.cache.Store(c)
	return c.idx, c.err
}

// optionals returns, per feature of names, the value to use when a row has
// no data for it, or NaN when the feature is required.
func optionals(names []string, optional map[string]float64) []float64 {
	out := make([]float64, len(names))
	for i, n := range names {
		out[i] = math.NaN()
		if v, ok := optional[n]; ok {
			out[i] = v
		}
	}
	return out
}

// treeScorer scores with a stateless tree ensemble.
type treeScorer struct {
	kind    Kind
	names   []string
	bind    binding
	predict func(x []float64) float64
	opt     []float64 // per feature: the default of an optional one, NaN when required
	// profile is the reference distribution of the training features
	// (logistic models), which drift is measured against; nil if none.
	profile *learning.Profile
}

// vectors holds feature vectors for treeScorer.score.
var vectors = sync.Pool{New: func() any { x := make([]float64, 0, 64); return &x }}

func (s *treeScorer) score(row *schema.FeatureRow, res *result) error {
	idx, err := s.bind.indexes(row)
	if err != nil {
		return err
	}
	// The vector escapes into predict: reuse one rather than allocate
	// one per row.
	xp := vectors.Get().(*[]float64)
	defer vectors.Put(xp)
	x := (*xp)[:0]
	res.features = make(map[string]float64, len(idx))
	for i, j := range idx {
		v := row.Values[j]
		if math.IsNaN(v) {
			if v = s.opt[i]; math.IsNaN(v) {
				res.missing = append(res.missing, s.names[i])
			}
		}
		x = append(x, v)
		res.features[s.names[i]] = v
	}
	*xp = x
	if len(res.missing) > 0 {
		res.score = math.NaN()
		res.reason = "not decided: no data for " + strings.Join(res.missing, ", ")
		return nil
	}
	res.score = s.predict(x)
	if math.IsNaN(res.score) || math.IsInf(res.score, 0) {
		return fmt.Errorf("%s model returned %v", s.kind, res.score)
	}
	var rb [48]byte
	res.reason = string(appendG4(append(append(rb[:0], s.kind...), " score "...), res.score))
	return nil
}

// detector is one series' online detector.
type detector interface {
	observe(t time.Time, v float64) float64
}

type ewmaDet struct{ *anomaly.EWMA }

func (d ewmaDet) observe(_ time.Time, v float64) float64 { return d.Observe(v) }

type madDet struct{ *anomaly.MAD }

func (d madDet) observe(_ time.Time, v float64) float64 { return d.Observe(v) }

type seasonalDet struct{ *anomaly.Seasonal }

func (d seasonalDet) observe(t time.Time, v float64) float64 { return d.Observe(t, v) }

// detectorScorer keeps one detector per entity and feature; its score is
// the largest of the features' scores.
type detectorScorer struct {
	kind   Kind
	spec   detectorSpec
	params DetectorParams
	bind   binding
	opt    []float64 // as treeScorer.opt
	mu     sync.Mutex
	state  map[schema.Entity]*detState
}

// detState is one entity's detectors and when they last scored (Unix ns,
// wall clock), for forget.
type detState struct {
	dets []detector
	used atomic.Int64
}

// forget drops the state of entities not scored since cutoff (Unix ns), so
// that entities that went away do not hold memory forever.
func (s *detectorScorer) forget(cutoff int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for e, st := range s.state {
		if st.used.Load() < cutoff {
			delete(s.state, e)
			n++
		}
	}
	return n
}

// newDetector returns a detector for feature i, seeded from the spec's
// baseline when it has one.
func (s *detectorScorer) newDetector(i int) detector {
	p := s.params
	var fb *learning.FeatureBaseline
	if b := s.spec.Baseline; b != nil {
		fb = &b.Features[i]
	}
	switch s.kind {
	case KindMAD:
		return madDet{anomaly.NewMAD(p.Window, p.Warmup)}
	case KindSeasonal:
		d := anomaly.NewSeasonal(p.Period, p.Slots, p.Alpha, p.Warmup)
		if fb != nil {
			for slot, sb := range fb.Slots {
				if sb.N > 0 {
					d.Seed(slot, sb.Mean, sb.Var)
				}
			}
		}
		return seasonalDet{d}
	}
	d := anomaly.NewEWMA(p.Alpha, p.Warmup)
	if fb != nil {
		d.Seed(fb.Mean, fb.Var)
	}
	return ewmaDet{d}
}

func (s *detectorScorer) score(row *schema.FeatureRow, res *result) error {
	idx, err := s.bind.indexes(row)
	if err != nil {
		return err
	}
	s.mu.Lock()
	st, ok := s.state[row.Entity]
	if !ok {
		st = &detState{dets: make([]detector, len(idx))}
		for i := range st.dets {
			st.dets[i] = s.newDetector(i)
		}
		s.state[row.Entity] = st
	}
	s.mu.Unlock()
	st.used.Store(time.Now().UnixNano())
	dets := st.dets
	// The entity's detectors are touched only by the worker that owns the
	// entity, so they need no lock of their own.
	t := time.Unix(0, row.WindowEnd)
	res.features = make(map[string]float64, len(idx))
	res.score = math.NaN()
	worst := -1
	for i, j := range idx {
		v := row.Values[j]
		if math.IsNaN(v) && math.IsNaN(s.opt[i]) {
			res.missing = append(res.missing, s.spec.Features[i])
		}
		res.features[s.spec.Features[i]] = v
		z := dets[i].observe(t, v)
		if !math.IsNaN(z) && (worst < 0 || z > res.score) {
			res.score, worst = z, i
		}
	}
	if len(res.missing) > 0 {
		// Every series still learned from what it had.
		res.score = math.NaN()
		res.reason = "not decided: no data for " + strings.Join(res.missing, ", ")
		return nil
	}
	if worst < 0 {
		res.score = 0
		res.reason = fmt.Sprintf("%s: learning (fewer than %d values, or no data)", s.kind, s.params.Warmup)
		return nil
	}
	name := s.spec.Features[worst]
	res.reason = fmt.Sprintf("%s: %s=%.4g is %.2fσ from its baseline", s.kind, name, row.Values[idx[worst]], res.score)
	return nil
}
