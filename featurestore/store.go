package featurestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/schema"
)

// Errors returned by the store.
var (
	// ErrNotRunning is returned by Append before Start or after Stop.
	ErrNotRunning = errors.New("featurestore: not running")
	// ErrDamaged wraps every problem recovery finds in the data directory;
	// docs/featurestore.md ("Damaged data directory") says what to do.
	ErrDamaged = errors.New("featurestore: data directory is damaged (see docs/featurestore.md, \"Damaged data directory\")")
	// ErrUnknownView is returned for a view name the store was not opened with.
	ErrUnknownView = errors.New("featurestore: unknown view")
	// ErrNotFound is returned by GetState for a key never stored.
	ErrNotFound = errors.New("featurestore: not found")
)

// pending is one Append batch on its way through the WAL commit to the hot
// tier and the window engine. The appender and the window engine each hold
// a reference; the last one returns it to the pool.
type pending struct {
	recs     []rec
	enc      []byte
	seq      uint64
	done     chan error
	refs     atomic.Int32
	accepted int64 // monotonic-ish wall ns when the WAL commit finished
}

// Store is the feature store: the WAL, the hot tier, the window engine and
// the online view, persisted in Badger. It implements schema.SampleAppender.
// All methods are safe for concurrent use.
type Store struct {
	cfg    Config
	dir    string
	log    *slog.Logger
	m      *storeMetrics
	db     *badger.DB
	views  []schema.FeatureView
	viewIx map[string]int

	series *seriesTable
	wal    *segmentLog // WAL segments (<dir>/wal)
	chunks *segmentLog // sealed chunks (<dir>/chunks)
	walBuf []byte      // committer only

	chunkEnc chunkEncoder // chunk writer only (recovery before it starts)
	hot      *hotTier
	win      *windowEngine
	online   []*onlineView
	tables   []*viewTable
	subs     atomic.Pointer[[]schema.FeatureRowHandler]

	seq          uint64 // last WAL sequence number; committer only after Start
	persistedSeq atomic.Uint64
	replayFrom   []*chunk // hot chunks to replay through the windows at Start
	replayWAL    []*pending

	appendMu sync.RWMutex
	// commitMu is held by whoever commits: the committer goroutine, or an
	// appender that found no one committing and leads its own batch (and
	// any queued behind it) through the WAL and the window engine, which
	// spares the goroutine hand-off to the committer and back.
	commitMu  sync.Mutex
	leadGroup []*pending // under commitMu: the leading appender's group
	running   bool
	stopped   bool
	commitCh  chan *pending
	winCh     chan *pending
	chunkCh   chan *chunk
	rowCh     chan []rowWrite
	stopMaint chan struct{}
	wg        sync.WaitGroup
	pool      sync.Pool
	closeOnce sync.Once

	// The window engine belongs to whoever holds winMu: the committer,
	// which runs it inline while the window goroutine has nothing queued
	// (no goroutine hand-off between a commit and the subscribers), or the
	// window goroutine, which takes the batches the committer queues while
	// it is busy (so that a slow hop does not hold up commits).
	winMu       sync.Mutex
	winBusy     atomic.Int64 // batches queued to the window goroutine and not yet processed
	curAccepted int64        // under winMu: commit time of the batch being processed
	emitted     []rowWrite   // under winMu: rows closed, awaiting settle
	rowsQueued  atomic.Int64 // rows handed to the row writer and not yet written

	// closeHook, when set (by tests), receives the commit→subscriber delay
	// of every watermark close.
	closeHook func(time.Duration)
}

var _ schema.SampleAppender = (*Store)(nil)

