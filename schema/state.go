package schema

import "errors"

// ErrStateNotFound is returned (wrapped) by StateStore.GetState for a key
// never stored.
var ErrStateNotFound = errors.New("state not found")

// StateStore keeps small opaque blobs for stages that must carry state
// across restarts (the normalizer's counter state, a collector's state).
// The feature store implements it.
//
// Contract:
//   - PutState stores val under key, replacing what was there; when it
//     returns nil, the blob is durable as far as the store's other data is
//     (a process crash after it does not lose it). The store does not keep
//     val: the caller may reuse it.
//   - GetState returns a copy of the blob last stored under key (the
//     caller owns it), or an error wrapping ErrStateNotFound when there is
//     none; any other error means the store could not be read.
//   - Keys are arbitrary strings; stages name theirs with a prefix of their
//     own ("normalize/rate-state"). Blobs are meant to be small (kilobytes
//     to a few megabytes), written at start and stop, not per sample.
//   - Both are safe for concurrent use, and valid only while the store runs
//     (between its Start and Stop).
type StateStore interface {
	PutState(key string, val []byte) error
	GetState(key string) ([]byte, error)
}
