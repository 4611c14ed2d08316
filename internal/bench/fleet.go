package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netfeat/netfeat/fleet"
	"github.com/netfeat/netfeat/internal/natsproc"
	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/normalize"
	"github.com/netfeat/netfeat/schema"
)

// FleetOptions configure RunFleet. DefaultFleetOptions gives every field a
// value.
type FleetOptions struct {
	// Binary is the netfeat executable: the hub runs as `netfeat serve`,
	// each edge as `netfeat bench --fleet-child` (the service in the
	// child's process with its load generator, whose CPU is subtracted).
	Binary string
	// NATSServer is the nats-server executable of the hub cluster.
	NATSServer string
	// Dir is a scratch directory; empty means a temporary one, removed.
	Dir string

	// Edges is the number of edges (sites edge-1, edge-2, ...), each at
	// SamplesPerSec raw samples per second: Devices × Interfaces injected
	// interfaces with 8 counters each (every counter sample also yields
	// its rate: two samples per observation).
	Edges         int
	SamplesPerSec float64
	Devices       int
	Interfaces    int
	// Hop is the window (and hop) of the edges' view: one window and one
	// decision per interface and hop.
	Hop time.Duration
	// Ingest is how samples enter an edge: IngestInject (observations
	// handed to the normalizer at SamplesPerSec, the cheapest ingest
	// there is) or IngestSNMP (each edge polls Devices simulated IF-MIB
	// routers of Interfaces interfaces every Interval, served by a `netfeat
	// sim snmp` process of its own; SamplesPerSec is then what that
	// yields).
	Ingest   string
	Interval time.Duration

	// Baseline runs, beside each edge, a standalone twin (the same
	// service and load, no fleet) whose CPU per sample over the same live
	// phase is the edge's ingest CPU: measured at the same moment, on the
	// same CPUs, both see the same noise (other work, steal, frequency).
	Baseline bool
	// Warmup runs each phase's load before measuring.
	Warmup time.Duration
	// Live is the measured time with the links up.
	Live time.Duration
	// Cut is how long every edge's link to the hub is cut while the load
	// goes on; 0 skips the cut.
	Cut time.Duration
	// CatchUpMax bounds the wait for the hub to catch up after the cut.
	CatchUpMax time.Duration

	// Failover runs the failover phase (RunFailover) after the others.
	Failover        bool
	FailoverOptions FailoverOptions

	// EdgeCPUs and HubCPUs, when set, pin the edges (the baseline's
	// too) and the hub with its nats-server cluster to CPUs (taskset -c
	// lists): the edges' CPU per sample is then measured with the same
	// neighbours in the baseline and the fleet phases.
	EdgeCPUs, HubCPUs string

	// CPUProfile, when set, is a file for a CPU profile of the first
	// edge's process from its start until the load stops.
	CPUProfile string

	// Progress, when set, gets a line about every few seconds.
	Progress func(string)
	// Log receives the bench's own log lines; nil discards.
	Log *slog.Logger
}

// How samples enter the fleet bench's edges.
const (
	IngestInject = "inject"
	IngestSNMP   = "snmp"
)

// DefaultFleetOptions returns the load: two edges at 50,000
// samples/s each into one hub, a 5-minute cut.
func DefaultFleetOptions() FleetOptions {
	return FleetOptions{
		Edges: 2, SamplesPerSec: 50_000, Devices: 100, Interfaces: 32, Hop: 10 * time.Second,
		Ingest: IngestInject, Interval: 10 * time.Second,
		Baseline: true, Warmup: 15 * time.Second, Live: 30 * time.Second,
		Cut: 5 * time.Minute, CatchUpMax: 5 * time.Minute,
		Failover: true, FailoverOptions: FailoverOptions{Targets: 200, Interval: 10 * time.Second},
	}
}

// Validate returns every problem with the options.
func (o *FleetOptions) Validate() error {
	var errs []error
	if o.Binary == "" || o.NATSServer == "" {
		errs = append(errs, errors.New("the netfeat and nats-server binaries are required"))
	}
	if o.Ingest != IngestInject && o.Ingest != IngestSNMP {
		errs = append(errs, fmt.Errorf("ingest %q: want inject or snmp", o.Ingest))
	}
	if o.Ingest == IngestSNMP && o.Interval <= 0 {
		errs = append(errs, fmt.Errorf("interval %v: must be positive", o.Interval))
	}
	if o.Edges < 1 || o.Edges > 16 {
		errs = append(errs, fmt.Errorf("edges %d: must be 1–16", o.Edges))
	}
	if o.SamplesPerSec <= 0 || o.Devices < 1 || o.Interfaces < 1 {
		errs = append(errs, fmt.Errorf("rate %v, devices %d, interfaces %d: must be positive", o.SamplesPerSec, o.Devices, o.Interfaces))
	}
	if o.Hop <= 0 || o.Live <= 0 || o.Warmup < 0 || o.Cut < 0 || o.CatchUpMax <= 0 {
		errs = append(errs, errors.New("hop, live and catch-up-max must be positive; warmup, baseline and cut not negative"))
	}
	return errors.Join(errs...)
}

