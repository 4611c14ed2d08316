// Command crashapp appends numbered sample batches to a feature store as
// fast as it can and prints "ACK <batch>" on stdout after each Append
// returns nil, until it is killed. integration/crash_test.go SIGKILLs it
// mid-ingest and checks that every acknowledged batch survived.
//
// Batch b holds samples with values b*size .. b*size+size-1 (also their
// event-time offsets), so the checker can tell exactly what is present.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/schema"
)

func main() {
	dir := flag.String("dir", "", "store directory")
	first := flag.Int64("first", 0, "number of the first batch to append")
	size := flag.Int("size", 500, "samples per batch")
	appenders := flag.Int("appenders", 4, "concurrent appenders")
	fsync := flag.String("fsync", "batch", "WAL fsync policy")
	base := flag.Int64("base", 0, "event time of sample 0, Unix ns")
	flag.Parse()
	if err := run(*dir, *first, *size, *appenders, featurestore.FSyncPolicy(*fsync), *base); err != nil {
		fmt.Fprintln(os.Stderr, "crashapp:", err)
		os.Exit(1)
	}
}

// View is the feature view crashapp runs, so that recovery also rebuilds
// windows; crash_test.go opens the store with the same one.
var View = schema.FeatureView{
	Name: "ifc", Entity: schema.EntityComponent, Metrics: []string{"interface.in.bps"},
	Aggregations: []schema.Aggregation{schema.AggCount, schema.AggMean, schema.AggP95},
	Windows:      []time.Duration{time.Second}, Hop: time.Second,
}

func run(dir string, first int64, size, appenders int, fsync featurestore.FSyncPolicy, base int64) error {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := featurestore.Config{FSync: fsync, SealRows: 4096, RetentionAge: 24 * time.Hour}
	s, err := featurestore.New(cfg, []schema.FeatureView{View}, dir, nil, log)
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	fmt.Println("READY")
	next := atomic.Int64{}
	next.Store(first)
	var out sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, appenders)
	for range appenders {
		wg.Go(func() {
			batch := make([]schema.Sample, size)
			for {
				b := next.Add(1) - 1
				for j := range batch {
					v := b*int64(size) + int64(j)
					batch[j] = schema.Sample{
						TS: base + v*int64(time.Millisecond), IngestTS: time.Now().UnixNano(),
						Entity: schema.Entity{Device: "r" + strconv.Itoa(int(v%7)), Component: "eth" + strconv.Itoa(j%16)},
						Metric: "interface.in.bps", Value: float64(v),
					}
				}
				if err := s.Append(ctx, batch); err != nil {
					errs <- err
					return
				}
				out.Lock()
				// One write per line straight to the file descriptor: once
				// it returns, the parent can read the line even if we die.
				_, err := os.Stdout.WriteString("ACK " + strconv.FormatInt(b, 10) + "\n")
				out.Unlock()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	return <-errs
}
