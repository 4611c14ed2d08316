package bench

import (
	"bufio"
	"bytes"
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
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netfeat/netfeat/cluster"
	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/recording"
)

// FailoverOptions configure RunFailover, the failover phase of
// `netfeat bench --fleet`: two `netfeat serve` nodes of one site share
// Targets simulated SNMP devices through the cluster bucket, and one of
// them is killed with SIGKILL.
type FailoverOptions struct {
	// Binary is the netfeat executable run as the two nodes (os.Executable
	// for the bench itself). Required.
	Binary string
	// Dir is the scratch directory: the NATS store, each node's
	// configuration, data and log. Required; it must exist.
	Dir string
	// Targets is the number of simulated SNMP devices (default 200).
	Targets int
	// Interval is their poll interval (default 10 s); at least 1 s.
	Interval time.Duration
	// LeaseTTL is the nodes' cluster.lease_ttl: a whole number of seconds,
	// at least 2 s. Default: the poll interval rounded down to whole
	// seconds, at most cluster.DefaultLeaseTTL and at least 2 s (a lease
	// up to the interval keeps the gap after a death within 2 intervals).
	LeaseTTL time.Duration
	// Settle is how long both nodes poll their share before the kill is
	// prepared (default 2 intervals); After is how long the survivor
	// polls every target after it owns them all (default 2 intervals).
	Settle, After time.Duration
	// Recording is an .snmprec file the devices replay; empty: the
	// synthetic IF-MIB router of the snmp workload with
	// FailoverInterfaces interfaces.
	Recording string
	// Log receives progress and problems; nil discards.
	Log *slog.Logger
	// Progress, when set, is called at the start of each phase.
	Progress func(phase string)
}

// FailoverInterfaces is the number of interfaces of each synthetic device
// when FailoverOptions.Recording is empty.
const FailoverInterfaces = 8

// Names of the two nodes of the failover site; failoverVictim is killed.
const (
	failoverSurvivor = "a"
	failoverVictim   = "b"
)

// FailoverReport is what RunFailover measured. Durations are seconds.
type FailoverReport struct {
	Targets   int     `json:"targets"`
	IntervalS float64 `json:"interval_s"`
	LeaseTTLS float64 `json:"lease_ttl_s"`
	// NodeAOwned and NodeBOwned are the targets each node validly owned
	// just before the kill; KilledOwned is NodeBOwned (node b is killed).
	NodeAOwned  int `json:"node_a_owned"`
	NodeBOwned  int `json:"node_b_owned"`
	KilledOwned int `json:"killed_owned"`
	// KillBeforePollS is how long before node b's next due poll it was
	// killed (the worst moment: its last polls are almost an interval old).
	KillBeforePollS float64 `json:"kill_before_poll_s"`
	// OwnedAgainS is the time from the kill until the bucket showed every
	// target validly owned by the survivor; -1 if that did not happen
	// within the lease TTL plus 10 s.
	OwnedAgainS float64 `json:"owned_again_s"`
	// UnownedAfterTTL counts the targets not validly owned by the survivor
	// (no owner record, released, the owner's lease gone, or still the
	// killed node's) when the bucket was read at the kill plus the lease
	// TTL; UnownedCheckS is when that read
	// started, from the kill.
	UnownedAfterTTL int     `json:"unowned_after_ttl"`
	UnownedCheckS   float64 `json:"unowned_check_s"`
	// MaxGapS is the longest time any device received no request over the
	// measured window (both nodes polling, the kill, the takeover and
	// After), from the devices' request counters read every 20 ms;
	// MaxGapTarget is that device. MaxGapAroundKillS is the same over the
	// window from one interval before the kill.
	MaxGapS           float64 `json:"max_gap_s"`
	MaxGapTarget      string  `json:"max_gap_target"`
	MaxGapAroundKillS float64 `json:"max_gap_around_kill_s"`
	// WindowS is the measured window's length.
	WindowS float64 `json:"window_s"`
	// PollsMin and PollsMax are the fewest and most polls one device saw
	// in the window (a poll is a run of requests with no pause longer
	// than a quarter interval).
	PollsMin int `json:"polls_min"`
	PollsMax int `json:"polls_max"`
	// SamplesMaxGapS is the same figure from the nodes' own data: the
	// longest time between two sample timestamps of one device in the
	// `samples` table (node b's read just before the kill, node a's at the
	// end, merged), over the same window; SamplesMaxGapTarget is that
	// device and SamplesTargets the number of devices with samples.
	// -1 when the tables could not be read (see Notes).
	SamplesMaxGapS      float64 `json:"samples_max_gap_s"`
	SamplesMaxGapTarget string  `json:"samples_max_gap_target"`
	SamplesTargets      int     `json:"samples_targets"`
	// PollFailuresA and PollFailuresB count "snmp poll failed" lines in
	// each node's log (timeouts of a starved node show there).
	// WarningsA and WarningsB count each node's log lines at level WARN or
	// ERROR (poll failures included).
	PollFailuresA int `json:"poll_failures_a"`
	PollFailuresB int `json:"poll_failures_b"`
	WarningsA     int `json:"warnings_a"`
	WarningsB     int `json:"warnings_b"`
	// NodeACPUS and NodeBCPUS are each node's CPU time (user + system),
	// node b's read just before the kill.
	NodeACPUS float64 `json:"node_a_cpu_s"`
	NodeBCPUS float64 `json:"node_b_cpu_s"`
	// Notes say what went wrong or deserves a look.
	Notes []string `json:"notes,omitempty"`
}

