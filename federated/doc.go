// Package federated trains one model across the fleet's edges without their
// data leaving them (docs/learning.md, "Federated learning").
//
// A round, run by the hub's Coordinator: the hub announces the round and
// the current global weights; every edge's Participant publishes a fresh
// X25519 public key, trains a local update on its own windows (a Trainer),
// clips it, quantises n·update and n (its sample count) to a ring of
// integers mod 2^64, adds one pseudo-random mask per other edge (+ towards
// the edges after it in order, − towards those before) and publishes the
// masked vector. The masks cancel in the sum, so the hub learns Σ n·update
// and Σ n, never one edge's update (secure aggregation after Bonawitz et
// al. 2017, without its self-masks: see "Gaps" in the docs). When edges
// that sent a key send no masked update, the survivors reveal their
// pairwise seeds with those edges only, and the hub removes the masks left
// in the sum. The hub adds the weighted mean update to the global weights
// and publishes the new version to the edges.
//
// Messages travel on core NATS subjects (Subject) that cross the edges'
// leaf connections: no sample, window or feature row is ever published.
package federated
