//go:build duckdb_arrow

package query

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rss is the process's resident set size in bytes, from /proc/self/statm.
func rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skipf("no /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// TestMemoryGuards runs queries that built multi-gigabyte values (issue
// #20: repeat ran at 4.6 GB RSS under a 1 GB limit) and checks that each
// fails with a message naming the limit while the process stays small.
func TestMemoryGuards(t *testing.T) {
	e := newTestEngine(t, testSource(t, 100, 100), func(o *Options) { o.MemoryLimit = "256MB"; o.Threads = 2 })
	tests := []struct{ name, sql, want string }{
		{"repeat", "SELECT max(length(repeat('x', 2000000000)))", "over the limit of 64000000"},
		{"repeat list", "SELECT len(repeat([1, 2, 3], 1000000000))", "over the limit"},
		{"lpad", "SELECT length(lpad('x', 2000000000, 'y'))", "over the limit of 16000000"},
		{"rpad", "SELECT length(rpad('x', 2000000000, 'y'))", "over the limit"},
		{"range", "SELECT len(range(400000000))", "over the limit of 2000000"},
		{"range step", "SELECT len(range(0, 400000000, 1))", "range: a list of over 2000000"},
		{"generate_series", "SELECT len(generate_series(1, 400000000))", "over 2000000"},
		{"list_resize", "SELECT len(list_resize([1], 400000000))", "over the limit of 2000000"},
		{"format width", "SELECT length(format('{:>2000000000}', 'x'))", "widths of 7 digits or more"},
		{"printf width", "SELECT length(printf('%2000000000d', 1))", "widths of 7 digits or more"},
		{"format width argument", "SELECT length(format('{:>{}}', 'x', 2000000000))", "widths taken from an argument"},
		{"printf width argument", "SELECT length(printf('%*d', 2000000000, 1))", "widths taken from an argument"},
		{"qualified format", "SELECT main.format('{}', 1)", "call format unqualified"},
		{"string_agg", "SELECT length(string_agg(repeat('x', 1000000), '')) FROM range(10000)", "Out of Memory"},
		{"list", "SELECT len(list(repeat('x', 1000000))) FROM range(10000)", "Out of Memory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := rss(t)
			_, _, err := queryRows(t.Context(), e, Request{SQL: tc.sql})
			grown := rss(t) - before
			t.Logf("%s: RSS grew by %d MB: %v", tc.sql, grown>>20, err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%s: error %v, want one containing %q", tc.sql, err, tc.want)
			}
			// Generous: DuckDB's own overhead comes on top of the limit.
			if grown > 1<<30 {
				t.Fatalf("%s: RSS grew by %d MB under a 256MB memory limit", tc.sql, grown>>20)
			}
		})
	}
	// The guards keep the functions working below the limit.
	for _, tc := range []struct{ sql, want string }{
		{"SELECT repeat('ab', 3), lpad('7', 3, '0'), rpad('7', 3, '0'), len(repeat([1], 4))", "[[ababab 007 700 4]]"},
		{"SELECT len(range(3)), len(range(1, 4)), len(range(0, 10, 3)), len(generate_series(2)), len(list_resize([1], 3))", "[[3 3 4 3 3]]"},
		{"SELECT len(range(TIMESTAMP '2025-01-01', TIMESTAMP '2025-01-02', INTERVAL 1 HOUR))", "[[24]]"},
		{"SELECT count(*) FROM range(3000000)", "[[3000000]]"},
		{"SELECT format('{} is {:.2f}', 'pi', 3.14159), printf('%s=%05d', 'n', 42), format('plain')", "[[pi is 3.14 n=00042 plain]]"},
		{"SELECT length(repeat(device, 3)) FROM devices ORDER BY device LIMIT 1", "[[6]]"},
		{"SELECT format('id 12345678: {}', 1), printf('id 12345678: %d', 2)", "[[id 12345678: 1 id 12345678: 2]]"},
		{"SELECT count(*) FROM generate_series(1, 3000000)", "[[3000000]]"},
	} {
		rows, _, err := queryRows(t.Context(), e, Request{SQL: tc.sql})
		if err != nil || fmt.Sprint(rows) != tc.want {
			t.Fatalf("%s: %v %v, want %s", tc.sql, rows, err, tc.want)
		}
	}
}