// Open opens (or creates) the store in dir and recovers it: series, sealed
// chunks within retention and budget, the WAL tail not yet in a chunk, and
// the online view. Open windows are rebuilt by Start. A damaged data
// directory is an error wrapping ErrDamaged unless cfg.Recovery is
// quarantine.
func Open(ctx context.Context, dir string, cfg Config, views []schema.FeatureView, reg prometheus.Registerer, log *slog.Logger) (*Store, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("featurestore config: %w", err)
	}
	if err := validateViews(views); err != nil {
		return nil, fmt.Errorf("featurestore views: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		cfg: cfg, dir: dir, log: log, views: views, viewIx: map[string]int{},
		series:   newSeriesTable(),
		commitCh: make(chan *pending, cfg.CommitQueue), winCh: make(chan *pending, cfg.WindowQueue),
		chunkCh: make(chan *chunk, 64), rowCh: make(chan []rowWrite, 4096), stopMaint: make(chan struct{}),
	}
	s.pool.New = func() any { return &pending{done: make(chan error, 1)} }
	for i, v := range views {
		s.viewIx[v.Name] = i
		s.online = append(s.online, newOnlineView())
		s.tables = append(s.tables, newViewTable(v))
	}
	s.subs.Store(&[]schema.FeatureRowHandler{})
	m, err := newStoreMetrics(reg, s)
	if err != nil {
		return nil, fmt.Errorf("featurestore metrics: %w", err)
	}
	s.m = m
	s.win = newWindowEngine(views, s.series.def)
	for i, ve := range s.win.views {
		applied := s.m.late.WithLabelValues(views[i].Name, "applied")
		dropped := s.m.late.WithLabelValues(views[i].Name, "dropped")
		ve.lateApplied, ve.lateDropped = applied.Inc, dropped.Inc
	}
	s.win.emit = s.emit

	if err := checkDir(dir); err != nil {
		return nil, err
	}
	start := time.Now()
	if s.wal, err = openSegmentLog(filepath.Join(dir, walDir), walExt, walMagic, walSegmentBytes); err != nil {
		return nil, fmt.Errorf("open wal: %w", err)
	}
	if s.chunks, err = openSegmentLog(filepath.Join(dir, chunkDir), chunkExt, chunkMagic, chunkSegmentBytes); err != nil {
		return nil, fmt.Errorf("open chunk log: %w", err)
	}
	db, err := badger.Open(badgerOptions(dir, cfg, log))
	if err != nil {
		return nil, fmt.Errorf("open badger in %s: %w: %w", dir, ErrDamaged, err)
	}
	s.db = db
	s.hot = newHotTier(cfg.SealRows) // from here on, s.hot.close() on failure
	if err := s.recover(ctx); err != nil {
		s.hot.close()
		_ = db.Close()
		return nil, err
	}
	s.m.recoverSeconds.Set(time.Since(start).Seconds())
	rows, bytes := s.hot.usage()
	log.Info("feature store opened", "dir", dir, "series", s.series.len(), "hot_samples", rows, "hot_bytes", bytes,
		"wal_tail_batches", len(s.replayWAL), "took", time.Since(start))
	return s, nil
}

// badgerOptions sizes Badger for what it holds since the WAL and the
// chunks moved to segment files: series definitions, chunk locations,
// feature rows, the online view and state blobs. Badger maps its memtable
// files, tables and value log, and allocates its memtables on the Go heap,
// so everything here counts in the process's memory: the memtable and
// block cache are configurable and small by default.
func badgerOptions(dir string, cfg Config, log *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log}).
		WithSyncWrites(false). // nothing acknowledged depends on Badger syncing; see trimWAL
		WithMemTableSize(int64(cfg.BadgerMemTable)).
		WithNumMemtables(2).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(12).
		WithBlockCacheSize(int64(cfg.BadgerBlockCache)).
		WithNumCompactors(2).
		WithDetectConflicts(false).
		WithValueThreshold(valueThreshold).
		WithValueLogFileSize(16 << 20).
		WithMetricsEnabled(false)
}

// valueThreshold keeps feature rows (a few hundred bytes) in the LSM tree;
// only rows of more than about 500 features go to Badger's value log.
const valueThreshold = 4 << 10

// checkDir refuses a directory that holds Badger data files but no
// MANIFEST: Badger would start an empty database over them and delete the
// tables it does not know, which is a silent wipe.
func checkDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create store directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read store directory: %w", err)
	}
	var data []string
	manifest := false
	for _, e := range ents {
		switch ext := filepath.Ext(e.Name()); {
		case e.Name() == "MANIFEST":
			manifest = true
		case ext == ".sst" || ext == ".vlog" || ext == ".mem":
			data = append(data, e.Name())
		}
	}
	if !manifest && len(data) > 0 {
		return fmt.Errorf("%s holds %d Badger data files (%s, ...) but no MANIFEST: %w", dir, len(data), data[0], ErrDamaged)
	}
	return nil
}

