package inference

// The model registry: versions as artifact files plus Badger metadata, and
// each model's live/shadow/history state; and reading the configured model
// files. The registry itself is not safe for concurrent use: the runtime
// calls it in Start (on Start's goroutine, before the workers exist) and
// afterwards under Runtime.regM (api.go, failure.go).

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/netfeat/netfeat/learning"
	"github.com/netfeat/netfeat/models"
)

// Registry errors.
var (
	// ErrUnknownModel: no model of that name is configured.
	ErrUnknownModel = errors.New("unknown model")
	// ErrUnknownVersion: the model has no such version.
	ErrUnknownVersion = errors.New("unknown version")
	// ErrVersionExists: a version of that name exists with other content.
	ErrVersionExists = errors.New("version already exists")
	// ErrVersionInUse: the version is live, shadow or the rollback
	// target, and cannot be removed.
	ErrVersionInUse = errors.New("version in use")
	// ErrNoPrevious: there is nothing to roll back to.
	ErrNoPrevious = errors.New("no previous version")
	// ErrNoShadow: promote without a version needs a shadow version.
	ErrNoShadow = errors.New("no shadow version")
	// ErrVersionFailed: promote without a version names a shadow version
	// that was disabled after a failure; name it to promote it anyway.
	ErrVersionFailed = errors.New("version failed")
)

// VersionInfo describes one stored version of a model.
type VersionInfo struct {
	Model   string    `json:"model"`
	Version string    `json:"version"`
	Kind    Kind      `json:"kind"`
	SHA256  string    `json:"sha256"`
	Size    int       `json:"size"`
	Created time.Time `json:"created"`
	// Source says where the version came from: the configured file, the
	// configured detector parameters, or an upload.
	Source string `json:"source"`
	// Path is the artifact file under the data directory.
	Path string `json:"path"`
	// Backtest is the version's latest backtest result (netfeat
	// backtest), which the promotion gate compares; nil: never
	// backtested.
	Backtest *Backtest `json:"backtest,omitempty"`
	// Profile is the reference distribution of the version's training
	// features (quantile bins), copied from a logistic model file; drift
	// is measured against it. Nil for versions without one.
	Profile *learning.Profile `json:"profile,omitempty"`
}

// ModelInfo is the registry state of one model.
type ModelInfo struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	View string `json:"view"`
	// Live publishes decisions; Shadow scores beside it and is only
	// recorded; History lists earlier live versions, most recent last:
	// rollback returns to its last entry, and it is the fallback.
	Live    string   `json:"live"`
	Shadow  string   `json:"shadow,omitempty"`
	History []string `json:"history,omitempty"`
	// Failed lists the versions disabled after a panic or repeated
	// latency-budget overruns, with why: they do not score (a failed live
	// version falls back, a failed shadow is skipped) until an operator
	// promotes, shadows or rolls back to them by name.
	Failed   map[string]string `json:"failed,omitempty"`
	Versions []VersionInfo     `json:"versions"`
}

// modelState is what Badger keeps per model under "model/<name>/state".
type modelState struct {
	Live    string   `json:"live"`
	Shadow  string   `json:"shadow,omitempty"`
	History []string `json:"history,omitempty"`
	// Failed: version → why it was disabled (ModelInfo.Failed). Kept
	// across restarts, so that a version that crashed scoring is not
	// scored again at start.
	Failed map[string]string `json:"failed,omitempty"`
}

// failed reports whether version v is disabled.
func (st modelState) failed(v string) bool {
	_, ok := st.Failed[v]
	return v != "" && ok
}

// cleared returns st with version v no longer failed: an operator chose it.
func (st modelState) cleared(v string) modelState {
	if !st.failed(v) {
		return st
	}
	f := make(map[string]string, len(st.Failed))
	for k, why := range st.Failed {
		if k != v {
			f[k] = why
		}
	}
	if len(f) == 0 {
		f = nil
	}
	st.Failed = f
	return st
}

// registry stores model versions: the artifact as a file under
// <dataDir>/models/<model>/<version>.<ext>, its metadata (with the
// artifact's SHA-256, checked on load) and each model's live/shadow/history
// state in Badger. It is not safe for concurrent use; Runtime serialises
// calls.
type registry struct {
	db  *badger.DB
	dir string
}

const maxHistory = 20