// TestMemoryWatch lowers the watch's bound below what the process uses
// and checks that a running query is stopped with ErrMemory.
func TestMemoryWatch(t *testing.T) {
	e := newTestEngine(t, testSource(t, 100, 100), nil)
	e.mem.limit.Store(1)
	_, _, err := queryRows(t.Context(), e, Request{SQL: "SELECT count(*) FROM range(100000000000)"})
	if !errors.Is(err, ErrMemory) || !strings.Contains(err.Error(), "query.total_memory") {
		t.Fatalf("query over the bound: %v, want ErrMemory", err)
	}
}

func TestOptionsBounds(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"huge memory limit", func(o *Options) { o.MemoryLimit = "99999999TB" }, "memory_limit"},
		{"tiny memory limit", func(o *Options) { o.MemoryLimit = "1KB" }, "memory_limit"},
		{"too many databases", func(o *Options) { o.MaxConcurrent = 100000 }, "max_concurrent"},
		{"negative max rows", func(o *Options) { o.MaxRows = -1 }, "max_rows"},
		{"too many rows", func(o *Options) { o.MaxRows = MaxMaxRows + 1 }, "max_rows"},
		{"total below limit", func(o *Options) { o.TotalMemory = "100MB" }, "total_memory"},
		{"bad total", func(o *Options) { o.TotalMemory = "lots" }, "total_memory"},
		{"go memory limit", func(o *Options) { o.GoMemoryLimit = "1MB" }, "go_memory_limit"},
		{"threads", func(o *Options) { o.Threads = 100000 }, "threads"},
		{"timeout", func(o *Options) { o.Timeout = 2 * time.Hour }, "timeout"},
		{"queue", func(o *Options) { o.MaxQueued = -1 }, "max_queued"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultOptions()
			tc.mod(&opts)
			if _, err := New(testSource(t, 10, 10), opts, nil, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %s", err, tc.want)
			}
		})
	}
	opts := DefaultOptions()
	opts.TotalMemory = "3.5GB"
	if got := opts.running(); got != 3 {
		t.Fatalf("3.5GB of 1GB queries: %d run at once, want 3", got)
	}
}

