//go:build !unix

// Anonymous mappings where the platform has none: regions come from the Go
// heap. No goroutine, no state.

package featurestore

import "errors"

// mapAnon is not available: regions fall back to the Go heap.
func mapAnon(int) ([]byte, error) { return nil, errors.New("anonymous mappings not supported") }

func unmap([]byte) {}

func mapAnonPopulated(n int) ([]byte, error) { return mapAnon(n) }
