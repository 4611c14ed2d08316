// Package fleet is the data path between netfeat edges and a netfeat hub on
// NATS JetStream: an Edge writes what its site decided and saw into local
// streams of its own JetStream domain, and a Hub on the hub's JetStream
// cluster sources those streams across the leaf-node connection and hands
// every item, tagged with its site, to a Sink.
//
// Nothing here is home-made transport: the edge's embedded NATS server is a
// leaf node of the hub with a JetStream domain named after the site; the hub
// streams source the edge streams through the domain's API prefix
// ($JS.<site>.API), so JetStream itself stores and forwards across a cut
// link. Every message carries a Nats-Msg-Id derived from what it describes,
// so a message published twice (a retry, a restarted edge) is stored once
// by the edge stream and once by the hub stream (their duplicate windows).
//
// Stream names, subjects, limits, message ids and what each failure loses
// are documented in docs/fleet.md.
package fleet
