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
	var buf bytes.Buffer
	buf.Grow(n*bytesPerRow + 4096)
	w := ipc.NewWriter(&buf, ipc.WithSchema(chunkSchema), ipc.WithLZ4())
	if err := w.Write(rec); err != nil {
		return nil, fmt.Errorf("write chunk ipc: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("close chunk ipc: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeChunk reads a chunk written by encodeChunk and checks it against
// the metadata in its key, so that a truncated or mismatched value is an
// error.
func decodeChunk(b []byte, m chunkMeta) (*chunk, error) {
	r, err := ipc.NewReader(bytes.NewReader(b), ipc.WithSchema(chunkSchema))
	if err != nil {
		return nil, fmt.Errorf("open chunk ipc (%d bytes): %w", len(b), err)
	}
	defer r.Release()
	c := &chunk{
		ts: make([]int64, 0, m.rows), sid: make([]int32, 0, m.rows), val: make([]float64, 0, m.rows),
		minTS: m.minTS, maxTS: m.maxTS, firstSeq: m.firstSeq, lastSeq: m.lastSeq,
	}
	for r.Next() {
		rec := r.RecordBatch()
		if !rec.Schema().Equal(chunkSchema) {
			return nil, fmt.Errorf("chunk schema %v: want %v", rec.Schema(), chunkSchema)
		}
		c.ts = append(c.ts, rec.Column(0).(*array.Int64).Int64Values()...)
		c.sid = append(c.sid, rec.Column(1).(*array.Int32).Int32Values()...)
		c.val = append(c.val, rec.Column(2).(*array.Float64).Float64Values()...)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("read chunk ipc (%d bytes): %w", len(b), err)
	}
	if uint32(len(c.ts)) != m.rows {
		return nil, fmt.Errorf("chunk holds %d rows, key says %d: %w", len(c.ts), m.rows, errTruncated)
	}
	return c, nil
}
