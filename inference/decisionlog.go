package inference

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/zstd"
)

// decisionLog keeps every decision, live and shadow, in the inference
// Badger database for Config.DecisionRetention, so that the SQL
// `decisions` table answers time-ranged queries beyond the in-memory ring
// (Config.History). Scoring appends the decision's JSON document, the one
// it publishes, to a pending buffer under a mutex: add never blocks on
// the writer, never wakes it, and drops and counts when the buffer is
// full. One goroutine writes the pending decisions every logInterval (or
// at logBatch of them) as one block: one Badger entry per block, not per
// decision, since at thousands of decisions a second Badger's per-entry
// work (memtable, flushes, compactions) cost more CPU than scoring them.
//
// A block's key is "decisions/<min time><seq>" (both big-endian uint64:
// decision time in Unix ns, seq a per-process counter), so key order is
// time order to within a block; its value is a format byte and the
// records, each a uvarint length, a shadow byte and the decision's JSON
// document, compressed as zstd frames of logFrame bytes of records each
// (a record may straddle frames: they decode as one stream). The writer
// yields the processor between frames, so that a block of several hundred
// KB of records never holds it for long while decisions wait to be
// published (docs/inference.md, "Decision history"). Each block carries
// the retention as its TTL.
type decisionLog struct {
	db  *badger.DB
	ttl time.Duration
	m   *metrics

	mu     sync.Mutex // guards the fields below it
	pend   []byte     // records not yet written
	n      int        // records in pend
	minTS  int64      // least decision time in pend
	closed bool
	spare  []byte // the buffer pend swaps with

	kick    chan struct{} // a full batch is pending; capacity 1
	syncReq chan chan error
	stop    chan struct{}
	done    chan struct{}
	seq     uint64        // writer goroutine only
	enc     *zstd.Encoder // writer goroutine only
	decMu   sync.Mutex    // guards dec against close
	dec     *zstd.Decoder // nil once closed
}

const (
	logBatch    = 4096
	logInterval = 100 * time.Millisecond
	// logMaxPending bounds the pending buffer (about 50,000 decisions):
	// past it, while Badger is stuck, decisions are dropped and counted.
	logMaxPending = 32 << 20
	// logFrame is the records compressed in one go, between yields: about
	// 100 µs of zstd's fastest level here.
	logFrame = 32 << 10
	// logSlack is how much earlier than the range a block's key may be
	// and still hold decisions in it: a block spans at most logInterval
	// plus the writer's delays.
	logSlack = time.Minute
	// logFormat is the block format byte.
	logFormat = 1
)

// logReadMax bounds the decisions one history read holds in memory
// (about 0.5 KB each): a wider range is refused with a message saying so,
// rather than exhausting memory. A variable for the tests.
var logReadMax = 500_000

var decisionLogPrefix = []byte("decisions/")

// errTooMany is returned by history when the range holds more than
// logReadMax decisions.
var errTooMany = errors.New("decision log: range too wide")

func decisionLogKey(ts int64, seq uint64) []byte {
	k := make([]byte, len(decisionLogPrefix)+16)
	copy(k, decisionLogPrefix)
	binary.BigEndian.PutUint64(k[len(decisionLogPrefix):], uint64(max(ts, 0)))
	binary.BigEndian.PutUint64(k[len(decisionLogPrefix)+8:], seq)
	return k
}

func newDecisionLog(db *badger.DB, ttl time.Duration, m *metrics) (*decisionLog, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	l := &decisionLog{db: db, ttl: ttl, m: m, kick: make(chan struct{}, 1), syncReq: make(chan chan error),
		stop: make(chan struct{}), done: make(chan struct{}), enc: enc, dec: dec}
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
	if l.n == 0 || ts < l.minTS {
		l.minTS = ts
	}
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
	tick := time.NewTicker(logInterval)
	defer tick.Stop()
	var block []byte
	for {
		select {
		case <-l.stop:
			_ = l.write(&block)
			return
		case <-tick.C:
			_ = l.write(&block)
		case <-l.kick:
			_ = l.write(&block)
		case ch := <-l.syncReq:
			ch <- l.write(&block)
		}
	}
}

// write takes the pending records and writes them as one block; block is
// the writer's reusable buffer for the compressed value.
func (l *decisionLog) write(block *[]byte) error {
	l.mu.Lock()
	raw, n, minTS := l.pend, l.n, l.minTS
	l.pend, l.n, l.spare = l.spare[:0], 0, nil
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.spare = raw[:0]
		l.mu.Unlock()
	}()
	if n == 0 {
		return nil
	}
	b := append((*block)[:0], logFormat)
	for off := 0; off < len(raw); {
		end := min(off+logFrame, len(raw))
		b = l.enc.EncodeAll(raw[off:end], b)
		if off = end; off < len(raw) {
			runtime.Gosched()
		}
	}
	*block = b
	l.seq++
	// Update returns once the entry is committed, when Badger no longer
	// holds b: the buffer is reused for the next block.
	e := badger.NewEntry(decisionLogKey(minTS, l.seq), b).WithTTL(l.ttl)
	if err := l.db.Update(func(txn *badger.Txn) error { return txn.SetEntry(e) }); err != nil {
		return l.failed(n, err)
	}
	l.m.logWritten.Add(float64(n))
	return nil
}

// failed counts a block Badger refused; its decisions stay on NATS and in
// the ring, only their history is lost.
func (l *decisionLog) failed(n int, err error) error {
	l.m.logErrors.Add(float64(n))
	return fmt.Errorf("decision log: write %d decisions: %w", n, err)
}

// history reads the decisions with time in [from, to), oldest first, as
// records of schema.DecisionsSchema of at most logReadBatch rows each.
func (l *decisionLog) history(ctx context.Context, from, to int64) ([]arrow.RecordBatch, error) {
	if err := l.sync(ctx); err != nil {
		return nil, err
	}
	var (
		rows []recorded
		bad  int
		raw  []byte
	)
	l.decMu.Lock()
	defer l.decMu.Unlock()
	if l.dec == nil {
		return nil, errors.New("decision log: closed")
	}
	err := l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: decisionLogPrefix, PrefetchValues: true, PrefetchSize: 16})
		defer it.Close()
		for it.Seek(decisionLogKey(from-int64(logSlack), 0)); it.Valid(); it.Next() {
			item := it.Item()
			k := item.Key()
			if len(k) != len(decisionLogPrefix)+16 {
				bad++
				continue
			}
			if int64(binary.BigEndian.Uint64(k[len(decisionLogPrefix):])) >= to {
				break // this block and every later one start at or after to
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			err := item.Value(func(v []byte) error {
				if len(v) < 1 || v[0] != logFormat {
					return errors.New("unknown block format")
				}
				var err error
				if raw, err = l.dec.DecodeAll(v[1:], raw[:0]); err != nil {
					return err
				}
				var block []recorded
				for b := raw; len(b) > 0; {
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
					if ts := x.d.Time.UnixNano(); ts >= from && ts < to {
						block = append(block, x)
					}
				}
				rows = append(rows, block...)
				return nil
			})
			if err != nil {
				bad++ // a damaged block is skipped and counted, never fatal
			}
			if len(rows) > logReadMax {
				return fmt.Errorf("%w: more than %d decisions between %s and %s; narrow the time range",
					errTooMany, logReadMax, time.Unix(0, from).UTC().Format(time.RFC3339), time.Unix(0, to).UTC().Format(time.RFC3339))
			}
		}
		return nil
	})
	if bad > 0 {
		l.m.logErrors.Add(float64(bad))
	}
	if err != nil {
		return nil, fmt.Errorf("decision log: read: %w", err)
	}
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