// WriteText prints the report for people.
func (r *FailoverReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "failover: %d SNMP targets every %gs, 2 nodes, lease_ttl %gs; SIGKILL of node b %.2fs before its next poll\n",
		r.Targets, r.IntervalS, r.LeaseTTLS, r.KillBeforePollS)
	fmt.Fprintf(w, "  owned before the kill: a %d, b %d\n", r.NodeAOwned, r.NodeBOwned)
	if r.OwnedAgainS >= 0 {
		fmt.Fprintf(w, "  every target owned by a %.2fs after the kill\n", r.OwnedAgainS)
	} else {
		fmt.Fprintf(w, "  not every target owned again by a within lease_ttl + 10s\n")
	}
	fmt.Fprintf(w, "  unowned at kill + lease_ttl (read %.2fs after the kill): %d\n", r.UnownedCheckS, r.UnownedAfterTTL)
	fmt.Fprintf(w, "  longest gap in one target's polls (at the devices, %.0fs window): %.2fs (%s, %.2f intervals); around the kill %.2fs\n",
		r.WindowS, r.MaxGapS, r.MaxGapTarget, r.MaxGapS/r.IntervalS, r.MaxGapAroundKillS)
	fmt.Fprintf(w, "  polls per target in the window: %d to %d\n", r.PollsMin, r.PollsMax)
	if r.SamplesMaxGapS >= 0 {
		fmt.Fprintf(w, "  longest gap in one target's samples (nodes' samples tables, %d targets): %.2fs (%s)\n",
			r.SamplesTargets, r.SamplesMaxGapS, r.SamplesMaxGapTarget)
	}
	fmt.Fprintf(w, "  logged: poll failures a %d, b %d; warnings and errors a %d, b %d; CPU a %.1fs, b %.1fs\n",
		r.PollFailuresA, r.PollFailuresB, r.WarningsA, r.WarningsB, r.NodeACPUS, r.NodeBCPUS)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// withDefaults fills the zero fields and checks the options.