// FleetReport is what `netfeat bench --fleet` reports. The headline
// figures are at the top, as the issue names them.
type FleetReport struct {
	// Lost counts what an edge stored in its local streams and the hub's
	// streams do not hold after the run: raw samples one by one, windows,
	// decisions and action transitions by message. Duplicated counts what
	// the hub's streams hold more than once (by message id), the same way.
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	// BytesPerSample is the payload of the samples streams per raw sample
	// (Arrow IPC + compression), measured live; WireBytesPerSample is every
	// byte that crossed the edges' links towards the hub (windows,
	// decisions, NATS and JetStream protocol included) per raw sample.
	BytesPerSample     float64 `json:"bytes_per_sample"`
	WireBytesPerSample float64 `json:"wire_bytes_per_sample"`
	// CatchUpRatio is the lowest, over the edges, of the samples rate at
	// which the hub received while catching up after the cut over the
	// live rate.
	CatchUpRatio float64 `json:"catch_up_ratio"`
	// ForwardingCPUShare is the highest, over the edges, of the extra CPU
	// per sample of an edge over the same service standalone, as a share
	// of the standalone's (the ingest CPU). Absent without a baseline.
	ForwardingCPUShare *float64 `json:"forwarding_cpu_share,omitempty"`
	// HubKeptUp says whether the hub's consumers took, over the live
	// phase, at least 95% of the messages the edges stored meanwhile, or
	// ended it less than one second of the edges' messages behind.
	HubKeptUp bool `json:"hub_kept_up"`
	// FailoverMaxGapS is the failover phase's longest gap in any target's
	// polls, in seconds (absent when the phase did not run).
	FailoverMaxGapS *float64 `json:"failover_max_gap_s,omitempty"`

	Machine  Machine           `json:"machine"`
	Load     FleetLoad         `json:"load"`
	Edges    []FleetEdgeResult `json:"edges"`
	Hub      FleetHubResult    `json:"hub"`
	Failover *FailoverReport   `json:"failover,omitempty"`
	Notes    []string          `json:"notes,omitempty"`
}

// FleetLoad records the load the bench offered.
type FleetLoad struct {
	Edges         int     `json:"edges"`
	SamplesPerSec float64 `json:"samples_per_sec_per_edge"`
	Devices       int     `json:"devices_per_edge"`
	Interfaces    int     `json:"interfaces_per_device"`
	Hop           string  `json:"hop"`
	Ingest        string  `json:"ingest"`
	Interval      string  `json:"interval,omitempty"`
	Baseline      bool    `json:"baseline"`
	Warmup        string  `json:"warmup"`
	Live          string  `json:"live"`
	Cut           string  `json:"cut"`
	EdgeCPUs      string  `json:"edge_cpus,omitempty"`
	HubCPUs       string  `json:"hub_cpus,omitempty"`
}

// FleetEdgeResult is one edge's figures.
type FleetEdgeResult struct {
	Site string `json:"site"`
	// Live phase.
	SamplesPerSec          float64 `json:"samples_per_sec"`
	ForwardedPerSec        float64 `json:"forwarded_samples_per_sec"`
	BytesPerSample         float64 `json:"bytes_per_sample"`
	WireBytesPerSample     float64 `json:"wire_bytes_per_sample"`
	SamplesPerMessage      float64 `json:"samples_per_message"`
	CPUNsPerSample         float64 `json:"cpu_ns_per_sample"`
	BaselineCPUNsPerSample float64 `json:"baseline_cpu_ns_per_sample,omitempty"`
	ForwardingCPUShare     float64 `json:"forwarding_cpu_share,omitempty"`
	PeakRSS                int64   `json:"peak_rss_bytes"`
	// Cut and catch-up.
	CutSamples     int64       `json:"cut_samples"`      // samples stored while the link was cut
	BacklogSamples int64       `json:"backlog_samples"`  // stored before the restore, not at the hub then
	CatchUpSeconds float64     `json:"catch_up_seconds"` // restore → the last of the backlog at the hub
	CatchUpPerSec  float64     `json:"catch_up_per_sec"` // samples the hub received per second meanwhile
	CatchUpRatio   float64     `json:"catch_up_ratio"`   // CatchUpPerSec / ForwardedPerSec
	ForwardDropped float64     `json:"forward_dropped"`  // netfeat_fleet_forward_dropped_total
	StreamDropped  float64     `json:"stream_dropped"`   // netfeat_fleet_edge_dropped_messages_total
	InjectErrors   int64       `json:"inject_errors"`    // observations the normalizer refused
	Kinds          []KindCount `json:"kinds"`
}

// KindCount compares one edge stream with its hub stream, by message id.
type KindCount struct {
	Kind         string `json:"kind"`
	EdgeMessages int64  `json:"edge_messages"`
	HubMessages  int64  `json:"hub_messages"`
	EdgeSamples  int64  `json:"edge_samples,omitempty"`
	HubSamples   int64  `json:"hub_samples,omitempty"`
	// Messages are stream messages; Items are windows, decisions or
	// action transitions by item id (a batch holds several).
	Items    int64 `json:"edge_items,omitempty"`
	HubItems int64 `json:"hub_items,omitempty"`
	// Lost and Duplicated are items (samples for the samples stream).
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	// HubOnly counts ids the hub stored, before the edge stream was read,
	// that the edge stream does not hold (an edge stream limit removed
	// them: the edge says so in its metrics).
	HubOnly int64 `json:"hub_only"`
}

// FleetHubResult is the hub's figures.
type FleetHubResult struct {
	CPUSeconds         float64 `json:"cpu_seconds"`           // the hub process over the live phase
	MessagesPerSec     float64 `json:"messages_per_sec"`      // messages the hub's sink took, live phase
	EdgeMessagesPerSec float64 `json:"edge_messages_per_sec"` // messages the edges stored, live phase
	PeakRSS            int64   `json:"peak_rss_bytes"`
	MaxPending         int64   `json:"max_pending_messages"` // largest consumer backlog seen in the live phase
	EndPending         int64   `json:"end_pending_messages"` // at the end of the live phase
	Duplicates         float64 `json:"sink_duplicates"`      // netfeat_fleet_hub_duplicates_total: repeats the tables dropped
	Corrupt            float64 `json:"corrupt"`
	SinkErrors         float64 `json:"sink_errors"`
	SourceRestarts     float64 `json:"source_restarts"`
}

// fleetEdge is one running edge child.
type fleetEdge struct {
	site string
	link *natsproc.Link
	proc *child
}

