package bench

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Workload names what drives the service.
type Workload string

// Workloads.
const (
	// WorkloadInject feeds raw observations to the service's normalizer.
	WorkloadInject Workload = "inject"
	// WorkloadSNMP polls simulated SNMP devices.
	WorkloadSNMP Workload = "snmp"
	// WorkloadGNMI streams from simulated gNMI targets.
	WorkloadGNMI Workload = "gnmi"
)

// Options configure a bench run. DefaultOptions gives every field a value.
type Options struct {
	// Workload is inject, snmp or gnmi.
	Workload Workload
	// Duration is the measured time (per step when finding the ceiling).
	Duration time.Duration
	// Warmup runs the load before measuring: counters get their first
	// values, rates start, series are interned, windows start closing.
	Warmup time.Duration
	// Dir is a scratch directory for data and configuration; empty means a
	// new temporary directory, removed afterwards.
	Dir string
	// Binary is the netfeat executable the snmp and gnmi workloads start as
	// `netfeat serve` (a child process, so its CPU and memory are its own).
	Binary string

	// Devices and Interfaces size the load: injected devices × interfaces
	// (8 counters each), or simulated SNMP devices × interfaces. The gnmi
	// workload runs Devices targets, each with the simulated IOS-XR's
	// interfaces.
	Devices    int
	Interfaces int

	// Rate is the injected observations per second (inject). With Ceiling
	// it is the first step's rate.
	Rate float64
	// Ceiling raises the injected rate by RampFactor every step until the
	// service no longer keeps up (achieved < 95% of offered) or MaxSteps
	// is reached.
	Ceiling    bool
	RampFactor float64
	MaxSteps   int
	// Injectors is the number of goroutines injecting, each with its share
	// of the devices and of the rate, as concurrent collectors would. With
	// more than one, event times of concurrent batches interleave, so the
	// view allows 100ms of lateness.
	Injectors int

	// Events (inject) adds link state changes on top of the injected
	// load: linkDown/linkUp SNMP traps from a simulated router (UDP on
	// loopback to the service's trap listener) and oper-status ON_CHANGE
	// updates from a simulated gNMI target, alternating, EventRate per
	// second, each on another interface; it reports event → decision at
	// the outside subscriber and the floor of the same hops.
	Events    bool
	EventRate float64

	// OutsideSubscriber, when set, is the command (argv) that runs the
	// decision subscriber in its own process (RunOutsideSubscriber, told
	// the NATS URL by OutsideSubscriberEnv). Empty: the subscriber runs in
	// the bench process on its own connection.
	OutsideSubscriber []string

	// Interval is the SNMP polling interval or the gNMI update interval.
	Interval time.Duration
	// Hop is the hop (and window) of the bench's feature view; every
	// window close of every entity produces one decision.
	Hop time.Duration
	// MemoryBudget is the store's hot-tier memory budget in bytes.
	MemoryBudget int64
	// MemoryLimit is the service's memory_limit in bytes (0: none).
	MemoryLimit int64

	// QueryRate, when positive, runs the query mix at this many queries
	// per second (over QueryWorkers connections) while the load runs.
	QueryRate    float64
	QueryWorkers int
	// PointShare is the fraction of queries that are point lookups; the
	// rest are aggregates over samples.
	PointShare float64

	// PeerTelegraf, when set, is a Telegraf binary to run against the same
	// simulated devices (snmp and gnmi workloads) for a side-by-side
	// comparison.
	PeerTelegraf string

	// ServiceCPUs and SimCPUs, when set, pin the `netfeat serve` child and
	// the SNMP simulator process to CPUs (a `taskset -c` list such as "0"
	// or "2-3"), so that the simulator does not take the service's CPU.
	ServiceCPUs string
	SimCPUs     string

	// CPUProfile and HeapProfile, when set, are files for a CPU profile of
	// the measured phase and a heap profile (after a GC) at its end. The
	// profiles are of the bench process, so with either set the snmp and
	// gnmi workloads run the service in it instead of as a child (the
	// simulators stay in their own process).
	CPUProfile  string
	HeapProfile string

	// Progress, when set, is called about once a second while the run goes.
	Progress func(Progress)
	// Log receives the bench's own log lines; nil discards.
	Log *slog.Logger
}

// DefaultOptions returns the options of a short inject run.
func DefaultOptions() Options {
	return Options{
		Workload:     WorkloadInject,
		Duration:     20 * time.Second,
		Warmup:       3 * time.Second,
		Devices:      100,
		Interfaces:   10,
		Rate:         100_000,
		RampFactor:   1.5,
		MaxSteps:     8,
		Injectors:    1,
		Interval:     10 * time.Second,
		Hop:          time.Second,
		MemoryBudget: 1 << 30,
		EventRate:    20,
		QueryWorkers: 2,
		PointShare:   0.8,
	}
}

