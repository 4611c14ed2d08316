// The memory governor: with memory_limit set, it keeps the process under
// the limit. Every second it measures the process (RSS on Linux) and
//
//   - gives the Go runtime as its soft limit (debug.SetMemoryLimit) what
//     the limit leaves after the memory outside the Go runtime (the hot
//     tier's mapped chunks, DuckDB), so that the garbage collector gives
//     up its headroom first;
//   - when the process is still over its target (95% of the limit), lowers
//     the hot tier's budget by the excess: the store drops its oldest
//     sealed chunks first (they stay in Badger until chunk_ttl), counted
//     in netfeat_memory_shed_bytes_total;
//   - when it is back under 85% of the limit, gives the hot tier room
//     again, up to store.memory_budget.
//
// What it cannot shed (the series state of the normalizer, the store and
// the windows) shows as netfeat_memory_used_bytes above the limit.

package service

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Governor thresholds, as shares of memory_limit.
const (
	memTargetShare = 0.95 // over it the hot tier sheds
	memRelaxShare  = 0.85 // under it the hot tier may grow back
	// minHotBudget is the least the governor leaves the hot tier
	// (store.memory_budget's own minimum).
	minHotBudget = 1 << 20
	// minGoLimitShare: the Go runtime's soft limit is never set below
	// this share of memory_limit, however much is outside Go.
	minGoLimitShare = 0.25
	memGovernEvery  = time.Second
)

// hotLimiter is the store as the governor drives it.
type hotLimiter interface {
	LimitHot(budget int64) (shed int64)
	HotBudget() int64
	HotUsage() (samples, bytes int64)
	HotShed() int64
}

// memUsage is one measurement of the process.
type memUsage struct {
	// Used is the process's resident memory (RSS), or the Go runtime's
	// where RSS cannot be read.
	Used int64
	// GoMapped is the memory the Go runtime holds from the OS and has not
	// released: Used minus it is outside Go.
	GoMapped int64
}

// memPlan is what the governor does after one measurement.
type memPlan struct {
	budget  int64 // the hot tier's budget
	goLimit int64 // the Go runtime's soft limit
}

// planMemory decides the hot tier's budget and the Go soft limit for a
// process of limit bytes whose hot tier holds hot bytes under budget
// (full: store.memory_budget).
func planMemory(limit, full, budget, hot int64, u memUsage) memPlan {
	outside := max(u.Used-u.GoMapped, 0)
	p := memPlan{budget: budget, goLimit: max(limit-outside, int64(float64(limit)*minGoLimitShare))}
	target := int64(float64(limit) * memTargetShare)
	relax := int64(float64(limit) * memRelaxShare)
	switch {
	case u.Used > target:
		// Shed the excess from what the tier holds (not from its budget,
		// which may be far above it).
		p.budget = max(min(budget, hot-(u.Used-target)), minHotBudget)
	case u.Used < relax && budget < full:
		p.budget = min(budget+(relax-u.Used), full)
	}
	return p
}

// memoryGovernor applies planMemory every memGovernEvery.
type memoryGovernor struct {
	limit  int64
	full   int64
	store  hotLimiter
	sample func() memUsage
	log    *slog.Logger

	used, budget prometheus.Gauge

	stop chan struct{}
	wg   sync.WaitGroup
}

func newMemoryGovernor(limit int64, st hotLimiter, reg prometheus.Registerer, log *slog.Logger) (*memoryGovernor, error) {
	g := &memoryGovernor{limit: limit, full: st.HotBudget(), store: st, sample: sampleMemory, log: log,
		used: prometheus.NewGauge(prometheus.GaugeOpts{Name: "netfeat_memory_used_bytes",
			Help: "The process's memory as the memory_limit governor measures it (RSS on Linux)."}),
		budget: prometheus.NewGauge(prometheus.GaugeOpts{Name: "netfeat_memory_hot_budget_bytes",
			Help: "The hot tier's budget the memory_limit governor allows: store.memory_budget, or less while the process is over 95% of memory_limit."}),
	}
	shed := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "netfeat_memory_shed_bytes_total",
		Help: "Bytes of hot-tier sample data dropped from memory to stay under memory_limit (oldest chunks first; they stay in Badger until chunk_ttl)."},
		func() float64 { return float64(st.HotShed()) })
	limitGauge := prometheus.NewGauge(prometheus.GaugeOpts{Name: "netfeat_memory_limit_bytes", Help: "The configured memory_limit."})
	limitGauge.Set(float64(limit))
	if reg != nil {
		for _, c := range []prometheus.Collector{g.used, g.budget, shed, limitGauge} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	g.budget.Set(float64(g.full))
	return g, nil
}

// step measures the process once and applies the plan.
func (g *memoryGovernor) step() {
	u := g.sample()
	_, hot := g.store.HotUsage()
	budget := g.store.HotBudget()
	p := planMemory(g.limit, g.full, budget, hot, u)
	debug.SetMemoryLimit(p.goLimit)
	if p.budget != budget {
		if shed := g.store.LimitHot(p.budget); shed > 0 {
			g.log.Info("over memory_limit: hot tier shed", "used", u.Used, "limit", g.limit, "hot_budget", p.budget, "shed_bytes", shed)
		}
	}
	g.used.Set(float64(u.Used))
	g.budget.Set(float64(g.store.HotBudget()))
}

// Name implements Component.
func (g *memoryGovernor) Name() string { return "memory governor" }

// Start takes a first measurement and starts the loop.
func (g *memoryGovernor) Start(context.Context) error {
	g.stop = make(chan struct{})
	g.step()
	g.wg.Go(func() {
		t := time.NewTicker(memGovernEvery)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				g.step()
			case <-g.stop:
				return
			}
		}
	})
	return nil
}

// Stop ends the loop.
func (g *memoryGovernor) Stop(context.Context) error {
	close(g.stop)
	g.wg.Wait()
	return nil
}

// goMemorySamples are the runtime/metrics read by sampleMemory.
var goMemorySamples = []metrics.Sample{
	{Name: "/memory/classes/total:bytes"},
	{Name: "/memory/classes/heap/released:bytes"},
}

var goMemoryMu sync.Mutex

// sampleMemory measures this process: RSS from /proc/self/statm and the
// Go runtime's mapped memory from runtime/metrics.
func sampleMemory() memUsage {
	goMemoryMu.Lock()
	metrics.Read(goMemorySamples)
	goMapped := int64(goMemorySamples[0].Value.Uint64() - goMemorySamples[1].Value.Uint64())
	goMemoryMu.Unlock()
	u := memUsage{Used: goMapped, GoMapped: goMapped}
	if rss, ok := readRSS(); ok {
		u.Used = rss
	}
	return u
}

// readRSS returns the resident set size of this process (Linux).
func readRSS() (int64, bool) {
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
	return pages * int64(os.Getpagesize()), true
}
