// The Store type, its lifecycle (New, Start, Stop) and subscription. New
// does no I/O. Start opens and recovers the data directory on the caller's
// goroutine (recover.go), before any of the store's own goroutines exist,
// then launches the five goroutines that own the rest: the committer
// (commit.go), the window loop (commit.go), the chunk writer
// (chunkwriter.go), the row writer (online.go) and the maintenance loop
// (maintenance.go). Stop ends them in that dependency order, then closes
// the files and Badger.

package featurestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/internal/badgerdir"
	"github.com/netfeat/netfeat/schema"
)

// Errors returned by the store.
var (
	// ErrNotRunning is returned by Append before Start or after Stop.
	ErrNotRunning = errors.New("featurestore: not running")
	// ErrDamaged wraps every problem recovery finds in the data directory;
	// docs/featurestore.md ("Damaged data directory") says what to do.
	ErrDamaged = errors.New("featurestore: data directory is damaged (see docs/featurestore.md, \"Damaged data directory\")")
	// ErrUnknownView is returned for a view name the store was not created with.
	ErrUnknownView = errors.New("featurestore: unknown view")
	// ErrNotFound is returned by GetState for a key never stored; it is
	// schema.ErrStateNotFound.
	ErrNotFound = schema.ErrStateNotFound
)

// pending is one Append batch on its way through the WAL commit to the hot
// tier and the window engine. The appender and the window engine each hold
// a reference; the last one returns it to the pool.
type pending struct {
	recs     []rec
	enc      []byte
	tap      []Record // the recs as the tap sees them
	seq      uint64
	done     chan error
	refs     atomic.Int32
	accepted int64 // monotonic-ish wall ns when the WAL commit finished
}

// Store is the feature store: the WAL, the hot tier, the window engine and
// the online view, persisted in Badger. It implements schema.SampleAppender
// and schema.StateStore. Create it with New, register subscribers, Start
// it and Stop it; the reading and state methods are for after Start. All
// methods are safe for concurrent use.
type Store struct {
	cfg    Config
	dir    string
	log    *slog.Logger
	m      *storeMetrics
	db     *badger.DB
	views  []schema.FeatureView
	viewIx map[string]int

	series *seriesTable
	tap    Tap         // set before Start (SetTap)
	wal    *segmentLog // WAL segments (<dir>/wal)
	chunks *segmentLog // sealed chunks (<dir>/chunks)
	walBuf []byte      // committer only

	chunkEnc chunkEncoder // chunk writer only (recovery before it starts)
	hot      *hotTier
	hotLimit atomic.Int64 // LimitHot's budget; 0: memory_budget
	hotShed  atomic.Int64 // bytes dropped under hotLimit (HotShed)
	win      *windowEngine
	online   []*onlineView
	tables   []*viewTable
	subs     atomic.Pointer[[]schema.FeatureRowHandler]
	evSubs   atomic.Pointer[[]schema.StateEventHandler]
	states   *stateTracker // under winMu, like win
	guard    inputGuard

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

var (
	_ schema.SampleAppender = (*Store)(nil)
	_ schema.StateStore     = (*Store)(nil)
)

// New validates cfg and views and builds the store for the data directory
// dir without touching it: Start opens (or creates) and recovers it. reg
// and log may be nil.
func New(cfg Config, views []schema.FeatureView, dir string, reg prometheus.Registerer, log *slog.Logger) (*Store, error) {
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
		series:   newSeriesTable(cfg.MaxSeries),
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
	s.evSubs.Store(&[]schema.StateEventHandler{})
	s.states = newStateTracker(s.series.def)
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
		ve.ahead = s.m.ahead.WithLabelValues(views[i].Name).Inc
		ve.skew = int64(cfg.MaxClockSkew)
	}
	s.win.emit, s.win.mark = s.emit, s.markClosed
	s.hot = newHotTier(cfg.SealRows)
	return s, nil
}

