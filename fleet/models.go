package fleet

// Model roll-out from the hub (docs/fleet.md, "Model roll-out"): a
// ModelPublisher on the hub puts the model versions of the hub's registry
// into a JetStream Object Store bucket and each model's desired state into
// a KV bucket; a ModelFollower on every edge watches that state through
// the hub's domain, installs the versions into its own registry, and
// reports what it runs into a status bucket on the hub.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/netfeat/netfeat/inference"
)

// Buckets of the model roll-out, on the hub (domain DefaultHubDomain).
const (
	// DefaultModelBucket is the Object Store bucket of model versions:
	// object ModelObjectName(model, version), the model file.
	DefaultModelBucket = "NETFEAT_MODELS"
	// DefaultModelPolicyBucket is the KV bucket of desired states: key the
	// model, value a ModelPolicy.
	DefaultModelPolicyBucket = "NETFEAT_MODEL_POLICY"
	// DefaultModelStatusBucket is the KV bucket where edges report: key
	// ModelStatusKey(site, model), value a ModelStatus.
	DefaultModelStatusBucket = "NETFEAT_MODEL_STATUS"
)

// Metadata keys of a model object, besides the Object Store's own digest.
const (
	MetaModel   = "model"
	MetaVersion = "version"
	MetaKind    = "kind"
	MetaSHA256  = "sha256"
	MetaCreated = "created"
)

// Reasons an edge refuses a published version
// (netfeat_fleet_model_refused_total{reason}).
const (
	RefusedChecksum = "checksum"  // the bytes do not have the policy's SHA-256
	RefusedOversize = "oversized" // the object is larger than max_model_bytes
	RefusedInvalid  = "invalid"   // the registry refused it: it does not load, or a kind or version conflict
)

// ModelObjectName is the name of a version's object: "<model>@<version>".
func ModelObjectName(model, version string) string { return model + "@" + version }

// ModelStatusKey is the status bucket's key of a model on a site:
// "<site>.<model>".
func ModelStatusKey(site, model string) string { return site + "." + model }

// ModelPolicy is the desired state of one model across the fleet: the value
// of the model's key in the policy bucket. Every edge runs Live live and
// Shadow (when set) in shadow; the SHA-256s are the registry's, and an edge
// installs only bytes that have them.
type ModelPolicy struct {
	Model        string    `json:"model"`
	Kind         string    `json:"kind"`
	Live         string    `json:"live"`
	LiveSHA256   string    `json:"live_sha256"`
	Shadow       string    `json:"shadow,omitempty"`
	ShadowSHA256 string    `json:"shadow_sha256,omitempty"`
	Updated      time.Time `json:"updated"`
}

func (p ModelPolicy) same(q ModelPolicy) bool {
	p.Updated, q.Updated = time.Time{}, time.Time{}
	return p == q
}

// ModelStatus is what an edge reports for one model: the value of
// ModelStatusKey(site, model) in the status bucket.
type ModelStatus struct {
	Site  string `json:"site"`
	Model string `json:"model"`
	// Live and Shadow are what the edge's registry runs.
	Live   string `json:"live"`
	Shadow string `json:"shadow,omitempty"`
	// WantLive and WantShadow are the policy the edge last saw.
	WantLive   string `json:"want_live"`
	WantShadow string `json:"want_shadow,omitempty"`
	// Error is why the edge does not run the policy; empty when it does.
	Error   string    `json:"error,omitempty"`
	Updated time.Time `json:"updated"`
}

// ModelRolloutConfig names the roll-out's buckets; both sides use it.
type ModelRolloutConfig struct {
	// Bucket, PolicyBucket and StatusBucket default to DefaultModelBucket,
	// DefaultModelPolicyBucket and DefaultModelStatusBucket.
	Bucket       string `yaml:"bucket"`
	PolicyBucket string `yaml:"policy_bucket"`
	StatusBucket string `yaml:"status_bucket"`
	// Replicas of the three buckets, set by the hub. Default 3.
	Replicas int `yaml:"replicas"`
	// HubDomain is the hub's JetStream domain, for edges. Default
	// DefaultHubDomain.
	HubDomain string `yaml:"hub_domain"`
	// MaxModelBytes: an edge refuses a larger object without downloading
	// it. Default 64 MiB (the HTTP upload's limit).
	MaxModelBytes int64 `yaml:"max_model_bytes"`
	// RetryDelay is how long either side waits before retrying what
	// failed for want of the hub (or, on the hub, of JetStream). Default 1s.
	RetryDelay time.Duration `yaml:"retry_delay"`
	// Resync is how often an edge lists the whole policy bucket besides
	// watching it, in case the watch missed a change. Default 30s.
	Resync time.Duration `yaml:"resync"`
	// OpTimeout bounds one request to JetStream. Default 10s.
	OpTimeout time.Duration `yaml:"op_timeout"`
}

