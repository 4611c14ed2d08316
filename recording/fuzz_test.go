package recording

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// addSeeds adds the first 64 KiB of every file matching the patterns.
func addSeeds(f *testing.F, patterns ...string) {
	f.Helper()
	for _, p := range patterns {
		files, err := filepath.Glob(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b[:min(len(b), 64<<10)])
		}
	}
}

// FuzzReadSNMPRec feeds arbitrary bytes to the snmpsim walk reader (the
// simulators and `netfeat normalize --recording` read user files with it):
// it returns records or an error, never panics, and what it returns
// converts to observations.
func FuzzReadSNMPRec(f *testing.F) {
	addSeeds(f, "../testdata/snmp/*.snmprec")
	f.Add([]byte("1.3.6.1.2.1.1.1.0|4x|zz\n1.3.6.1.2.1.1.3.0|67|-1\n|2|\n1.3|70|99999999999999999999999\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if recs, _, err := ReadSNMPRecWith(bytes.NewReader(data), "fuzz.snmprec", ReadOptions{}); err == nil {
			_ = SNMPObservations(recs, "fuzz", 1)
		}
		recs, err := ReadSNMPRec(bytes.NewReader(data), "fuzz.snmprec")
		if err != nil {
			return
		}
		_ = SNMPObservations(recs, "fuzz", 1)
	})
}

// FuzzReadGNMICapture feeds arbitrary bytes to the gNMI/MDT capture
// reader, in every format it detects: an error or observations, never a
// panic.
func FuzzReadGNMICapture(f *testing.F) {
	addSeeds(f, "../testdata/gnmi/*/*.json", "../testdata/gnmi/*/*.jsonl", "../testdata/gnmi/*/*.jsonkv")
	f.Add([]byte(`{"update":{"timestamp":"x","update":[{"path":{"elem":[{"name":""}]},"val":{"jsonVal":"e30="}}]}}`))
	f.Add([]byte(`[{"Rows":[{"Timestamp":1,"Content":{"a":[[[[[]]]]]}}]}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = DetectGNMIFormat(data)
		_, _ = ReadGNMICapture(bytes.NewReader(data), "fuzz.json", "fuzz")
		_, _, _ = ReadGNMICaptureWith(bytes.NewReader(data), "fuzz.json", "fuzz", ReadOptions{})
	})
}
