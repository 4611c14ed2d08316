package normalize

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/netfeat/netfeat/recording"
	"github.com/netfeat/netfeat/schema"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the normalizer's output")

// recordTime is the receive time given to every observation of an SNMP
// walk (2024-01-01T00:00:00Z), so that golden output is stable.
const recordTime = int64(1704067200) * 1e9

// collector is a SampleAppender that keeps everything.
type collector struct {
	mu      sync.Mutex
	samples []schema.Sample
}

func (c *collector) Append(_ context.Context, b []schema.Sample) error {
	c.mu.Lock()
	c.samples = append(c.samples, b...)
	c.mu.Unlock()
	return nil
}

// recordings lists every recording under testdata/ with how to read it.
func recordings(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"../testdata/snmp/*.snmprec", "../testdata/gnmi/*/*.json", "../testdata/gnmi/*/*.jsonkv", "../testdata/gnmi/*/*.jsonl"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	sort.Strings(out)
	return out
}

// readRecording returns the observations of a recording as one batch per
// device (an SNMP walk is one poll).
func readRecording(t testing.TB, path string) []schema.Observation {
	t.Helper()
	if strings.HasSuffix(path, ".snmprec") {
		recs, err := recording.ReadSNMPRecFile(path)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		dev := strings.TrimSuffix(filepath.Base(path), ".snmprec")
		return recording.SNMPObservations(recs, dev, recordTime)
	}
	obs, err := recording.ReadGNMICaptureFile(path, "")
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return obs
}

// goldenLine is one sample as written to testdata/golden/*.jsonl.
type goldenLine struct {
	TS        int64   `json:"ts"`
	Device    string  `json:"device"`
	Component string  `json:"component"`
	Metric    string  `json:"metric"`
	Value     float64 `json:"value"`
	Unit      string  `json:"unit"`
	Source    string  `json:"source"`
}

func goldenName(path string) string {
	rel, _ := filepath.Rel("../testdata", path)
	rel = strings.ReplaceAll(rel, string(filepath.Separator), "_")
	return filepath.Join("../testdata/golden", rel+".jsonl")
}

func renderGolden(samples []schema.Sample) []byte {
	lines := make([]goldenLine, 0, len(samples))
	for _, s := range samples {
		m, _ := schema.LookupMetric(s.Metric)
		lines = append(lines, goldenLine{s.TS, s.Device, s.Component, s.Metric, s.Value, m.Unit, s.Source})
	}
	sort.SliceStable(lines, func(i, j int) bool {
		a, b := lines[i], lines[j]
		if a.Device != b.Device {
			return a.Device < b.Device
		}
		if a.Component != b.Component {
			return a.Component < b.Component
		}
		if a.Metric != b.Metric {
			return a.Metric < b.Metric
		}
		return a.TS < b.TS
	})
	var buf bytes.Buffer
	for _, l := range lines {
		b, _ := json.Marshal(l)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

func normalizeRecording(t testing.TB, path string) ([]schema.Sample, *Normalizer) {
	t.Helper()
	var c collector
	n, err := New(Config{}, &c, nil, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	obs := readRecording(t, path)
	// One Observe per device run, as a collector delivers them.
	if err := n.Observe(context.Background(), obs); err != nil {
		t.Fatalf("Observe: %v", err)
	}
	return c.samples, n
}

// TestGolden normalizes every recording and compares the samples with the
// reviewed expectations in testdata/golden (go test ./normalize -run
// TestGolden -update rewrites them; review the diff before committing).
func TestGolden(t *testing.T) {
	for _, path := range recordings(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			samples, _ := normalizeRecording(t, path)
			got := renderGolden(samples)
			gp := goldenName(path)
			if *update {
				if err := os.WriteFile(gp, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(gp)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("output differs from %s:\n%s", gp, firstDiff(string(want), string(got)))
			}
		})
	}
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\nwant %s\ngot  %s", i+1, w, g)
		}
	}
	return "(no line differs)"
}
