package inference

// The decision log: every decision, in hourly files, for time-ranged SQL.
// Workers append under a mutex; one writer goroutine (run, started by
// Start) compresses and writes; history reads run on the caller's
// goroutine. decisionLog says the rest.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/klauspost/compress/zstd"
)

// decisionLog keeps every decision, live and shadow, for
// Config.DecisionRetention, so that the SQL `decisions` table answers
// time-ranged queries beyond the in-memory ring (Config.History). It is a
// directory of append-only files, one per hour (UTC) of writing, deleted
// whole once the retention has passed them (docs/format/decision-log.md).
//
// Scoring appends the decision's JSON document, the one it publishes, to a
// pending buffer under a mutex: add never blocks on the writer, never
// wakes it, and drops and counts when the buffer is full. One goroutine
// compresses what is pending every logSlice into the open block, and
// writes that block every logInterval (or at logBatch decisions): a header
// and the records, each a uvarint length, a shadow byte and the document,
// as zstd frames of at most logFrame bytes of records (a record may
// straddle frames: they decode as one stream). The writer yields the
// processor between frames, and a block is one pwrite(2) to the page
// cache, so that the log never holds a processor for long while decisions
// wait to be published (docs/inference.md, "Decision history").
//
// Files rather than Badger entries: Badger's memtable copies, flushes and
// compactions cost about 0.5 ms of decision p99 in BenchmarkEndToEnd.
type decisionLog struct {
	dir  string
	ttl  time.Duration
	m    *metrics
	warn func(msg string, args ...any) // rate-limited warning

	mu     sync.Mutex // guards the fields below it
	pend   []byte     // records not yet written
	n      int        // records in pend
	minTS  int64      // least decision time in pend
	maxTS  int64      // greatest decision time in pend
	closed bool
	spare  []byte // the buffer pend swaps with

	kick    chan struct{} // a full batch is pending; capacity 1
	syncReq chan chan error
	stop    chan struct{}
	done    chan struct{}

	// The writer goroutine's own.
	enc   *zstd.Encoder
	f     *os.File  // the file of hour fHour, nil before the first block
	fHour time.Time // UTC
	fSize int64     // f's size: where the next block starts
	swept time.Time // when old files were last deleted
	// writeAt writes a block to f at an offset: f.WriteAt, replaced by
	// tests to fail part way; clock is time.Now, replaced by tests.
	writeAt func(f *os.File, b []byte, off int64) (int, error)
	clock   func() time.Time

	decMu sync.Mutex    // guards dec against close
	dec   *zstd.Decoder // nil once closed
}

const (
	logBatch    = 4096
	logInterval = 100 * time.Millisecond
	// logSlice is how often the writer compresses what is pending into
	// the open block.
	logSlice = 10 * time.Millisecond
	// logMaxPending bounds the pending buffer (about 50,000 decisions):
	// past it, while the disk is stuck, decisions are dropped and counted.
	logMaxPending = 32 << 20
	// logKeepBuffer is the largest pending buffer kept for reuse.
	logKeepBuffer = 4 << 20
	// logFrame is the records compressed in one go, between yields: about
	// 100 µs of zstd's fastest level here.
	logFrame = 32 << 10
	// logSlack is how far a block's decisions may lie before the hour of
	// its file: a block holds at most logInterval of decisions, plus the
	// writer's delays.
	logSlack = time.Minute
	// logHeader is the size of a block header in a file; its last 4
	// bytes are the CRC-32C of the 32 before them.
	logHeader = 36
	// logMaxBlock bounds a block's payload: a larger length in a header is
	// damage, not a block.
	logMaxBlock = 1 << 30
	// logFileSuffix ends a decision log file's name: <YYYYMMDDHH>.dlog.
	logFileSuffix = ".dlog"
	logHourLayout = "2006010215"
)

// logMagic starts every block header in a file.
var logMagic = [4]byte{'N', 'F', 'D', '1'}

// logReadMax bounds the decisions one history read holds in memory
// (about 0.5 KB each): a wider range is refused with a message saying so,
// rather than exhausting memory. A variable for the tests.
var logReadMax = 500_000

