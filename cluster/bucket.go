package cluster

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
)

// nodeRecord is the value of nodes.<node>: a node's lease. The server
// deletes it TTL (LeaseTTL - 1 s) after its last write (a per-message
// TTL), leaving a marker that watchers see.
type nodeRecord struct {
	Node string `json:"node"`
	// Incarnation is new each time the node registers a lease; an owner
	// record is valid only while the lease of its incarnation lives.
	Incarnation string        `json:"incarnation"`
	Started     time.Time     `json:"started"` // when this incarnation registered
	TTL         time.Duration `json:"ttl_ns"`  // the server-side TTL
	// TargetsHash identifies the node's target list, so that Status can
	// show nodes configured with different lists.
	TargetsHash string `json:"targets_hash"`
	Targets     int    `json:"targets"`
}

// ownerRecord is the value of owners.<target>. Node "" means released.
type ownerRecord struct {
	Target      string    `json:"target"`
	Node        string    `json:"node"`
	Incarnation string    `json:"incarnation,omitempty"`
	Epoch       uint64    `json:"epoch"`
	Since       time.Time `json:"since"`
}

// drainRecord is the value of drain.<node>.
type drainRecord struct {
	Node  string    `json:"node"`
	Since time.Time `json:"since"`
}

// targetsHash is a short digest of a sorted target list.
func targetsHash(sorted []string) string {
	h := sha256.New()
	for _, t := range sorted {
		h.Write([]byte(t))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// OpenBucket creates the site's ownership bucket, or opens it and turns on
// per-key TTLs if it exists. replicas is 1 on a single server, 3 on a
// replicated JetStream.
func OpenBucket(ctx context.Context, js jetstream.JetStream, name string, replicas int) (jetstream.KeyValue, error) {
	if name == "" {
		name = DefaultBucket
	}
	if replicas == 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         name,
		Description:    "netfeat target ownership: node leases, target owners, drains",
		History:        1,
		Replicas:       replicas,
		LimitMarkerTTL: markerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster bucket %s: %w", name, err)
	}
	return kv, nil
}

// Drain marks node as draining (drain true) or not: a draining node keeps
// its lease but is given no targets, so the others take its targets over.
// It stays draining, across restarts, until undrained.
func Drain(ctx context.Context, kv jetstream.KeyValue, node string, drain bool) error {
	if err := checkName(node); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	key := drainPrefix + escape(node)
	if !drain {
		if err := kv.Delete(ctx, key); err != nil {
			return fmt.Errorf("undrain %s: %w", node, err)
		}
		return nil
	}
	v, _ := json.Marshal(drainRecord{Node: node, Since: time.Now().UTC()})
	if _, err := kv.Put(ctx, key, v); err != nil {
		return fmt.Errorf("drain %s: %w", node, err)
	}
	return nil
}

// Status is the state of a site's cluster as the bucket holds it.
type Status struct {
	// Nodes are the nodes holding a lease, and drained nodes, by name.
	Nodes []NodeStatus `json:"nodes"`
	// Targets are the targets with an owner record, by name.
	Targets []TargetStatus `json:"targets"`
}

// NodeStatus is one node's lease.
type NodeStatus struct {
	Node        string    `json:"node"`
	Incarnation string    `json:"incarnation,omitempty"`
	Started     time.Time `json:"started,omitzero"`
	// Alive is true while the node's lease lives; a drained node without
	// a lease is listed with Alive false.
	Alive bool `json:"alive"`
	// LeaseExpires is when the server expires the lease unless it is
	// renewed: the time of its last renewal plus its TTL.
	LeaseExpires time.Time `json:"lease_expires,omitzero"`
	Draining     bool      `json:"draining"`
	// Targets and TargetsHash describe the node's configured target list;
	// nodes of one site should agree.
	Targets     int    `json:"targets"`
	TargetsHash string `json:"targets_hash,omitempty"`
	// Owned counts the targets whose owner record names this lease.
	Owned int `json:"owned"`
}

// TargetStatus is one target's owner record.
type TargetStatus struct {
	Target string `json:"target"`
	// Owner is the owning node, "" when released.
	Owner string `json:"owner"`
	// Valid is true when the owner's lease (of the incarnation that took
	// the target) is alive; a target whose owner died stays recorded
	// until another node takes it.
	Valid bool      `json:"valid"`
	Epoch uint64    `json:"epoch"`
	Since time.Time `json:"since"`
}

// ReadStatus reads the cluster state from the bucket (what `netfeat
// cluster status` shows). It needs no running node.
func ReadStatus(ctx context.Context, kv jetstream.KeyValue) (Status, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return Status{}, fmt.Errorf("cluster status: %w", err)
	}
	defer w.Stop()
	nodes := map[string]*NodeStatus{}
	incs := map[string]string{}
	var owners []ownerRecord
	drains := map[string]bool{}
	for {
		var e jetstream.KeyValueEntry
		select {
		case <-ctx.Done():
			return Status{}, fmt.Errorf("cluster status: %w", ctx.Err())
		case e = <-w.Updates():
		}
		if e == nil {
			break
		}
		key := e.Key()
		switch {
		case strings.HasPrefix(key, nodesPrefix):
			var r nodeRecord
			if json.Unmarshal(e.Value(), &r) != nil || r.Node == "" {
				continue
			}
			nodes[r.Node] = &NodeStatus{
				Node: r.Node, Incarnation: r.Incarnation, Started: r.Started, Alive: true,
				LeaseExpires: e.Created().Add(r.TTL), Targets: r.Targets, TargetsHash: r.TargetsHash,
			}
			incs[r.Node] = r.Incarnation
		case strings.HasPrefix(key, ownersPrefix):
			var r ownerRecord
			if json.Unmarshal(e.Value(), &r) != nil || r.Target == "" {
				continue
			}
			owners = append(owners, r)
		case strings.HasPrefix(key, drainPrefix):
			if n, err := unescape(key[len(drainPrefix):]); err == nil {
				drains[n] = true
			}
		}
	}
	var st Status
	for n := range drains {
		if nodes[n] == nil {
			nodes[n] = &NodeStatus{Node: n}
		}
		nodes[n].Draining = true
	}
	for _, o := range owners {
		ts := TargetStatus{Target: o.Target, Owner: o.Node, Epoch: o.Epoch, Since: o.Since}
		if inc, ok := incs[o.Node]; ok && inc == o.Incarnation && o.Node != "" {
			ts.Valid = true
			nodes[o.Node].Owned++
		}
		st.Targets = append(st.Targets, ts)
	}
	for _, n := range nodes {
		st.Nodes = append(st.Nodes, *n)
	}
	slices.SortFunc(st.Nodes, func(a, b NodeStatus) int { return strings.Compare(a.Node, b.Node) })
	slices.SortFunc(st.Targets, func(a, b TargetStatus) int { return strings.Compare(a.Target, b.Target) })
	return st, nil
}

// isRevisionMismatch reports a failed compare-and-set.
func isRevisionMismatch(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
