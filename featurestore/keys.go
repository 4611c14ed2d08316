// Badger key layout and the store's format version (docs/format/
// badger-keys.md). Pure functions: no state, no goroutine.

package featurestore

import (
	"encoding/binary"
	"fmt"

	"github.com/netfeat/netfeat/schema"
)

// Badger key layout; docs/format/badger-keys.md is the reference. Every key
// starts with one prefix byte so that each kind is one contiguous range.
const (
	prefixMeta       = 'M' // M<name>                 → store metadata (format version)
	prefixSeries     = 's' // s<sid u32 BE>           → series definition
	prefixChunk      = 'c' // c<firstSeq><lastSeq><minTS><maxTS><rows u32> → chunk location in the chunk log
	prefixRow        = 'f' // f<view>\0<windowEnd u64 BE><entity> → closed feature row
	prefixLatest     = 'l' // l<view>\0<entity>       → latest feature row (online view)
	prefixMark       = 'm' // m<view>                 → last window end closed by the watermark
	prefixState      = 'x' // x<key>                  → opaque state blob (PutState)
	prefixQuarantine = 'q' // q<original key>          → damaged entry moved aside by recovery
)

// formatVersion is the store's on-disk format, written into a new store and
// checked on every open: the WAL and the chunks in segment files, the rest
// in Badger (docs/format). It is the first released format; the "2" is
// historical (an unreleased format 1 preceded it) and stays, because
// changing the stored value would change the format.
const formatVersion = "netfeat-featurestore/2"

var keyFormat = []byte{prefixMeta, 'f', 'o', 'r', 'm', 'a', 't'}

// keyChunked holds the last WAL sequence number covered by a written chunk
// (u64be), so that the sequence survives chunks expiring by TTL.
var keyChunked = []byte{prefixMeta, 's', 'e', 'q'}

func seriesKeyBytes(id int32) []byte {
	return binary.BigEndian.AppendUint32([]byte{prefixSeries}, uint32(id))
}

// chunkMeta is what a chunk key carries, so that recovery and History can
// plan from a key-only scan.
type chunkMeta struct {
	firstSeq, lastSeq uint64
	minTS, maxTS      int64
	rows              uint32
}

const chunkKeyLen = 1 + 8 + 8 + 8 + 8 + 4

func chunkKey(m chunkMeta) []byte {
	k := make([]byte, 0, chunkKeyLen)
	k = append(k, prefixChunk)
	k = binary.BigEndian.AppendUint64(k, m.firstSeq)
	k = binary.BigEndian.AppendUint64(k, m.lastSeq)
	k = binary.BigEndian.AppendUint64(k, uint64(m.minTS))
	k = binary.BigEndian.AppendUint64(k, uint64(m.maxTS))
	return binary.BigEndian.AppendUint32(k, m.rows)
}

func parseChunkKey(k []byte) (chunkMeta, error) {
	if len(k) != chunkKeyLen || k[0] != prefixChunk {
		return chunkMeta{}, fmt.Errorf("chunk key of %d bytes: want %d", len(k), chunkKeyLen)
	}
	return chunkMeta{
		firstSeq: binary.BigEndian.Uint64(k[1:]),
		lastSeq:  binary.BigEndian.Uint64(k[9:]),
		minTS:    int64(binary.BigEndian.Uint64(k[17:])),
		maxTS:    int64(binary.BigEndian.Uint64(k[25:])),
		rows:     binary.BigEndian.Uint32(k[33:]),
	}, nil
}

func viewPrefix(p byte, view string) []byte {
	k := make([]byte, 0, len(view)+2)
	k = append(k, p)
	k = append(k, view...)
	return append(k, 0)
}

// appendEntity appends the entity as two uvarint-length-prefixed strings.
func appendEntity(k []byte, e schema.Entity) []byte {
	k = binary.AppendUvarint(k, uint64(len(e.Device)))
	k = append(k, e.Device...)
	k = binary.AppendUvarint(k, uint64(len(e.Component)))
	return append(k, e.Component...)
}

func rowKey(view string, windowEnd int64, e schema.Entity) []byte {
	k := binary.BigEndian.AppendUint64(viewPrefix(prefixRow, view), uint64(windowEnd))
	return appendEntity(k, e)
}

func latestKey(view string, e schema.Entity) []byte {
	return appendEntity(viewPrefix(prefixLatest, view), e)
}

func markKey(view string) []byte { return append([]byte{prefixMark}, view...) }

func stateKey(key string) []byte { return append([]byte{prefixState}, key...) }

// keyString renders a key for logs and errors.
func keyString(k []byte) string {
	if len(k) == 0 {
		return "<empty key>"
	}
	switch k[0] {
	case prefixChunk:
		if m, err := parseChunkKey(k); err == nil {
			return fmt.Sprintf("chunk[wal batches %d-%d, %d rows, ts %d..%d]", m.firstSeq, m.lastSeq, m.rows, m.minTS, m.maxTS)
		}
	case prefixSeries:
		if len(k) == 5 {
			return fmt.Sprintf("series[%d]", binary.BigEndian.Uint32(k[1:]))
		}
	}
	return fmt.Sprintf("%q", k)
}
