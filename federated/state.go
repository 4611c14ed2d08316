package federated

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// State is what a Coordinator keeps across restarts: the global weights,
// their version and the last round number started (round numbers are
// never reused, so an edge never takes a new round for a repeat).
type State struct {
	Model     string `json:"model"`
	Version   uint64 `json:"version"`
	LastRound uint64 `json:"last_round"`
	Weights   Floats `json:"weights"`
}

// StateStore keeps a Coordinator's State.
type StateStore interface {
	// Load returns the model's state; ok false when there is none yet.
	Load(ctx context.Context, model string) (s State, ok bool, err error)
	// Save replaces the model's state.
	Save(ctx context.Context, s State) error
}

// DefaultStateBucket is the KV bucket of KVStateStore.
const DefaultStateBucket = "NETFEAT_FL_STATE"

// KVStateStore keeps states in a JetStream KV bucket of the hub cluster,
// one key per model, created on first use.
type KVStateStore struct {
	js       jetstream.JetStream
	bucket   string
	replicas int

	mu sync.Mutex
	kv jetstream.KeyValue
}

// NewKVStateStore returns a store in bucket (DefaultStateBucket when
// empty) with replicas replicas (at least 1).
func NewKVStateStore(js jetstream.JetStream, bucket string, replicas int) *KVStateStore {
	if bucket == "" {
		bucket = DefaultStateBucket
	}
	return &KVStateStore{js: js, bucket: bucket, replicas: max(replicas, 1)}
}

func (s *KVStateStore) bucketKV(ctx context.Context) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv != nil {
		return s.kv, nil
	}
	kv, err := s.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: s.bucket, Description: "netfeat federated learning: global weights per model", History: 1,
		Replicas: s.replicas, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("federated: state bucket %s: %w", s.bucket, err)
	}
	s.kv = kv
	return kv, nil
}

// Load reads the model's state.
func (s *KVStateStore) Load(ctx context.Context, model string) (State, bool, error) {
	kv, err := s.bucketKV(ctx)
	if err != nil {
		return State{}, false, err
	}
	e, err := kv.Get(ctx, model)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("federated: load state of %s: %w", model, err)
	}
	var st State
	if err := decode(e.Value(), &st); err != nil {
		return State{}, false, fmt.Errorf("federated: state of %s: %w", model, err)
	}
	return st, true, nil
}

// Save writes the model's state.
func (s *KVStateStore) Save(ctx context.Context, st State) error {
	kv, err := s.bucketKV(ctx)
	if err != nil {
		return err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("federated: encode state: %w", err)
	}
	if _, err := kv.Put(ctx, st.Model, b); err != nil {
		return fmt.Errorf("federated: save state of %s: %w", st.Model, err)
	}
	return nil
}
