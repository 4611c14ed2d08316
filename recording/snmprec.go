// Package recording reads recorded device telemetry — snmpsim "snmprec" SNMP
// walks and recorded gNMI/MDT captures — so that the simulators can replay
// them and `netfeat normalize` and the golden tests can feed them to the
// normalizer exactly as a collector would.
package recording

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/netfeat/netfeat/schema"
)

// BER tags of the SNMP types that appear in snmprec files.
const (
	TagInteger     = 2
	TagOctetString = 4
	TagNull        = 5
	TagOID         = 6
	TagIPAddress   = 64
	TagCounter32   = 65
	TagGauge32     = 66
	TagTimeTicks   = 67
	TagOpaque      = 68
	TagCounter64   = 70
)

// SNMPRecord is one line of an snmprec file: an OID, its BER type and its
// value, decoded. The recording's exact type is kept (IpAddress and Opaque
// included) so that a simulator can serve it byte for byte.
type SNMPRecord struct {
	// OID is the numeric OID without a leading dot.
	OID string
	// Tag is the BER tag (TagInteger, TagCounter64, ...).
	Tag int
	// Int holds Integer32 values.
	Int int64
	// Uint holds Counter32, Gauge32, TimeTicks and Counter64 values.
	Uint uint64
	// Bytes holds OCTET STRING and Opaque contents (hex-decoded when the
	// file used the x suffix), the 4 bytes of an IpAddress, and the dotted
	// text of an OBJECT IDENTIFIER value.
	Bytes []byte
	// Hex records that the file wrote the value hex-encoded (tag suffix x),
	// which snmprec uses for non-printable strings.
	Hex bool
	// Line is the 1-based line number in the file.
	Line int
}

// ErrSyntax is wrapped by every parse error of ReadSNMPRec.
var ErrSyntax = errors.New("snmprec syntax error")

// maxValueLen bounds one recorded value, so that a corrupt file cannot make
// the reader allocate without limit.
const maxValueLen = 1 << 20

// ReadOptions says what a reader does with a value it cannot parse.
type ReadOptions struct {
	// Strict makes the first value that cannot be parsed an error naming
	// its file and line, and nothing is returned. Otherwise the value is
	// skipped, counted in the read's Skipped report and the rest is read,
	// as a collector drops one bad value of a device and keeps the others.
	Strict bool
}

// Skipped reports the values of one kind a tolerant read left out.
type Skipped struct {
	// Kind is what could not be parsed: the SNMP type of the value
	// ("IpAddress", "Counter32", ...), "line" for a line that is not
	// OID|TAG|VALUE with a valid OID and a known tag, or for captures
	// "message", "value" and "json".
	Kind string
	// Count is how many values of this kind were skipped.
	Count int
	// First is "file:line" of the first one, and Err its error.
	First string
	Err   error
}

// String renders the report as one log line.
func (s Skipped) String() string {
	return fmt.Sprintf("%s: skipped %d %s value(s) that could not be parsed (first: %v)", s.First, s.Count, s.Kind, s.Err)
}

// skips collects Skipped reports, one per kind, in the order kinds appear.
type skips struct{ list []Skipped }

func (k *skips) add(kind, where string, err error) {
	for i := range k.list {
		if k.list[i].Kind == kind {
			k.list[i].Count++
			return
		}
	}
	k.list = append(k.list, Skipped{Kind: kind, Count: 1, First: where, Err: err})
}

// ReadSNMPRec parses an snmprec stream strictly: the first line that
// cannot be parsed is an error naming it. Records are returned in file
// order (snmpsim files are sorted by OID). name is used in error messages.
func ReadSNMPRec(r io.Reader, name string) ([]SNMPRecord, error) {
	recs, _, err := ReadSNMPRecWith(r, name, ReadOptions{Strict: true})
	return recs, err
}

// ReadSNMPRecWith parses an snmprec stream. Unless opts.Strict, a line that
// cannot be parsed is skipped and reported, once per kind, in the returned
// Skipped list; the error is then only for a stream that cannot be read
// (an I/O error or a line longer than twice the 1 MiB value limit).
func ReadSNMPRecWith(r io.Reader, name string, opts ReadOptions) ([]SNMPRecord, []Skipped, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 2*maxValueLen+64)
	var out []SNMPRecord
	var sk skips
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		rec, err := parseSNMPRecLine(text)
		if err != nil {
			if opts.Strict {
				return nil, nil, fmt.Errorf("%s:%d: %w", name, line, err)
			}
			sk.add(skipKind(text), fmt.Sprintf("%s:%d", name, line), err)
			continue
		}
		rec.Line = line
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, sk.list, fmt.Errorf("%s:%d: reading: %w", name, line+1, err)
	}
	return out, sk.list, nil
}

// ReadSNMPRecFile opens and parses an snmprec file strictly.
func ReadSNMPRecFile(path string) ([]SNMPRecord, error) {
	recs, _, err := ReadSNMPRecFileWith(path, ReadOptions{Strict: true})
	return recs, err
}

// ReadSNMPRecFileWith opens and parses an snmprec file (ReadSNMPRecWith).
func ReadSNMPRecFileWith(path string, opts ReadOptions) ([]SNMPRecord, []Skipped, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open recording: %w", err)
	}
	defer f.Close()
	return ReadSNMPRecWith(f, path, opts)
}

// tagNames names the BER tags in skip reports.
var tagNames = map[int]string{
	TagInteger: "Integer", TagOctetString: "OCTET STRING", TagNull: "NULL", TagOID: "OBJECT IDENTIFIER",
	TagIPAddress: "IpAddress", TagCounter32: "Counter32", TagGauge32: "Gauge32", TagTimeTicks: "TimeTicks",
	TagOpaque: "Opaque", TagCounter64: "Counter64",
}