// recover loads everything persisted. It runs before any goroutine starts.
func (s *Store) recover(ctx context.Context) error {
	var damaged [][]byte
	var placeholders []int32
	fail := func(kind string, key []byte, err error) error {
		if s.cfg.Recovery == RecoveryQuarantine {
			s.log.Error("quarantining damaged store entry", "kind", kind, "key", keyString(key), "err", err)
			s.m.damaged.WithLabelValues(kind).Inc()
			damaged = append(damaged, append([]byte(nil), key...))
			return nil
		}
		return fmt.Errorf("%s: %w: %w", keyString(key), err, ErrDamaged)
	}
	format, err := s.readFormat()
	if err != nil {
		return err
	}
	if format == formatVersion1 {
		if err := s.migrateV1(); err != nil {
			return fmt.Errorf("migrate store format 1 to 2: %w", err)
		}
	}
	var metas []chunkMeta
	locs := map[chunkMeta]chunkLoc{}
	err = s.db.View(func(txn *badger.Txn) error {
		// Series: ids are dense from 0.
		if err := iteratePrefix(txn, []byte{prefixSeries}, true, func(k, v []byte) error {
			if len(k) != 5 {
				return fail("series", k, fmt.Errorf("key of %d bytes", len(k)))
			}
			id := int32(uint32(k[1])<<24 | uint32(k[2])<<16 | uint32(k[3])<<8 | uint32(k[4]))
			d, err := decodeSeriesDef(v)
			if err != nil {
				if err := fail("series", k, err); err != nil {
					return err
				}
				// Keep ids dense: the samples of this series stay readable
				// under a placeholder name, persisted in place of the entry.
				d = placeholderSeries(id)
				placeholders = append(placeholders, id)
			}
			if err := s.series.restore(id, d); err != nil {
				return fail("series", k, err)
			}
			return nil
		}); err != nil {
			return err
		}

		// Chunks: plan from the keys (their values say where each chunk
		// is in the chunk log).
		if err := iteratePrefix(txn, []byte{prefixChunk}, true, func(k, v []byte) error {
			m, err := parseChunkKey(k)
			if err != nil {
				return fail("chunk", k, err)
			}
			l, err := decodeChunkLoc(v)
			if err != nil {
				return fail("chunk", k, err)
			}
			metas = append(metas, m)
			locs[m] = l
			return nil
		}); err != nil {
			return err
		}
		for _, m := range metas {
			s.seq = max(s.seq, m.lastSeq)
		}
		if it, err := txn.Get(keyChunked); err == nil {
			v, err := it.ValueCopy(nil)
			if err != nil || len(v) != 8 {
				return fmt.Errorf("read last chunked WAL sequence: %w", ErrDamaged)
			}
			s.seq = max(s.seq, bytesToSeq(v))
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return fmt.Errorf("read last chunked WAL sequence: %w: %w", err, ErrDamaged)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(metas, func(i, j int) bool { return metas[i].firstSeq < metas[j].firstSeq })
	s.persistedSeq.Store(s.seq)
	persisted := s.seq

	// WAL: series defined since Badger last had them, and the batches after
	// the last persisted chunk.
	damage, err := s.scanWAL(persisted, func(_ uint64, e walEntry) error {
		switch e.kind {
		case walKindSeries:
			return s.series.restoreWAL(e.sid, e.def)
		case walKindBatch:
			s.seq = max(s.seq, e.seq)
			if e.seq <= persisted {
				return nil // covered by a chunk
			}
			if err := s.checkSeriesRecs(e.recs); err != nil {
				return fmt.Errorf("batch %d: %w", e.seq, err)
			}
			s.replayWAL = append(s.replayWAL, &pending{recs: e.recs, seq: e.seq})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(damage) > 0 {
		if s.cfg.Recovery != RecoveryQuarantine {
			return fmt.Errorf("%w: %w", damage[0], ErrDamaged)
		}
		if err := s.quarantineWAL(damage); err != nil {
			return err
		}
	}
	sort.Slice(s.replayWAL, func(i, j int) bool { return s.replayWAL[i].seq < s.replayWAL[j].seq })
	for _, id := range s.wal.ids() {
		s.seq = max(s.seq, id)
	}

	// Load the newest chunks within retention and budget.
	cutoff := time.Now().Add(-s.cfg.RetentionAge).UnixNano()
	budget := int64(s.cfg.MemoryBudget) - int64(s.cfg.SealRows)*bytesPerRow
	var want []chunkMeta
	var used int64
	for i := len(metas) - 1; i >= 0; i-- {
		m := metas[i]
		if m.maxTS < cutoff || used+int64(m.rows)*bytesPerRow > budget {
			break
		}
		used += int64(m.rows) * bytesPerRow
		want = append(want, m)
	}
	load, err := s.loadChunks(ctx, want, locs, fail)
	if err != nil {
		return err
	}
	for i := len(load) - 1; i >= 0; i-- {
		s.hot.load(load[i])
	}
	s.replayFrom = load

	for _, p := range s.replayWAL {
		for _, c := range s.hot.append(p.recs, p.seq, time.Now()) {
			err := s.persistChunks([]*chunk{c}) // synchronous: no goroutines yet
			c.release()
			if err != nil {
				return fmt.Errorf("persist recovered chunk: %w", err)
			}
		}
	}
	if err := s.quarantine(damaged); err != nil {
		return err
	}
	for _, id := range placeholders {
		d := placeholderSeries(id)
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(seriesKeyBytes(id), encodeSeriesDef(nil, d)) }); err != nil {
			return fmt.Errorf("write placeholder for damaged series %d: %w", id, err)
		}
		s.log.Error("damaged series definition replaced by a placeholder", "series", id, "device", d.device)
	}
	if err := s.trimWAL(); err != nil {
		return err
	}
	if err := s.expireChunkSegments(time.Now()); err != nil {
		s.log.Warn("expire chunk segments", "err", err)
	}
	return s.loadOnline()
}

// readFormat returns the store's format version, writing the current one
// into a new store.
func (s *Store) readFormat() (string, error) {
	var v []byte
	err := s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(keyFormat)
		if err != nil {
			return err
		}
		v, err = it.ValueCopy(nil)
		return err
	})
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		// A new store, or one of format 1 that never got to write the key.
		var old bool
		_ = s.db.View(func(txn *badger.Txn) error {
			for _, p := range []byte{prefixWAL, prefixChunk} {
				it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{p}})
				it.Rewind()
				old = old || it.Valid()
				it.Close()
			}
			return nil
		})
		if old {
			return formatVersion1, nil
		}
		if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(keyFormat, []byte(formatVersion)) }); err != nil {
			return "", fmt.Errorf("write store format: %w", err)
		}
		return formatVersion, nil
	case err != nil:
		return "", fmt.Errorf("read store format: %w: %w", err, ErrDamaged)
	case string(v) != formatVersion && string(v) != formatVersion1:
		return "", fmt.Errorf("store format %q: this binary reads %q (and migrates %q)", v, formatVersion, formatVersion1)
	}
	return string(v), nil
}

