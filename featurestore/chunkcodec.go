// Chunk encoding: a sealed chunk as an Arrow IPC stream and back. The
// encoder (chunkEncoder) belongs to the chunk writer goroutine, or to the
// goroutine running Start before the store's goroutines exist; decodeChunk
// is pure and runs on any goroutine (recovery decodes on every core).

package featurestore

import (
	"bytes"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// chunkSchema is the physical schema of a persisted chunk: the series id
// stands for the label columns (see docs/format/chunk.md).
var chunkSchema = arrow.NewSchema([]arrow.Field{
	{Name: "ts", Type: arrow.PrimitiveTypes.Int64},
	{Name: "sid", Type: arrow.PrimitiveTypes.Int32},
	{Name: "value", Type: arrow.PrimitiveTypes.Float64},
}, nil)

// encodeChunk writes c as one Arrow IPC stream with LZ4-frame buffer compression.
func encodeChunk(c *chunk) ([]byte, error) {
	var e chunkEncoder
	rec, err := e.record(c)
	if err != nil {
		return nil, err
	}
	return rec[recordHeaderLen:], nil
}

// chunkEncoder encodes chunks as chunk-log records (a record header, then
// the Arrow IPC stream) into buffers it reuses, so that the chunk writer
// does not leave a few MB of garbage per chunk. Not safe for concurrent
// use.
type chunkEncoder struct {
	buf bytes.Buffer
	mem reuseAllocator
}

// record returns the record of c, valid until the next call.
func (e *chunkEncoder) record(c *chunk) ([]byte, error) {
	n := c.rows()
	mk := func(t arrow.DataType, b []byte) arrow.Array {
		d := array.NewData(t, n, []*memory.Buffer{nil, memory.NewBufferBytes(b)}, nil, 0, 0)
		defer d.Release()
		return array.MakeFromData(d)
	}
	cols := []arrow.Array{
		mk(arrow.PrimitiveTypes.Int64, arrow.Int64Traits.CastToBytes(c.ts)),
		mk(arrow.PrimitiveTypes.Int32, arrow.Int32Traits.CastToBytes(c.sid)),
		mk(arrow.PrimitiveTypes.Float64, arrow.Float64Traits.CastToBytes(c.val)),
	}
	rec := array.NewRecordBatch(chunkSchema, cols, int64(n))
	defer rec.Release()
	for _, col := range cols {
		col.Release()
	}
	e.buf.Reset()
	e.buf.Grow(recordHeaderLen + n*bytesPerRow/2 + 4096)
	e.buf.Write(make([]byte, recordHeaderLen))
	w := ipc.NewWriter(&e.buf, ipc.WithSchema(chunkSchema), ipc.WithLZ4(), ipc.WithAllocator(&e.mem))
	if err := w.Write(rec); err != nil {
		return nil, fmt.Errorf("write chunk ipc: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("close chunk ipc: %w", err)
	}
	return endRecord(e.buf.Bytes(), 0), nil
}

// reuseAllocator is an Arrow allocator that keeps a few freed buffers for
// the next allocations (the IPC writer's compression buffers).
type reuseAllocator struct {
	free [][]byte
}

func (a *reuseAllocator) Allocate(n int) []byte {
	best := -1
	for i, b := range a.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(a.free[best])) {
			best = i
		}
	}
	if best < 0 {
		return memory.DefaultAllocator.Allocate(n)
	}
	b := a.free[best][:n]
	a.free = append(a.free[:best], a.free[best+1:]...)
	clear(b)
	return b
}

func (a *reuseAllocator) Reallocate(n int, b []byte) []byte {
	if n <= cap(b) {
		return b[:n]
	}
	nb := a.Allocate(n)
	copy(nb, b)
	a.Free(b)
	return nb
}

func (a *reuseAllocator) Free(b []byte) {
	if len(a.free) < 8 {
		a.free = append(a.free, b[:cap(b)])
	}
}

// decodeChunk reads a chunk written by encodeChunk into a new region (see
// region; the chunk holds the one reference) and checks it against the
// metadata in its key, so that a truncated or mismatched value is an
// error.
func decodeChunk(b []byte, m chunkMeta) (*chunk, error) {
	r, err := ipc.NewReader(bytes.NewReader(b), ipc.WithSchema(chunkSchema))
	if err != nil {
		return nil, fmt.Errorf("open chunk ipc (%d bytes): %w", len(b), err)
	}
	defer r.Release()
	mem, ts, sid, val := newColumns(int(m.rows))
	c := &chunk{ts: ts, sid: sid, val: val, mem: mem,
		minTS: m.minTS, maxTS: m.maxTS, firstSeq: m.firstSeq, lastSeq: m.lastSeq}
	n := 0
	fail := func(err error) (*chunk, error) {
		mem.release()
		return nil, err
	}
	for r.Next() {
		rec := r.RecordBatch()
		if !rec.Schema().Equal(chunkSchema) {
			return fail(fmt.Errorf("chunk schema %v: want %v", rec.Schema(), chunkSchema))
		}
		k := int(rec.NumRows())
		if n+k > len(ts) {
			return fail(fmt.Errorf("chunk holds more than the %d rows its key says: %w", m.rows, errTruncated))
		}
		copy(ts[n:], rec.Column(0).(*array.Int64).Int64Values())
		copy(sid[n:], rec.Column(1).(*array.Int32).Int32Values())
		copy(val[n:], rec.Column(2).(*array.Float64).Float64Values())
		n += k
	}
	if err := r.Err(); err != nil {
		return fail(fmt.Errorf("read chunk ipc (%d bytes): %w", len(b), err))
	}
	if uint32(n) != m.rows {
		return fail(fmt.Errorf("chunk holds %d rows, key says %d: %w", n, m.rows, errTruncated))
	}
	return c, nil
}
