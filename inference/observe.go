package inference

// Telling others about registry changes (ObserveRegistry) and handing out
// stored artifacts (VersionArtifact): what the fleet's model roll-out needs
// from the registry of a hub.

import (
	"context"
	"fmt"
)

// Registry operations named by RegistryChange.Op.
const (
	OpAdd      = "add"      // a version was stored (AddVersion, InstallVersion)
	OpShadow   = "shadow"   // SetShadow
	OpPromote  = "promote"  // Promote
	OpRollback = "rollback" // Rollback
)

// RegistryChange says that an operator's change of a model's registry
// state succeeded.
type RegistryChange struct {
	// Model is the model that changed.
	Model string
	// Op is OpAdd, OpShadow, OpPromote or OpRollback.
	Op string
	// Version is the version stored, for OpAdd; empty otherwise.
	Version string
}

// ObserveRegistry makes fn be called after every successful AddVersion,
// InstallVersion, SetShadow, Promote and Rollback; nil stops it. It may be
// called at any time; a change already under way may still report to the
// previous observer.
//
// The contract of fn: it is called on the goroutine that made the change
// (an HTTP handler's, for the API), after the change is stored and applied
// and after the registry's lock is released, so fn may call Model and
// VersionArtifact. It must return quickly: the caller of the change waits
// for it, so fn should hand the work to a goroutine of its own. Calls for
// concurrent changes may come in any order: fn should read the current
// state (Model) rather than infer it from a sequence of changes. Changes
// the runtime makes by itself (a version disabled after a failure, the
// import of a configured model file at Start) are not reported.
func (r *Runtime) ObserveRegistry(fn func(RegistryChange)) {
	if fn == nil {
		r.observer.Store(nil)
		return
	}
	r.observer.Store(&fn)
}

func (r *Runtime) notify(c RegistryChange) {
	if fn := r.observer.Load(); fn != nil {
		(*fn)(c)
	}
}

// VersionArtifact returns a stored version of model and its model file,
// whose SHA-256 it checks against the registry's record (an artifact
// changed on disk is an error). Detector versions return their parameters
// as JSON, the form in which they are stored.
func (r *Runtime) VersionArtifact(ctx context.Context, model, version string) (VersionInfo, []byte, error) {
	if err := ctx.Err(); err != nil {
		return VersionInfo{}, nil, err
	}
	if _, err := r.modelSlot(model); err != nil {
		return VersionInfo{}, nil, err
	}
	r.regM.Lock()
	defer r.regM.Unlock()
	vi, err := r.reg.version(model, version)
	if err != nil {
		return VersionInfo{}, nil, err
	}
	b, err := r.reg.artifact(vi)
	if err != nil {
		return VersionInfo{}, nil, fmt.Errorf("model %s: %w", model, err)
	}
	return vi, b, nil
}
