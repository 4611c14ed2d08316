// Package badgerdir prepares a Badger directory for opening after a crash.
//
// Badger (v4) creates a memtable's write-ahead file (NNNNN.mem) empty and
// then truncates it to its full size. A process killed between the two
// leaves a file of zero bytes, which the next badger.Open refuses ("while
// opening fid: N err: Create a new file"): Badger takes an empty file for
// one it has just created and does not expect it among the files it
// replays. Such a file never held a write (its header is written after the
// truncation), so removing it loses nothing.
package badgerdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// memExt is the extension of Badger's memtable files.
const memExt = ".mem"

// RemoveTornMemtables removes the empty memtable files of the Badger
// directory dir and returns their names. A missing dir is not an error.
// It holds Badger's own directory lock while it looks: a directory a
// running Badger holds is left alone (its newest memtable may be empty
// for a moment), and badger.Open then refuses it with its own error.
func RemoveTornMemtables(dir string) ([]string, error) {
	unlock, held, err := lockDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("badger directory %s: %w", dir, err)
	}
	if held {
		return nil, nil
	}
	defer unlock()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("badger directory %s: %w", dir, err)
	}
	var removed []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), memExt) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return removed, fmt.Errorf("badger directory %s: %w", dir, err)
		}
		if info.Size() != 0 {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return removed, fmt.Errorf("badger directory %s: remove the empty memtable %s: %w", dir, e.Name(), err)
		}
		removed = append(removed, e.Name())
	}
	return removed, nil
}
