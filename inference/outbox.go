package inference

// The outbox: decisions that could not reach NATS, kept in Badger in
// order. It belongs to the publisher goroutine (open reads it in Start,
// before that goroutine runs); only pending, an atomic mirror of count, is
// read elsewhere (the metrics).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
)

// outMsg is one decision ready to publish.
type outMsg struct {
	subject string
	id      string // Nats-Msg-Id
	data    []byte // JSON
}

// outbox is a FIFO of decisions in Badger, under "outbox/<seq>" with seq a
// big-endian uint64, so key order is arrival order. It is used by the
// publisher goroutine only.
type outbox struct {
	db      *badger.DB
	nextSeq uint64
	// headSeq is at or before the oldest entry: reads seek there instead
	// of stepping over the tombstones of delivered entries.
	headSeq uint64
	count   int
	// pending mirrors count for readers on other goroutines (metrics).
	pending atomic.Int64
}

var outboxPrefix = []byte("outbox/")

func outboxKey(seq uint64) []byte {
	k := make([]byte, len(outboxPrefix)+8)
	copy(k, outboxPrefix)
	binary.BigEndian.PutUint64(k[len(outboxPrefix):], seq)
	return k
}

// openOutbox counts what a previous run left and finds the next sequence.
func openOutbox(db *badger.DB) (*outbox, error) {
	o := &outbox{db: db, nextSeq: 1, headSeq: 1}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: outboxPrefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			if len(k) != len(outboxPrefix)+8 {
				continue
			}
			seq := binary.BigEndian.Uint64(k[len(outboxPrefix):])
			if o.count == 0 {
				o.headSeq = seq
			}
			o.count++
			o.nextSeq = max(o.nextSeq, seq+1)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	o.pending.Store(int64(o.count))
	return o, nil
}

// encode: uvarint len(subject), subject, uvarint len(id), id, data.
func encodeOutMsg(m *outMsg) []byte {
	b := make([]byte, 0, 2*binary.MaxVarintLen32+len(m.subject)+len(m.id)+len(m.data))
	b = binary.AppendUvarint(b, uint64(len(m.subject)))
	b = append(b, m.subject...)
	b = binary.AppendUvarint(b, uint64(len(m.id)))
	b = append(b, m.id...)
	return append(b, m.data...)
}

var errCorruptOutbox = errors.New("corrupt outbox entry")

func decodeOutMsg(b []byte) (*outMsg, error) {
	var m outMsg
	for _, dst := range []*string{&m.subject, &m.id} {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return nil, errCorruptOutbox
		}
		*dst = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	m.data = append([]byte(nil), b...)
	return &m, nil
}

// append stores msgs at the tail, in order, in as few transactions as
// Badger allows. It returns how many were stored; beyond max pending the
// rest are refused.
func (o *outbox) append(msgs []*outMsg, maxPending int) (int, error) {
	stored := 0
	wb := o.db.NewWriteBatch()
	defer wb.Cancel()
	for _, m := range msgs {
		if o.count+stored >= maxPending {
			break
		}
		if err := wb.Set(outboxKey(o.nextSeq+uint64(stored)), encodeOutMsg(m)); err != nil {
			return 0, fmt.Errorf("outbox append: %w", err)
		}
		stored++
	}
	if err := wb.Flush(); err != nil {
		return 0, fmt.Errorf("outbox append: %w", err)
	}
	o.nextSeq += uint64(stored)
	o.count += stored
	o.pending.Store(int64(o.count))
	return stored, nil
}

type outEntry struct {
	seq uint64
	msg *outMsg
}

// head returns up to n entries from the front. Corrupt entries are
// returned with a nil msg so that the caller deletes and counts them.
func (o *outbox) head(n int) ([]outEntry, error) {
	var out []outEntry
	err := o.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: outboxPrefix, PrefetchValues: true, PrefetchSize: min(n, 100)})
		defer it.Close()
		for it.Seek(outboxKey(o.headSeq)); it.Valid() && len(out) < n; it.Next() {
			k := it.Item().Key()
			if len(k) != len(outboxPrefix)+8 {
				continue
			}
			e := outEntry{seq: binary.BigEndian.Uint64(k[len(outboxPrefix):])}
			err := it.Item().Value(func(v []byte) error {
				m, err := decodeOutMsg(v)
				e.msg = m
				if errors.Is(err, errCorruptOutbox) {
					return nil
				}
				return err
			})
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("outbox read: %w", err)
	}
	return out, nil
}

// advance records that no entry older than seq remains.
func (o *outbox) advance(seq uint64) { o.headSeq = max(o.headSeq, seq) }

// remove deletes delivered entries.
func (o *outbox) remove(entries []outEntry) error {
	if len(entries) == 0 {
		return nil
	}
	wb := o.db.NewWriteBatch()
	defer wb.Cancel()
	for _, e := range entries {
		if err := wb.Delete(outboxKey(e.seq)); err != nil {
			return fmt.Errorf("outbox remove: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("outbox remove: %w", err)
	}
	o.count -= len(entries)
	o.pending.Store(int64(o.count))
	return nil
}