// Validate returns every problem with the options.
func (o *Options) Validate() error {
	var errs []error
	switch o.Workload {
	case WorkloadInject:
		if o.Rate <= 0 {
			errs = append(errs, fmt.Errorf("rate %v: must be positive", o.Rate))
		}
		if o.Ceiling && (o.RampFactor <= 1 || o.MaxSteps < 1) {
			errs = append(errs, fmt.Errorf("ceiling search needs a ramp factor > 1 (got %v) and at least one step (got %d)", o.RampFactor, o.MaxSteps))
		}
		if o.Injectors < 1 || o.Injectors > o.Devices {
			errs = append(errs, fmt.Errorf("injectors %d: want between 1 and the number of devices (%d)", o.Injectors, o.Devices))
		}
		if o.PeerTelegraf != "" {
			errs = append(errs, errors.New("the Telegraf side-by-side runs with the snmp or gnmi workload; Telegraf has no injection entry point"))
		}
		if o.Events && (o.EventRate <= 0 || o.EventRate > 1000) {
			errs = append(errs, fmt.Errorf("event rate %v: want between 0 and 1000 link changes per second", o.EventRate))
		}
		if o.Events && o.Ceiling {
			errs = append(errs, errors.New("events run at a fixed background rate, not with the ceiling search"))
		}
	case WorkloadSNMP, WorkloadGNMI:
		if o.Binary == "" {
			errs = append(errs, fmt.Errorf("workload %s: the netfeat binary to run as a child process is required", o.Workload))
		}
		if o.Interval <= 0 {
			errs = append(errs, fmt.Errorf("interval %v: must be positive", o.Interval))
		}
		if o.Ceiling {
			errs = append(errs, fmt.Errorf("the ceiling search applies to the inject workload, not %s", o.Workload))
		}
		if o.SimCPUs != "" && o.Workload != WorkloadSNMP {
			errs = append(errs, fmt.Errorf("simulator CPUs apply to the snmp workload (the %s simulators run in the bench process)", o.Workload))
		}
		if o.Events {
			errs = append(errs, fmt.Errorf("events run on top of the inject workload, not %s", o.Workload))
		}
		if o.ServiceCPUs != "" && o.profiling() {
			errs = append(errs, errors.New("service CPUs pin the serve child; with a profile the service runs in the bench process (pin the bench with taskset instead)"))
		}
	default:
		errs = append(errs, fmt.Errorf("workload %q: want inject, snmp or gnmi", o.Workload))
	}
	if o.Workload == WorkloadInject && (o.ServiceCPUs != "" || o.SimCPUs != "") {
		errs = append(errs, errors.New("the inject workload runs the service in the bench process: pin the bench with taskset instead of service or simulator CPUs"))
	}
	for _, c := range []struct{ name, v string }{{"service CPUs", o.ServiceCPUs}, {"simulator CPUs", o.SimCPUs}} {
		if c.v != "" && strings.Trim(c.v, "0123456789,-") != "" {
			errs = append(errs, fmt.Errorf("%s %q: want a CPU list such as 0 or 1,3 or 2-3", c.name, c.v))
		}
	}
	if o.Duration <= 0 {
		errs = append(errs, fmt.Errorf("duration %v: must be positive", o.Duration))
	}
	if o.Warmup < 0 {
		errs = append(errs, fmt.Errorf("warmup %v: must not be negative", o.Warmup))
	}
	if o.Devices < 1 || o.Interfaces < 1 {
		errs = append(errs, fmt.Errorf("devices %d, interfaces %d: both must be at least 1", o.Devices, o.Interfaces))
	}
	if o.Hop < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("hop %v: must be at least 10ms", o.Hop))
	}
	if o.MemoryLimit != 0 && o.MemoryLimit < 64<<20 {
		errs = append(errs, fmt.Errorf("memory limit %d: must be at least 64MiB", o.MemoryLimit))
	}
	if o.MemoryBudget < 1<<20 {
		errs = append(errs, fmt.Errorf("memory budget %d: must be at least 1MiB", o.MemoryBudget))
	}
	if o.QueryRate < 0 || (o.QueryRate > 0 && o.QueryWorkers < 1) {
		errs = append(errs, fmt.Errorf("query rate %v with %d workers: want a rate ≥ 0 and at least one worker", o.QueryRate, o.QueryWorkers))
	}
	if o.PointShare < 0 || o.PointShare > 1 {
		errs = append(errs, fmt.Errorf("point share %v: must be between 0 and 1", o.PointShare))
	}
	return errors.Join(errs...)
}

// profiling reports whether the run writes a profile.
func (o Options) profiling() bool { return o.CPUProfile != "" || o.HeapProfile != "" }

// Progress is what a running bench reports about once a second.
type Progress struct {
	// Phase is "warm-up", "measure", "measure step 3/8", "telegraf", ...
	Phase string
	// Elapsed and Total are the phase's time so far and its length.
	Elapsed, Total time.Duration
	// ObsPerSec and SamplesPerSec are the rates over the last second:
	// observations into the normalizer (Telegraf: values delivered to
	// NATS) and samples into the hot tier.
	ObsPerSec, SamplesPerSec float64
	// Decisions and Queries received/answered so far in the phase.
	Decisions, Queries int
	// Drops is the sum of every drop counter (see Metrics.Drops).
	Drops float64
	// CPUPercent is the service's CPU over the last second (100 = one core).
	CPUPercent float64
	// RSS is the service's resident set.
	RSS int64
}
