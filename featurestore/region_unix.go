//go:build unix

// Anonymous mappings on Unix (mmap, MAP_POPULATE). No goroutine, no
// state.

package featurestore

import "golang.org/x/sys/unix"

// mapAnon maps n bytes of private anonymous memory (zeroed, resident only
// once touched).
func mapAnon(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
}

func unmap(b []byte) { _ = unix.Munmap(b) }

// mapAnonPopulated maps n bytes with every page faulted in at once.
func mapAnonPopulated(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_POPULATE)
}