// placeholderSeries names a series whose definition was damaged.
func placeholderSeries(id int32) seriesDef {
	return seriesDef{seriesKey: seriesKey{device: fmt.Sprintf("damaged-series-%d", id), metric: "unknown"}}
}

// loadChunks reads the chunks of metas (newest first) from the chunk log
// and decodes them on every core. Damaged ones go through fail; a nil
// result for a damaged chunk is left out.
func (s *Store) loadChunks(ctx context.Context, metas []chunkMeta, locs map[chunkMeta]chunkLoc, fail func(string, []byte, error) error) ([]*chunk, error) {
	type job struct {
		i int
		v []byte
	}
	out := make([]*chunk, len(metas))
	errs := make([]error, len(metas))
	jobs := make(chan job, 4)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range jobs {
				c, err := decodeChunk(j.v, metas[j.i])
				if err == nil {
					if err = s.checkSeries(c.sid); err != nil {
						c.release()
						c = nil
					}
				}
				out[j.i], errs[j.i] = c, err
			}
		})
	}
	var readErr error
	for i, m := range metas {
		if readErr = ctx.Err(); readErr != nil {
			break
		}
		v, err := s.readChunkBytes(locs[m])
		if err != nil {
			errs[i] = err
			continue
		}
		jobs <- job{i, v}
	}
	close(jobs)
	wg.Wait()
	if readErr != nil {
		for _, c := range out {
			if c != nil {
				c.release()
			}
		}
		return nil, readErr
	}
	load := make([]*chunk, 0, len(metas))
	for i, m := range metas {
		if errs[i] != nil {
			if err := fail("chunk", chunkKey(m), errs[i]); err != nil {
				for _, c := range out {
					if c != nil {
						c.release()
					}
				}
				return nil, err
			}
			continue
		}
		load = append(load, out[i])
	}
	return load, nil
}

func (s *Store) checkSeries(sids []int32) error {
	n := int32(s.series.len())
	for _, id := range sids {
		if id < 0 || id >= n {
			return fmt.Errorf("series id %d unknown (%d series persisted)", id, n)
		}
	}
	return nil
}

func (s *Store) checkSeriesRecs(recs []rec) error {
	n := int32(s.series.len())
	for i := range recs {
		if recs[i].sid < 0 || recs[i].sid >= n {
			return fmt.Errorf("series id %d unknown (%d series persisted)", recs[i].sid, n)
		}
	}
	return nil
}

// quarantine moves damaged entries under prefixQuarantine, keeping their
// bytes for inspection.
func (s *Store) quarantine(keys [][]byte) error {
	for _, k := range keys {
		err := s.db.Update(func(txn *badger.Txn) error {
			var v []byte
			if item, err := txn.Get(k); err == nil {
				v, _ = item.ValueCopy(nil) // unreadable values are quarantined empty
			}
			if err := txn.Set(append([]byte{prefixQuarantine}, k...), v); err != nil {
				return err
			}
			return txn.Delete(k)
		})
		if err != nil {
			return fmt.Errorf("quarantine %q: %w", k, err)
		}
	}
	return nil
}

func iteratePrefix(txn *badger.Txn, prefix []byte, values bool, fn func(k, v []byte) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = values
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		var v []byte
		if values {
			var err error
			if v, err = item.ValueCopy(nil); err != nil {
				if err := fn(item.KeyCopy(nil), nil); err != nil {
					return fmt.Errorf("read %q: %w", item.Key(), err)
				}
				continue
			}
		}
		if err := fn(item.Key(), v); err != nil {
			return err
		}
	}
	return nil
}

// trimWAL removes the WAL segments whose every batch is in a persisted
// chunk. The chunk keys that cover them are synced first (Badger does not
// sync on its own under any fsync policy), so that a power loss can never
// leave a batch in neither place.
func (s *Store) trimWAL() error {
	persisted := s.persistedSeq.Load()
	ids := s.wal.ids()
	var del []uint64
	// Every batch in segment i has a sequence number below segment i+1's
	// id; the newest segment is never removed.
	for i := 0; i+1 < len(ids) && ids[i+1]-1 <= persisted; i++ {
		del = append(del, ids[i])
	}
	if len(del) == 0 {
		return nil
	}
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("sync badger before removing wal segments: %w", err)
	}
	if err := s.wal.remove(del); err != nil {
		return fmt.Errorf("remove wal segments: %w", err)
	}
	return nil
}

// expireChunkSegments removes chunk segments written longer than chunk_ttl
// ago: every chunk key pointing into them has expired (a key's TTL starts
// when the chunk is written, before the file's last write).
func (s *Store) expireChunkSegments(now time.Time) error {
	if s.cfg.ChunkTTL <= 0 {
		return nil
	}
	cur, _, hasCur := s.chunks.current()
	var del []uint64
	for _, id := range s.chunks.ids() {
		if hasCur && id == cur {
			continue
		}
		st, err := os.Stat(s.chunks.path(id))
		if err != nil {
			continue
		}
		if now.Sub(st.ModTime()) > s.cfg.ChunkTTL {
			del = append(del, id)
		}
	}
	return s.chunks.remove(del)
}