// errTooMany is returned by history when the range holds more than
// logReadMax decisions.
var errTooMany = errors.New("decision log: range too wide")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// newDecisionLog opens the log in dir, deleting files past ttl. warn reports failed
// writes and deletes (rate-limited by the caller).
func newDecisionLog(dir string, ttl time.Duration, m *metrics, warn func(string, ...any)) (*decisionLog, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	if warn == nil {
		warn = func(string, ...any) {}
	}
	l := &decisionLog{dir: dir, ttl: ttl, m: m, warn: warn, kick: make(chan struct{}, 1), syncReq: make(chan chan error),
		stop: make(chan struct{}), done: make(chan struct{}), enc: enc, dec: dec,
		writeAt: func(f *os.File, b []byte, off int64) (int, error) { return f.WriteAt(b, off) }, clock: time.Now}
	if err := l.sweep(time.Now()); err != nil {
		return nil, err
	}
	if err := l.repairNewest(); err != nil {
		return nil, err
	}
	go l.run()
	return l, nil
}

// add appends doc, the JSON document of a decision made at ts (Unix ns),
// to the pending block; doc is copied. When the pending buffer is full it
// is dropped and counted.
func (l *decisionLog) add(ts int64, doc []byte, shadow bool) {
	l.mu.Lock()
	if l.closed || len(l.pend)+len(doc)+binary.MaxVarintLen64+1 > logMaxPending {
		l.mu.Unlock()
		l.m.logDropped.Inc()
		return
	}
	if l.n == 0 {
		l.minTS, l.maxTS = ts, ts
	}
	l.minTS, l.maxTS = min(l.minTS, ts), max(l.maxTS, ts)
	l.pend = binary.AppendUvarint(l.pend, uint64(len(doc)+1))
	if shadow {
		l.pend = append(l.pend, 1)
	} else {
		l.pend = append(l.pend, 0)
	}
	l.pend = append(l.pend, doc...)
	l.n++
	full := l.n == logBatch
	l.mu.Unlock()
	if full {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// sync waits until everything added before the call is written.
func (l *decisionLog) sync(ctx context.Context) error {
	ch := make(chan error, 1)
	select {
	case l.syncReq <- ch:
	case <-l.done:
		return errors.New("decision log: closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close writes what is pending and stops the writer. Call it after the
// last add; a later add is dropped and counted.
func (l *decisionLog) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	l.enc.Close()
	l.decMu.Lock()
	l.dec.Close()
	l.dec = nil
	l.decMu.Unlock()
}

func (l *decisionLog) run() {
	defer close(l.done)
	defer func() {
		if l.f != nil {
			_ = l.f.Close()
		}
	}()
	tick := time.NewTicker(logSlice)
	defer tick.Stop()
	var blk openBlock
	for {
		select {
		case <-l.stop:
			l.compress(&blk)
			_ = l.flush(&blk)
			return
		case <-tick.C:
			l.compress(&blk)
			if blk.n >= logBatch || (blk.n > 0 && l.clock().Sub(blk.started) >= logInterval) {
				_ = l.flush(&blk)
			}
		case <-l.kick:
			l.compress(&blk)
			_ = l.flush(&blk)
		case ch := <-l.syncReq:
			l.compress(&blk)
			ch <- l.flush(&blk)
		}
	}
}

// openBlock is the block the writer is filling: a header's room and the
// frames compressed so far.
type openBlock struct {
	b            []byte
	n            int
	minTS, maxTS int64
	started      time.Time // when its first decisions were compressed
}

// compress takes the pending records and appends them to blk as zstd
// frames of at most logFrame bytes of records, yielding between frames.
// It runs every logSlice, so that the ~1 ms of compressing a 100 ms block
// at 8,000 decisions/s comes in slices of about 100 µs: in one go, it held
// a processor long enough to show in the decision p99.
func (l *decisionLog) compress(blk *openBlock) {
	l.mu.Lock()
	raw, n, minTS, maxTS := l.pend, l.n, l.minTS, l.maxTS
	l.pend, l.n, l.spare = l.spare[:0], 0, nil
	l.mu.Unlock()
	defer func() {
		if cap(raw) > logKeepBuffer {
			return // a backlog grew it: let it go
		}
		l.mu.Lock()
		l.spare = raw[:0]
		l.mu.Unlock()
	}()
	if n == 0 {
		return
	}
	if blk.n == 0 {
		blk.b = append(blk.b[:0], make([]byte, logHeader)...)
		blk.minTS, blk.maxTS, blk.started = minTS, maxTS, l.clock()
	}
	blk.n += n
	blk.minTS, blk.maxTS = min(blk.minTS, minTS), max(blk.maxTS, maxTS)
	for off := 0; off < len(raw); {
		end := min(off+logFrame, len(raw))
		blk.b = l.enc.EncodeAll(raw[off:end], blk.b)
		if off = end; off < len(raw) {
			runtime.Gosched()
		}
	}
}

// flush appends blk, if it holds decisions, as one block to the file of
// the current hour, and empties it.
func (l *decisionLog) flush(blk *openBlock) error {
	now := l.clock()
	if now.Sub(l.swept) >= time.Hour {
		if err := l.sweep(now); err != nil { // counted; the next hour tries again
			l.warn("decision log: deleting files past the retention failed", "dir", l.dir, "err", err)
		}
	}
	n := blk.n
	if n == 0 {
		return nil
	}
	b := blk.b
	blk.n = 0
	if cap(b) > logKeepBuffer {
		blk.b = nil // a backlog grew it: let it go
	}
	copy(b, logMagic[:])
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-logHeader))
	binary.LittleEndian.PutUint32(b[8:], crc32.Checksum(b[logHeader:], castagnoli))
	binary.LittleEndian.PutUint32(b[12:], uint32(n))
	binary.LittleEndian.PutUint64(b[16:], uint64(blk.minTS))
	binary.LittleEndian.PutUint64(b[24:], uint64(blk.maxTS))
	binary.LittleEndian.PutUint32(b[32:], crc32.Checksum(b[:32], castagnoli))

	// The file of the hour the block is written in, unless that is more
	// than logSlack after its first decision (a stalled disk): readers
	// count on a file holding no decision older than logSlack before its
	// hour.
	at := now
	if first := time.Unix(0, blk.minTS).Add(logSlack); first.Before(at) {
		at = first
	}
	if err := l.openHour(at.UTC().Truncate(time.Hour)); err != nil {
		return l.failed(n, err)
	}
	if _, err := l.writeAt(l.f, b, l.fSize); err != nil {
		// Leave no torn block for the next one to follow.
		if terr := l.f.Truncate(l.fSize); terr != nil {
			_ = l.f.Close()
			l.f = nil // reopening repairs the tail
		}
		return l.failed(n, err)
	}
	l.fSize += int64(len(b))
	l.m.logWritten.Add(float64(n))
	return nil
}

// openHour makes f the file of hour, repairing a torn last block of a file
// written before (a crash, a failed write).
func (l *decisionLog) openHour(hour time.Time) error {
	if l.f != nil && hour.Equal(l.fHour) {
		return nil
	}
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
	f, err := os.OpenFile(filepath.Join(l.dir, hour.Format(logHourLayout)+logFileSuffix), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	end, err := lastBlockEnd(f)
	if err != nil {
		_ = f.Close()
		return err
	}
	l.f, l.fHour, l.fSize = f, hour, end
	return nil
}

// repairNewest cuts a torn last block off the newest file, which a crash
// leaves and which the writer repairs only if it writes to that hour
// again; otherwise every read would count it.
func (l *decisionLog) repairNewest() error {
	files, err := l.files()
	if err != nil || len(files) == 0 {
		return err
	}
	f, err := os.OpenFile(files[len(files)-1].path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("decision log: %w", err)
	}
	defer f.Close()
	if _, err := lastBlockEnd(f); err != nil {
		return fmt.Errorf("decision log: repair %s: %w", f.Name(), err)
	}
	return nil
}

// blockHeader is a parsed block header.
type blockHeader struct {
	size, minTS, maxTS int64
	crc                uint32
}

// parseHeader reads h, reporting whether it is a whole block header: the
// magic, its own CRC and a plausible length.
func parseHeader(h []byte) (blockHeader, bool) {
	if [4]byte(h[:4]) != logMagic || crc32.Checksum(h[:32], castagnoli) != binary.LittleEndian.Uint32(h[32:]) {
		return blockHeader{}, false
	}
	bh := blockHeader{
		size:  int64(binary.LittleEndian.Uint32(h[4:])),
		crc:   binary.LittleEndian.Uint32(h[8:]),
		minTS: int64(binary.LittleEndian.Uint64(h[16:])),
		maxTS: int64(binary.LittleEndian.Uint64(h[24:])),
	}
	return bh, bh.size <= logMaxBlock
}

// lastBlockEnd walks f's block headers and returns where the last block
// ends, truncating what follows it: a block torn by a crash or a failed
// write, or bytes that hold no block. A damaged header before it (its own
// CRC fails) is passed over to the next magic and left for readers to
// skip and count: since headers carry a CRC, a damaged length is never
// followed into the middle of a later block, and nothing readable is cut.
func lastBlockEnd(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	var off, good int64
	var h [logHeader]byte
	for off+logHeader <= size {
		if _, err := f.ReadAt(h[:], off); err != nil {
			return 0, err
		}
		bh, ok := parseHeader(h[:])
		if !ok {
			if off, err = nextMagic(f, off+1, size); err != nil {
				return 0, err
			}
			continue
		}
		if off+logHeader+bh.size > size {
			break // torn: its header is whole, so nothing follows it
		}
		off += logHeader + bh.size
		good = off
	}
	if good < size {
		if err := f.Truncate(good); err != nil {
			return 0, err
		}
	}
	return good, nil
}

// sweep deletes the files whose every decision is older than the
// retention.
func (l *decisionLog) sweep(now time.Time) error {
	l.swept = now
	files, err := l.files()
	if err != nil {
		l.m.logErrors.Inc()
		return err
	}
	var errs []error
	for _, f := range files {
		if f.hour.Add(time.Hour).Before(now.Add(-l.ttl)) {
			if err := os.Remove(f.path); err != nil {
				l.m.logErrors.Inc()
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// logFile is one file of the log.
type logFile struct {
	path string
	hour time.Time
}

// files lists the log's files, oldest first; names that are not the log's
// are left alone.
func (l *decisionLog) files() ([]logFile, error) {
	ents, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	var out []logFile
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), logFileSuffix)
		if !ok || e.IsDir() {
			continue
		}
		hour, err := time.Parse(logHourLayout, name)
		if err != nil {
			continue
		}
		out = append(out, logFile{path: filepath.Join(l.dir, e.Name()), hour: hour})
	}
	slices.SortFunc(out, func(a, b logFile) int { return a.hour.Compare(b.hour) })
	return out, nil
}

// failed counts and reports a block that could not be written; its
// decisions stay on NATS and in the ring, only their history is lost.
func (l *decisionLog) failed(n int, err error) error {
	l.m.logErrors.Add(float64(n))
	l.warn("decision log: write failed; these decisions are left out of the history", "dir", l.dir, "decisions", n, "err", err)
	return fmt.Errorf("%w: %d decisions: %w", errLogWrite, n, err)
}

// errLogWrite marks a block that could not be written.
var errLogWrite = errors.New("decision log: write failed")

// history reads the decisions with time in [from, to), oldest first, as
// records of schema.DecisionsSchema of at most logReadBatch rows each.
func (l *decisionLog) history(ctx context.Context, from, to int64) ([]arrow.RecordBatch, error) {
	// A block that could not be written is counted and reported; the
	// history is still what the files hold.
	if err := l.sync(ctx); err != nil && !errors.Is(err, errLogWrite) {
		return nil, err
	}
	l.decMu.Lock()
	defer l.decMu.Unlock()
	if l.dec == nil {
		return nil, errors.New("decision log: closed")
	}
	r := logReader{l: l, from: from, to: to}
	err := r.readFiles(ctx)
	if r.bad > 0 {
		l.m.logErrors.Add(float64(r.bad))
	}
	if err != nil {
		return nil, fmt.Errorf("decision log: read: %w", err)
	}
	rows := r.rows
	// Blocks overlap in time by up to their span: order the rows.
	slices.SortStableFunc(rows, func(a, b recorded) int { return a.d.Time.Compare(b.d.Time) })
	const logReadBatch = 65536
	var out []arrow.RecordBatch
	for len(rows) > logReadBatch {
		out = append(out, decisionsRecord(rows[:logReadBatch]))
		rows = rows[logReadBatch:]
	}
	return append(out, decisionsRecord(rows)), nil
}

// logReader is one history read: the range, what it found, and the
// damaged blocks it skipped.
type logReader struct {
	l        *decisionLog
	from, to int64
	rows     []recorded
	bad      int
	raw      []byte
}

// block decodes the compressed records of one block, keeping those in
// range.
func (r *logReader) block(payload []byte) error {
	var err error
	if r.raw, err = r.l.dec.DecodeAll(payload, r.raw[:0]); err != nil {
		return err
	}
	var found []recorded
	for b := r.raw; len(b) > 0; {
		n, w := binary.Uvarint(b)
		if w <= 0 || n < 2 || uint64(len(b)-w) < n {
			return errors.New("truncated record")
		}
		rec := b[w : w+int(n)]
		b = b[w+int(n):]
		var x recorded
		x.shadow = rec[0] == 1
		if err := json.Unmarshal(rec[1:], &x.d); err != nil {
			return err
		}
		if ts := x.d.Time.UnixNano(); ts >= r.from && ts < r.to {
			found = append(found, x)
		}
	}
	r.rows = append(r.rows, found...)
	if len(r.rows) > logReadMax {
		return fmt.Errorf("%w: more than %d decisions between %s and %s; narrow the time range",
			errTooMany, logReadMax, time.Unix(0, r.from).UTC().Format(time.RFC3339), time.Unix(0, r.to).UTC().Format(time.RFC3339))
	}
	return nil
}

// readFiles reads the blocks of the files that may hold decisions in
// range, skipping blocks outside it by their headers. A damaged block is
// skipped and counted; after a damaged header the read looks for the next
// one. A block that runs past the end of the newest file is being written
// and is left for the next read.
func (r *logReader) readFiles(ctx context.Context) error {
	files, err := r.l.files()
	if err != nil {
		return err
	}
	for i, f := range files {
		if f.hour.Add(time.Hour+logSlack).UnixNano() <= r.from || f.hour.Add(-logSlack).UnixNano() >= r.to {
			continue
		}
		if err := r.readFile(ctx, f.path, i == len(files)-1); err != nil {
			return err
		}
	}
	return nil
}

func (r *logReader) readFile(ctx context.Context, path string, newest bool) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // deleted by the retention since listed
		}
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size() // blocks written after this are for the next read
	var h [logHeader]byte
	var payload []byte
	for off := int64(0); off+logHeader <= size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := f.ReadAt(h[:], off); err != nil {
			return endOfFile(err) // cut by a failed write since the listing
		}
		bh, ok := parseHeader(h[:])
		if !ok {
			r.bad++
			if off, err = nextMagic(f, off+1, size); err != nil {
				return err
			}
			continue
		}
		body := off + logHeader
		if body+bh.size > size {
			// Its header is whole, so this is the last block: being
			// written (the newest file) or torn and not repaired.
			if !newest {
				r.bad++
			}
			return nil
		}
		off = body + bh.size
		if bh.maxTS < r.from || bh.minTS >= r.to {
			continue
		}
		payload = slices.Grow(payload[:0], int(bh.size))[:bh.size]
		if _, err := f.ReadAt(payload, body); err != nil {
			return endOfFile(err)
		}
		if crc32.Checksum(payload, castagnoli) != bh.crc {
			r.bad++ // the header is whole: the next block starts where it says
			continue
		}
		if err := r.block(payload); err != nil {
			if errors.Is(err, errTooMany) {
				return err
			}
			r.bad++ // a damaged block is skipped and counted, never fatal
		}
	}
	return nil
}

// endOfFile takes a read that ended early for the end of the file: the
// writer cut a torn block off it after the reader took its size.
func endOfFile(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil
	}
	return err
}

// nextMagic returns the offset of the next block magic in f at or after
// off, or size when there is none: where to go on after a damaged header.
func nextMagic(f *os.File, off, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for off < size {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.Index(buf[:n], logMagic[:]); i >= 0 {
			return off + int64(i), nil
		}
		if n < len(logMagic) {
			break
		}
		off += int64(n - len(logMagic) + 1) // a magic may straddle reads
	}
	return size, nil
}
