//go:build duckdb_arrow

package query

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// memWatch stops DuckDB queries when the process's memory outside the Go
// runtime goes over a bound. DuckDB's memory_limit counts only its buffer
// manager: some values are built outside it (measured with DuckDB 1.5.6:
// `SELECT len(range(400000000))` peaked at 20 GB RSS under a 256MB limit),
// and once a query has started nothing else stops them. The watch samples
// RSS while queries run and cancels every running query, with ErrMemory,
// when RSS less the Go runtime's resident memory is over the limit.
type memWatch struct {
	limit atomic.Int64 // bytes
	log   *slog.Logger
	every time.Duration

	mu      sync.Mutex
	running map[*context.CancelCauseFunc]struct{}
	wake    chan struct{} // a query started
	stop    chan struct{}
	done    chan struct{}
}

// memWatchLimit is the bound for a TotalMemory budget: DuckDB's own
// overhead on top of its buffers (measured: up to 1.5×), and its idle
// databases and code.
func memWatchLimit(total int64) int64 { return total + total/2 + 256<<20 }

func newMemWatch(limit int64, log *slog.Logger) *memWatch {
	w := &memWatch{
		log: log, every: 10 * time.Millisecond,
		running: make(map[*context.CancelCauseFunc]struct{}),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	w.limit.Store(limit)
	go w.loop()
	return w
}

// watch returns ctx, cancelled with ErrMemory when the bound is crossed
// while the query runs, and the function that ends the watch.
func (w *memWatch) watch(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	key := &cancel
	w.mu.Lock()
	w.running[key] = struct{}{}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return ctx, func() {
		w.mu.Lock()
		delete(w.running, key)
		w.mu.Unlock()
		cancel(nil)
	}
}

func (w *memWatch) close() {
	close(w.stop)
	<-w.done
}

func (w *memWatch) loop() {
	defer close(w.done)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		w.mu.Lock()
		idle := len(w.running) == 0
		w.mu.Unlock()
		if idle {
			select {
			case <-w.wake:
			case <-w.stop:
				return
			}
		}
		select {
		case <-t.C:
		case <-w.stop:
			return
		}
		used, ok := nonGoResident()
		limit := w.limit.Load()
		if !ok || used <= limit {
			continue
		}
		w.mu.Lock()
		n := len(w.running)
		for c := range w.running {
			(*c)(fmt.Errorf("%w: the process's memory outside Go reached %d MiB, over the %d MiB allowed for query.total_memory; the %d running queries were stopped",
				ErrMemory, used>>20, limit>>20, n))
			delete(w.running, c)
		}
		w.mu.Unlock()
		if n > 0 {
			w.log.Warn("stopped queries over the memory budget", "queries", n, "rss_outside_go_bytes", used, "limit_bytes", limit)
		}
	}
}

var goMemSamples = []metrics.Sample{
	{Name: "/memory/classes/total:bytes"},
	{Name: "/memory/classes/heap/released:bytes"},
}

// nonGoResident is the process's resident memory less what the Go runtime
// has mapped and not released: roughly, DuckDB's memory.
func nonGoResident() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	s := make([]metrics.Sample, len(goMemSamples))
	copy(s, goMemSamples)
	metrics.Read(s)
	goRes := int64(s[0].Value.Uint64()) - int64(s[1].Value.Uint64())
	return pages*int64(os.Getpagesize()) - goRes, true
}
