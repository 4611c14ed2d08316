// Segment logs: the append-only files of the WAL and the chunk log. One
// goroutine appends and rotates (the committer for the WAL, the chunk
// writer for the chunk log); sync may run on another (the maintenance
// loop's fsync_interval); readers open segments by id on any goroutine,
// and removal waits for them.

package featurestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// segmentLog is an append-only log of records split into numbered files,
// <dir>/<id as 16 hex digits><ext>, each starting with an 8-byte magic.
// The WAL and the sealed chunks are kept in two of them
// (docs/format/wal.md, docs/format/chunk.md).
//
// The files are written with pwrite(2) and read with pread(2), never
// mapped: written bytes sit in the kernel's page cache, not in the
// process's resident memory (Badger, which kept them before, maps its value
// log, so every byte the WAL wrote stayed in the process RSS).
//
// One goroutine appends (and rotates); sync may run on another; readers
// read complete records below the published size, and hold removeMu's read
// lock while they must not see segments disappear.
type segmentLog struct {
	dir     string
	ext     string
	magic   string
	maxSize int64

	// mu guards segs, curID and size. The writer holds it only to publish.
	mu    sync.Mutex
	segs  []uint64 // segment ids, ascending; the last is the current one when cur != nil
	curID uint64
	size  int64 // complete bytes of the current segment

	cur    *os.File // writer only (and sync under syncMu)
	wsize  int64    // writer's copy of size
	broken error    // a failed write could not be undone; the log refuses appends

	syncMu sync.Mutex // a sync and a rotation never overlap, so sync never sees a closed file
	dirty  atomic.Bool

	removeMu sync.RWMutex
}

const segmentHeaderLen = 8

// errSegmentMissing reports a segment file that does not exist (removed by
// retention, or by hand).
var errSegmentMissing = errors.New("segment file missing")

// openSegmentLog lists the segments in dir (creating it). Files of other
// names are left alone.
func openSegmentLog(dir, ext, magic string, maxSize int64) (*segmentLog, error) {
	if len(magic) != segmentHeaderLen {
		panic("featurestore: segment magic must be 8 bytes")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	l := &segmentLog{dir: dir, ext: ext, magic: magic, maxSize: maxSize}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ext) || len(name) != 16+len(ext) {
			continue
		}
		id, err := strconv.ParseUint(name[:16], 16, 64)
		if err != nil {
			continue
		}
		l.segs = append(l.segs, id)
	}
	slices.Sort(l.segs)
	return l, nil
}

func (l *segmentLog) path(id uint64) string {
	return filepath.Join(l.dir, fmt.Sprintf("%016x%s", id, l.ext))
}

// ids returns the segment ids, ascending.
func (l *segmentLog) ids() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.segs)
}

// current returns the id and complete size of the segment being written,
// or ok=false when none is open.
func (l *segmentLog) current() (id uint64, size int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.size == 0 {
		return 0, 0, false
	}
	return l.curID, l.size, true
}

// append writes b (whole records) at the end of the log, starting a new
// segment first when the current one would grow past maxSize; a new
// segment gets id max(id, last id + 1). With sync it also fdatasyncs. It
// returns where b starts. A failed write is cut off again so that the
// segment keeps ending with a complete record.
func (l *segmentLog) append(id uint64, b []byte, sync bool) (seg uint64, off int64, err error) {
	if l.broken != nil {
		return 0, 0, l.broken
	}
	if l.cur == nil || (l.wsize > segmentHeaderLen && l.wsize+int64(len(b)) > l.maxSize) {
		if err := l.rotate(id); err != nil {
			return 0, 0, err
		}
	}
	off = l.wsize
	if _, err := l.cur.WriteAt(b, off); err != nil {
		if terr := l.cur.Truncate(off); terr != nil {
			l.broken = fmt.Errorf("%s: cannot cut off a failed write (%v) : %w", l.cur.Name(), err, terr)
		}
		return 0, 0, fmt.Errorf("write %s: %w", l.cur.Name(), err)
	}
	l.wsize += int64(len(b))
	l.dirty.Store(true)
	l.mu.Lock()
	l.size = l.wsize
	l.mu.Unlock()
	if sync {
		if err := fdatasync(l.cur); err != nil {
			return 0, 0, fmt.Errorf("sync %s: %w", l.cur.Name(), err)
		}
		l.dirty.Store(false)
	}
	return l.curID, off, nil
}

// rotate syncs and closes the current segment and starts a new one.
func (l *segmentLog) rotate(id uint64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.cur != nil {
		if err := fdatasync(l.cur); err != nil {
			return fmt.Errorf("sync %s: %w", l.cur.Name(), err)
		}
		if err := l.cur.Close(); err != nil {
			return fmt.Errorf("close %s: %w", l.cur.Name(), err)
		}
		l.cur = nil
	}
	l.mu.Lock()
	if n := len(l.segs); n > 0 {
		id = max(id, l.segs[n-1]+1)
	}
	l.mu.Unlock()
	f, err := os.OpenFile(l.path(id), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if _, err := f.WriteAt([]byte(l.magic), 0); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	// The new name must survive a power loss before records in it count.
	if err := errors.Join(fdatasync(f), syncDir(l.dir)); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return fmt.Errorf("sync new segment %s: %w", f.Name(), err)
	}
	l.cur, l.wsize = f, segmentHeaderLen
	l.mu.Lock()
	l.segs = append(l.segs, id)
	l.curID, l.size = id, segmentHeaderLen
	l.mu.Unlock()
	return nil
}

// sync fdatasyncs the current segment if it was written since the last
// sync. It is safe to call from another goroutine than the writer.
func (l *segmentLog) sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.cur == nil || !l.dirty.Swap(false) {
		return nil
	}
	if err := fdatasync(l.cur); err != nil {
		l.dirty.Store(true)
		return fmt.Errorf("sync %s: %w", l.cur.Name(), err)
	}
	return nil
}

