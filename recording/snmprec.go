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

// ReadSNMPRec parses an snmprec stream. Records are returned in file order
// (snmpsim files are sorted by OID). name is used in error messages.
func ReadSNMPRec(r io.Reader, name string) ([]SNMPRecord, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 2*maxValueLen+64)
	var out []SNMPRecord
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		rec, err := parseSNMPRecLine(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		rec.Line = line
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: reading: %w", name, line+1, err)
	}
	return out, nil
}

// ReadSNMPRecFile opens and parses an snmprec file.
func ReadSNMPRecFile(path string) ([]SNMPRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open recording: %w", err)
	}
	defer f.Close()
	return ReadSNMPRec(f, path)
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