func bytesToSeq(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

func (s *Store) deleteKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return nil
	}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return fmt.Errorf("delete %q: %w", k, err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("delete %d keys: %w", len(keys), err)
	}
	return nil
}

// Subscribe registers h to receive every closed window. Register before
// Start to also receive windows that recovery closes.
func (s *Store) Subscribe(h schema.FeatureRowHandler) {
	for {
		old := s.subs.Load()
		next := append(append([]schema.FeatureRowHandler(nil), *old...), h)
		if s.subs.CompareAndSwap(old, &next) {
			return
		}
	}
}

// Name identifies the store as a service component.
func (s *Store) Name() string { return "store" }

// Ready reports nil once the store is running.
func (s *Store) Ready() error {
	s.appendMu.RLock()
	defer s.appendMu.RUnlock()
	if !s.running {
		return ErrNotRunning
	}
	return nil
}

// Start replays recovered samples through the windows (rebuilding the open
// windows; windows delivered before the restart are not delivered again),
// then starts the committer, the window engine, the chunk and row writers
// and the maintenance loop. It returns once they run.
func (s *Store) Start(ctx context.Context) error {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	if s.running || s.stopped {
		return errors.New("featurestore: Start called twice")
	}
	if err := s.replayWindows(ctx); err != nil {
		return err
	}
	s.wg.Add(5)
	go s.committer()
	go s.windowLoop()
	go s.chunkWriter()
	go s.rowWriter()
	go s.maintenance()
	s.running = true
	return nil
}

// replayWindows feeds the recent hot-tier history through the window
// engine: enough event time to fill the longest window of every view.
func (s *Store) replayWindows(ctx context.Context) error {
	defer func() { s.replayFrom, s.replayWAL = nil, nil }()
	if len(s.views) == 0 {
		return nil
	}
	if err := s.loadMarks(); err != nil {
		return err
	}
	var span int64
	for _, v := range s.views {
		span = max(span, int64(v.MaxWindow()+v.AllowedLateness+v.Hop))
	}
	newest := int64(math.MinInt64)
	for _, c := range s.replayFrom {
		newest = max(newest, c.maxTS)
	}
	for _, p := range s.replayWAL {
		for _, r := range p.recs {
			newest = max(newest, r.ts)
		}
	}
	chunks := append([]*chunk(nil), s.replayFrom...)
	sort.Slice(chunks, func(i, j int) bool { return chunks[i].firstSeq < chunks[j].firstSeq })
	now := time.Now()
	var recs []rec
	for _, c := range chunks {
		if c.maxTS < newest-span || c.lastSeq > s.persistedSeq.Load() {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		recs = recs[:0]
		for i := range c.ts {
			recs = append(recs, rec{ts: c.ts[i], ingest: c.ts[i], value: c.val[i], sid: c.sid[i]})
		}
		s.win.process(recs, now)
		s.settle()
	}
	for _, p := range s.replayWAL {
		s.win.process(p.recs, now)
		s.settle()
	}
	return nil
}

func (s *Store) loadMarks() error {
	return s.db.View(func(txn *badger.Txn) error {
		for i, v := range s.views {
			item, err := txn.Get(markKey(v.Name))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read window mark of view %s: %w", v.Name, err)
			}
			b, err := item.ValueCopy(nil)
			if err != nil || len(b) != 8 {
				return fmt.Errorf("window mark of view %s: %w", v.Name, ErrDamaged)
			}
			s.win.views[i].mark = int64(bytesToSeq(b))
		}
		return nil
	})
}

// Append accepts a batch of samples: it returns once the batch is in the
// WAL under the fsync policy. Samples without a device or metric are
// counted as rejected and skipped. Append blocks while the commit queue is
// full and returns ctx.Err() if ctx ends first; once queued, the batch is
// committed even if ctx ends, so a nil error always means accepted.
func (s *Store) Append(ctx context.Context, batch []schema.Sample) error {
	if len(batch) == 0 {
		return nil
	}
	p := s.pool.Get().(*pending)
	for i := range batch {
		if x := &batch[i]; x.Device == "" || x.Metric == "" {
			batch = s.rejectBad(batch)
			break
		}
	}
	p.recs = slices.Grow(p.recs[:0], len(batch))[:len(batch)]
	for i := range batch {
		x := &batch[i]
		p.recs[i] = rec{ts: x.TS, ingest: x.IngestTS, value: x.Value}
	}
	s.series.internBatch(batch, p.recs)
	if len(p.recs) == 0 {
		s.pool.Put(p)
		return nil
	}
	p.enc = encodeWALBatch(p.enc[:0], p.recs)
	p.refs.Store(2)

	s.appendMu.RLock()
	if !s.running {
		s.appendMu.RUnlock()
		s.pool.Put(p)
		return ErrNotRunning
	}
	if s.cfg.FSync != FSyncBatch && len(s.commitCh) == 0 && s.commitMu.TryLock() {
		// No one is committing: lead. (FSyncBatch waits for a group to
		// form; that is the committer's job.)
		s.leadGroup = s.gather(append(s.leadGroup[:0], p), int64(len(p.enc)), nil)
		s.apply(s.leadGroup)
		clear(s.leadGroup)
		s.commitMu.Unlock()
		s.appendMu.RUnlock()
		err := <-p.done
		s.release(p)
		return err
	}
	select {
	case s.commitCh <- p:
	case <-ctx.Done():
		s.appendMu.RUnlock()
		s.pool.Put(p)
		return ctx.Err()
	}
	s.appendMu.RUnlock()
	err := <-p.done
	s.release(p)
	return err
}