func (o FailoverOptions) withDefaults() (FailoverOptions, error) {
	if o.Targets == 0 {
		o.Targets = 200
	}
	if o.Interval == 0 {
		o.Interval = 10 * time.Second
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = min(o.Interval.Truncate(time.Second), cluster.DefaultLeaseTTL)
		o.LeaseTTL = max(o.LeaseTTL, 2*time.Second)
	}
	if o.Settle == 0 {
		o.Settle = 2 * o.Interval
	}
	if o.After == 0 {
		o.After = 2 * o.Interval
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Progress == nil {
		o.Progress = func(string) {}
	}
	var errs []error
	if o.Binary == "" {
		errs = append(errs, errors.New("failover: the netfeat binary to run as the nodes is required"))
	}
	if o.Dir == "" {
		errs = append(errs, errors.New("failover: a scratch directory is required"))
	}
	if o.Targets < 2 {
		errs = append(errs, fmt.Errorf("failover: %d targets: want at least 2, so that both nodes own some", o.Targets))
	}
	if o.Interval < time.Second {
		errs = append(errs, fmt.Errorf("failover: interval %v: want at least 1s", o.Interval))
	}
	if o.LeaseTTL < 2*time.Second || o.LeaseTTL%time.Second != 0 {
		errs = append(errs, fmt.Errorf("failover: lease TTL %v: want a whole number of seconds, at least 2s", o.LeaseTTL))
	}
	if o.Settle < 0 || o.After < 0 {
		errs = append(errs, errors.New("failover: settle and after must not be negative"))
	}
	return o, errors.Join(errs...)
}

// RunFailover runs the failover phase: an embedded NATS server with
// JetStream on loopback (store in o.Dir), o.Targets simulated SNMP devices
// in this process, each on its own loopback UDP port, and two `netfeat
// serve` children (nodes a and b) of one site with the cluster enabled.
// Once both poll their share for o.Settle, node b is killed with SIGKILL
// just before its next poll, the bucket is read until node a owns every
// target (and once at the kill plus the lease TTL), node a polls them all
// for o.After, and the longest gap in any device's polls is taken from
// the devices' request counters. An error means the phase could not run;
// a failover that misses its bounds is a report, for the caller to judge.
func RunFailover(ctx context.Context, o FailoverOptions) (rep *FailoverReport, err error) {
	o, err = o.withDefaults()
	if err != nil {
		return nil, err
	}
	log := o.Log.With("phase", "failover")
	rep = &FailoverReport{Targets: o.Targets, IntervalS: o.Interval.Seconds(), LeaseTTLS: o.LeaseTTL.Seconds(), SamplesMaxGapS: -1}
	var cleanups []func()
	defer func() {
		for _, c := range slices.Backward(cleanups) {
			c()
		}
	}()

	o.Progress("nats")
	ns, err := failoverNATS(filepath.Join(o.Dir, "nats"))
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { ns.Shutdown(); ns.WaitForShutdown() })
	natsURL := ns.ClientURL()

	o.Progress("devices")
	sim, devs, err := failoverDevices(ctx, o)
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sim.Stop(sctx); err != nil {
			log.Warn("failover: stopping the SNMP simulator", "err", err)
		}
	})
	eps := sim.Endpoints()
	names := make([]string, len(eps))
	for i, ep := range eps {
		names[i] = ep.Device.Name()
	}
	mon := snmpagent.WatchPolls(devs)
	cleanups = append(cleanups, mon.Close)

	nodes := map[string]*failoverNode{}
	for _, name := range []string{failoverSurvivor, failoverVictim} {
		o.Progress("node " + name)
		n, err := startFailoverNode(ctx, o, name, natsURL, eps)
		if err != nil {
			return nil, err
		}
		nodes[name] = n
		cleanups = append(cleanups, func() {
			select {
			case <-n.proc.exited:
				return
			default:
			}
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := n.proc.stop(sctx); err != nil {
				log.Warn("failover: stopping node", "node", n.name, "err", err)
			}
		})
	}
	a, b := nodes[failoverSurvivor], nodes[failoverVictim]

	nc, err := nats.Connect(natsURL, nats.Name("netfeat bench failover"))
	if err != nil {
		return nil, fmt.Errorf("failover: connect to NATS: %w", err)
	}
	cleanups = append(cleanups, nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("failover: JetStream: %w", err)
	}
	kv, err := js.KeyValue(ctx, cluster.DefaultBucket)
	if err != nil {
		return nil, fmt.Errorf("failover: the nodes' cluster bucket: %w", err)
	}
	status := func() (cluster.Status, error) {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return cluster.ReadStatus(sctx, kv)
	}

	o.Progress("share")
	if _, err := failoverWaitOwners(ctx, status, 60*time.Second, func(own map[string]string) bool {
		return len(own) == o.Targets && failoverCount(own, a.name) > 0 && failoverCount(own, b.name) > 0
	}); err != nil {
		return nil, fmt.Errorf("failover: both nodes owning targets: %w%s%s", err, logTail(a.proc.logs), logTail(b.proc.logs))
	}
	settled := time.Now()
	o.Progress("settle")
	if err := failoverSleep(ctx, o.Settle); err != nil {
		return nil, err
	}

	// Kill b just before it polls its devices again, the worst moment:
	// their last samples are then almost an interval old when b dies.
	st, err := status()
	if err != nil {
		return nil, err
	}
	own := failoverOwners(st)
	rep.NodeAOwned, rep.NodeBOwned = failoverCount(own, a.name), failoverCount(own, b.name)
	rep.KilledOwned = rep.NodeBOwned
	if n := len(own); n != o.Targets {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d of %d targets validly owned just before the kill", n, o.Targets))
	}
	var bDevs []string
	for t, node := range own {
		if node == b.name {
			bDevs = append(bDevs, t)
		}
	}
	const killLead = 300 * time.Millisecond
	killAt := mon.Times().NextPoll(bDevs, o.Interval).Add(-killLead)
	for time.Until(killAt) < 500*time.Millisecond { // room for reading b's samples first
		killAt = killAt.Add(o.Interval)
	}
	o.Progress("kill")
	// b's samples, read after its last polls before the kill (none of its
	// devices is due before killAt + killLead).
	if err := failoverSleep(ctx, time.Until(killAt.Add(-300*time.Millisecond))); err != nil {
		return nil, err
	}
	bRead := time.Now()
	bSamples, bErr := failoverSamples(ctx, b.httpAddr, settled)
	if p, err := ReadProc(b.proc.pid); err == nil {
		rep.NodeBCPUS = p.CPU.Seconds()
	}
	if err := failoverSleep(ctx, time.Until(killAt)); err != nil {
		return nil, err
	}
	next := mon.Times().NextPoll(bDevs, o.Interval)
	if err := syscall.Kill(b.proc.pid, syscall.SIGKILL); err != nil {
		return nil, fmt.Errorf("failover: kill node b: %w", err)
	}
	killed := time.Now()
	rep.KillBeforePollS = next.Sub(killed).Seconds()
	<-b.proc.exited
	log.Info("failover: node b killed", "owned", rep.NodeBOwned, "before_next_poll", next.Sub(killed))
	if polled := mon.Times().PolledBetween(bDevs, bRead, killed); len(polled) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d of node b's devices were polled between the read of its samples and the kill (%s): the samples figure may overstate their gap",
			len(polled), failoverFirstNames(polled)))
	}

	o.Progress("takeover")
	ttlAt := killed.Add(o.LeaseTTL)
	giveUp := ttlAt.Add(10 * time.Second)
	rep.OwnedAgainS = -1
	checked := false
	for rep.OwnedAgainS < 0 || !checked {
		if !checked && !time.Now().Before(ttlAt) {
			t0 := time.Now()
			st, err := status()
			if err != nil {
				return nil, err
			}
			rep.UnownedCheckS = t0.Sub(killed).Seconds()
			// a is the only live node: a target still validly owned by b
			// would mean b's lease outlived the TTL, so it counts.
			rep.UnownedAfterTTL = o.Targets - failoverCount(failoverOwners(st), a.name)
			checked = true
			continue
		}
		if rep.OwnedAgainS < 0 {
			st, err := status()
			if err != nil {
				return nil, err
			}
			if own := failoverOwners(st); len(own) == o.Targets && failoverCount(own, a.name) == o.Targets {
				rep.OwnedAgainS = time.Since(killed).Seconds()
				log.Info("failover: every target owned by the survivor", "after_kill", time.Since(killed))
				continue
			}
			if time.Now().After(giveUp) {
				rep.Notes = append(rep.Notes, fmt.Sprintf("node a did not own every target within lease_ttl + 10s (%d of %d)",
					failoverCount(own, a.name), o.Targets))
				break
			}
		}
		wait := 50 * time.Millisecond
		if rep.OwnedAgainS >= 0 {
			wait = time.Until(ttlAt)
		}
		if err := failoverSleep(ctx, wait); err != nil {
			return nil, err
		}
	}

	o.Progress("after")
	if err := failoverSleep(ctx, o.After); err != nil {
		return nil, err
	}
	end := time.Now()
	mon.Close()
	polls := mon.Times()
	rep.WindowS = end.Sub(settled).Seconds()
	gap, dev := polls.LongestGap(nil, settled, end)
	rep.MaxGapS, rep.MaxGapTarget = gap.Seconds(), dev
	killGap, _ := polls.LongestGap(nil, killed.Add(-o.Interval), end)
	rep.MaxGapAroundKillS = killGap.Seconds()
	rep.PollsMin, rep.PollsMax = polls.PollCounts(names, settled, end, o.Interval/4)

	o.Progress("samples")
	aSamples, aErr := failoverSamples(ctx, a.httpAddr, settled)
	switch {
	case bErr != nil:
		rep.Notes = append(rep.Notes, "node b's samples table: "+bErr.Error())
	case aErr != nil:
		rep.Notes = append(rep.Notes, "node a's samples table: "+aErr.Error())
	default:
		merged := map[string][]time.Time{}
		for d, ts := range bSamples {
			merged[d] = append(merged[d], ts...)
		}
		for d, ts := range aSamples {
			merged[d] = append(merged[d], ts...)
		}
		for d := range merged {
			slices.SortFunc(merged[d], func(x, y time.Time) int { return x.Compare(y) })
		}
		rep.SamplesTargets = len(merged)
		g, d := snmpagent.PollTimes(merged).LongestGap(names, settled, end)
		rep.SamplesMaxGapS, rep.SamplesMaxGapTarget = g.Seconds(), d
	}
	if p, err := ReadProc(a.proc.pid); err == nil {
		rep.NodeACPUS = p.CPU.Seconds()
	}

	o.Progress("stop")
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.proc.stop(sctx); err != nil {
		rep.Notes = append(rep.Notes, "stopping node a: "+err.Error())
	}
	var msgsA, msgsB []string
	rep.PollFailuresA, rep.WarningsA, msgsA = failoverLogScan(a.proc.logs)
	rep.PollFailuresB, rep.WarningsB, msgsB = failoverLogScan(b.proc.logs)
	if rep.WarningsA > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("node a logged %d warnings or errors (%s): see %s", rep.WarningsA, failoverFirstNames(msgsA), a.proc.logs))
	}
	if rep.WarningsB > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("node b logged %d warnings or errors (%s): see %s", rep.WarningsB, failoverFirstNames(msgsB), b.proc.logs))
	}
	if bound := 2 * o.Interval.Seconds(); rep.MaxGapS > bound {
		rep.Notes = append(rep.Notes, fmt.Sprintf("longest gap %.2fs exceeds 2 intervals (%.0fs)", rep.MaxGapS, bound))
	}
	if rep.UnownedAfterTTL > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d targets unowned at the kill + lease TTL", rep.UnownedAfterTTL))
	}
	log.Info("failover: done", "max_gap", gap, "device", dev, "owned_again_s", rep.OwnedAgainS, "unowned_after_ttl", rep.UnownedAfterTTL)
	return rep, nil
}

