//go:build unix

package badgerdir

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockDir takes the lock Badger takes on its directory (flock, exclusive,
// not waiting). held reports that another process holds it; unlock
// releases it.
func lockDir(dir string) (unlock func(), held bool, err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, false, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, true, nil
		}
		return nil, false, err
	}
	return func() {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, false, nil
}
