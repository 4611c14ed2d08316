package bench

import (
	"context"
	"errors"
	"fmt"
	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/netfeat/netfeat/normalize"
	"github.com/netfeat/netfeat/schema"
)

// keptUpShare is the share of the offered rate a step must achieve to
// count as kept up.
const keptUpShare = 0.95

// decisionGrace is how long the bench waits after the load stops for the
// decisions of the last closed windows.
const decisionGrace = 2 * time.Second

// Run runs the bench described by o and returns its report. On error the
// report holds what was measured before it (it may be nil when nothing
// was).
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("bench options: %w", err)
	}
	dir := o.Dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "netfeat-bench-")
		if err != nil {
			return nil, fmt.Errorf("scratch directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("scratch directory: %w", err)
	}
	rep := &Report{
		SchemaVersion: ReportSchemaVersion, Workload: o.Workload, Started: time.Now().UTC(), Machine: machine(),
		Load:  Load{Devices: o.Devices, Hop: o.Hop.String(), Warmup: o.Warmup.String(), Duration: o.Duration.String()},
		Drops: []Drop{},
	}
	var err error
	if o.Workload == WorkloadInject {
		err = runInject(ctx, o, dir, rep)
	} else {
		err = runCollectors(ctx, o, dir, rep)
	}
	return rep, err
}

// session is what every workload shares: the service, the outside
// decision subscriber, the monitor and the optional query mix.
type session struct {
	o   Options
	t   *target
	sub *decisionSubscriber
	mon *monitor
	qm  *queryMix

	qcancel context.CancelFunc
	qdone   sync.WaitGroup
}

func newSession(ctx context.Context, o Options, t *target, trigger triggerSource, complete completeSource, devices []string) (*session, error) {
	sub, err := subscribeDecisions(ctx, t.natsURL, o.OutsideSubscriber, trigger, complete)
	if err != nil {
		return nil, err
	}
	s := &session{o: o, t: t, sub: sub}
	if o.QueryRate > 0 {
		s.qm = newQueryMix(t.httpAddr, devices, o.QueryRate, o.QueryWorkers, o.PointShare)
	}
	s.mon = newMonitor(t, o.Progress, func() (int, int) {
		q := 0
		if s.qm != nil {
			q = s.qm.total()
		}
		return sub.count(), q
	})
	return s, nil
}

func (s *session) startQueries(ctx context.Context) {
	if s.qm == nil {
		return
	}
	ctx, s.qcancel = context.WithCancel(ctx)
	s.qdone.Go(func() { s.qm.run(ctx) })
}

func (s *session) stopQueries() {
	if s.qcancel != nil {
		s.qcancel()
		s.qdone.Wait()
		s.qcancel = nil
	}
}

// step computes a step's throughput and CPU from the snapshots around it.
func step(s0, s1 snapshot) Step {
	st := Step{start: s0.at, end: s1.at, Seconds: s1.at.Sub(s0.at).Seconds()}
	st.Observations = int64(s1.observations() - s0.observations())
	st.Samples = int64(s1.samples() - s0.samples())
	st.ObsPerSec = float64(st.Observations) / st.Seconds
	st.SamplesPerSec = float64(st.Samples) / st.Seconds
	st.CPUSeconds = (s1.p.CPU - s0.p.CPU).Seconds()
	st.ServiceCPUSeconds = st.CPUSeconds
	st.KeptUp = true
	return st
}

func (st *Step) finishCPU() {
	if st.Samples > 0 && st.ServiceCPUSeconds > 0 {
		st.CPUPerMillionSamples = st.ServiceCPUSeconds / (float64(st.Samples) / 1e6)
		st.SamplesPerCPUSecond = float64(st.Samples) / st.ServiceCPUSeconds
	}
}