// read returns the complete bytes of segment id: the whole file, or the
// published part of the current segment.
func (l *segmentLog) read(id uint64) ([]byte, error) {
	l.mu.Lock()
	limit := int64(-1)
	if l.size > 0 && id == l.curID {
		limit = l.size
	}
	l.mu.Unlock()
	f, err := os.Open(l.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", l.path(id), errSegmentMissing)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if limit < 0 {
		st, err := f.Stat()
		if err != nil {
			return nil, err
		}
		limit = st.Size()
	}
	b := make([]byte, limit)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, limit), b); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return b, nil
}

// readAt reads n bytes at off of segment id.
func (l *segmentLog) readAt(id uint64, off int64, n int) ([]byte, error) {
	f, err := os.Open(l.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", l.path(id), errSegmentMissing)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("read %d bytes at %d of %s: %w", n, off, f.Name(), err)
	}
	return b, nil
}

// remove deletes whole segments (never the current one).
func (l *segmentLog) remove(ids []uint64) error {
	if len(ids) == 0 {
		return nil
	}
	l.removeMu.Lock()
	defer l.removeMu.Unlock()
	var errs []error
	for _, id := range ids {
		l.mu.Lock()
		cur := l.size > 0 && id == l.curID
		l.mu.Unlock()
		if cur {
			continue
		}
		if err := os.Remove(l.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		l.mu.Lock()
		if i, ok := slices.BinarySearch(l.segs, id); ok {
			l.segs = slices.Delete(l.segs, i, i+1)
		}
		l.mu.Unlock()
	}
	return errors.Join(errs...)
}

// truncate cuts segment id at off (recovery of a torn or damaged tail).
func (l *segmentLog) truncate(id uint64, off int64) error {
	if err := os.Truncate(l.path(id), off); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path(id), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return fdatasync(f)
}

// close syncs and closes the current segment.
func (l *segmentLog) close() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.cur == nil {
		return nil
	}
	err := errors.Join(fdatasync(l.cur), l.cur.Close())
	l.cur = nil
	l.mu.Lock()
	l.size = 0
	l.mu.Unlock()
	return err
}

func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Fdatasync(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Records. Every record in a segment is framed as
//
//	len:u32le crc:u32le body[len]     crc = CRC-32C (Castagnoli) of body
//
// so that a reader finds where each ends and whether it is whole.
const recordHeaderLen = 8

// maxRecord bounds a record's length; a larger length field is damage.
const maxRecord = 1 << 30

// beginRecord reserves a record header at the end of dst; endRecord fills
// it in once the body (everything appended after it) is complete.
func beginRecord(dst []byte) ([]byte, int) {
	return append(dst, make([]byte, recordHeaderLen)...), len(dst)
}

func endRecord(dst []byte, at int) []byte {
	body := dst[at+recordHeaderLen:]
	binary.LittleEndian.PutUint32(dst[at:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[at+4:], crc32.Checksum(body, castagnoli))
	return dst
}

// record is one whole record found in a segment: body starts at
// off+recordHeaderLen and the record ends at end.
type record struct {
	off, end int64
	body     []byte
}

// span is a byte range of a segment that holds no whole record.
type span struct {
	off, end int64
	reason   string
}

// scanRecords splits a segment (b is the whole file, magic included) into
// its whole records and the spans between them that are not: after a
// record that is not whole it resynchronises on the next offset where a
// whole record starts whose body plausible accepts (a cheap filter before
// the checksum). A bad span that runs to the end of the segment with no
// whole record after it is returned as tail instead: an interrupted write
// or a power loss leaves exactly that, and it is damage only when it is
// not the newest segment's end.
func scanRecords(b []byte, magic string, plausible func(body []byte) bool) (recs []record, bad []span, tail *span) {
	if len(b) < segmentHeaderLen {
		return nil, nil, &span{0, int64(len(b)), "short segment header"}
	}
	if string(b[:segmentHeaderLen]) != magic {
		return nil, []span{{0, int64(len(b)), fmt.Sprintf("bad magic %q, want %q", b[:segmentHeaderLen], magic)}}, nil
	}
	off := int64(segmentHeaderLen)
	for off < int64(len(b)) {
		if r, reason := recordAt(b, off); reason == "" {
			recs = append(recs, r)
			off = r.end
			continue
		} else {
			next := int64(len(b))
			for o := off + 1; o+recordHeaderLen < int64(len(b)); o++ {
				if r, why := recordAt(b, o); why == "" && plausible(r.body) {
					next = o
					break
				}
			}
			sp := span{off, next, reason}
			if next == int64(len(b)) {
				return recs, bad, &sp
			}
			bad = append(bad, sp)
			off = next
		}
	}
	return recs, bad, nil
}

// recordAt parses the record at off, or says why there is none.
func recordAt(b []byte, off int64) (record, string) {
	rest := b[off:]
	if len(rest) < recordHeaderLen {
		return record{}, "short record header"
	}
	n := int64(binary.LittleEndian.Uint32(rest))
	sum := binary.LittleEndian.Uint32(rest[4:])
	if n == 0 {
		return record{}, "empty record"
	}
	if n > maxRecord || n > int64(len(rest)-recordHeaderLen) {
		return record{}, fmt.Sprintf("record of %d bytes runs past the end of the segment", n)
	}
	body := rest[recordHeaderLen : recordHeaderLen+n]
	if crc32.Checksum(body, castagnoli) != sum {
		return record{}, fmt.Sprintf("checksum mismatch in a record of %d bytes", n)
	}
	return record{off: off, end: off + recordHeaderLen + n, body: body}, ""
}
