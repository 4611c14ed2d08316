package integration

import (
	"bufio"
	"context"
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/schema"
)

// crashView must match integration/internal/crashapp's View.
var crashView = schema.FeatureView{
	Name: "ifc", Entity: schema.EntityComponent, Metrics: []string{"interface.in.bps"},
	Aggregations: []schema.Aggregation{schema.AggCount, schema.AggMean, schema.AggP95},
	Windows:      []time.Duration{time.Second}, Hop: time.Second,
}

// TestSIGKILLLosesNothingAcknowledged runs crashapp, SIGKILLs it in the
// middle of ingest, restarts it on the same directory, and repeats; then it
// opens the store and checks that every sample of every batch crashapp
// acknowledged is there exactly once.
func TestSIGKILLLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a subprocess")
	}
	bin := filepath.Join(t.TempDir(), "crashapp")
	build := exec.Command("go", "build", "-o", bin, "./internal/crashapp")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build crashapp: %v\n%s", err, out)
	}
	dir := t.TempDir()
	const size = 500
	base := time.Now().Truncate(time.Second).UnixNano()
	acked := map[int64]bool{}
	next := int64(0)
	rounds := []struct {
		fsync string
		kill  time.Duration // after READY
	}{
		{"batch", 700 * time.Millisecond},
		{"interval", 900 * time.Millisecond},
		{"always", 500 * time.Millisecond},
		{"batch", 1100 * time.Millisecond},
	}
	for i, r := range rounds {
		cmd := exec.Command(bin, "-dir", dir, "-first", strconv.FormatInt(next, 10), "-size", strconv.Itoa(size),
			"-fsync", r.fsync, "-base", strconv.FormatInt(base, 10))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1<<16)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		ready := time.After(30 * time.Second)
	waitReady:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					_ = cmd.Wait()
					t.Fatalf("round %d: crashapp exited before READY: %s", i, stderr.String())
				}
				if l == "READY" {
					break waitReady
				}
			case <-ready:
				_ = cmd.Process.Kill()
				t.Fatalf("round %d: crashapp not ready: %s", i, stderr.String())
			}
		}
		time.Sleep(r.kill)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		n := 0
		for l := range lines {
			if b, ok := strings.CutPrefix(l, "ACK "); ok {
				v, err := strconv.ParseInt(b, 10, 64)
				if err != nil {
					t.Fatalf("bad line %q", l)
				}
				acked[v] = true
				next = max(next, v+1)
				n++
			}
		}
		if n == 0 {
			t.Fatalf("round %d (%s): no batch acknowledged before the kill; stderr: %s", i, r.fsync, stderr.String())
		}
		// Batches handed out but not acknowledged may or may not be stored;
		// start the next round after all of them so numbers stay unique.
		next += 8
		t.Logf("round %d (fsync=%s): %d batches acknowledged before SIGKILL", i, r.fsync, n)
	}

	s, err := featurestore.New(featurestore.Config{RetentionAge: 24 * time.Hour}, []schema.FeatureView{crashView}, dir, nil, nil)
	if err == nil {
		err = s.Start(context.Background())
	}
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer func() { _ = s.Stop(context.Background()) }()
	seen := map[int64]int{}
	count := func(recs []arrow.RecordBatch) {
		for _, rec := range recs {
			vals := rec.Column(4).(*array.Float64)
			for i := range vals.Len() {
				seen[int64(vals.Value(i))]++
			}
			rec.Release()
		}
	}
	count(s.SnapshotSamples())
	hot := len(seen)
	r, err := s.History(context.Background(), featurestore.TableSamples, math.MinInt64, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	hist := map[int64]int{}
	for r.Next() {
		vals := r.RecordBatch().Column(4).(*array.Float64)
		for i := range vals.Len() {
			hist[int64(vals.Value(i))]++
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	r.Release()
	for b := range acked {
		for j := range int64(size) {
			v := b*size + j
			if seen[v] != 1 {
				t.Fatalf("acknowledged batch %d: sample %d is in the hot tier %d times, want once", b, v, seen[v])
			}
			if hist[v] != 1 {
				t.Fatalf("acknowledged batch %d: sample %d is in Badger history %d times, want once", b, v, hist[v])
			}
		}
	}
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("sample %d stored %d times", v, n)
		}
	}
	t.Logf("%d acknowledged batches (%d samples) all present; %d samples in the hot tier", len(acked), len(acked)*size, hot)
}
