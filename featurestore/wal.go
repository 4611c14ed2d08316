// The WAL's and chunk log's record framing, the WAL scan and quarantine
// of recovery, and chunk locations. The scan and quarantine run in Start,
// on its goroutine, before the store's goroutines exist; the framing
// functions are pure.

package featurestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// On-disk logs beside the Badger database (docs/format/wal.md and
// docs/format/chunk.md).
const (
	walDir          = "wal"
	walExt          = ".wal"
	walMagic        = "NFWAL002"
	walSegmentBytes = 32 << 20

	chunkDir          = "chunks"
	chunkExt          = ".chunks"
	chunkMagic        = "NFCHK001"
	chunkSegmentBytes = 128 << 20

	quarantineDir = "quarantine"
)

// WAL record kinds (the first byte of a record body).
const (
	walKindVoid   = 0 // never written; reserved
	walKindBatch  = 1 // seq:u64le, then a WAL frame (walcodec.go)
	walKindSeries = 2 // sid:u32le, then a series definition (series.go)
)

// appendWALBatch appends the record of WAL batch seq (frame: its encoded
// samples).
func appendWALBatch(dst []byte, seq uint64, frame []byte) []byte {
	dst, at := beginRecord(dst)
	dst = append(dst, walKindBatch)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = append(dst, frame...)
	return endRecord(dst, at)
}

// appendWALSeries appends the record that defines series id.
func appendWALSeries(dst []byte, id int32, d seriesDef) []byte {
	dst, at := beginRecord(dst)
	dst = append(dst, walKindSeries)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(id))
	dst = encodeSeriesDef(dst, d)
	return endRecord(dst, at)
}

// plausibleWAL is the resynchronisation filter of scanRecords for WAL
// segments: a known kind and a body long enough for it.
func plausibleWAL(body []byte) bool {
	switch body[0] {
	case walKindBatch:
		return len(body) >= 1+8+6
	case walKindSeries:
		return len(body) >= 1+4+4
	}
	return false
}

// walEntry is a decoded WAL record.
type walEntry struct {
	kind byte
	seq  uint64 // batch
	recs []rec  // batch
	sid  int32  // series
	def  seriesDef
}

// decodeWALRecord decodes a record body. With skipBefore, a batch whose
// sequence number is at or below it is returned without its samples (it
// is covered by a chunk).
func decodeWALRecord(body []byte, skipBefore uint64) (walEntry, error) {
	e := walEntry{kind: body[0]}
	switch e.kind {
	case walKindBatch:
		if len(body) < 9 {
			return e, fmt.Errorf("batch record of %d bytes: %w", len(body), errTruncated)
		}
		e.seq = binary.LittleEndian.Uint64(body[1:])
		if e.seq <= skipBefore {
			return e, nil
		}
		recs, err := decodeWALBatch(nil, body[9:])
		if err != nil {
			return e, fmt.Errorf("batch %d: %w", e.seq, err)
		}
		e.recs = recs
	case walKindSeries:
		if len(body) < 5 {
			return e, fmt.Errorf("series record of %d bytes: %w", len(body), errTruncated)
		}
		e.sid = int32(binary.LittleEndian.Uint32(body[1:]))
		d, err := decodeSeriesDef(body[5:])
		if err != nil {
			return e, fmt.Errorf("series %d: %w", e.sid, err)
		}
		e.def = d
	default:
		return e, fmt.Errorf("unknown record kind %d", e.kind)
	}
	return e, nil
}

// walDamage is a part of a WAL segment that recovery could not use.
type walDamage struct {
	seg      uint64
	off, end int64
	err      error
}

func (d walDamage) Error() string {
	return fmt.Sprintf("wal[segment %016x, bytes %d-%d]: %v", d.seg, d.off, d.end, d.err)
}

// scanWAL reads every WAL segment in order and calls fn for each record,
// batches at or below skipBefore without their samples. A torn tail of the
// newest segment (an interrupted write) is cut off and logged. Everything
// else that does not decode, including an error from fn, is returned as
// damage, in order; fn is not called for it.
func (s *Store) scanWAL(skipBefore uint64, fn func(seg uint64, e walEntry) error) ([]walDamage, error) {
	ids := s.wal.ids()
	var damage []walDamage
	for i, id := range ids {
		b, err := s.wal.read(id)
		if err != nil {
			return nil, fmt.Errorf("read wal segment %016x: %w: %w", id, err, ErrDamaged)
		}
		recs, bad, tail := scanRecords(b, walMagic, plausibleWAL)
		for _, sp := range bad {
			damage = append(damage, walDamage{id, sp.off, sp.end, errors.New(sp.reason)})
		}
		for _, r := range recs {
			e, err := decodeWALRecord(r.body, skipBefore)
			if err == nil {
				err = fn(id, e)
			}
			if err != nil {
				damage = append(damage, walDamage{id, r.off, r.end, err})
			}
		}
		if tail != nil {
			if i < len(ids)-1 {
				damage = append(damage, walDamage{id, tail.off, tail.end, fmt.Errorf("%s, in a segment that is not the newest", tail.reason)})
				continue
			}
			s.log.Warn("cutting off the torn end of the newest WAL segment (a write the crash interrupted; it was never acknowledged)",
				"segment", s.wal.path(id), "offset", tail.off, "bytes", tail.end-tail.off, "why", tail.reason)
			if err := s.wal.truncate(id, tail.off); err != nil {
				return nil, fmt.Errorf("truncate torn wal segment %016x: %w", id, err)
			}
		}
	}
	return damage, nil
}