// child is a `netfeat bench --fleet-child` process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	logs   string
	exited chan struct{}
	first  childStatus

	mu   sync.Mutex
	last childStatus
}

// startFleetChild runs a fleet child with settings and waits for its first
// status line (the service runs).
func startFleetChild(ctx context.Context, bin, cpus string, s childSettings) (*child, error) {
	js, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	c := &child{logs: filepath.Join(filepath.Dir(s.Config), "child.log"), exited: make(chan struct{})}
	lf, err := os.Create(c.logs)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "bench", "--fleet-child")
	if cpus != "" {
		cmd = exec.Command("taskset", "-c", cpus, bin, "bench", "--fleet-child")
	}
	cmd.Env = append(os.Environ(), FleetChildEnv+"="+string(js))
	cmd.Stderr = lf
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		lf.Close()
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start fleet child: %w", err)
	}
	c.cmd = cmd
	first := make(chan childStatus, 1)
	go func() {
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			var st childStatus
			if json.Unmarshal(sc.Bytes(), &st) != nil {
				continue
			}
			if n == 0 {
				first <- st
			}
			n++
			c.mu.Lock()
			c.last = st
			c.mu.Unlock()
		}
		_ = cmd.Wait()
		lf.Close()
		close(c.exited)
	}()
	select {
	case c.first = <-first:
		return c, nil
	case <-c.exited:
		return nil, fmt.Errorf("fleet child exited at start%s%s", logTail(c.logs), logTail(filepath.Join(filepath.Dir(s.Config), "netfeat.log")))
	case <-time.After(90 * time.Second):
		c.kill()
		return nil, fmt.Errorf("fleet child not running after 90 s%s", logTail(c.logs))
	case <-ctx.Done():
		c.kill()
		return nil, ctx.Err()
	}
}

func (c *child) status() childStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// pause stops the child's injection; its service runs on.
func (c *child) pause() { _, _ = io.WriteString(c.stdin, "pause\n") }

// stop closes the child's stdin (it stops its service and exits) and
// waits, killing it after timeout.
func (c *child) stop(timeout time.Duration) error {
	c.stdin.Close()
	select {
	case <-c.exited:
		return nil
	case <-time.After(timeout):
		c.kill()
		return fmt.Errorf("fleet child did not stop within %v; killed", timeout)
	}
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.exited
}

// serviceCPU returns the child's CPU less its load generator's.
func (c *child) serviceCPU() (time.Duration, int64, error) {
	p, err := ReadProc(c.cmd.Process.Pid)
	if err != nil {
		return 0, 0, err
	}
	obs := c.status().Observations
	gen := time.Duration(c.first.GenNsPerObs * float64(obs))
	return p.CPU - gen, obs, nil
}