// finish takes the end-of-run figures: decisions per step (after a grace
// for the last windows), memory and every drop counter.
func (s *session) finish(ctx context.Context, rep *Report, book *windowBook) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(decisionGrace):
	}
	end, err := s.mon.snap(ctx)
	if err != nil {
		return fmt.Errorf("final scrape: %w", err)
	}
	var missing int
	for i := range rep.Steps {
		st := &rep.Steps[i]
		st.Decisions = s.sub.summarize(st.start, st.end)
		if book != nil {
			exp, ends := book.expectedBetween(st.start, st.end)
			got := 0
			for _, e := range ends {
				got += st.Decisions.perWindow[e]
			}
			miss := max(exp-got, 0)
			st.Decisions.Expected, st.Decisions.Missing = &exp, &miss
			missing += miss
		}
	}
	if s.qm != nil {
		rep.Queries = s.qm.results()
	}
	m := &rep.Memory
	m.PeakRSSBytes, m.RSSBytes = end.p.HWM, end.p.RSS
	m.HotSamples = int64(end.m.Sum("netfeat_store_hot_samples"))
	m.HotBytes = int64(end.m.Sum("netfeat_store_hot_bytes"))
	m.GoHeapInuseBytes = int64(end.m.Sum("go_memstats_heap_inuse_bytes"))
	m.GoSysBytes = int64(end.m.Sum("go_memstats_sys_bytes"))
	m.MemoryShedBytes = int64(end.m.Sum("netfeat_memory_shed_bytes_total"))
	rep.perDevice()
	if m.HotSamples > 0 {
		m.HotBytesPerSample = float64(m.HotBytes) / float64(m.HotSamples)
		m.RSSBytesPerHotSample = float64(m.RSSBytes) / float64(m.HotSamples)
	}
	rep.Drops = append(rep.Drops, end.m.Drops()...)
	if missing > 0 {
		rep.Drops = append(rep.Drops, Drop{Metric: "bench_decisions_missing", Value: float64(missing), Series: 1})
	}
	if n := s.sub.dropped(); n > 0 {
		rep.Drops = append(rep.Drops, Drop{Metric: "bench_subscriber_dropped", Value: float64(n), Series: 1})
	}
	if m := s.sub.malformedCount(); m > 0 {
		rep.Drops = append(rep.Drops, Drop{Metric: "bench_decisions_malformed", Value: float64(m), Series: 1})
	}
	if end.samples() == 0 {
		return errors.New("no sample reached the hot tier")
	}
	return nil
}

func (s *session) close() { _ = s.sub.close() }

