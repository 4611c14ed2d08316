package badgerdir

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestRemoveTornMemtables: Badger refuses a directory holding an empty
// memtable file (what a kill between its creation and its truncation
// leaves); once RemoveTornMemtables has removed it, Badger opens with
// every committed key.
func TestRemoveTornMemtables(t *testing.T) {
	dir := t.TempDir()
	open := func() (*badger.DB, error) {
		return badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithMemTableSize(4 << 20).WithValueThreshold(1 << 10))
	}
	db, err := open()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// The file a kill leaves: created, not yet truncated to size.
	if err := os.WriteFile(filepath.Join(dir, "00099.mem"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if db, err := open(); err == nil {
		_ = db.Close()
		t.Fatal("badger opened a directory with an empty memtable file: the workaround may no longer be needed")
	}
	// The refused open grew the file to a memtable's size; as the kill
	// left it again.
	if err := os.WriteFile(filepath.Join(dir, "00099.mem"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	removed, err := RemoveTornMemtables(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"00099.mem"}) {
		t.Errorf("removed %q, want only 00099.mem", removed)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes.txt")); err != nil {
		t.Errorf("an empty file that is not a memtable was touched: %v", err)
	}
	db, err = open()
	if err != nil {
		t.Fatalf("open after the repair: %v", err)
	}
	defer db.Close()
	err = db.View(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte("k"))
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error {
			if string(v) != "v" {
				t.Errorf("k = %q after the repair, want v", v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := RemoveTornMemtables(filepath.Join(dir, "missing")); err != nil || removed != nil {
		t.Errorf("missing directory: %q, %v", removed, err)
	}
}

// TestRemoveTornMemtablesLeavesARunningBadger: a directory a running
// Badger holds is left alone, even with an empty memtable file in it (the
// one Badger is creating at that moment).
func TestRemoveTornMemtablesLeavesARunningBadger(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil).WithMemTableSize(4 << 20).WithValueThreshold(1 << 10))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	empty := filepath.Join(dir, "00099.mem")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	removed, err := RemoveTornMemtables(dir)
	if err != nil || removed != nil {
		t.Fatalf("RemoveTornMemtables on a held directory: %q, %v", removed, err)
	}
	if _, err := os.Stat(empty); err != nil {
		t.Fatalf("the running Badger's empty memtable was removed: %v", err)
	}
}