// quarantineWAL moves damaged WAL spans aside: their bytes go to
// <dir>/quarantine/wal-<segment>-<offset>.bin and each segment is rewritten
// without them (through a temporary file and a rename).
func (s *Store) quarantineWAL(damage []walDamage) error {
	if len(damage) == 0 {
		return nil
	}
	qdir := filepath.Join(s.dir, quarantineDir)
	if err := os.MkdirAll(qdir, 0o755); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	bySeg := map[uint64][]walDamage{}
	var order []uint64
	for _, d := range damage {
		if _, ok := bySeg[d.seg]; !ok {
			order = append(order, d.seg)
		}
		bySeg[d.seg] = append(bySeg[d.seg], d)
	}
	for _, seg := range order {
		b, err := s.wal.read(seg)
		if err != nil {
			return fmt.Errorf("quarantine: read wal segment %016x: %w", seg, err)
		}
		keep := make([]byte, 0, len(b))
		at := int64(0)
		for _, d := range bySeg[seg] {
			name := filepath.Join(qdir, fmt.Sprintf("wal-%016x-%d.bin", seg, d.off))
			if err := os.WriteFile(name, b[d.off:d.end], 0o644); err != nil {
				return fmt.Errorf("quarantine: %w", err)
			}
			s.log.Error("quarantined damaged WAL bytes; the batches in them are lost", "damage", d.Error(), "kept_in", name)
			s.m.damaged.WithLabelValues("wal").Inc()
			keep = append(keep, b[at:d.off]...)
			at = d.end
		}
		keep = append(keep, b[at:]...)
		if d := bySeg[seg]; d[0].off == 0 {
			// The magic itself was damaged: the segment keeps what follows it.
			keep = append([]byte(walMagic), keep...)
		}
		path := s.wal.path(seg)
		tmp := path + ".tmp"
		if err := writeFileSync(tmp, keep); err != nil {
			return fmt.Errorf("quarantine: rewrite wal segment: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("quarantine: rewrite wal segment: %w", err)
		}
	}
	return syncDir(s.wal.dir)
}

func writeFileSync(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	return errors.Join(fdatasync(f), f.Close())
}

// chunkLoc is where a sealed chunk's record is: the value of its `c` key.
type chunkLoc struct {
	seg uint64
	off int64
	n   uint32 // record length, header included
}

const chunkLocLen = 1 + 8 + 8 + 4

// chunkLocTag starts a chunk key's value (format 2). A format-1 value (the
// chunk's Arrow IPC stream itself) starts with 0xFF.
const chunkLocTag = 'L'

func encodeChunkLoc(l chunkLoc) []byte {
	b := make([]byte, 0, chunkLocLen)
	b = append(b, chunkLocTag)
	b = binary.BigEndian.AppendUint64(b, l.seg)
	b = binary.BigEndian.AppendUint64(b, uint64(l.off))
	return binary.BigEndian.AppendUint32(b, l.n)
}

func decodeChunkLoc(b []byte) (chunkLoc, error) {
	if len(b) != chunkLocLen || b[0] != chunkLocTag {
		return chunkLoc{}, fmt.Errorf("chunk location of %d bytes: %w", len(b), errTruncated)
	}
	return chunkLoc{
		seg: binary.BigEndian.Uint64(b[1:]),
		off: int64(binary.BigEndian.Uint64(b[9:])),
		n:   binary.BigEndian.Uint32(b[17:]),
	}, nil
}

// readChunkBytes reads the chunk record at l and returns the chunk's Arrow
// IPC bytes, checking the record's frame and checksum.
func (s *Store) readChunkBytes(l chunkLoc) ([]byte, error) {
	b, err := s.chunks.readAt(l.seg, l.off, int(l.n))
	if err != nil {
		return nil, err
	}
	r, why := recordAt(b, 0)
	if why != "" || r.end != int64(len(b)) {
		if why == "" {
			why = fmt.Sprintf("record of %d bytes where %d were recorded", r.end, len(b))
		}
		return nil, fmt.Errorf("chunk record at byte %d of segment %016x: %s: %w", l.off, l.seg, why, errTruncated)
	}
	return r.body, nil
}