// rejectBad returns a copy of batch without the samples that lack a device
// or metric, counting and logging each.
func (s *Store) rejectBad(batch []schema.Sample) []schema.Sample {
	good := make([]schema.Sample, 0, len(batch))
	for _, x := range batch {
		if x.Device == "" || x.Metric == "" {
			s.m.rejected.WithLabelValues(x.Device, "missing_label").Inc()
			s.log.Warn("sample rejected: empty device or metric", "device", x.Device, "component", x.Component, "metric", x.Metric)
			continue
		}
		good = append(good, x)
	}
	return good
}

func (s *Store) release(p *pending) {
	if p.refs.Add(-1) == 0 {
		s.pool.Put(p)
	}
}

// committer owns the WAL sequence and the hot tier's write side: it group
// commits queued batches, then applies them in sequence order.
func (s *Store) committer() {
	defer s.wg.Done()
	defer close(s.chunkCh)
	defer close(s.winCh)
	tick := time.NewTicker(min(s.cfg.SealAge/2, time.Second))
	defer tick.Stop()
	group := make([]*pending, 0, 256)
	for {
		var p *pending
		select {
		case q, ok := <-s.commitCh:
			if !ok {
				return
			}
			p = q
		case now := <-tick.C:
			s.commitMu.Lock()
			s.maintainHot(now)
			s.commitMu.Unlock()
			continue
		}
		s.commitMu.Lock()
		var t *time.Timer
		var delay <-chan time.Time
		if s.cfg.FSync == FSyncBatch && s.cfg.GroupCommitDelay > 0 {
			t = time.NewTimer(s.cfg.GroupCommitDelay)
			delay = t.C
		}
		group = s.gather(append(group[:0], p), int64(len(p.enc)), delay)
		if t != nil {
			t.Stop()
		}
		s.apply(group)
		clear(group)
		s.commitMu.Unlock()
	}
}

// One WAL write holds at most this much.
const maxGroupBytes, maxGroupCount = 8 << 20, 4096

// gather adds queued batches to group, whose WAL records take size
// bytes, up to one WAL write (none under FSyncAlways: each batch is synced
// on its own): until delay fires it waits for more (the FSyncBatch group
// commit delay; nil waits not at all), then takes what is already queued.
// The caller holds commitMu.
func (s *Store) gather(group []*pending, size int64, delay <-chan time.Time) []*pending {
	if s.cfg.FSync == FSyncAlways {
		return group
	}
	for size < maxGroupBytes && len(group) < maxGroupCount {
		var (
			q  *pending
			ok bool
		)
		if delay != nil {
			select {
			case q, ok = <-s.commitCh:
			case <-delay:
				delay = nil
				continue
			}
		} else {
			select {
			case q, ok = <-s.commitCh:
			default:
				return group
			}
		}
		if !ok {
			return group
		}
		group = append(group, q)
		size += int64(len(q.enc))
	}
	return group
}

// apply writes group to the WAL, runs it through the window engine and
// into the hot tier, and answers each batch's appender on its done
// channel. The caller holds commitMu.
func (s *Store) apply(group []*pending) {
	err := s.commitGroup(group)
	if err != nil {
		for _, q := range group {
			s.release(q) // the window engine's reference
			q.done <- err
		}
		return
	}
	now := time.Now()
	for _, q := range group {
		q.accepted = now.UnixNano()
	}
	// Windows first: their subscribers are the latency-critical path;
	// the hot tier's append (which may fault in fresh pages) and the
	// appenders' wake-ups come after.
	s.toWindows(group)
	for _, q := range group {
		for _, c := range s.hot.append(q.recs, q.seq, now) {
			s.m.chunksSealed.WithLabelValues("rows").Inc()
			s.chunkCh <- c
		}
		s.m.appended.Add(float64(len(q.recs)))
		q.done <- nil
	}
}

// toWindows hands committed batches to the window engine, in WAL order:
// at once on the committer when the window goroutine has nothing queued,
// else through its queue. Either way a window closes only on samples
// already accepted (written to the WAL under the fsync policy), so a row
// never rests on samples a process crash could lose or that Append
// refused.
func (s *Store) toWindows(group []*pending) {
	if len(s.views) == 0 {
		for _, q := range group {
			s.release(q)
		}
		return
	}
	if s.winBusy.Load() == 0 {
		// Every batch queued before has been processed: the engine is free
		// and this group is next in WAL order.
		s.winMu.Lock()
		for _, q := range group {
			s.curAccepted = q.accepted
			s.win.process(q.recs, time.Now())
		}
		s.settle()
		s.winMu.Unlock()
		for _, q := range group {
			s.release(q)
		}
		return
	}
	for _, q := range group {
		s.winBusy.Add(1)
		s.winCh <- q
	}
}

