package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// anonWalk holds two IpAddress values written as *.*.*.* and a negative
// Counter32 among 41 good lines (recording/testdata/README.md).
const anonWalk = "../../recording/testdata/anonymised-ipaddress.snmprec"

// TestRecordingStrictFlag: netfeat normalize and netfeat sim snmp skip and
// report a value they cannot parse, and refuse the file with --strict.
func TestRecordingStrictFlag(t *testing.T) {
	tests := []struct {
		name    string
		run     func(strict bool, stderr *bytes.Buffer) error
		report  string // in stderr when tolerant
		wantErr string // with --strict
	}{
		{
			name: "normalize",
			run: func(strict bool, stderr *bytes.Buffer) error {
				var out bytes.Buffer
				return runNormalize(t.Context(), &out, stderr, anonWalk, "", "jsonl", "", false, strict)
			},
			report:  anonWalk + `:41: skipped 2 IpAddress value(s) that could not be parsed (first: snmprec syntax error: OID 1.3.6.1.3.95.1.8.1.4.1.1: ParseAddr("*.*.*.*")`,
			wantErr: anonWalk + ":41:",
		},
		{
			name: "sim snmp",
			run: func(strict bool, stderr *bytes.Buffer) error {
				mib, err := loadMIB(anonWalk, strict, slog.New(slog.NewTextHandler(stderr, nil)))
				if err == nil && mib.Len() != 41 {
					t.Errorf("MIB of %d objects, want the 41 good lines", mib.Len())
				}
				return err
			},
			report:  "kind=IpAddress count=2",
			wantErr: anonWalk + ":41:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if err := tt.run(false, &stderr); err != nil {
				t.Fatalf("tolerant: %v", err)
			}
			if !strings.Contains(stderr.String(), tt.report) {
				t.Fatalf("stderr lacks %q:\n%s", tt.report, stderr.String())
			}
			if !strings.Contains(stderr.String(), "Counter32") {
				t.Fatalf("stderr does not report the Counter32 kind:\n%s", stderr.String())
			}
			stderr.Reset()
			if err := tt.run(true, &stderr); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("--strict: err %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}