// failoverNATS starts the site's NATS server: loopback, a random port,
// JetStream with its store in dir.
func failoverNATS(dir string) (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, fmt.Errorf("failover: NATS server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("failover: NATS server not ready within 10s")
	}
	return ns, nil
}

// failoverDevices starts o.Targets simulated SNMP devices in this process,
// each on its own loopback UDP port.
func failoverDevices(ctx context.Context, o FailoverOptions) (*snmpagent.Simulator, []*snmpagent.Device, error) {
	var mib *snmpagent.MIB
	var err error
	if o.Recording != "" {
		mib, err = snmpagent.LoadMIB(o.Recording)
	} else {
		var recs []recording.SNMPRecord
		recs, err = recording.ReadSNMPRec(strings.NewReader(snmpagent.SyntheticRouter(FailoverInterfaces)), "synthetic.snmprec")
		if err == nil {
			mib, err = snmpagent.NewMIB(recs)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("failover: device recording: %w", err)
	}
	sim := snmpagent.NewSimulator(o.Log)
	devs := make([]*snmpagent.Device, 0, o.Targets)
	for i := range o.Targets {
		d, err := snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: fmt.Sprintf("pe%04d", i+1), Community: "public", Rate: 1e6})
		if err != nil {
			return nil, nil, fmt.Errorf("failover: device: %w", err)
		}
		if err := sim.Add(d, "127.0.0.1:0"); err != nil {
			return nil, nil, fmt.Errorf("failover: device: %w", err)
		}
		devs = append(devs, d)
	}
	if err := sim.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("failover: start devices: %w", err)
	}
	return sim, devs, nil
}