// RunFleet runs the fleet bench: optional standalone baseline, then a
// 3-node nats-server cluster, a hub (`netfeat serve`, role hub) and
// o.Edges edges (role edge, every sample forwarded) behind Links; a live
// phase, a cut of every link, the catch-up; then it reads every edge
// stream and every hub stream and compares them by message id. With
// o.Failover it then runs RunFailover.
func RunFleet(ctx context.Context, o FleetOptions) (rep *FleetReport, err error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			o.Progress(fmt.Sprintf(format, args...))
		}
	}
	dir := o.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "netfeat-bench-fleet-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	rep = &FleetReport{Machine: machine(), Load: FleetLoad{
		Edges: o.Edges, SamplesPerSec: o.SamplesPerSec, Devices: o.Devices, Interfaces: o.Interfaces,
		Hop: o.Hop.String(), Baseline: o.Baseline, Warmup: o.Warmup.String(), Live: o.Live.String(), Cut: o.Cut.String(),
		EdgeCPUs: o.EdgeCPUs, HubCPUs: o.HubCPUs, Ingest: o.Ingest,
	}}
	if o.Ingest == IngestSNMP {
		rep.Load.Interval = o.Interval.String()
	}
	sites := make([]string, o.Edges)
	for i := range sites {
		sites[i] = fmt.Sprintf("edge-%d", i+1)
		rep.Edges = append(rep.Edges, FleetEdgeResult{Site: sites[i]})
	}
	obsRate := o.SamplesPerSec / 2 // every counter observation also yields its rate
	// With SNMP ingest every edge polls simulators of its own, for the
	// baseline and the fleet alike.
	sims := make([][]endpoint, len(sites))
	var simProcs []*snmpSims
	// stopSims stops the simulators: at the end of the load (the edges'
	// polls then fail and their streams stop growing) or of the run.
	stopSims := func() error {
		var errs []error
		for _, sim := range simProcs {
			sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			errs = append(errs, sim.stop(sctx))
			cancel()
		}
		simProcs = nil
		return errors.Join(errs...)
	}
	defer func() { err = errors.Join(err, stopSims()) }()
	if o.Ingest == IngestSNMP {
		obsRate = 0
		n, err := normalize.New(normalize.Config{}, schema.SampleAppenderFunc(func(context.Context, []schema.Sample) error { return nil }), nil, nil)
		if err != nil {
			return rep, err
		}
		_, scalars, columns := n.SNMPPlan("", snmpagent.SyntheticSysObjectID, "netfeat bench simulated router")
		for i := range sites {
			d := filepath.Join(dir, "sim-"+sites[i])
			if err := os.MkdirAll(d, 0o755); err != nil {
				return rep, err
			}
			sim, serr := startSNMPSims(ctx, o.Binary, d, o.HubCPUs, o.Devices, o.Interfaces, scalars, columns)
			if serr != nil {
				return rep, serr
			}
			simProcs = append(simProcs, sim)
			sims[i] = sim.endpoints
		}
		progress("%d SNMP simulator processes, %d devices × %d interfaces each", len(sites), o.Devices, o.Interfaces)
	}
	setup := func(sub string) (serviceSetup, error) {
		d := filepath.Join(dir, sub)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return serviceSetup{}, err
		}
		s := serviceSetup{dataDir: filepath.Join(d, "data"), memoryBudget: 2 << 30, hop: o.Hop, lateness: o.Hop, interval: o.Interval}
		var e1, e2 error
		s.httpListen, e1 = freePort()
		s.natsListen, e2 = freePort()
		return s, errors.Join(e1, e2)
	}
	startEdge := func(sub string, s serviceSetup, profile string) (*child, error) {
		cfg := filepath.Join(dir, sub, "netfeat.yaml")
		if err := os.WriteFile(cfg, []byte(s.yaml()), 0o644); err != nil {
			return nil, err
		}
		return startFleetChild(ctx, o.Binary, o.EdgeCPUs, childSettings{Config: cfg, Rate: obsRate, Devices: o.Devices, Interfaces: o.Interfaces, Hop: o.Hop.String(), CPUProfile: profile})
	}
	wait := func(phase string, d time.Duration) error {
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			progress("%-10s %4.0fs left", phase, time.Until(end).Seconds())
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(min(10*time.Second, time.Until(end))):
			}
		}
		return nil
	}

	// 2. The fleet: cluster, hub, edges behind links.
	progress("starting a 3-node nats-server cluster, the hub and %d edges", o.Edges)
	cl, err := natsproc.StartCluster(ctx, natsproc.ClusterOptions{Binary: o.NATSServer, Dir: filepath.Join(dir, "nats"), Nodes: 3, CPUs: o.HubCPUs})
	if err != nil {
		return rep, err
	}
	defer cl.Stop()
	hubDir := filepath.Join(dir, "hub")
	if err := os.MkdirAll(hubDir, 0o755); err != nil {
		return rep, err
	}
	hubHTTP, err := freePort()
	if err != nil {
		return rep, err
	}
	hubSetup := serviceSetup{hop: o.Hop, lateness: o.Hop}
	hubCfg := fmt.Sprintf("# written by netfeat bench --fleet\nrole: hub\ndata_dir: %q\nshutdown_timeout: 30s\nlog: {level: warn, format: json}\nhttp: {listen: %q}\nnats: {url: %q}\nfleet:\n  hub: {replicas: 3, retention: 1h, max_rows: 2000000}\n%s",
		filepath.Join(hubDir, "data"), hubHTTP, cl.URLs(), hubSetup.viewYAML())
	hubCfgPath := filepath.Join(hubDir, "netfeat.yaml")
	if err := os.WriteFile(hubCfgPath, []byte(hubCfg), 0o644); err != nil {
		return rep, err
	}
	hubCmd := exec.Command(o.Binary, "serve", "-c", hubCfgPath)
	if o.HubCPUs != "" {
		hubCmd = exec.Command("taskset", "-c", o.HubCPUs, o.Binary, "serve", "-c", hubCfgPath)
	}
	hub, err := startProcess(hubCmd, filepath.Join(hubDir, "netfeat.log"))
	if err != nil {
		return rep, err
	}
	hub.httpAddr = hubHTTP
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err = errors.Join(err, hub.stop(sctx))
	}()
	if err := waitReady(ctx, hub, 90*time.Second); err != nil {
		return rep, fmt.Errorf("hub: %w", err)
	}
	hubNC, err := cl.Connect("netfeat-bench")
	if err != nil {
		return rep, err
	}
	defer hubNC.Close()
	hubJS, err := jetstream.New(hubNC)
	if err != nil {
		return rep, err
	}
	edges := make([]*fleetEdge, len(sites))
	defer func() {
		for _, e := range edges {
			if e == nil {
				continue
			}
			if e.proc != nil {
				err = errors.Join(err, e.proc.stop(time.Minute))
			}
			e.link.Close()
		}
	}()
	for i, site := range sites {
		link, err := natsproc.NewLink(cl.LeafAddrs())
		if err != nil {
			return rep, err
		}
		edges[i] = &fleetEdge{site: site, link: link}
		s, err := setup(site)
		if err != nil {
			return rep, err
		}
		s.snmp = sims[i]
		s.edge = &edgeSetup{site: site, leafURL: link.URL()}
		profile := ""
		if i == 0 {
			profile = o.CPUProfile
		}
		if edges[i].proc, err = startEdge(site, s, profile); err != nil {
			return rep, fmt.Errorf("edge %s: %w", site, err)
		}
	}
	// The edges' standalone twins, for the ingest CPU (Baseline).
	twins := make([]*child, len(sites))
	stopTwins := func() error {
		var errs []error
		for i, t := range twins {
			if t != nil {
				errs = append(errs, t.stop(time.Minute))
				twins[i] = nil
			}
		}
		return errors.Join(errs...)
	}
	defer func() { err = errors.Join(err, stopTwins()) }()
	if o.Baseline {
		for i, site := range sites {
			s, err := setup("twin-" + site)
			if err != nil {
				return rep, err
			}
			s.snmp = sims[i]
			if twins[i], err = startEdge("twin-"+site, s, ""); err != nil {
				return rep, fmt.Errorf("standalone twin of %s: %w", site, err)
			}
		}
	}
	edgeJS := make([]jetstream.JetStream, len(edges))
	for i, e := range edges {
		nc, err := nats.Connect(e.proc.first.NATS, nats.Name("netfeat-bench"))
		if err != nil {
			return rep, fmt.Errorf("connect to edge %s: %w", e.site, err)
		}
		defer nc.Close()
		if edgeJS[i], err = jetstream.New(nc); err != nil {
			return rep, err
		}
	}
	// The hub sources an edge once it registered; wait for every site's
	// hub streams.
	if err := waitFor(ctx, 60*time.Second, "hub streams of every edge", func() bool {
		for _, site := range sites {
			if _, err := hubJS.Stream(ctx, fleet.HubStream(site, fleet.KindSamples)); err != nil {
				return false
			}
		}
		return true
	}); err != nil {
		return rep, err
	}
	if err := wait("warm-up", o.Warmup); err != nil {
		return rep, err
	}

	// 3. Live.
	type edgeSnap struct {
		cpu           time.Duration
		smp, fwd, pub float64
		msgs, allMsgs float64
		toHub         int64
	}
	snapEdge := func(e *fleetEdge) (edgeSnap, error) {
		cpu, _, err := e.proc.serviceCPU()
		if err != nil {
			return edgeSnap{}, err
		}
		m, err := Scrape(ctx, http.DefaultClient, "http://"+e.proc.first.HTTP+"/metrics")
		if err != nil {
			return edgeSnap{}, err
		}
		toHub, _ := e.link.Bytes()
		return edgeSnap{cpu: cpu, smp: m.Sum("netfeat_store_samples_appended_total"),
			fwd:     m.Sum("netfeat_fleet_edge_samples_forwarded_total"),
			pub:     m.Sum("netfeat_fleet_edge_published_bytes_total", "stream", fleet.EdgeStream(fleet.KindSamples)),
			msgs:    m.Sum("netfeat_fleet_edge_published_total", "stream", fleet.EdgeStream(fleet.KindSamples)),
			allMsgs: m.Sum("netfeat_fleet_edge_published_total"), toHub: toHub}, nil
	}
	type twinSnap struct {
		cpu time.Duration
		smp float64
	}
	snapTwin := func(t *child) (twinSnap, error) {
		if t == nil {
			return twinSnap{}, nil
		}
		cpu, _, err := t.serviceCPU()
		if err != nil {
			return twinSnap{}, err
		}
		m, err := Scrape(ctx, http.DefaultClient, "http://"+t.first.HTTP+"/metrics")
		if err != nil {
			return twinSnap{}, err
		}
		return twinSnap{cpu, m.Sum("netfeat_store_samples_appended_total")}, nil
	}
	l0 := make([]edgeSnap, len(edges))
	t0 := make([]twinSnap, len(edges))
	for i, e := range edges {
		if l0[i], err = snapEdge(e); err != nil {
			return rep, err
		}
		if t0[i], err = snapTwin(twins[i]); err != nil {
			return rep, err
		}
	}
	h0, err := ReadProc(hub.pid)
	if err != nil {
		return rep, err
	}
	hubItems := func() (float64, error) {
		m, err := Scrape(ctx, http.DefaultClient, "http://"+hubHTTP+"/metrics")
		if err != nil {
			return 0, err
		}
		return m.Sum("netfeat_fleet_hub_items_total"), nil
	}
	hi0, err := hubItems()
	if err != nil {
		return rep, err
	}
	liveEnd := time.Now().Add(o.Live)
	for time.Now().Before(liveEnd) {
		p := hubPending(ctx, hubJS, sites)
		rep.Hub.MaxPending = max(rep.Hub.MaxPending, p)
		progress("live       %4.0fs left, hub pending %d messages", time.Until(liveEnd).Seconds(), p)
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	h1, err := ReadProc(hub.pid)
	if err != nil {
		return rep, err
	}
	rep.Hub.CPUSeconds = (h1.CPU - h0.CPU).Seconds()
	hi1, err := hubItems()
	if err != nil {
		return rep, err
	}
	rep.Hub.MessagesPerSec = (hi1 - hi0) / o.Live.Seconds()
	rep.Hub.EndPending = hubPending(ctx, hubJS, sites)
	var edgeMsgs float64
	for i, e := range edges {
		l1, err := snapEdge(e)
		if err != nil {
			return rep, err
		}
		r := &rep.Edges[i]
		secs := o.Live.Seconds()
		r.SamplesPerSec = (l1.smp - l0[i].smp) / secs
		fwd := l1.fwd - l0[i].fwd
		r.ForwardedPerSec = fwd / secs
		edgeMsgs += l1.allMsgs - l0[i].allMsgs
		if fwd > 0 {
			r.BytesPerSample = (l1.pub - l0[i].pub) / fwd
			r.WireBytesPerSample = float64(l1.toHub-l0[i].toHub) / fwd
		}
		if m := l1.msgs - l0[i].msgs; m > 0 {
			r.SamplesPerMessage = fwd / m
		}
		if n := l1.smp - l0[i].smp; n > 0 {
			r.CPUNsPerSample = float64((l1.cpu - l0[i].cpu).Nanoseconds()) / n
		}
		if twins[i] != nil {
			t1, err := snapTwin(twins[i])
			if err != nil {
				return rep, err
			}
			if n := t1.smp - t0[i].smp; n > 0 {
				r.BaselineCPUNsPerSample = float64((t1.cpu - t0[i].cpu).Nanoseconds()) / n
			}
		}
		if r.BaselineCPUNsPerSample > 0 {
			r.ForwardingCPUShare = (r.CPUNsPerSample - r.BaselineCPUNsPerSample) / r.BaselineCPUNsPerSample
			if rep.ForwardingCPUShare == nil || r.ForwardingCPUShare > *rep.ForwardingCPUShare {
				share := r.ForwardingCPUShare
				rep.ForwardingCPUShare = &share
			}
		}
		rep.BytesPerSample = max(rep.BytesPerSample, r.BytesPerSample)
		rep.WireBytesPerSample = max(rep.WireBytesPerSample, r.WireBytesPerSample)
	}
	// Kept up: the hub's consumers took, over the live phase, at least 95%
	// of the messages the edges stored, or ended it less than a second of
	// them behind (SNMP rounds come in bursts that a 30 s phase cuts).
	rep.Hub.EdgeMessagesPerSec = edgeMsgs / o.Live.Seconds()
	rep.HubKeptUp = rep.Hub.MessagesPerSec >= 0.95*rep.Hub.EdgeMessagesPerSec ||
		float64(rep.Hub.EndPending) <= max(rep.Hub.EdgeMessagesPerSec, 1)

	// The twins have measured; they would only take CPU from the rest.
	if err := stopTwins(); err != nil {
		return rep, err
	}

	// 4. Cut every link; the edges go on alone.
	var restored time.Time
	if o.Cut > 0 {
		for _, e := range edges {
			e.link.Cut()
		}
		if err := wait("cut", o.Cut); err != nil {
			return rep, err
		}
		restored = time.Now()
		for _, e := range edges {
			e.link.Restore()
		}
		// Catch-up: wait until each hub samples stream holds as many
		// messages as its edge stream held at the restore.
		for i, e := range edges {
			info, err := edgeJS[i].Stream(ctx, fleet.EdgeStream(fleet.KindSamples))
			if err != nil {
				return rep, err
			}
			atRestore := info.CachedInfo().State.Msgs
			if err := waitFor(ctx, o.CatchUpMax, "hub caught up with "+e.site, func() bool {
				s, err := hubJS.Stream(ctx, fleet.HubStream(e.site, fleet.KindSamples))
				if err != nil {
					return false
				}
				progress("catch-up   %s: hub %d of %d messages", e.site, s.CachedInfo().State.Msgs, atRestore)
				return s.CachedInfo().State.Msgs >= atRestore
			}); err != nil {
				return rep, err
			}
		}
	}

	// 5. Stop the load, let the edges' queues drain and the hub catch up,
	// then compare the streams by message id.
	for _, e := range edges {
		e.proc.pause()
	}
	if err := stopSims(); err != nil {
		return rep, err
	}
	// Windows still close (and decisions follow) for a hop after the last
	// sample: wait until every edge stream stops growing for a hop (at
	// least 3 s).
	var last uint64
	stableSince := time.Now()
	if err := waitFor(ctx, 2*o.Hop+time.Minute, "the edges' streams to stop growing", func() bool {
		var n uint64
		for i := range edges {
			for _, k := range fleet.Kinds {
				if s, err := edgeJS[i].Stream(ctx, fleet.EdgeStream(k)); err == nil {
					n += s.CachedInfo().State.Msgs
				}
			}
		}
		if n != last {
			last, stableSince = n, time.Now()
		}
		return time.Since(stableSince) >= max(3*time.Second, o.Hop)
	}); err != nil {
		rep.Notes = append(rep.Notes, err.Error())
	}
	for i, e := range edges {
		if err := waitFor(ctx, 2*time.Minute, "every stream of "+e.site+" at the hub", func() bool {
			for _, k := range fleet.Kinds {
				es, err1 := edgeJS[i].Stream(ctx, fleet.EdgeStream(k))
				hs, err2 := hubJS.Stream(ctx, fleet.HubStream(e.site, k))
				if err1 != nil || err2 != nil || hs.CachedInfo().State.Msgs < es.CachedInfo().State.Msgs {
					return false
				}
			}
			return true
		}); err != nil {
			rep.Notes = append(rep.Notes, err.Error())
		}
	}
	progress("reading every edge and hub stream")
	for i, e := range edges {
		r := &rep.Edges[i]
		var edgeMsgs, hubMsgs map[string]streamMsg
		for _, k := range fleet.Kinds {
			edgeRead := time.Now()
			em, _, emsgs, err := readStream(ctx, edgeJS[i], fleet.EdgeStream(k), e.site, k)
			if err != nil {
				return rep, fmt.Errorf("read %s's %s: %w", e.site, fleet.EdgeStream(k), err)
			}
			hm, dups, hmsgs, err := readStream(ctx, hubJS, fleet.HubStream(e.site, k), e.site, k)
			if err != nil {
				return rep, fmt.Errorf("read the hub's %s: %w", fleet.HubStream(e.site, k), err)
			}
			kc := compareStreams(k, em, hm, dups, edgeRead)
			kc.EdgeMessages, kc.HubMessages = int64(emsgs), int64(hmsgs)
			r.Kinds = append(r.Kinds, kc)
			rep.Lost += kc.Lost
			rep.Duplicated += kc.Duplicated
			if k == fleet.KindSamples {
				edgeMsgs, hubMsgs = em, hm
			}
		}
		if !restored.IsZero() {
			catchUp(r, edgeMsgs, hubMsgs, restored, o.Cut)
			if rep.CatchUpRatio == 0 || r.CatchUpRatio < rep.CatchUpRatio {
				rep.CatchUpRatio = r.CatchUpRatio
			}
		}
		m, err := Scrape(ctx, http.DefaultClient, "http://"+e.proc.first.HTTP+"/metrics")
		if err != nil {
			return rep, err
		}
		r.ForwardDropped = m.Sum("netfeat_fleet_forward_dropped_total")
		r.StreamDropped = m.Sum("netfeat_fleet_edge_dropped_messages_total")
		r.InjectErrors = e.proc.status().InjectErrors
		if p, err := ReadProc(e.proc.cmd.Process.Pid); err == nil {
			r.PeakRSS = p.HWM
		}
	}
	hm, err := Scrape(ctx, http.DefaultClient, "http://"+hubHTTP+"/metrics")
	if err != nil {
		return rep, err
	}
	rep.Hub.Duplicates = hm.Sum("netfeat_fleet_hub_duplicates_total")
	rep.Hub.Corrupt = hm.Sum("netfeat_fleet_hub_corrupt_total")
	rep.Hub.SinkErrors = hm.Sum("netfeat_fleet_hub_sink_errors_total")
	rep.Hub.SourceRestarts = hm.Sum("netfeat_fleet_hub_source_restarts_total")
	if p, err := ReadProc(hub.pid); err == nil {
		rep.Hub.PeakRSS = p.HWM
	}
	rep.Notes = append(rep.Notes,
		"edges: `netfeat bench --fleet-child` processes, each the service (role edge, sample_forwarding all) with its load generator in-process; its CPU is the process's less the generator's, measured per observation before the run",
		"lost and duplicated compare each edge stream with its hub stream by Nats-Msg-Id after the run; samples count one by one (every samples message decoded on both sides)",
		"catch-up: the samples the hub stored between the restore and the arrival of the last message the edge had stored before it, per second; live: the edge's forwarded samples per second with the link up")

	if o.Failover {
		progress("failover phase")
		fo := o.FailoverOptions
		fo.Binary = o.Binary
		fo.Dir = filepath.Join(dir, "failover")
		if err := os.MkdirAll(fo.Dir, 0o755); err != nil {
			return rep, err
		}
		fo.Log = log
		fo.Progress = func(phase string) { progress("failover   %s", phase) }
		fr, err := RunFailover(ctx, fo)
		if err != nil {
			return rep, fmt.Errorf("failover: %w", err)
		}
		rep.Failover = fr
		gap := fr.MaxGapS
		rep.FailoverMaxGapS = &gap
	}
	return rep, nil
}