// commitGroup writes the group's WAL records (and those of any new
// series) with one write to the WAL segment, fdatasynced unless the policy
// is interval.
func (s *Store) commitGroup(group []*pending) error {
	start := time.Now()
	first, defs := s.series.unwalled()
	buf := s.walBuf[:0]
	for i, d := range defs {
		buf = appendWALSeries(buf, int32(first+i), d)
	}
	seq := s.seq
	for _, p := range group {
		seq++
		p.seq = seq
		buf = appendWALBatch(buf, seq, p.enc)
	}
	if cap(buf) <= 1<<20 {
		s.walBuf = buf // a rare big group's buffer is not kept
	}
	if _, _, err := s.wal.append(s.seq+1, buf, s.cfg.FSync != FSyncInterval); err != nil {
		return s.walFailed(fmt.Errorf("wal: write %d batches: %w", len(group), err))
	}
	s.seq = seq
	s.series.markWalled(first + len(defs))
	s.m.walCommits.Inc()
	s.m.walBatches.Add(float64(len(group)))
	s.m.walBytes.Add(float64(len(buf)))
	s.m.walCommitTime.Observe(time.Since(start).Seconds())
	return nil
}

func (s *Store) walFailed(err error) error {
	s.m.walErrors.Inc()
	s.log.Error("WAL commit failed; batches not accepted", "err", err)
	return err
}

// maintainHot seals the open chunk by age and applies retention. It runs
// on the committer goroutine, so chunks reach the writer in seal order.
func (s *Store) maintainHot(now time.Time) {
	if c := s.hot.sealOld(now, s.cfg.SealAge); c != nil { // carries the writer's reference
		s.m.chunksSealed.WithLabelValues("age").Inc()
		s.chunkCh <- c
	}
	s.hot.retain(now.Add(-s.cfg.RetentionAge).UnixNano(), int64(s.cfg.MemoryBudget), func(c *chunk, r dropReason) {
		s.m.chunksDropped.WithLabelValues(string(r)).Inc()
		s.log.Debug("chunk dropped from hot tier", "reason", r, "rows", c.rows(), "max_ts", time.Unix(0, c.maxTS))
	})
	for _, t := range s.tables {
		t.retain(now.Add(-s.cfg.RetentionAge).UnixNano())
	}
}

// chunkWriter persists sealed chunks in seal order, a few at a time, then
// removes the WAL segments they cover. A failed write is retried: a later
// chunk must never be persisted before an earlier one, or recovery would
// skip WAL batches.
func (s *Store) chunkWriter() {
	defer s.wg.Done()
	batch := make([]*chunk, 0, 16)
	for c := range s.chunkCh {
		batch = append(batch[:0], c)
	more:
		for len(batch) < cap(batch) {
			select {
			case c, ok := <-s.chunkCh:
				if !ok {
					break more
				}
				batch = append(batch, c)
			default:
				break more
			}
		}
		err := s.persistChunks(batch)
		for _, c := range batch {
			c.release()
		}
		if err != nil {
			// Their samples stay in the WAL and recovery replays them; a
			// later chunk must not be persisted ahead of them, so stop until
			// restart.
			s.log.Error("giving up on chunk writes until restart; the WAL keeps growing", "err", err)
			for c := range s.chunkCh {
				c.release()
			}
			return
		}
		if err := s.trimWAL(); err != nil {
			s.log.Warn("WAL segments covered by chunks not removed yet", "err", err)
		}
	}
}

// persistChunks writes cs (in seal order), retrying a few times with
// backoff.
func (s *Store) persistChunks(cs []*chunk) error {
	var err error
	for attempt := range 5 {
		if err = s.writeChunks(cs); err == nil {
			s.m.chunkPersist.WithLabelValues("ok").Add(float64(len(cs)))
			return nil
		}
		s.m.chunkPersist.WithLabelValues("error").Inc()
		s.log.Error("chunk write failed; its samples stay in the WAL", "first_seq", cs[0].firstSeq,
			"last_seq", cs[len(cs)-1].lastSeq, "err", err)
		time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
	}
	return err
}