// failoverNode is one `netfeat serve` node of the site.
type failoverNode struct {
	name     string
	proc     *target
	httpAddr string
}

// failoverConfig renders a node's configuration.
func failoverConfig(o FailoverOptions, node, dataDir, httpListen, natsURL string, eps []snmpagent.Endpoint) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by netfeat bench (failover)\ndata_dir: %q\nshutdown_timeout: 20s\n", dataDir)
	fmt.Fprintf(&b, "log: {level: info, format: json}\nhttp: {listen: %q}\nnats: {url: %q}\n", httpListen, natsURL)
	fmt.Fprintf(&b, "snmp:\n  defaults: {version: \"2c\", community: public, interval: %s, timeout: 2s, retries: 1}\n  targets:\n", o.Interval)
	for _, ep := range eps {
		fmt.Fprintf(&b, "    - {name: %q, address: %q}\n", ep.Device.Name(), ep.Addr)
	}
	fmt.Fprintf(&b, "cluster: {enabled: true, node: %q, lease_ttl: %s}\n", node, o.LeaseTTL)
	return b.String()
}

// startFailoverNode starts node name and waits until it is ready (which
// needs its cluster lease).
func startFailoverNode(ctx context.Context, o FailoverOptions, name, natsURL string, eps []snmpagent.Endpoint) (*failoverNode, error) {
	dir := filepath.Join(o.Dir, "node-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("failover: node %s directory: %w", name, err)
	}
	httpListen, err := freePort()
	if err != nil {
		return nil, err
	}
	text := failoverConfig(o, name, filepath.Join(dir, "data"), httpListen, natsURL, eps)
	if _, err := parseServiceConfig(text); err != nil {
		return nil, fmt.Errorf("failover: node %s: %w", name, err)
	}
	cfgPath := filepath.Join(dir, "netfeat.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		return nil, fmt.Errorf("failover: node %s configuration: %w", name, err)
	}
	t, err := startProcess(exec.Command(o.Binary, "serve", "-c", cfgPath), filepath.Join(dir, "netfeat.log"))
	if err != nil {
		return nil, fmt.Errorf("failover: node %s: %w", name, err)
	}
	t.mode, t.httpAddr, t.natsURL = "child process", httpListen, natsURL
	if err := waitReady(ctx, t, 90*time.Second); err != nil {
		return nil, errors.Join(fmt.Errorf("failover: node %s: %w", name, err), t.stop(context.Background()))
	}
	return &failoverNode{name: name, proc: t, httpAddr: httpListen}, nil
}