// hubPending returns the messages the hub's consumers have not yet
// acknowledged, over every site's hub streams.
func hubPending(ctx context.Context, js jetstream.JetStream, sites []string) int64 {
	var n int64
	for _, site := range sites {
		for _, k := range fleet.Kinds {
			c, err := js.Consumer(ctx, fleet.HubStream(site, k), fleet.DefaultHubConfig().Consumer)
			if err != nil {
				continue
			}
			ci := c.CachedInfo()
			n += int64(ci.NumPending) + int64(ci.NumAckPending)
		}
	}
	return n
}

// streamMsg is what the bench keeps of a stream's message.
type streamMsg struct {
	at      time.Time // when the stream stored it
	samples int
}

// readStream reads every message of site's stream of kind k, from its
// first to the last it held when the read began, and returns what it holds
// by id with the number of repeats: samples messages by message id (each
// decoded and its samples counted, a repeat counting its samples), the
// other kinds by item id (a batch message decoded into its items).
func readStream(ctx context.Context, js jetstream.JetStream, stream, site string, k fleet.Kind) (map[string]streamMsg, int64, uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, 0, 0, err
	}
	st := s.CachedInfo().State
	out := make(map[string]streamMsg, st.Msgs)
	if st.Msgs == 0 {
		return out, 0, 0, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, 0, 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2048))
	if err != nil {
		return nil, 0, 0, err
	}
	defer it.Stop()
	var dups int64
	var buf []schema.Sample
	for {
		// A stream that stops answering (its server gone) must not hold
		// the bench: each message has 30 s, and the run's context rules.
		nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		m, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if err != nil {
			return nil, 0, 0, fmt.Errorf("%s: %w", stream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return nil, 0, 0, err
		}
		id := m.Headers().Get(jetstream.MsgIDHeader)
		sm := streamMsg{at: md.Timestamp}
		if k == fleet.KindSamples {
			if buf, err = fleet.DecodeSamples(buf[:0], m.Data()); err != nil {
				return nil, 0, 0, fmt.Errorf("%s seq %d (%s): %w", stream, md.Sequence.Stream, id, err)
			}
			sm.samples = len(buf)
			if _, ok := out[id]; ok {
				dups += int64(sm.samples)
			} else {
				out[id] = sm
			}
		} else {
			items, err := fleet.DecodeItems(site, k, m.Data(), m.Headers().Get(fleet.HeaderEncoding), id)
			if err != nil {
				return nil, 0, 0, fmt.Errorf("%s seq %d (%s): %w", stream, md.Sequence.Stream, id, err)
			}
			for _, it := range items {
				if _, ok := out[it.ID]; ok {
					dups++
				} else {
					out[it.ID] = sm
				}
			}
		}
		if md.Sequence.Stream >= st.LastSeq {
			return out, dups, st.Msgs, nil
		}
	}
}