func stateKey(model string) []byte { return []byte("model/" + model + "/state") }
func versionKey(model, version string) []byte {
	return []byte("model/" + model + "/version/" + version)
}

func artifactExt(k Kind) string {
	switch k {
	case KindLightGBM:
		return ".txt"
	case KindONNX:
		return ".onnx"
	}
	return ".json"
}

func (r *registry) state(model string) (modelState, error) {
	var st modelState
	err := r.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(stateKey(model))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error { return json.Unmarshal(v, &st) })
	})
	if err != nil {
		return st, fmt.Errorf("read registry state of %s: %w", model, err)
	}
	return st, nil
}

func (r *registry) setState(model string, st modelState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := r.db.Update(func(txn *badger.Txn) error { return txn.Set(stateKey(model), b) }); err != nil {
		return fmt.Errorf("write registry state of %s: %w", model, err)
	}
	return nil
}

// versions lists a model's versions, oldest first.
func (r *registry) versions(model string) ([]VersionInfo, error) {
	var out []VersionInfo
	prefix := []byte("model/" + model + "/version/")
	err := r.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 16})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var vi VersionInfo
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &vi) }); err != nil {
				return fmt.Errorf("%s: %w", it.Item().Key(), err)
			}
			out = append(out, vi)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", model, err)
	}
	slices.SortFunc(out, func(a, b VersionInfo) int { return a.Created.Compare(b.Created) })
	return out, nil
}

func (r *registry) version(model, version string) (VersionInfo, error) {
	var vi VersionInfo
	err := r.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(versionKey(model, version))
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error { return json.Unmarshal(v, &vi) })
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return vi, fmt.Errorf("%s %s: %w", model, version, ErrUnknownVersion)
	}
	if err != nil {
		return vi, fmt.Errorf("read version %s %s: %w", model, version, err)
	}
	return vi, nil
}

// artifact reads a version's file and checks its digest.
func (r *registry) artifact(vi VersionInfo) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(r.dir, vi.Path))
	if err != nil {
		return nil, fmt.Errorf("read artifact of %s %s: %w", vi.Model, vi.Version, err)
	}
	if got := digest(b); got != vi.SHA256 {
		return nil, fmt.Errorf("artifact of %s %s: sha256 %s, registry says %s", vi.Model, vi.Version, got, vi.SHA256)
	}
	return b, nil
}

// add stores a new version. An empty version name picks v<N+1>. Adding the
// same content under an existing name is a no-op that returns it.
func (r *registry) add(model string, kind Kind, version string, artifact []byte, source string) (VersionInfo, error) {
	sum := digest(artifact)
	existing, err := r.versions(model)
	if err != nil {
		return VersionInfo{}, err
	}
	if version == "" {
		n := len(existing) + 1
		for {
			version = "v" + strconv.Itoa(n)
			if !slices.ContainsFunc(existing, func(v VersionInfo) bool { return v.Version == version }) {
				break
			}
			n++
		}
	}
	if !versionRE.MatchString(version) {
		return VersionInfo{}, fmt.Errorf("version %q must match %s", version, versionRE)
	}
	for _, v := range existing {
		if v.Version == version {
			if v.SHA256 == sum {
				return v, nil
			}
			return VersionInfo{}, fmt.Errorf("%s %s: %w with another sha256", model, version, ErrVersionExists)
		}
	}
	vi := VersionInfo{
		Model: model, Version: version, Kind: kind, SHA256: sum, Size: len(artifact),
		Created: time.Now().UTC(), Source: source, Path: filepath.Join(model, version+artifactExt(kind)),
	}
	if kind == KindLogistic {
		if m, err := learning.LoadLogistic(artifact); err == nil {
			vi.Profile = m.Profile
		}
	}
	full := filepath.Join(r.dir, vi.Path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return VersionInfo{}, fmt.Errorf("store %s %s: %w", model, version, err)
	}
	tmp := full + ".tmp"
	if err := os.WriteFile(tmp, artifact, 0o644); err != nil {
		return VersionInfo{}, fmt.Errorf("store %s %s: %w", model, version, err)
	}
	if err := os.Rename(tmp, full); err != nil {
		return VersionInfo{}, fmt.Errorf("store %s %s: %w", model, version, err)
	}
	b, err := json.Marshal(vi)
	if err != nil {
		return VersionInfo{}, err
	}
	if err := r.db.Update(func(txn *badger.Txn) error { return txn.Set(versionKey(model, version), b) }); err != nil {
		return VersionInfo{}, fmt.Errorf("record %s %s: %w", model, version, err)
	}
	return vi, nil
}

