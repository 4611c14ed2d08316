package inference

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/dgraph-io/badger/v4"

	"github.com/netfeat/netfeat/schema"
)

// decisionLog keeps every decision, live and shadow, in the inference
// Badger database for Config.DecisionRetention, so that the SQL
// `decisions` table answers time-ranged queries beyond the in-memory ring
// (Config.History). Keys are "decisions/<time><seq>" (both big-endian
// uint64: time in Unix ns, seq a per-process counter), so key order is
// time order; values are a shadow flag byte and the decision's JSON
// document. Scoring only queues a copy (add never blocks; a full queue
// drops and counts); one goroutine writes batches of up to logBatch
// entries or every logInterval, each entry with the retention as TTL.
type decisionLog struct {
	db      *badger.DB
	ttl     time.Duration
	in      chan recorded
	syncReq chan chan error
	done    chan struct{}
	seq     uint64 // writer goroutine only
	m       *metrics
	closed  atomic.Bool
}

const (
	logBatch    = 1024
	logInterval = 100 * time.Millisecond
	logQueue    = 65536
)

var decisionLogPrefix = []byte("decisions/")

func decisionLogKey(ts int64, seq uint64) []byte {
	k := make([]byte, len(decisionLogPrefix)+16)
	copy(k, decisionLogPrefix)
	binary.BigEndian.PutUint64(k[len(decisionLogPrefix):], uint64(ts))
	binary.BigEndian.PutUint64(k[len(decisionLogPrefix)+8:], seq)
	return k
}

func newDecisionLog(db *badger.DB, ttl time.Duration, m *metrics) *decisionLog {
	l := &decisionLog{db: db, ttl: ttl, in: make(chan recorded, logQueue), syncReq: make(chan chan error), done: make(chan struct{}), m: m}
	go l.run()
	return l
}

// add queues d for writing; when the queue is full it is dropped and
// counted.
func (l *decisionLog) add(d *schema.Decision, shadow bool) {
	select {
	case l.in <- recorded{d: *d, shadow: shadow}:
	default:
		l.m.logDropped.Inc()
	}
}

// sync waits until everything queued before the call is written.
func (l *decisionLog) sync(ctx context.Context) error {
	if l.closed.Load() {
		return errors.New("decision log: closed")
	}
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

// close writes what is queued and stops the writer. Call it after the
// last add.
func (l *decisionLog) close() {
	if l.closed.Swap(true) {
		return
	}
	close(l.in)
	<-l.done
}

func (l *decisionLog) run() {
	defer close(l.done)
	tick := time.NewTicker(logInterval)
	defer tick.Stop()
	batch := make([]recorded, 0, logBatch)
	var buf []byte
	write := func() error {
		if len(batch) == 0 {
			return nil
		}
		wb := l.db.NewWriteBatch()
		defer wb.Cancel()
		for i := range batch {
			x := &batch[i]
			l.seq++
			buf = buf[:0]
			if x.shadow {
				buf = append(buf, 1)
			} else {
				buf = append(buf, 0)
			}
			buf = appendDecisionJSON(buf, &x.d)
			e := badger.NewEntry(decisionLogKey(x.d.Time.UnixNano(), l.seq), append([]byte(nil), buf...)).WithTTL(l.ttl)
			if err := wb.SetEntry(e); err != nil {
				return l.failed(len(batch), err)
			}
		}
		if err := wb.Flush(); err != nil {
			return l.failed(len(batch), err)
		}
		l.m.logWritten.Add(float64(len(batch)))
		batch = batch[:0]
		return nil
	}
	for {
		select {
		case x, ok := <-l.in:
			if !ok {
				_ = write()
				return
			}
			batch = append(batch, x)
			if len(batch) == logBatch {
				_ = write()
			}
		case <-tick.C:
			_ = write()
		case ch := <-l.syncReq:
			// Everything queued before the request is in l.in: take it.
		drain:
			for {
				select {
				case x, ok := <-l.in:
					if !ok {
						break drain
					}
					batch = append(batch, x)
					if len(batch) == logBatch {
						_ = write()
					}
				default:
					break drain
				}
			}
			ch <- write()
		}
	}
}

// failed counts a batch Badger refused; its decisions stay on NATS and in
// the ring, only their history is lost.
func (l *decisionLog) failed(n int, err error) error {
	l.m.logErrors.Add(float64(n))
	err = fmt.Errorf("decision log: write %d decisions: %w", n, err)
	return err
}

// history reads the decisions with time in [from, to), oldest first, as
// records of schema.DecisionsSchema of at most logReadBatch rows each.
func (l *decisionLog) history(ctx context.Context, from, to int64) ([]arrow.RecordBatch, error) {
	if err := l.sync(ctx); err != nil {
		return nil, err
	}
	const logReadBatch = 65536
	var (
		out  []arrow.RecordBatch
		rows []recorded
		bad  int
	)
	release := func() {
		for _, r := range out {
			r.Release()
		}
	}
	err := l.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: decisionLogPrefix, PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		end := decisionLogKey(to, 0)
		for it.Seek(decisionLogKey(from, 0)); it.Valid(); it.Next() {
			item := it.Item()
			if string(item.Key()) >= string(end) {
				break
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			var x recorded
			err := item.Value(func(v []byte) error {
				if len(v) < 2 {
					return errors.New("short value")
				}
				x.shadow = v[0] == 1
				return json.Unmarshal(v[1:], &x.d)
			})
			if err != nil {
				bad++ // a damaged entry is skipped and counted, never fatal
				continue
			}
			rows = append(rows, x)
			if len(rows) == logReadBatch {
				out = append(out, decisionsRecord(rows))
				rows = rows[:0]
			}
		}
		return nil
	})
	if bad > 0 {
		l.m.logErrors.Add(float64(bad))
	}
	if err != nil {
		release()
		return nil, fmt.Errorf("decision log: read: %w", err)
	}
	if len(rows) > 0 || len(out) == 0 {
		out = append(out, decisionsRecord(rows))
	}
	return out, nil
}
