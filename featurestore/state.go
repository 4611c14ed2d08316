// Durable opaque state for other stages (PutState, GetState): Badger
// transactions, safe from any goroutine; no store goroutine is involved.

package featurestore

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// PutState stores an opaque blob for another stage (the normalizer's rate
// state, a collector's state) durably.
func (s *Store) PutState(key string, val []byte) error {
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(stateKey(key), val) }); err != nil {
		return fmt.Errorf("featurestore: put state %q: %w", key, err)
	}
	return nil
}

// GetState returns the blob stored under key, or an error wrapping
// ErrNotFound.
func (s *Store) GetState(key string) ([]byte, error) {
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(stateKey(key))
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, fmt.Errorf("featurestore: state %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("featurestore: get state %q: %w", key, err)
	}
	return v, nil
}