// writeChunks appends the chunks to the chunk log and fdatasyncs it, then
// records them in Badger (key: metadata; value: location), with the
// series definitions Badger does not have yet and the last WAL sequence
// number now covered. A chunk is in Badger only once its bytes are on
// stable storage.
func (s *Store) writeChunks(cs []*chunk) error {
	type written struct {
		m   chunkMeta
		loc chunkLoc
	}
	out := make([]written, 0, len(cs))
	for _, c := range cs {
		buf, err := s.chunkEnc.record(c)
		if err != nil {
			return err
		}
		seg, off, err := s.chunks.append(c.firstSeq, buf, false)
		if err != nil {
			return fmt.Errorf("write chunk: %w", err)
		}
		m := chunkMeta{firstSeq: c.firstSeq, lastSeq: c.lastSeq, minTS: c.minTS, maxTS: c.maxTS, rows: uint32(c.rows())}
		out = append(out, written{m, chunkLoc{seg: seg, off: off, n: uint32(len(buf))}})
	}
	if err := s.chunks.sync(); err != nil {
		return fmt.Errorf("write chunk: %w", err)
	}
	// Series first (a write batch: there may be more than one transaction
	// holds), then the chunks that use them.
	first, defs := s.series.unpersisted()
	if len(defs) > 0 {
		wb := s.db.NewWriteBatch()
		for i, d := range defs {
			if err := wb.Set(seriesKeyBytes(int32(first+i)), encodeSeriesDef(nil, d)); err != nil {
				wb.Cancel()
				return fmt.Errorf("record series in badger: %w", err)
			}
		}
		if err := wb.Flush(); err != nil {
			return fmt.Errorf("record series in badger: %w", err)
		}
		s.series.markPersisted(first + len(defs))
	}
	last := cs[len(cs)-1].lastSeq
	err := s.db.Update(func(txn *badger.Txn) error {
		for _, w := range out {
			e := badger.NewEntry(chunkKey(w.m), encodeChunkLoc(w.loc))
			if s.cfg.ChunkTTL > 0 {
				e = e.WithTTL(s.cfg.ChunkTTL)
			}
			if err := txn.SetEntry(e); err != nil {
				return err
			}
		}
		return txn.Set(keyChunked, binary.BigEndian.AppendUint64(nil, last))
	})
	if err != nil {
		return fmt.Errorf("record chunks in badger: %w", err)
	}
	s.persistedSeq.Store(last)
	return nil
}

// windowLoop runs the window engine over the committed batches the
// committer queues while it is busy (see toWindows) and sweeps idle
// entities.
func (s *Store) windowLoop() {
	defer s.wg.Done()
	defer close(s.rowCh)
	idle := time.Second
	for _, v := range s.views {
		if v.IdleTimeout > 0 {
			idle = min(idle, max(v.IdleTimeout/4, 10*time.Millisecond))
		}
	}
	tick := time.NewTicker(idle)
	defer tick.Stop()
	for {
		select {
		case p, ok := <-s.winCh:
			if !ok {
				return
			}
			s.winMu.Lock()
			s.curAccepted = p.accepted
			s.win.process(p.recs, time.Now())
			s.settle()
			s.winMu.Unlock()
			s.release(p)
			s.winBusy.Add(-1)
		case now := <-tick.C:
			s.winMu.Lock()
			s.curAccepted = 0
			s.win.sweepIdle(now)
			s.settle()
			s.winMu.Unlock()
		}
	}
}

// maintenance syncs the WAL under the interval policy, removes expired
// chunk segments, and reclaims Badger value log files.
func (s *Store) maintenance() {
	defer s.wg.Done()
	sync := s.cfg.FSyncInterval
	if s.cfg.FSync != FSyncInterval {
		sync = time.Hour
	}
	syncTick := time.NewTicker(sync)
	defer syncTick.Stop()
	gcTick := time.NewTicker(30 * time.Second)
	defer gcTick.Stop()
	for {
		select {
		case <-syncTick.C:
			if s.cfg.FSync == FSyncInterval {
				if err := s.wal.sync(); err != nil {
					s.log.Error("WAL fsync failed", "err", err)
				}
			}
		case now := <-gcTick.C:
			if err := s.expireChunkSegments(now); err != nil {
				s.log.Warn("expire chunk segments", "err", err)
			}
			for s.db.RunValueLogGC(0.5) == nil {
				select {
				case <-s.stopMaint:
					return
				default:
				}
			}
		case <-s.stopMaint:
			return
		}
	}
}

// Stop refuses new appends, commits what is queued, lets the window engine
// and the writers drain, and waits for them within ctx's deadline. The
// open chunk stays in the WAL and is replayed at the next Open.
func (s *Store) Stop(ctx context.Context) error {
	s.appendMu.Lock()
	if !s.running {
		s.stopped = true
		s.appendMu.Unlock()
		return nil
	}
	s.running, s.stopped = false, true
	close(s.commitCh)
	s.appendMu.Unlock()
	close(s.stopMaint)
	done := make(chan struct{})
	go func() {
		// The committer drains the queue and closes winCh and chunkCh; the
		// window loop then closes rowCh; every writer drains and ends.
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("featurestore stop: %w", ctx.Err())
	}
	if err := s.wal.sync(); err != nil {
		return fmt.Errorf("featurestore stop: sync: %w", err)
	}
	return nil
}

// Close stops the store if it runs and closes Badger.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = s.Stop(ctx)
		s.hot.close()
		if cerr := errors.Join(s.wal.close(), s.chunks.close()); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close logs: %w", cerr))
		}
		if cerr := s.db.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close badger: %w", cerr))
		}
	})
	return err
}

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

// badgerLogger routes Badger's logs to slog; its info chatter goes to debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Infof(f string, a ...any) {
	b.l.Debug(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Debugf(f string, a ...any) {
	b.l.Debug(fmt.Sprintf(f, a...), "component", "badger")
}

var _ io.Closer = (*Store)(nil)