// compareStreams counts, for kind k, what the hub lacks and holds twice,
// and what it holds that the edge stream, read at edgeRead, did not.
func compareStreams(k fleet.Kind, edge, hub map[string]streamMsg, dups int64, edgeRead time.Time) KindCount {
	kc := KindCount{Kind: string(k), Duplicated: dups}
	if k != fleet.KindSamples {
		kc.Items, kc.HubItems = int64(len(edge)), int64(len(hub))
	}
	unit := func(m streamMsg) int64 {
		if k == fleet.KindSamples {
			return int64(m.samples)
		}
		return 1
	}
	for id, m := range edge {
		kc.EdgeSamples += int64(m.samples)
		if _, ok := hub[id]; !ok {
			kc.Lost += unit(m)
		}
	}
	for id, m := range hub {
		kc.HubSamples += int64(m.samples)
		// What the hub stored after the edge stream was read may have been
		// published after that read: not "only at the hub".
		if _, ok := edge[id]; !ok && m.at.Before(edgeRead) {
			kc.HubOnly += unit(m)
		}
	}
	return kc
}

// catchUp fills r's cut and catch-up figures from the samples streams: the
// backlog is what the edge stored before the restore and the hub after
// it; the catch-up lasts until the last of it reached the hub, and its
// rate counts every sample the hub stored meanwhile.
func catchUp(r *FleetEdgeResult, edge, hub map[string]streamMsg, restored time.Time, cut time.Duration) {
	cutAt := restored.Add(-cut)
	var end time.Time
	for id, em := range edge {
		if !em.at.Before(cutAt) && em.at.Before(restored) {
			r.CutSamples += int64(em.samples)
		}
		hm, ok := hub[id]
		if !ok || !em.at.Before(restored) || hm.at.Before(restored) {
			continue
		}
		r.BacklogSamples += int64(em.samples)
		if hm.at.After(end) {
			end = hm.at
		}
	}
	if end.IsZero() {
		return
	}
	var got int64
	for _, hm := range hub {
		if !hm.at.Before(restored) && !hm.at.After(end) {
			got += int64(hm.samples)
		}
	}
	r.CatchUpSeconds = end.Sub(restored).Seconds()
	if r.CatchUpSeconds > 0 {
		r.CatchUpPerSec = float64(got) / r.CatchUpSeconds
	}
	if r.ForwardedPerSec > 0 {
		r.CatchUpRatio = r.CatchUpPerSec / r.ForwardedPerSec
	}
}

