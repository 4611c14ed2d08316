// The WAL batch codec: one Append batch as a compact frame
// (docs/format/wal.md). Pure functions: the committer encodes, recovery
// decodes.

package featurestore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// rec is one accepted sample in the store's internal form: the series id
// replaces the three label strings.
type rec struct {
	ts     int64
	ingest int64
	value  float64
	sid    int32
}

const walFormatV1 = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeWALBatch appends the WAL frame of one Append batch to dst. The
// layout is documented in docs/format/wal.md:
//
//	version u8 | count uvarint | per sample: sid uvarint, Δts zigzag varint,
//	Δingest zigzag varint, value 8 bytes little-endian | crc32c u32 LE
//
// Deltas are taken against the previous sample of the batch (0 for the first).
func encodeWALBatch(dst []byte, recs []rec) []byte {
	start := len(dst)
	dst = append(dst, walFormatV1)
	dst = binary.AppendUvarint(dst, uint64(len(recs)))
	var pts, pin int64
	for i := range recs {
		r := &recs[i]
		dst = binary.AppendUvarint(dst, uint64(r.sid))
		dst = binary.AppendVarint(dst, r.ts-pts)
		dst = binary.AppendVarint(dst, r.ingest-pin)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(r.value))
		pts, pin = r.ts, r.ingest
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// decodeWALBatch decodes a frame written by encodeWALBatch, appending to
// dst. It checks the checksum first, so a truncated or altered value is an
// error, never a short batch.
func decodeWALBatch(dst []rec, b []byte) ([]rec, error) {
	if len(b) < 6 {
		return dst, fmt.Errorf("wal frame of %d bytes: %w", len(b), errTruncated)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return dst, fmt.Errorf("wal frame of %d bytes: checksum mismatch (%w or corrupted)", len(b), errTruncated)
	}
	if body[0] != walFormatV1 {
		return dst, fmt.Errorf("wal frame version %d: unsupported", body[0])
	}
	p := 1
	n, k := binary.Uvarint(body[p:])
	if k <= 0 || n > uint64(len(body)) {
		return dst, fmt.Errorf("wal frame count: %w", errTruncated)
	}
	p += k
	var pts, pin int64
	for range n {
		sid, k1 := binary.Uvarint(body[p:])
		if k1 <= 0 {
			return dst, fmt.Errorf("wal sample: %w", errTruncated)
		}
		p += k1
		dts, k2 := binary.Varint(body[p:])
		if k2 <= 0 {
			return dst, fmt.Errorf("wal sample: %w", errTruncated)
		}
		p += k2
		din, k3 := binary.Varint(body[p:])
		if k3 <= 0 || len(body)-p-k3 < 8 {
			return dst, fmt.Errorf("wal sample: %w", errTruncated)
		}
		p += k3
		v := math.Float64frombits(binary.LittleEndian.Uint64(body[p:]))
		p += 8
		pts += dts
		pin += din
		dst = append(dst, rec{ts: pts, ingest: pin, value: v, sid: int32(sid)})
	}
	if p != len(body) {
		return dst, fmt.Errorf("wal frame: %d trailing bytes", len(body)-p)
	}
	return dst, nil
}