// runInject runs the service in this process and feeds its normalizer.
func runInject(ctx context.Context, o Options, dir string, rep *Report) (err error) {
	// The view allows one hop of lateness: a device's batches come round
	// every devices × batch ÷ rate (0.8 s for 1,000 devices of 10
	// interfaces at 100k obs/s), and with less lateness the view's
	// watermark, moved by any device, would close every entity's window
	// before its own next batch completes it: that measures the old,
	// global close, not the completion close that production sees with
	// a lateness above the collection cadence.
	lateness := o.Hop
	if o.Injectors > 1 {
		lateness += 100 * time.Millisecond
	}
	rep.Service = "in-process"
	rep.Load.Interfaces, rep.Load.OfferedPerSec, rep.Load.Injectors = o.Interfaces, o.Rate, o.Injectors
	setup := serviceSetup{dataDir: filepath.Join(dir, "data"), memoryBudget: o.MemoryBudget, memoryLimit: o.MemoryLimit, hop: o.Hop, lateness: lateness}
	var es *eventSources
	if o.Events {
		trapListen, err := freeUDPPort()
		if err != nil {
			return err
		}
		if es, err = startEventSources(ctx, trapListen); err != nil {
			return err
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = errors.Join(err, es.stop(stopCtx))
		}()
		setup.events = &eventSetup{trapListen: trapListen, trapRouter: es.trapAddr, gnmiTarget: es.gnmi.Addr()}
		rep.Load.EventsPerSec = o.EventRate
	}
	t, svc, err := startInProcess(ctx, dir, setup)
	if err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = errors.Join(err, t.stop(stopCtx))
	}()
	book := newWindowBook(o.Hop, lateness, o.Interfaces)
	devices := make([]string, o.Devices)
	for i := range devices {
		devices[i] = injectDevice(i)
	}
	s, err := newSession(ctx, o, t, book.trigger, book.completed, devices)
	if err != nil {
		return err
	}
	defer s.close()
	rep.Notes = append(rep.Notes, "decision subscriber "+s.sub.where())
	// Floor probes run alongside every inject run, at the event rate.
	prober, err := newFloorProber(t.natsURL, s.sub.udpAddr())
	if err != nil {
		return err
	}
	defer prober.close()
	if es != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("events: a simulated SNMP router (%d interfaces) sends linkDown/linkUp traps to the service's trap listener and a simulated IOS-XR target streams oper-status ON_CHANGE; %v link changes per second alternate between them, each on the next interface; inference.lifecycle.flap_limit is 0 (guard off) so that every change gets its decision; both simulators and the floor probes run in the bench process, so their CPU is counted as the service's", trapInterfaces, o.EventRate))
	}

	injs := make([]*injector, o.Injectors)
	for k := range injs {
		var devs []int
		for d := k; d < o.Devices; d += o.Injectors {
			devs = append(devs, d)
		}
		injs[k] = newInjector(svc.Normalizer(), book, devs, o.Interfaces)
	}
	perObs := generatorCost(o.Interfaces)
	rep.Notes = append(rep.Notes, fmt.Sprintf("inject: the service runs in the bench process; the load generator's CPU (%.1f ns per observation, measured on a locked thread before the run) is subtracted. The decision subscriber, query client and /metrics scraper stay in the figure.", perObs))

	load := func(rate float64, d time.Duration, phase string) error {
		until := time.Now().Add(d)
		var wg sync.WaitGroup
		for _, in := range injs {
			wg.Go(func() { in.run(ctx, rate/float64(len(injs)), until) })
		}
		wg.Go(func() { prober.run(ctx, o.EventRate, until) })
		if es != nil {
			wg.Go(func() { es.run(ctx, o.EventRate, until) })
		}
		err := s.mon.watch(ctx, phase, d)
		wg.Wait()
		return err
	}
	injectErrs := func() int64 {
		var n int64
		for _, in := range injs {
			n += in.errs.Load()
		}
		return n
	}
	warm := o.Warmup
	if es != nil {
		// The router must have been polled once (its interfaces named) and
		// the gNMI subscription synced before the first link change counts.
		warm = max(warm, eventPollInterval+2*time.Second)
		rep.Load.Warmup = warm.String()
	}
	if warm > 0 {
		if err := load(o.Rate, warm, "warm-up"); err != nil {
			return err
		}
	}
	s.startQueries(ctx)
	prof, err := startProfile(o)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, prof.stop()) }()
	steps := 1
	if o.Ceiling {
		steps = o.MaxSteps
	}
	rate := o.Rate
	for i := range steps {
		phase := "measure"
		if o.Ceiling {
			phase = fmt.Sprintf("step %d/%d at %s obs/s", i+1, steps, num(rate))
		}
		s0, err := s.mon.snap(ctx)
		if err != nil {
			return err
		}
		e0 := injectErrs()
		if err := load(rate, o.Duration, phase); err != nil {
			return err
		}
		s1, err := s.mon.snap(ctx)
		if err != nil {
			return err
		}
		st := step(s0, s1)
		st.OfferedObsPerSec = rate
		st.InjectErrors = injectErrs() - e0
		st.GeneratorCPUSeconds = perObs * float64(st.Observations) / 1e9
		st.ServiceCPUSeconds = max(st.CPUSeconds-st.GeneratorCPUSeconds, 0)
		st.KeptUp = st.ObsPerSec >= keptUpShare*rate
		st.finishCPU()
		rep.Steps = append(rep.Steps, st)
		if !st.KeptUp {
			break
		}
		rate *= o.RampFactor
	}
	s.stopQueries()
	if err := prof.stop(); err != nil {
		return err
	}
	for i, st := range rep.Steps {
		if st.SamplesPerSec > rep.Steps[rep.Headline].SamplesPerSec {
			rep.Headline = i
		}
	}
	var injErrs int64
	var lastErr error
	for _, in := range injs {
		injErrs += in.errs.Load()
		if e := in.lastErr(); e != nil {
			lastErr = e
		}
	}
	if injErrs > 0 {
		rep.Drops = append(rep.Drops, Drop{Metric: "bench_inject_errors", Labels: "last=" + oneLine(lastErr.Error(), 120), Value: float64(injErrs), Series: len(injs)})
	}
	err = s.finish(ctx, rep, book)
	for i := range rep.Steps {
		st := &rep.Steps[i]
		st.Decisions.Floor = s.sub.floor(st.start, st.end)
	}
	if es != nil {
		got := s.sub.decisions()
		unmatched := 0
		for i := range rep.Steps {
			st := &rep.Steps[i]
			st.Decisions.EventToSubscriber = es.match(got, st.start, st.end)
			unmatched += st.Decisions.EventToSubscriber.Unmatched
		}
		if unmatched > 0 {
			rep.Drops = append(rep.Drops, Drop{Metric: "bench_events_unmatched", Value: float64(unmatched), Series: 1})
		}
	}
	return err
}