// open opens (or creates) the store in s.dir and recovers it: series,
// sealed chunks within retention and budget, the WAL tail not yet in a
// chunk, and the online view. A damaged data directory is an error
// wrapping ErrDamaged unless cfg.Recovery is quarantine. On failure it
// closes what it opened.
func (s *Store) open(ctx context.Context) (err error) {
	if err := checkDir(s.dir); err != nil {
		return err
	}
	start := time.Now()
	s.hot.spares.start()
	defer func() {
		if err != nil {
			_ = s.closeFiles()
		}
	}()
	if s.wal, err = openSegmentLog(filepath.Join(s.dir, walDir), walExt, walMagic, walSegmentBytes); err != nil {
		return fmt.Errorf("open wal: %w", err)
	}
	if s.chunks, err = openSegmentLog(filepath.Join(s.dir, chunkDir), chunkExt, chunkMagic, chunkSegmentBytes); err != nil {
		return fmt.Errorf("open chunk log: %w", err)
	}
	if torn, err := badgerdir.RemoveTornMemtables(s.dir); err != nil {
		return fmt.Errorf("open badger: %w", err)
	} else if len(torn) > 0 {
		s.log.Warn("removed empty Badger memtable files a crash left (they held no write)", "dir", s.dir, "files", torn)
	}
	db, err := badger.Open(badgerOptions(s.dir, s.cfg, s.log))
	if err != nil {
		return fmt.Errorf("open badger in %s: %w: %w", s.dir, ErrDamaged, err)
	}
	s.db = db
	if err := s.recover(ctx); err != nil {
		return err
	}
	s.m.recoverSeconds.Set(time.Since(start).Seconds())
	rows, bytes := s.hot.usage()
	s.log.Info("feature store opened", "dir", s.dir, "series", s.series.len(), "hot_samples", rows, "hot_bytes", bytes,
		"wal_tail_batches", len(s.replayWAL), "took", time.Since(start))
	return nil
}

// closeFiles releases the hot tier, the segment logs and Badger, whichever
// are open.
func (s *Store) closeFiles() error {
	s.hot.close()
	var errs []error
	if s.wal != nil {
		errs = append(errs, s.wal.close())
	}
	if s.chunks != nil {
		errs = append(errs, s.chunks.close())
	}
	if err := errors.Join(errs...); err != nil {
		err = fmt.Errorf("close logs: %w", err)
		errs = []error{err}
	} else {
		errs = nil
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close badger: %w", err))
		}
	}
	return errors.Join(errs...)
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

// Start opens (or creates) and recovers the data directory (see open),
// replays recovered samples through the windows (rebuilding the open
// windows; windows delivered before the restart are not delivered again),
// then starts the committer, the window engine, the chunk and row writers
// and the maintenance loop. It returns once they run. A store whose Start
// failed has released what it opened and cannot be started again.
func (s *Store) Start(ctx context.Context) error {
	s.appendMu.Lock()
	defer s.appendMu.Unlock()
	if s.running || s.stopped {
		return errors.New("featurestore: Start called twice")
	}
	if err := s.open(ctx); err != nil {
		s.stopped = true
		return err
	}
	// State events resume from the newest state of each series recovered
	// (none of the replayed samples is an event again).
	stats := s.hot.seriesStats()
	s.states.restore(stats)
	s.series.restoreLast(stats)
	if err := s.replayWindows(ctx); err != nil {
		s.stopped = true
		return errors.Join(err, s.closeFiles())
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

// Stop refuses new appends, commits what is queued, lets the window engine
// and the writers drain, and waits for them within ctx's deadline; then it
// syncs the WAL and closes the segment logs and Badger. The open chunk
// stays in the WAL and is replayed at the next Start. If ctx ends first,
// Stop returns its error and leaves the files open to the goroutines still
// draining. Stop may be called more than once; only the first call does
// anything.
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
	var errs []error
	if err := s.wal.sync(); err != nil {
		errs = append(errs, fmt.Errorf("featurestore stop: sync: %w", err))
	}
	if err := s.closeFiles(); err != nil {
		errs = append(errs, fmt.Errorf("featurestore stop: %w", err))
	}
	return errors.Join(errs...)
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