// skipKind names the kind of a line parseSNMPRecLine refused: the value's
// SNMP type when the OID and tag are fine, else "line".
func skipKind(text string) string {
	oid, rest, ok := strings.Cut(text, "|")
	if !ok || !schema.ValidOID(strings.TrimPrefix(oid, ".")) {
		return "line"
	}
	tagText, _, ok := strings.Cut(rest, "|")
	if !ok {
		return "line"
	}
	tag, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSuffix(tagText, "x"), "e"))
	if name, known := tagNames[tag]; err == nil && known {
		return name
	}
	return "line"
}

func parseSNMPRecLine(text string) (SNMPRecord, error) {
	oid, rest, ok := strings.Cut(text, "|")
	if !ok {
		return SNMPRecord{}, fmt.Errorf("%w: want OID|TAG|VALUE, got %.40q", ErrSyntax, text)
	}
	tagText, value, ok := strings.Cut(rest, "|")
	if !ok {
		return SNMPRecord{}, fmt.Errorf("%w: want OID|TAG|VALUE, got %.40q", ErrSyntax, text)
	}
	oid = strings.TrimPrefix(oid, ".")
	if !schema.ValidOID(oid) {
		return SNMPRecord{}, fmt.Errorf("%w: bad OID %.60q", ErrSyntax, oid)
	}
	rec := SNMPRecord{OID: oid}
	if strings.HasSuffix(tagText, "x") {
		rec.Hex = true
		tagText = strings.TrimSuffix(tagText, "x")
	} else if strings.HasSuffix(tagText, "e") {
		tagText = strings.TrimSuffix(tagText, "e")
	}
	tag, err := strconv.Atoi(tagText)
	if err != nil {
		return SNMPRecord{}, fmt.Errorf("%w: OID %s: bad tag %q", ErrSyntax, oid, tagText)
	}
	rec.Tag = tag
	if len(value) > maxValueLen*2 {
		return SNMPRecord{}, fmt.Errorf("%w: OID %s: value of %d bytes exceeds %d", ErrSyntax, oid, len(value), maxValueLen)
	}
	var raw []byte
	if rec.Hex {
		raw, err = hex.DecodeString(value)
		if err != nil {
			return SNMPRecord{}, fmt.Errorf("%w: OID %s: bad hex value: %v", ErrSyntax, oid, err)
		}
	}
	switch tag {
	case TagInteger:
		rec.Int, err = strconv.ParseInt(value, 10, 32)
	case TagCounter32, TagGauge32, TagTimeTicks:
		rec.Uint, err = strconv.ParseUint(value, 10, 32)
	case TagCounter64:
		rec.Uint, err = strconv.ParseUint(value, 10, 64)
	case TagOctetString, TagOpaque:
		if rec.Hex {
			rec.Bytes = raw
		} else {
			rec.Bytes = []byte(value)
		}
	case TagNull:
	case TagOID:
		v := strings.TrimPrefix(value, ".")
		if !schema.ValidOID(v) {
			err = fmt.Errorf("bad OBJECT IDENTIFIER value %.60q", value)
		}
		rec.Bytes = []byte(v)
	case TagIPAddress:
		if rec.Hex {
			if len(raw) != 4 {
				err = fmt.Errorf("IpAddress of %d bytes", len(raw))
			}
			rec.Bytes = raw
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(value)
			if err == nil && !a.Is4() {
				err = fmt.Errorf("IpAddress %q is not IPv4", value)
			}
			if err == nil {
				b := a.As4()
				rec.Bytes = b[:]
			}
		}
	default:
		err = fmt.Errorf("unsupported tag %d", tag)
	}
	if err != nil {
		return SNMPRecord{}, fmt.Errorf("%w: OID %s: %v", ErrSyntax, oid, err)
	}
	return rec, nil
}

// Observation converts the record into the raw observation a poller would
// have produced for it. IpAddress becomes a dotted-quad string, Opaque raw
// bytes.
func (r SNMPRecord) Observation(device string, recvTime int64) schema.Observation {
	o := schema.Observation{Device: device, Protocol: schema.ProtocolSNMP, Path: r.OID, RecvTime: recvTime}
	switch r.Tag {
	case TagInteger:
		o.Kind, o.Int = schema.KindInteger, r.Int
	case TagCounter32:
		o.Kind, o.Uint = schema.KindCounter32, r.Uint
	case TagCounter64:
		o.Kind, o.Uint = schema.KindCounter64, r.Uint
	case TagGauge32:
		o.Kind, o.Uint = schema.KindGauge, r.Uint
	case TagTimeTicks:
		o.Kind, o.Uint = schema.KindTimeTicks, r.Uint
	case TagOctetString:
		o.Kind, o.Str = schema.KindString, string(r.Bytes)
	case TagOpaque:
		o.Kind, o.Str = schema.KindBytes, string(r.Bytes)
	case TagOID:
		o.Kind, o.Str = schema.KindOID, string(r.Bytes)
	case TagIPAddress:
		o.Kind = schema.KindString
		if len(r.Bytes) == 4 {
			o.Str = netip.AddrFrom4([4]byte(r.Bytes)).String()
		}
	case TagNull:
		o.Kind = schema.KindNull
	}
	return o
}

// SNMPObservations converts a whole walk into observations.
func SNMPObservations(recs []SNMPRecord, device string, recvTime int64) []schema.Observation {
	out := make([]schema.Observation, len(recs))
	for i, r := range recs {
		out[i] = r.Observation(device, recvTime)
	}
	return out
}