// runCollectors starts simulated devices, a `netfeat serve` child polling
// or subscribing to them, and optionally Telegraf against the same devices.
func runCollectors(ctx context.Context, o Options, dir string, rep *Report) (err error) {
	rep.Service = "child process (netfeat serve)"
	if o.ServiceCPUs != "" {
		rep.Service += " on CPUs " + o.ServiceCPUs
	}
	if o.profiling() {
		rep.Service = "in-process (profiled)"
	}
	rep.Load.Interval = o.Interval.String()
	setup := serviceSetup{dataDir: filepath.Join(dir, "data"), memoryBudget: o.MemoryBudget, memoryLimit: o.MemoryLimit, hop: o.Hop, interval: o.Interval,
		cpus: o.ServiceCPUs, maxSeries: seriesFor(o.Devices, o.Interfaces)}
	tsetup := telegrafSetup{interval: o.Interval}
	var stopSims func(context.Context) error
	var simNote func() string
	simCPU := func() time.Duration { return 0 }
	switch o.Workload {
	case WorkloadSNMP:
		rep.Load.Interfaces = o.Interfaces
		n, err := normalize.New(normalize.Config{}, schema.SampleAppenderFunc(func(context.Context, []schema.Sample) error { return nil }), nil, nil)
		if err != nil {
			return err
		}
		_, tsetup.scalars, tsetup.columns = n.SNMPPlan("", snmpagent.SyntheticSysObjectID, "netfeat bench simulated router")
		sims, err := startSNMPSims(ctx, o.Binary, dir, o.SimCPUs, o.Devices, o.Interfaces, tsetup.scalars, tsetup.columns)
		if err != nil {
			return err
		}
		stopSims, setup.snmp, tsetup.snmp, simCPU = sims.stop, sims.endpoints, sims.endpoints, sims.cpu
		where := "any CPU"
		if o.SimCPUs != "" {
			where = "CPUs " + o.SimCPUs
		}
		simNote = func() string {
			return fmt.Sprintf("SNMP simulators: a `netfeat sim snmp` process (pid %d, %s), not counted in the service's CPU or memory", sims.proc.pid, where)
		}
		rep.Load.ValuesPerPoll = sims.perPoll
		rep.Load.OfferedPerSec = float64(o.Devices*sims.perPoll) / o.Interval.Seconds()
	case WorkloadGNMI:
		sims, err := startGNMISims(ctx, o.Devices, o.Interval)
		if err != nil {
			return err
		}
		stopSims, setup.gnmi, tsetup.gnmi = sims.stop, sims.endpoints, sims.endpoints
		simNote = func() string {
			return fmt.Sprintf("gNMI simulators sent %s Subscribe responses", num(float64(sims.responses())))
		}
		rep.Load.LeavesPerTarget = sims.leaves()
		rep.Load.OfferedPerSec = float64(o.Devices*sims.leaves()) / o.Interval.Seconds()
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err = errors.Join(err, stopSims(stopCtx))
	}()
	devices := make([]string, 0, len(setup.snmp)+len(setup.gnmi))
	for _, e := range append(append([]endpoint(nil), setup.snmp...), setup.gnmi...) {
		devices = append(devices, e.name)
	}

	var t *target
	if o.profiling() {
		t, _, err = startInProcess(ctx, dir, setup)
	} else {
		t, err = startChild(ctx, o.Binary, dir, setup)
	}
	if err != nil {
		return err
	}
	stopped := false
	stopChild := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return t.stop(stopCtx)
	}
	defer func() { err = errors.Join(err, stopChild()) }()
	s, err := newSession(ctx, o, t, nil, nil, devices)
	if err != nil {
		return err
	}
	defer s.close()
	// The first poll or sync yields counters but no rates yet: warm up for
	// at least one interval.
	warm := max(o.Warmup, o.Interval+time.Second)
	rep.Load.Warmup = warm.String()
	if err := s.mon.watch(ctx, "warm-up", warm); err != nil {
		return err
	}
	s.startQueries(ctx)
	prof, err := startProfile(o)
	if err != nil {
		return err
	}
	s0, err := s.mon.snap(ctx)
	if err != nil {
		return errors.Join(err, prof.stop())
	}
	sim0 := simCPU()
	if err := s.mon.watch(ctx, "measure", o.Duration); err != nil {
		return errors.Join(err, prof.stop())
	}
	s1, err := s.mon.snap(ctx)
	sim1 := simCPU()
	if err = errors.Join(err, prof.stop()); err != nil {
		return err
	}
	s.stopQueries()
	st := step(s0, s1)
	st.SimulatorCPUSeconds = (sim1 - sim0).Seconds()
	st.finishCPU()
	rep.Steps = append(rep.Steps, st)
	if err := s.finish(ctx, rep, nil); err != nil {
		return err
	}
	rep.Notes = append(rep.Notes, simNote())
	if err := stopChild(); err != nil {
		return err
	}
	if o.PeerTelegraf == "" {
		return nil
	}
	nf := PeerRun{Name: "netfeat", Values: st.Observations, ValuesPerSec: st.ObsPerSec, Seconds: st.Seconds,
		CPUSeconds: st.CPUSeconds, PeakRSSBytes: rep.Memory.PeakRSSBytes}
	nf.finish(o.Interval)
	peer, err := telegrafRun(ctx, o, dir, tsetup, o.Progress)
	if err != nil {
		return fmt.Errorf("telegraf side-by-side: %w", err)
	}
	c := &Comparison{Netfeat: nf, Peer: *peer, Notes: []string{
		"values: netfeat counts the observations its normalizer received, Telegraf the field values it delivered to NATS; both from the same simulated devices and the same OIDs/paths",
		"netfeat also normalizes, derives rates, writes its WAL, keeps the hot tier and runs windows and inference; Telegraf forwards values",
		"the two ran one after the other, not at once, so neither took CPU from the other",
	}}
	if nf.CPUPerMillionValues > 0 {
		c.CPURatio = peer.CPUPerMillionValues / nf.CPUPerMillionValues
	}
	if nf.RSSPerSeries > 0 {
		c.RSSRatio = peer.RSSPerSeries / nf.RSSPerSeries
	}
	rep.Comparison = c
	return nil
}

// profile writes the profiles Options asks for: CPU from start to stop,
// the heap (after a GC) at stop.
type profile struct {
	o   Options
	cpu *os.File
}

func startProfile(o Options) (*profile, error) {
	p := &profile{o: o}
	if o.CPUProfile == "" {
		return p, nil
	}
	f, err := os.Create(o.CPUProfile)
	if err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	p.cpu = f
	return p, nil
}

// stop ends the profiles; calling it again does nothing.
func (p *profile) stop() error {
	if p == nil || p.o.CPUProfile == "" && p.o.HeapProfile == "" {
		return nil
	}
	var errs []error
	if p.cpu != nil {
		pprof.StopCPUProfile()
		errs = append(errs, p.cpu.Close())
		p.cpu = nil
	}
	if p.o.HeapProfile != "" {
		runtime.GC()
		f, err := os.Create(p.o.HeapProfile)
		if err == nil {
			err = errors.Join(pprof.WriteHeapProfile(f), f.Close())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("heap profile: %w", err))
		}
	}
	p.o.CPUProfile, p.o.HeapProfile = "", ""
	return errors.Join(errs...)
}

func writeFile(path, text string) error {
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}
