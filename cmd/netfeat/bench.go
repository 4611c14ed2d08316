package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/featurestore"
	"github.com/netfeat/netfeat/internal/bench"
	"github.com/netfeat/netfeat/internal/natsproc"
)

func init() { extraCommands = append(extraCommands, newBenchCmd) }

func newBenchCmd() *cobra.Command {
	o := bench.DefaultOptions()
	fo := bench.DefaultFleetOptions()
	var (
		inject, snmp, gnmi bool
		outsideSub         bool
		fleetRun, fleetKid bool
		noFailover         bool
		jsonOut            bool
		memBudget          string
		memLimit           string
		noProgress         bool
		keepDir            string
	)
	cmd := &cobra.Command{
		Use:   "bench (--inject | --events | --snmp | --gnmi | --fleet) [flags]",
		Short: "Load-test a real netfeat service and report throughput, latency, CPU and memory",
		Long: `Drive a real netfeat service through its real entry points and report what
users care about: sustained samples/s into the hot tier, every drop counter,
window close → decision latency at an outside NATS subscriber, query latency,
CPU seconds per million samples, peak RSS and bytes per hot sample.

Workloads (one of):
  --inject   raw observations fed to the service's normalizer at --rate obs/s
             (--ceiling: raise the rate by --ramp each step until it no longer
             keeps up). The service runs in this process; the load generator's
             CPU is measured and subtracted.
  --snmp     --devices simulated SNMP devices × --interfaces interfaces on
             loopback, served by a 'netfeat sim snmp' child process and
             polled every --interval by a 'netfeat serve' child
             (--sim-cpus, --service-cpus pin them apart).
  --gnmi     --devices simulated IOS-XR gNMI targets republishing every leaf
             every --interval, streamed by a 'netfeat serve' child.
  --events   the inject workload plus --event-rate link state changes per
             second: linkDown/linkUp SNMP traps from a simulated router and
             oper-status ON_CHANGE updates from a simulated gNMI target,
             alternating; reports trap sent / notification timestamp →
             decision at the subscriber, per path and together.
  --fleet    a 3-node nats-server cluster, a hub and --edges edges (role edge,
             every sample forwarded) at --samples-per-sec each behind links
             the bench can cut: edge CPU against a standalone twin of each
             edge run beside it (--baseline), bytes per sample, a cut of every link (--cut)
             and the catch-up, then every edge stream compared with its hub
             stream by message id (lost, duplicated); then the failover of
             two nodes of a site sharing --failover-targets SNMP targets at
             --failover-interval, one killed with SIGKILL. Needs nats-server
             (scripts/install-nats-server.sh, or --nats-server).

The decision subscriber runs in its own process (this binary again). With
--inject and --events the bench also sends floor probes through the same
hops with nothing of netfeat in them (NATS publish → subscriber; UDP →
relay → NATS → subscriber; UDP → subscriber) and reports the ratios.

--query-rate Q adds a query mix (point lookups on latest_bench, aggregates over
samples) on POST /v1/query while the load runs. --peer-telegraf PATH (snmp,
gnmi) then runs Telegraf's snmp/gnmi input and NATS output against the same
simulated devices and reports the CPU and memory ratios.

All traffic stays on loopback. A readable summary goes to stdout with a
progress line on stderr; --json prints the report as JSON instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if outsideSub {
				return bench.RunOutsideSubscriber(cmd.Context(), os.Getenv(bench.OutsideSubscriberEnv), cmd.InOrStdin(), cmd.OutOrStdout())
			}
			if fleetKid {
				return bench.RunFleetChild(cmd.Context(), os.Getenv(bench.FleetChildEnv), cmd.InOrStdin(), cmd.OutOrStdout())
			}
			if fleetRun {
				if inject || snmp || gnmi {
					return fmt.Errorf("--fleet is a workload of its own: drop --inject, --snmp and --gnmi")
				}
				return runFleetBench(cmd, fo, noFailover, jsonOut, noProgress, keepDir)
			}
			if o.Events && !snmp && !gnmi {
				inject = true
			}
			switch {
			case inject && !snmp && !gnmi:
				o.Workload = bench.WorkloadInject
			case snmp && !inject && !gnmi:
				o.Workload = bench.WorkloadSNMP
			case gnmi && !inject && !snmp:
				o.Workload = bench.WorkloadGNMI
			default:
				return fmt.Errorf("choose one workload: --inject, --snmp or --gnmi")
			}
			b, err := featurestore.ParseByteSize(memBudget)
			if err != nil {
				return fmt.Errorf("--memory-budget: %w", err)
			}
			o.MemoryBudget = int64(b)
			if memLimit != "" {
				l, err := featurestore.ParseByteSize(memLimit)
				if err != nil {
					return fmt.Errorf("--memory-limit: %w", err)
				}
				o.MemoryLimit = int64(l)
			}
			if o.Workload != bench.WorkloadInject {
				if o.Binary, err = os.Executable(); err != nil {
					return fmt.Errorf("find the netfeat binary to run as a child: %w", err)
				}
				if !cmd.Flags().Changed("hop") {
					o.Hop = o.Interval
				}
			}
			o.Dir = keepDir
			// The decision subscriber runs in its own process: this binary.
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the netfeat binary to run the outside subscriber: %w", err)
			}
			o.OutsideSubscriber = []string{exe, "bench", "--outside-subscriber"}
			// openconfig's packages (gNMI simulators) log through glog: to
			// stderr, not to files under $TMPDIR.
			_ = flag.Set("logtostderr", "true")
			stderr := cmd.ErrOrStderr()
			var pl *progressLine
			if !noProgress {
				pl = &progressLine{w: stderr, tty: isTerminal(stderr)}
				o.Progress = pl.show
			}
			rep, err := bench.Run(cmd.Context(), o)
			if pl != nil {
				pl.done()
			}
			if rep != nil && (err == nil || len(rep.Steps) > 0) {
				out := cmd.OutOrStdout()
				var werr error
				if jsonOut {
					werr = rep.WriteJSON(out)
				} else {
					werr = rep.WriteText(out)
				}
				if werr != nil {
					return werr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&inject, "inject", false, "workload: inject raw observations into the service's normalizer")
	f.BoolVar(&snmp, "snmp", false, "workload: poll simulated SNMP devices")
	f.BoolVar(&gnmi, "gnmi", false, "workload: stream from simulated gNMI targets")
	f.DurationVar(&o.Duration, "duration", o.Duration, "measured time (per step with --ceiling)")
	f.DurationVar(&o.Warmup, "warmup", o.Warmup, "load before measuring (snmp, gnmi: at least one interval)")
	f.IntVar(&o.Devices, "devices", o.Devices, "injected devices, SNMP devices or gNMI targets")
	f.IntVar(&o.Interfaces, "interfaces", o.Interfaces, "interfaces per device (inject: 8 counters each; snmp: IF-MIB rows)")
	f.Float64Var(&o.Rate, "rate", o.Rate, "inject: observations per second (the first step's with --ceiling)")
	f.BoolVar(&o.Ceiling, "ceiling", false, "inject: raise the rate each step until the service no longer keeps up (95% of offered)")
	f.Float64Var(&o.RampFactor, "ramp", o.RampFactor, "inject --ceiling: rate factor between steps")
	f.IntVar(&o.MaxSteps, "max-steps", o.MaxSteps, "inject --ceiling: most steps")
	f.IntVar(&o.Injectors, "injectors", o.Injectors, "inject: concurrent injecting goroutines (devices split between them)")
	f.BoolVar(&o.Events, "events", false, "inject: add link state changes (SNMP traps and gNMI ON_CHANGE updates, alternating) and report event → decision at the subscriber")
	f.Float64Var(&o.EventRate, "event-rate", o.EventRate, "events: link changes per second, each on the next interface (also the floor probes' rate)")
	f.BoolVar(&outsideSub, "outside-subscriber", false, "run as the bench's outside decision subscriber (started by the bench itself)")
	_ = f.MarkHidden("outside-subscriber")
	f.DurationVar(&o.Interval, "interval", o.Interval, "snmp: polling interval; gnmi: update interval")
	f.DurationVar(&o.Hop, "hop", o.Hop, "hop (= window) of the bench feature view; each window close of each interface yields a decision (snmp, gnmi: default --interval)")
	f.StringVar(&memBudget, "memory-budget", "1GiB", "the store's hot-tier memory budget")
	f.StringVar(&memLimit, "memory-limit", "", "the service's memory_limit (Go soft limit and hot-tier shedding, docs/configuration.md); empty: none")
	f.Float64Var(&o.QueryRate, "query-rate", 0, "queries per second of the query mix during the load (0: none)")
	f.IntVar(&o.QueryWorkers, "query-workers", o.QueryWorkers, "concurrent query connections")
	f.Float64Var(&o.PointShare, "point-share", o.PointShare, "share of point lookups in the query mix (the rest are aggregates over samples)")
	f.StringVar(&o.PeerTelegraf, "peer-telegraf", "", "snmp, gnmi: a Telegraf binary to run against the same simulated devices, side by side")
	f.StringVar(&o.ServiceCPUs, "service-cpus", "", "snmp, gnmi: run the 'netfeat serve' child under taskset -c with this CPU list (e.g. 0)")
	f.StringVar(&o.SimCPUs, "sim-cpus", "", "snmp: run the 'netfeat sim snmp' simulator process under taskset -c with this CPU list (e.g. 1)")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured phase to this file (snmp, gnmi: the service then runs in the bench process)")
	f.StringVar(&o.HeapProfile, "memprofile", "", "write a heap profile at the end of the measured phase to this file (snmp, gnmi: the service then runs in the bench process)")
	f.BoolVar(&fleetRun, "fleet", false, "workload: a hub and edges on a real nats-server cluster (forwarding, a cut, catch-up, failover)")
	f.BoolVar(&fleetKid, "fleet-child", false, "run as one of the fleet bench's edges (started by the bench itself)")
	_ = f.MarkHidden("fleet-child")
	f.IntVar(&fo.Edges, "edges", fo.Edges, "fleet: edges")
	f.Float64Var(&fo.SamplesPerSec, "samples-per-sec", fo.SamplesPerSec, "fleet: raw samples per second per edge")
	f.StringVar(&fo.Ingest, "edge-ingest", fo.Ingest, "fleet: how samples enter an edge: inject (--samples-per-sec into the normalizer) or snmp (polling --edge-devices simulated routers every --interval)")
	f.IntVar(&fo.Devices, "edge-devices", fo.Devices, "fleet: injected or simulated SNMP devices per edge")
	f.IntVar(&fo.Interfaces, "edge-interfaces", fo.Interfaces, "fleet: interfaces per device (inject: 8 counters each; snmp: IF-MIB rows)")
	f.DurationVar(&fo.Hop, "edge-hop", fo.Hop, "fleet: window and hop of the edges' view")
	f.BoolVar(&fo.Baseline, "baseline", fo.Baseline, "fleet: run a standalone twin beside each edge (same service and load, no fleet) for the ingest CPU")
	f.DurationVar(&fo.Cut, "cut", fo.Cut, "fleet: how long every link is cut (0: no cut)")
	f.DurationVar(&fo.CatchUpMax, "catch-up-max", fo.CatchUpMax, "fleet: longest wait for the hub to catch up after the cut")
	f.BoolVar(&noFailover, "no-failover", false, "fleet: skip the failover phase")
	f.IntVar(&fo.FailoverOptions.Targets, "failover-targets", fo.FailoverOptions.Targets, "fleet: SNMP targets the two nodes of the failover phase share")
	f.DurationVar(&fo.FailoverOptions.Interval, "failover-interval", fo.FailoverOptions.Interval, "fleet: SNMP polling interval of the failover phase")
	f.StringVar(&fo.EdgeCPUs, "edge-cpus", "", "fleet: run the edges (and the baseline) under taskset -c with this CPU list")
	f.StringVar(&fo.HubCPUs, "hub-cpus", "", "fleet: run the hub and its nats-server cluster under taskset -c with this CPU list")
	f.StringVar(&fo.NATSServer, "nats-server", "", "fleet: nats-server binary (default: $NETFEAT_NATS_SERVER, bin/nats-server, $PATH)")
	f.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	f.BoolVar(&noProgress, "no-progress", false, "no progress line on stderr")
	f.StringVar(&keepDir, "dir", "", "scratch directory to keep (data, configuration, logs); default: a temporary one, removed")
	return cmd
}

// runFleetBench runs `netfeat bench --fleet`. --duration and --warmup,
// when given, set its live phase and warm-ups.
func runFleetBench(cmd *cobra.Command, fo bench.FleetOptions, noFailover, jsonOut, noProgress bool, dir string) error {
	var err error
	if fo.Binary, err = os.Executable(); err != nil {
		return fmt.Errorf("find the netfeat binary to run as the hub and the edges: %w", err)
	}
	if fo.NATSServer == "" {
		if fo.NATSServer, err = natsproc.FindServer(); err != nil {
			return err
		}
	}
	f := cmd.Flags()
	if f.Changed("duration") {
		fo.Live, _ = f.GetDuration("duration")
	}
	if f.Changed("warmup") {
		fo.Warmup, _ = f.GetDuration("warmup")
	}
	if f.Changed("interval") {
		fo.Interval, _ = f.GetDuration("interval")
	}
	fo.Failover = !noFailover
	fo.CPUProfile, _ = f.GetString("cpuprofile")
	fo.Dir = dir
	stderr := cmd.ErrOrStderr()
	if !noProgress {
		fo.Progress = func(line string) { fmt.Fprintf(stderr, "%s  %s\n", time.Now().Format("15:04:05"), line) }
	}
	rep, err := bench.RunFleet(cmd.Context(), fo)
	if rep != nil {
		out := cmd.OutOrStdout()
		var werr error
		if jsonOut {
			werr = rep.WriteJSON(out)
		} else {
			werr = rep.WriteText(out)
		}
		err = errors.Join(err, werr)
	}
	return err
}

// progressLine prints the bench's progress: one line rewritten in place on
// a terminal, one line per report otherwise.
type progressLine struct {
	mu   sync.Mutex
	w    io.Writer
	tty  bool
	last int
}

func (p *progressLine) show(pr bench.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintf("%-28s %4.0fs/%-4.0fs  obs %9s/s  samples %9s/s  decisions %7d  queries %5d  drops %.0f  cpu %4.0f%%  rss %5d MiB",
		pr.Phase, pr.Elapsed.Seconds(), pr.Total.Seconds(), short(pr.ObsPerSec), short(pr.SamplesPerSec),
		pr.Decisions, pr.Queries, pr.Drops, pr.CPUPercent, pr.RSS>>20)
	if p.tty {
		pad := max(p.last-len(line), 0)
		fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", pad))
		p.last = len(line)
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *progressLine) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.last > 0 {
		fmt.Fprintln(p.w)
	}
}

// short renders a rate as 950, 12.3k or 1.25M.
func short(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