func (c ModelRolloutConfig) withDefaults() ModelRolloutConfig {
	if c.Bucket == "" {
		c.Bucket = DefaultModelBucket
	}
	if c.PolicyBucket == "" {
		c.PolicyBucket = DefaultModelPolicyBucket
	}
	if c.StatusBucket == "" {
		c.StatusBucket = DefaultModelStatusBucket
	}
	if c.Replicas == 0 {
		c.Replicas = 3
	}
	if c.HubDomain == "" {
		c.HubDomain = DefaultHubDomain
	}
	if c.MaxModelBytes == 0 {
		c.MaxModelBytes = 64 << 20
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = time.Second
	}
	if c.Resync == 0 {
		c.Resync = 30 * time.Second
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = 10 * time.Second
	}
	return c
}

// Validate checks c after defaults are applied.
func (c *ModelRolloutConfig) Validate() error {
	d := c.withDefaults()
	if d.Replicas < 1 || d.Replicas > 5 {
		return fmt.Errorf("fleet: model roll-out replicas %d: want 1 to 5", d.Replicas)
	}
	if d.MaxModelBytes < 1 {
		return fmt.Errorf("fleet: model roll-out max_model_bytes %d: want > 0", d.MaxModelBytes)
	}
	if d.RetryDelay < 0 || d.Resync < 0 || d.OpTimeout < 0 {
		return errors.New("fleet: model roll-out: negative duration")
	}
	return nil
}

// ReadModelStatus returns every status in the status bucket, by site then
// model. js is a JetStream context of the hub (jetstream.New on a hub
// connection, or jetstream.NewWithDomain(nc, "hub") from an edge).
func ReadModelStatus(ctx context.Context, js jetstream.JetStream, bucket string) ([]ModelStatus, error) {
	if bucket == "" {
		bucket = DefaultModelStatusBucket
	}
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("fleet: model status bucket %s: %w", bucket, err)
	}
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("fleet: list model status: %w", err)
	}
	defer lister.Stop()
	var out []ModelStatus
	for k := range lister.Keys() {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("fleet: model status %s: %w", k, err)
		}
		var st ModelStatus
		if err := json.Unmarshal(e.Value(), &st); err != nil {
			return nil, fmt.Errorf("fleet: model status %s: %w", k, err)
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ModelStatus) int {
		if c := strings.Compare(a.Site, b.Site); c != 0 {
			return c
		}
		return strings.Compare(a.Model, b.Model)
	})
	return out, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ModelSource is the hub's model registry as the publisher sees it;
// *inference.Runtime implements it.
type ModelSource interface {
	// Models returns every configured model and rule.
	Models(ctx context.Context) ([]inference.ModelInfo, error)
	// Model returns one model's registry state.
	Model(ctx context.Context, name string) (inference.ModelInfo, error)
	// VersionArtifact returns a stored version and its checked file.
	VersionArtifact(ctx context.Context, model, version string) (inference.VersionInfo, []byte, error)
	// ObserveRegistry registers the function told about each change (nil
	// stops it); see inference.Runtime.ObserveRegistry for its contract.
	ObserveRegistry(fn func(inference.RegistryChange))
}

// ModelInstaller is an edge's model registry as the follower sees it;
// *inference.Runtime implements it. Its methods are safe for concurrent
// use and return the errors the registry's HTTP API answers with.
type ModelInstaller interface {
	// Model returns one model's registry state.
	Model(ctx context.Context, name string) (inference.ModelInfo, error)
	// InstallVersion stores a version after checking that it loads, as an
	// upload does; the same content under the same name is a no-op.
	InstallVersion(ctx context.Context, model, version string, artifact []byte, source string) (inference.VersionInfo, error)
	// Promote makes a stored version live.
	Promote(ctx context.Context, model, version string) error
	// SetShadow makes a stored version score in shadow ("" stops it).
	SetShadow(ctx context.Context, model, version string) error
}
