package featurestore

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/netfeat/netfeat/schema"
)

// TestSnapshotOutlivesRetention checks the reference counting of the hot
// tier's off-heap memory: batches from SnapshotSamples stay readable after
// retention dropped their chunks, and every mapping is returned once the
// batches are released and the store is closed.
func TestSnapshotOutlivesRetention(t *testing.T) {
	before := regionsMapped.Load()
	const rows = 5000 // 100 KB per chunk: mapped, not on the Go heap
	s, _ := openStore(t, t.TempDir(), Config{SealRows: rows}, nil)
	start(t, s)
	var all []schema.Sample
	for b := range 3 {
		batch := genBatch(rows, b*rows)
		if err := s.Append(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}
	if got := regionsMapped.Load() - before; got < 3*rows*bytesPerRow {
		t.Fatalf("%d bytes mapped for 3 sealed chunks of %d rows, want at least %d", got, rows, 3*rows*bytesPerRow)
	}
	snap := s.SnapshotSamples()
	var dropped int
	s.hot.retain(math.MaxInt64, 1<<30, func(*chunk, dropReason) { dropped++ })
	if dropped != 3 {
		t.Fatalf("retention dropped %d chunks, want 3", dropped)
	}
	if n := len(s.SnapshotSamples()); n != 0 {
		t.Fatalf("a new snapshot has %d batches after retention dropped everything", n)
	}
	equalRows(t, readSamples(t, snap), wantRows(all)) // reads, then releases
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := regionsMapped.Load() - before; got != 0 {
		t.Fatalf("%d bytes still mapped after the snapshot was released and the store closed", got)
	}
}

// walSegments returns the paths of the store's WAL segments, oldest first.
func walSegments(t *testing.T, dir string) []string {
	t.Helper()
	p, err := filepath.Glob(filepath.Join(dir, walDir, "*"+walExt))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// batchRecords returns the offsets and ends of the batch records of a WAL
// segment.
func batchRecords(t *testing.T, path string) []record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, bad, tail := scanRecords(b, walMagic, plausibleWAL)
	if len(bad) > 0 || tail != nil {
		t.Fatalf("segment %s already damaged: %v %v", path, bad, tail)
	}
	var out []record
	for _, r := range recs {
		if r.body[0] == walKindBatch {
			out = append(out, r)
		}
	}
	return out
}

func TestWALDamage(t *testing.T) {
	// Five batches of 100 samples, all still in the WAL (no chunk sealed).
	build := func(t *testing.T) (string, string) {
		dir := t.TempDir()
		s, _ := openStore(t, dir, Config{}, nil)
		start(t, s)
		for b := range 5 {
			if err := s.Append(context.Background(), genBatch(100, b*100)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		segs := walSegments(t, dir)
		if len(segs) != 1 {
			t.Fatalf("%d WAL segments, want 1", len(segs))
		}
		return dir, segs[0]
	}
	appendBytes := func(t *testing.T, path string, b []byte) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	samples := func(t *testing.T, s *Store) int { return len(readSamples(t, s.SnapshotSamples())) }

	tests := []struct {
		name string
		tear func(t *testing.T, path string)
	}{
		{"a write cut short", func(t *testing.T, path string) {
			rec := appendWALBatch(nil, 99, encodeWALBatch(nil, []rec{{ts: 1, sid: 0, value: 1}}))
			appendBytes(t, path, rec[:len(rec)-3])
		}},
		{"zeros after a power loss", func(t *testing.T, path string) { appendBytes(t, path, make([]byte, 4096)) }},
		{"a header cut short", func(t *testing.T, path string) { appendBytes(t, path, []byte{42, 0, 0}) }},
	}
	for _, tc := range tests {
		t.Run("torn tail is cut off: "+tc.name, func(t *testing.T) {
			dir, seg := build(t)
			st, _ := os.Stat(seg)
			tc.tear(t, seg)
			s, _ := openStore(t, dir, Config{}, nil)
			start(t, s)
			if got := samples(t, s); got != 500 {
				t.Fatalf("%d samples after a torn tail, want 500", got)
			}
			if st2, _ := os.Stat(seg); st2.Size() != st.Size() {
				t.Fatalf("segment is %d bytes after recovery, want the %d before the tear", st2.Size(), st.Size())
			}
		})
	}

	// A flipped byte inside the third batch: whole records follow it, so it
	// is damage, not a torn write.
	corruptThird := func(t *testing.T, seg string) {
		recs := batchRecords(t, seg)
		b, _ := os.ReadFile(seg)
		b[recs[2].off+recordHeaderLen+20] ^= 0xff
		if err := os.WriteFile(seg, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("damage in the middle fails with its place", func(t *testing.T) {
		dir, seg := build(t)
		corruptThird(t, seg)
		_, err := openStarted(context.Background(), Config{}, nil, dir, nil, nil)
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "wal[segment") {
			t.Fatalf("Open: %v, want ErrDamaged naming the WAL segment", err)
		}
		t.Logf("error: %v", err)
	})
	t.Run("quarantine keeps the rest and the bytes", func(t *testing.T) {
		dir, seg := build(t)
		corruptThird(t, seg)
		s, _ := openStore(t, dir, Config{Recovery: RecoveryQuarantine}, nil)
		start(t, s)
		if got := samples(t, s); got != 400 {
			t.Fatalf("%d samples after quarantine, want 400", got)
		}
		if got := testutil.ToFloat64(s.m.damaged.WithLabelValues("wal")); got != 1 {
			t.Fatalf("damaged{wal} = %v, want 1", got)
		}
		q, _ := filepath.Glob(filepath.Join(dir, quarantineDir, "wal-*"))
		if len(q) != 1 {
			t.Fatalf("quarantined files %v, want 1", q)
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		s2, _ := openStore(t, dir, Config{}, nil) // fail mode opens again
		start(t, s2)
		if got := samples(t, s2); got != 400 {
			t.Fatalf("%d samples on the next open, want 400", got)
		}
	})
}

func TestChunkBytesDamaged(t *testing.T) {
	build := func(t *testing.T) string {
		dir := t.TempDir()
		s, _ := openStore(t, dir, Config{SealRows: 100}, nil)
		start(t, s)
		for b := range 5 {
			if err := s.Append(context.Background(), genBatch(100, b*100)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		segs, _ := filepath.Glob(filepath.Join(dir, chunkDir, "*"+chunkExt))
		if len(segs) != 1 {
			t.Fatalf("chunk segments %v, want 1", segs)
		}
		b, _ := os.ReadFile(segs[0])
		b[segmentHeaderLen+recordHeaderLen+40] ^= 0xff // inside the first chunk
		if err := os.WriteFile(segs[0], b, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	t.Run("fail", func(t *testing.T) {
		_, err := openStarted(context.Background(), Config{SealRows: 100}, nil, build(t), nil, nil)
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "chunk[wal batches 1-1") {
			t.Fatalf("Open: %v, want ErrDamaged naming the first chunk", err)
		}
		t.Logf("error: %v", err)
	})
	t.Run("quarantine", func(t *testing.T) {
		s, _ := openStore(t, build(t), Config{SealRows: 100, Recovery: RecoveryQuarantine}, nil)
		start(t, s)
		if got := len(readSamples(t, s.SnapshotSamples())); got != 400 {
			t.Fatalf("%d samples after quarantine, want 400", got)
		}
		if got := testutil.ToFloat64(s.m.damaged.WithLabelValues("chunk")); got != 1 {
			t.Fatalf("damaged{chunk} = %v, want 1", got)
		}
	})
}

// TestWALSegmentsRotateAndTrim runs with tiny WAL segments: they rotate,
// the ones chunks cover are removed, and everything survives a restart.
func TestWALSegmentsRotateAndTrim(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SealRows: 300}
	s, _ := openStore(t, dir, cfg, nil)
	start(t, s)
	s.wal.maxSize = 4 << 10 // a 100-sample batch record is about 1.5 KB; before the first Append
	var all []schema.Sample
	for b := range 30 {
		batch := genBatch(100, b*100)
		if err := s.Append(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		all = append(all, batch...)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(walSegments(t, dir)); n == 0 || n > 3 {
		t.Fatalf("%d WAL segments left, want 1 to 3 (the ones not yet covered by a chunk)", n)
	}
	s2, _ := openStore(t, dir, cfg, nil)
	start(t, s2)
	equalRows(t, readSamples(t, s2.SnapshotSamples()), wantRows(all))
	equalRows(t, readSamples(t, readAll(t, mustHistory(t, s2, TableSamples, math.MinInt64, math.MaxInt64))), wantRows(all))
}

func TestChunkSegmentsExpire(t *testing.T) {
	dir := t.TempDir()
	s, _ := openStore(t, dir, Config{SealRows: 100, ChunkTTL: time.Hour}, nil)
	start(t, s)
	s.chunks.maxSize = 1 // every chunk starts a segment; before the first Append
	for b := range 3 {
		if err := s.Append(context.Background(), genBatch(100, b*100)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for testutil.ToFloat64(s.m.chunkPersist.WithLabelValues("ok")) < 3 {
		if time.Now().After(deadline) {
			t.Fatal("chunks not written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ids := s.chunks.ids()
	if len(ids) != 3 {
		t.Fatalf("%d chunk segments, want 3", len(ids))
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, id := range ids {
		if err := os.Chtimes(s.chunks.path(id), old, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.expireChunkSegments(time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := s.chunks.ids(); len(got) != 1 || got[0] != ids[2] {
		t.Fatalf("segments after expiry %x, want only the current one %x", got, ids[2])
	}
	// History treats a chunk whose segment expired as gone.
	if got := len(readSamples(t, readAll(t, mustHistory(t, s, TableSamples, math.MinInt64, math.MaxInt64)))); got != 100 {
		t.Fatalf("history holds %d samples, want the 100 of the unexpired segment", got)
	}
}