// TestStartFailureReturns starts an engine whose DuckDB databases cannot
// open: Start must return the error, not wait for slots that never
// opened (issue #20: memory_limit 99999999TB hung at start).
func TestStartFailureReturns(t *testing.T) {
	opts := DefaultOptions()
	opts.MaxConcurrent = 3
	for _, dsn := range []string{"?memory_limit=99999999TB", "?threads=many"} {
		e, err := newEngineDSN(testSource(t, 10, 10), opts, dsn, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		if err := e.Start(context.Background()); err == nil {
			t.Fatalf("%s: opened", dsn)
		}
	}
}

// TestLifecycle checks the engine's New/Start/Stop convention: New opens
// nothing and leaves the Go memory limit alone, queries fail with
// ErrNotRunning outside Start..Stop, and a query waiting for a database
// when Stop comes gives up while the running one finishes.
func TestLifecycle(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	opts := DefaultOptions()
	opts.MemoryLimit = "512MB"
	opts.MaxConcurrent = 1
	opts.GoMemoryLimit = "3GiB"
	e, err := New(testSource(t, 10, 10), opts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != prev {
		t.Fatalf("New set the Go memory limit to %d", got)
	}
	ctx := context.Background()
	if _, _, err := queryRows(ctx, e, Request{SQL: "SELECT 1"}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("query before Start: %v, want ErrNotRunning", err)
	}
	if err := e.Ready(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Ready before Start: %v", err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 3<<30 {
		t.Fatalf("after Start the Go memory limit is %d, want 3GiB", got)
	}
	if err := e.Ready(); err != nil {
		t.Fatalf("Ready after Start: %v", err)
	}
	if err := e.Start(ctx); err == nil {
		t.Fatal("second Start succeeded")
	}
	if rows, _, err := queryRows(ctx, e, Request{SQL: "SELECT 1"}); err != nil || len(rows) != 1 {
		t.Fatalf("query: %v %v", rows, err)
	}

	release := holdSlots(t, e)
	queued := make(chan error, 1)
	go func() {
		_, _, err := queryRows(ctx, e, Request{SQL: "SELECT 2"})
		queued <- err
	}()
	for e.queued.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- e.Stop(ctx) }()
	if err := <-queued; !errors.Is(err, ErrNotRunning) {
		t.Fatalf("query queued at Stop: %v, want ErrNotRunning", err)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a query ran", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, _, err := queryRows(ctx, e, Request{SQL: "SELECT 1"}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("query after Stop: %v, want ErrNotRunning", err)
	}
	if err := e.Start(ctx); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
	if err := e.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// holdSlots occupies every database of e with a query that waits in its
// result callback until the returned function is called.
func holdSlots(t *testing.T, e *Engine) (release func()) {
	t.Helper()
	stop := make(chan struct{})
	var started, done sync.WaitGroup
	for range cap(e.slots) {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			err := e.Query(context.Background(), Request{SQL: "SELECT 1 AS held"}, func(*Result) error {
				started.Done()
				<-stop
				return nil
			})
			if err != nil {
				t.Errorf("holding query: %v", err)
			}
		}()
	}
	started.Wait()
	var once sync.Once
	release = func() { once.Do(func() { close(stop); done.Wait() }) }
	t.Cleanup(release)
	return release
}

// waitQueued waits until n queries wait for a database.
func waitQueued(t *testing.T, e *Engine, n int64) {
	t.Helper()
	for e.queued.Load() != n {
		if t.Context().Err() != nil {
			t.Fatal("queries never queued")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestQueue holds every database and checks what queued and later queries
// get: a queued query's timeout counts its wait, a query beyond the queue
// is refused at once with ErrBusy, and a point query is answered without
// waiting. (The front ends' busy answers are tested in query/frontend.)
func TestQueue(t *testing.T) {
	e := newTestEngine(t, testSource(t, 1000, 100), func(o *Options) {
		o.MaxConcurrent, o.MaxQueued, o.Timeout = 1, 1, 300*time.Millisecond
	})
	release := holdSlots(t, e)

	// The queue has room: this one waits, and its timeout runs out while
	// it waits.
	_, _, err := queryRows(t.Context(), e, Request{SQL: "SELECT 2"})
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "waiting") {
		t.Fatalf("queued query: %v, want a timeout while waiting", err)
	}

	// Fill the queue: the next query is refused.
	queuedErr := make(chan error, 1)
	go func() {
		_, _, err := queryRows(context.Background(), e, Request{SQL: "SELECT 3"})
		queuedErr <- err
	}()
	waitQueued(t, e, 1)

	if _, _, err := queryRows(t.Context(), e, Request{SQL: "SELECT 4"}); !errors.Is(err, ErrBusy) {
		t.Fatalf("query beyond the queue: %v, want ErrBusy", err)
	}

	// A point query needs no database.
	rows, _, err := queryRows(t.Context(), e, Request{SQL: "SELECT * FROM latest_if_traffic WHERE device = 'r1' AND component = 'Gi0/0'"})
	if err != nil || len(rows) != 1 {
		t.Fatalf("point query while busy: %v %v", rows, err)
	}
	release()
	if err := <-queuedErr; !errors.Is(err, ErrTimeout) && err != nil {
		t.Fatalf("queued query: %v", err)
	}
}