// failoverOwners maps every validly owned target to its node.
func failoverOwners(st cluster.Status) map[string]string {
	m := map[string]string{}
	for _, ts := range st.Targets {
		if ts.Valid {
			m[ts.Target] = ts.Owner
		}
	}
	return m
}

// failoverCount counts the targets node owns.
func failoverCount(own map[string]string, node string) int {
	n := 0
	for _, v := range own {
		if v == node {
			n++
		}
	}
	return n
}

// failoverWaitOwners reads the bucket every 50 ms until ok accepts its
// owners, or within passes.
func failoverWaitOwners(ctx context.Context, status func() (cluster.Status, error), within time.Duration, ok func(map[string]string) bool) (map[string]string, error) {
	deadline := time.Now().Add(within)
	for {
		st, err := status()
		if err != nil {
			return nil, err
		}
		own := failoverOwners(st)
		if ok(own) {
			return own, nil
		}
		if time.Now().After(deadline) {
			return own, fmt.Errorf("not within %v (%d targets owned)", within, len(own))
		}
		if err := failoverSleep(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// failoverSleep waits d, or until ctx ends.
func failoverSleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("failover: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

// failoverSamples reads, from the node's `samples` table over POST
// /v1/query, the distinct sample times of each device since from.
func failoverSamples(ctx context.Context, httpAddr string, from time.Time) (map[string][]time.Time, error) {
	sql := fmt.Sprintf("SELECT device, epoch_ms(ts) AS ms FROM samples WHERE ts >= to_timestamp(%.3f) GROUP BY ALL ORDER BY ALL",
		float64(from.UnixMilli())/1000)
	body, _ := json.Marshal(map[string]string{"sql": sql, "format": "json"})
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(qctx, http.MethodPost, "http://"+httpAddr+"/v1/query", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("query samples: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query samples: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("query samples: read: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("query samples: HTTP %d: %s", resp.StatusCode, oneLine(string(b), 200))
	}
	var doc struct {
		Rows  [][]any `json:"rows"`
		Error string  `json:"error"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("query samples: %w", err)
	}
	if doc.Error != "" {
		return nil, fmt.Errorf("query samples: %s", oneLine(doc.Error, 200))
	}
	out := map[string][]time.Time{}
	for _, r := range doc.Rows {
		if len(r) != 2 {
			return nil, fmt.Errorf("query samples: unexpected row %v", r)
		}
		dev, ok1 := r[0].(string)
		ms, ok2 := r[1].(float64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("query samples: unexpected row %v", r)
		}
		out[dev] = append(out[dev], time.UnixMilli(int64(ms)))
	}
	return out, nil
}

// failoverLogScan reads a node's JSON log: its "snmp poll failed" lines
// (timeouts of a starved node show there), its warnings and errors, and
// their distinct messages.
func failoverLogScan(path string) (pollFailures, warnings int, msgs []string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if line.Msg == "snmp poll failed" {
			pollFailures++
		}
		if line.Level == "WARN" || line.Level == "ERROR" {
			warnings++
			if !slices.Contains(msgs, line.Msg) {
				msgs = append(msgs, line.Msg)
			}
		}
	}
	return pollFailures, warnings, msgs
}

// failoverFirstNames lists up to five names.
func failoverFirstNames(s []string) string {
	if len(s) > 5 {
		return strings.Join(s[:5], ", ") + ", …"
	}
	return strings.Join(s, ", ")
}