// remove deletes a version's record, then its file.
func (r *registry) remove(vi VersionInfo) error {
	if err := r.db.Update(func(txn *badger.Txn) error { return txn.Delete(versionKey(vi.Model, vi.Version)) }); err != nil {
		return fmt.Errorf("remove %s %s: %w", vi.Model, vi.Version, err)
	}
	if err := os.Remove(filepath.Join(r.dir, vi.Path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove the artifact of %s %s: %w", vi.Model, vi.Version, err)
	}
	return nil
}

// findBySHA returns the version with the given content, if any.
func (r *registry) findBySHA(model, sum string) (VersionInfo, bool, error) {
	vs, err := r.versions(model)
	if err != nil {
		return VersionInfo{}, false, err
	}
	for _, v := range vs {
		if v.SHA256 == sum {
			return v, true, nil
		}
	}
	return VersionInfo{}, false, nil
}

// promoted returns the state after making version live.
func promoted(st modelState, version string) modelState {
	if st.Live == version {
		return st
	}
	if st.Live != "" {
		st.History = append(slices.DeleteFunc(st.History, func(v string) bool { return v == st.Live }), st.Live)
		if len(st.History) > maxHistory {
			st.History = st.History[len(st.History)-maxHistory:]
		}
	}
	st.Live = version
	if st.Shadow == version {
		st.Shadow = ""
	}
	return st
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func shortHash(s string) string { return digest([]byte(s))[:8] }

// BuiltinPrefix marks a model file embedded in the binary: `file:
// builtin:congestion` is models/congestion.json (models.Names lists them).
const BuiltinPrefix = "builtin:"

// ReadModelFile reads a configured model file: an embedded one for
// "builtin:<name>", else the file at path.
func ReadModelFile(path string) ([]byte, error) {
	name, ok := strings.CutPrefix(path, BuiltinPrefix)
	if !ok {
		return os.ReadFile(path)
	}
	b, found := models.Builtin(name)
	if !found {
		return nil, fmt.Errorf("%s: no such builtin model (builtin models: %s)", path, strings.Join(models.Names(), ", "))
	}
	return b, nil
}

// CheckModelFile reads a tree model's configured file and loads it as the
// runtime would at start, so that a configuration check refuses what
// NewRuntime would. Detectors have no file; it returns nil for them.
func CheckModelFile(kind Kind, path string, features []string, optional map[string]float64) error {
	if !kind.isTree() {
		return nil
	}
	b, err := ReadModelFile(path)
	if err != nil {
		return err
	}
	_, err = buildScorer(kind, b, features, optional)
	return err
}

// importConfigured stores the configured artifact as a version when the
// registry does not hold its content yet, and makes it live.
func (r *Runtime) importConfigured(s *slot) error {
	var artifact []byte
	var source string
	if s.kind.isTree() {
		b, err := ReadModelFile(s.cfg.File)
		if err != nil {
			return fmt.Errorf("model %s: %w", s.name, err)
		}
		artifact, source = b, "file "+s.cfg.File
	} else {
		b, err := json.Marshal(detectorSpec{Features: s.cfg.Features, Params: s.cfg.Params})
		if err != nil {
			return err
		}
		artifact, source = b, "config"
	}
	vi, found, err := r.reg.findBySHA(s.name, digest(artifact))
	if err != nil {
		return err
	}
	st, err := r.reg.state(s.name)
	if err != nil {
		return err
	}
	if found && st.Live != "" {
		return nil
	}
	if !found {
		if _, err := buildScorer(s.kind, artifact, s.cfg.Features, s.cfg.Optional); err != nil {
			return fmt.Errorf("model %s (%s): %w", s.name, source, err)
		}
		if vi, err = r.reg.add(s.name, s.kind, "", artifact, source); err != nil {
			return err
		}
		r.log.Info("model version imported from configuration", "model", s.name, "version", vi.Version, "source", source)
	}
	return r.reg.setState(s.name, promoted(st, vi.Version))
}