// waitFor polls ok every 250 ms until it holds, or fails after within.
func waitFor(ctx context.Context, within time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v", what, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return nil
}

// WriteJSON writes the report as indented JSON.
func (r *FleetReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteText writes the readable summary.
func (r *FleetReport) WriteText(w io.Writer) error {
	var b strings.Builder
	if r.Load.Ingest == IngestSNMP {
		fmt.Fprintf(&b, "netfeat fleet bench: %d edge(s), each polling %d simulated SNMP routers × %d interfaces every %s (hop %s), into one hub on a 3-node nats-server cluster\n",
			r.Load.Edges, r.Load.Devices, r.Load.Interfaces, r.Load.Interval, r.Load.Hop)
	} else {
		fmt.Fprintf(&b, "netfeat fleet bench: %d edge(s) × %s samples/s injected (%d devices × %d interfaces each, hop %s) into one hub on a 3-node nats-server cluster\n",
			r.Load.Edges, num(r.Load.SamplesPerSec), r.Load.Devices, r.Load.Interfaces, r.Load.Hop)
	}
	fmt.Fprintf(&b, "machine: %d CPUs, %s, load %s\n\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.LoadAvg)
	fmt.Fprintf(&b, "lost %d, duplicated %d; bytes/sample %.2f (wire, all kinds: %.2f); catch-up ratio %.1f; hub kept up: %v",
		r.Lost, r.Duplicated, r.BytesPerSample, r.WireBytesPerSample, r.CatchUpRatio, r.HubKeptUp)
	if r.ForwardingCPUShare != nil {
		fmt.Fprintf(&b, "; forwarding CPU %.1f%% of ingest", 100**r.ForwardingCPUShare)
	}
	if r.FailoverMaxGapS != nil {
		fmt.Fprintf(&b, "; failover max gap %.2f s", *r.FailoverMaxGapS)
	}
	b.WriteString("\n\n")
	for _, e := range r.Edges {
		fmt.Fprintf(&b, "%s: live %s samples/s stored, %s/s forwarded in messages of %.0f; %.2f B/sample payload, %.2f on the wire; CPU %.0f ns/sample",
			e.Site, num(e.SamplesPerSec), num(e.ForwardedPerSec), e.SamplesPerMessage, e.BytesPerSample, e.WireBytesPerSample, e.CPUNsPerSample)
		if e.BaselineCPUNsPerSample > 0 {
			fmt.Fprintf(&b, " (standalone %.0f: forwarding +%.1f%%)", e.BaselineCPUNsPerSample, 100*e.ForwardingCPUShare)
		}
		fmt.Fprintf(&b, "; peak RSS %s\n", bytesText(e.PeakRSS))
		if e.BacklogSamples > 0 {
			fmt.Fprintf(&b, "  cut: %s samples stored alone; catch-up of %s samples in %.1f s = %s samples/s = %.1f× live\n",
				num(float64(e.CutSamples)), num(float64(e.BacklogSamples)), e.CatchUpSeconds, num(e.CatchUpPerSec), e.CatchUpRatio)
		}
		for _, k := range e.Kinds {
			fmt.Fprintf(&b, "  %-9s edge %d msgs, hub %d msgs", k.Kind, k.EdgeMessages, k.HubMessages)
			if k.Kind == string(fleet.KindSamples) {
				fmt.Fprintf(&b, " (%d / %d samples)", k.EdgeSamples, k.HubSamples)
			} else {
				fmt.Fprintf(&b, " (%d / %d items)", k.Items, k.HubItems)
			}
			fmt.Fprintf(&b, ": lost %d, duplicated %d, hub only %d\n", k.Lost, k.Duplicated, k.HubOnly)
		}
		fmt.Fprintf(&b, "  drops: forward queue %.0f, stream limits %.0f, inject errors %d\n", e.ForwardDropped, e.StreamDropped, e.InjectErrors)
	}
	h := r.Hub
	fmt.Fprintf(&b, "hub: took %.1f messages/s of the %.1f the edges stored; %.1f CPU-s over the live phase, peak RSS %s, consumer backlog max %d / end %d messages; sink duplicates dropped %.0f, corrupt %.0f, sink errors %.0f, source restarts %.0f\n",
		h.MessagesPerSec, h.EdgeMessagesPerSec, h.CPUSeconds, bytesText(h.PeakRSS), h.MaxPending, h.EndPending, h.Duplicates, h.Corrupt, h.SinkErrors, h.SourceRestarts)
	if f := r.Failover; f != nil {
		fmt.Fprintf(&b, "failover: %d SNMP targets at %.0f s, lease TTL %.0f s: kill -9 of a node owning %d; all owned again after %.2f s; unowned after the TTL %d; longest gap in any target's polls %.2f s (%s), around the kill %.2f s\n",
			f.Targets, f.IntervalS, f.LeaseTTLS, f.KilledOwned, f.OwnedAgainS, f.UnownedAfterTTL, f.MaxGapS, f.MaxGapTarget, f.MaxGapAroundKillS)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
