package recording

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netfeat/netfeat/schema"
)

func TestParseSNMPRecLine(t *testing.T) {
	tests := []struct {
		line    string
		want    SNMPRecord
		wantErr bool
	}{
		{line: "1.3.6.1.2.1.1.3.0|67|674314512", want: SNMPRecord{OID: "1.3.6.1.2.1.1.3.0", Tag: TagTimeTicks, Uint: 674314512}},
		{line: "1.3.6.1.2.1.31.1.1.1.6.3|70|18446744073709551615", want: SNMPRecord{OID: "1.3.6.1.2.1.31.1.1.1.6.3", Tag: TagCounter64, Uint: 1<<64 - 1}},
		{line: "1.3.6.1.2.1.2.2.1.8.1|2|-7", want: SNMPRecord{OID: "1.3.6.1.2.1.2.2.1.8.1", Tag: TagInteger, Int: -7}},
		{line: ".1.3.6.1.2.1.1.5.0|4|<private>", want: SNMPRecord{OID: "1.3.6.1.2.1.1.5.0", Tag: TagOctetString, Bytes: []byte("<private>")}},
		{line: "1.3.6.1.2.1.1.1.0|4x|4e6f6b6961", want: SNMPRecord{OID: "1.3.6.1.2.1.1.1.0", Tag: TagOctetString, Bytes: []byte("Nokia"), Hex: true}},
		{line: "1.3.6.1.2.1.4.20.1.1.10.0.0.1|64|10.0.0.1", want: SNMPRecord{OID: "1.3.6.1.2.1.4.20.1.1.10.0.0.1", Tag: TagIPAddress, Bytes: []byte{10, 0, 0, 1}}},
		{line: "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.6527", want: SNMPRecord{OID: "1.3.6.1.2.1.1.2.0", Tag: TagOID, Bytes: []byte("1.3.6.1.4.1.6527")}},
		{line: "1.3.6.1.2.1.2.2.1.10.1|65|4294967296", wantErr: true}, // Counter32 overflow
		{line: "1.3.6.1.2.1.2.2.1.10.1|65|-1", wantErr: true},
		{line: "1.3..6|2|1", wantErr: true},
		{line: "1.3.6|99|1", wantErr: true},
		{line: "1.3.6|4x|zz", wantErr: true},
		{line: "1.3.6|2", wantErr: true},
		{line: "1.3.6|64|::1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := parseSNMPRecLine(tt.line)
			if tt.wantErr {
				if err == nil || !errors.Is(err, ErrSyntax) {
					t.Fatalf("want ErrSyntax, got %v (%+v)", err, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got.OID != tt.want.OID || got.Tag != tt.want.Tag || got.Int != tt.want.Int || got.Uint != tt.want.Uint ||
				string(got.Bytes) != string(tt.want.Bytes) || got.Hex != tt.want.Hex {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestReadSNMPRecReportsLine(t *testing.T) {
	_, err := ReadSNMPRec(strings.NewReader("1.3.6.1|2|1\n\n1.3.6.2|2|x\n"), "bad.snmprec")
	if err == nil || !strings.Contains(err.Error(), "bad.snmprec:3:") {
		t.Fatalf("want error naming bad.snmprec:3, got %v", err)
	}
}

// TestSharedRecordingsParse reads every real walk we test against.
func TestSharedRecordingsParse(t *testing.T) {
	files, _ := filepath.Glob("../testdata/snmp/*.snmprec")
	if len(files) == 0 {
		files, _ = filepath.Glob("../../shared/testdata/snmp/*.snmprec")
	}
	if len(files) == 0 {
		t.Skip("no recordings found")
	}
	for _, f := range files {
		recs, err := ReadSNMPRecFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(recs) < 100 {
			t.Fatalf("%s: only %d records", f, len(recs))
		}
		obs := SNMPObservations(recs, "d", 1)
		var sysObjectID bool
		for _, o := range obs {
			if o.Path == "1.3.6.1.2.1.1.2.0" && o.Kind == schema.KindOID && o.Str != "" {
				sysObjectID = true
			}
		}
		if !sysObjectID {
			t.Errorf("%s: no sysObjectID.0 OID observation", f)
		}
	}
}

// TestReadSNMPRecTolerant reads a walk with anonymised IpAddress values
// (`*.*.*.*`, as LibreNMS writes them) and a negative Counter32: each bad
// value is skipped and counted, once per kind with its first file:line,
// and every other line is read; Strict refuses the file at the first one.
func TestReadSNMPRecTolerant(t *testing.T) {
	const path = "testdata/anonymised-ipaddress.snmprec"
	tests := []struct {
		name    string
		opts    ReadOptions
		records int
		skipped []Skipped // Err compared by substring of its message
		wantErr string
	}{
		{name: "tolerant", records: 41, skipped: []Skipped{
			{Kind: "IpAddress", Count: 2, First: path + ":41", Err: errors.New(`ParseAddr("*.*.*.*")`)},
			{Kind: "Counter32", Count: 1, First: path + ":43", Err: errors.New("1.3.6.1.3.95.1.8.1.5.1.1")},
		}},
		{name: "strict", opts: ReadOptions{Strict: true}, wantErr: path + `:41: snmprec syntax error: OID 1.3.6.1.3.95.1.8.1.4.1.1: ParseAddr("*.*.*.*")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, skipped, err := ReadSNMPRecFileWith(path, tt.opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrSyntax) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != tt.records {
				t.Fatalf("%d records, want %d", len(recs), tt.records)
			}
			if last := recs[len(recs)-1]; last.Tag != TagIPAddress || string(last.Bytes) != "\x0a\x00\x00\x01" || last.Line != 44 {
				t.Fatalf("last record %+v, want the good IpAddress of line 44", last)
			}
			if len(skipped) != len(tt.skipped) {
				t.Fatalf("skipped %v, want %v", skipped, tt.skipped)
			}
			for i, want := range tt.skipped {
				got := skipped[i]
				if got.Kind != want.Kind || got.Count != want.Count || got.First != want.First ||
					!errors.Is(got.Err, ErrSyntax) || !strings.Contains(got.Err.Error(), want.Err.Error()) {
					t.Fatalf("skipped[%d] = %+v, want %+v", i, got, want)
				}
				if s := got.String(); !strings.HasPrefix(s, want.First+": skipped ") {
					t.Fatalf("report line %q does not start with file:line", s)
				}
			}
		})
	}
}

func TestSkipKind(t *testing.T) {
	for line, want := range map[string]string{
		"1.3.6|64|*.*.*.*": "IpAddress",
		"1.3.6|64x|0a00":   "IpAddress",
		"1.3.6|70|x":       "Counter64",
		"1.3.6|99|1":       "line",
		"1.3..6|2|1":       "line",
		"no pipes":         "line",
		"1.3.6|2":          "line",
		"1.3.6|4x|zz":      "OCTET STRING",
		".1.3.6|6|1..2":    "OBJECT IDENTIFIER",
		"1.3.6|67|-5":      "TimeTicks",
	} {
		if got := skipKind(line); got != want {
			t.Errorf("skipKind(%q) = %q, want %q", line, got, want)
		}
	}
}
