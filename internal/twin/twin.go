// Package twin runs a digital twin: simulated devices following scripted
// scenarios, read on a virtual clock, feeding the real pipeline
// (normalizer, feature store, inference) of a sandboxed service at N times
// real time. The observations carry virtual timestamps, so windows close
// and actions fire by event time exactly as they would live; the
// scenarios' incidents are the run's ground truth (backtest.Episode).
//
// Nothing of a twin run reaches production: the service runs in its own
// data directory, its embedded NATS server listens on a random loopback
// port, and it has no collectors, cluster or fleet role
// (docs/learning.md, "Twin and backtest").
package twin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	gpb "github.com/openconfig/gnmi/proto/gnmi"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/backtest"
	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/collectors/snmp"
	"github.com/netfeat/netfeat/gnmipath"
	"github.com/netfeat/netfeat/inference"
	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
	"github.com/netfeat/netfeat/internal/sim/scenario"
	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/schema"
	"github.com/netfeat/netfeat/service"
)

// Device is one simulated device of a twin: an SNMP agent or a gNMI
// target, built with its scenario and Start at the twin's virtual start.
// An SNMP agent is polled at each read; a gNMI target is sampled at each
// read, and its scenario's link changes in between are delivered at their
// instants, as ON_CHANGE updates are (SNMP traps are not simulated).
type Device struct {
	// Name is the device name the pipeline sees (the target name).
	Name string
	// Scenario is what the device was built with; its events are the
	// run's labels. nil: no incidents.
	Scenario *scenario.Scenario
	// SNMP or GNMI is the simulator.
	SNMP *snmpagent.Device
	GNMI *gnmitarget.Server
	// GNMIPaths are the target's subscriptions ("origin:path"): only the
	// leaves under them are sampled, as a collector subscribed to them
	// would receive. Empty: every leaf.
	GNMIPaths []string
}

// Options configure a run.
type Options struct {
	// Config is the pipeline's configuration (views, inference, store,
	// normalizer); Run sandboxes a copy (Sandbox).
	Config *service.Config
	// DataDir is the sandbox data directory. Required.
	DataDir string
	// Devices are the simulated devices.
	Devices []Device
	// Start is the virtual instant the devices start at (their scenarios'
	// time 0), the same as the devices were built with; Duration how long
	// the run lasts in virtual time. Start must be at least Duration in
	// the past, so no timestamp is ahead of the wall clock (Begin).
	Start    time.Time
	Duration time.Duration
	// Interval is the virtual time between two reads of a device (its
	// poll or sample interval); default 5s.
	Interval time.Duration
	// Speed is how many times faster than real time the virtual clock
	// runs at most; 0 or less: as fast as the pipeline takes it.
	Speed float64
	// OnDecision receives every live decision (service.Inference's
	// decision handler): on the deciding worker, so it must return at
	// once and must not keep d.
	OnDecision func(d *schema.Decision)
	// OnWindow, when set, receives every closed window of the run's views,
	// with its features, as inference receives them (a subscriber of the
	// store): on the window engine's goroutine, so it must return at once;
	// it owns the row. A federated demonstration labels these windows.
	OnWindow schema.FeatureRowHandler
	// Log receives the service's logs; nil discards them.
	Log *slog.Logger
}

// Result describes a finished run.
type Result struct {
	// Start and End bound the run in virtual time.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Wall is how long the run took, from the first read to the drained
	// pipeline; Speed is virtual time over wall time.
	Wall  time.Duration `json:"wall_ns"`
	Speed float64       `json:"speed"`
	// Reads counts device reads, Observations what they produced.
	Reads        int `json:"reads"`
	Observations int `json:"observations"`
	// Decisions counts the live decisions made; RowsDropped the closed
	// windows inference dropped because its queues were full (the run
	// went faster than inference: lower the speed).
	Decisions   int64 `json:"decisions"`
	RowsDropped int64 `json:"rows_dropped"`
	// Episodes are the scenarios' incidents in [Start, End): the labels.
	Episodes []backtest.Episode `json:"episodes"`
}

// Begin returns the virtual start of a run of duration d: at least d (and
// a second) before now, so that the run's newest timestamps are not ahead
// of the wall clock and the store accepts them, on a whole minute, so that
// the views' windows (aligned to the epoch) fall on the same scenario
// times in every run and runs are repeatable.
func Begin(now time.Time, d time.Duration) time.Time {
	return now.Add(-d - time.Second).Truncate(time.Minute)
}

// Sandbox returns a copy of cfg that cannot reach production: dataDir as
// its data directory, the embedded NATS server and HTTP on random loopback
// ports (never an external NATS, no leaf link to a hub), no SNMP or gNMI
// collectors, no traps, no targets file, standalone role, no cluster, no
// federated learning, no retraining loop, no Flight SQL, and no models'
// latency budgets.
func Sandbox(cfg *service.Config, dataDir string) *service.Config {
	c := *cfg
	c.DataDir = dataDir
	c.HTTP.Listen = "127.0.0.1:0"
	c.HTTP.TLS = service.ServerTLSConfig{}
	c.NATS = cfg.NATS
	c.NATS.URL, c.NATS.Listen = "", "127.0.0.1:0"
	c.NATS.CredentialsFile, c.NATS.User, c.NATS.PasswordFile, c.NATS.PasswordEnv, c.NATS.TokenFile, c.NATS.TokenEnv = "", "", "", "", "", ""
	c.Role, c.Site, c.Fleet = service.RoleStandalone, "", service.FleetConfig{}
	c.Cluster = service.ClusterConfig{}
	c.NATS.Leaf = service.LeafConfig{}
	c.SNMP.Targets, c.SNMP.TargetsFile, c.SNMP.TrapListen = nil, "", ""
	c.GNMI.Targets = nil
	// The watched targets file would start collectors on real devices.
	c.TargetsFile = ""
	// No federated rounds and no retraining loop: a twin judges versions,
	// it does not make them (nor run the twin gate inside itself).
	c.Federated = nil
	c.Learning.Enabled = false
	c.Query.FlightListen = ""
	// No latency budgets: on a shared machine at N× real time a score
	// that overran one would fall back to the rule at random, and the run
	// would measure the machine, not the model.
	c.Inference.Models = append([]inference.ModelConfig(nil), cfg.Inference.Models...)
	for i := range c.Inference.Models {
		c.Inference.Models[i].LatencyBudget = 0
	}
	return &c
}

// Run builds the sandboxed service, starts it, reads every device every
// Interval of virtual time from Start to Start+Duration (paced to Speed),
// hands the observations to the normalizer, then stops the service, which
// drains the store's windows and inference's queues: every decision the
// run makes has reached OnDecision when Run returns.
func Run(ctx context.Context, o Options) (res *Result, err error) {
	switch {
	case o.Config == nil:
		return nil, errors.New("twin: no configuration")
	case o.DataDir == "":
		return nil, errors.New("twin: no sandbox data directory")
	case o.Duration <= 0:
		return nil, fmt.Errorf("twin: duration %v: must be positive", o.Duration)
	case len(o.Devices) == 0:
		return nil, errors.New("twin: no devices")
	case o.Start.Add(o.Duration).After(time.Now()):
		return nil, fmt.Errorf("twin: the run would end at %s, after now: start it at twin.Begin", o.Start.Add(o.Duration).Format(time.RFC3339))
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := service.NewRegistry()
	svc, err := service.New(Sandbox(o.Config, o.DataDir), reg, log)
	if err != nil {
		return nil, fmt.Errorf("twin: %w", err)
	}
	var decisions atomic.Int64
	svc.Inference().SetDecisionHandler(func(d *schema.Decision) {
		decisions.Add(1)
		if o.OnDecision != nil {
			o.OnDecision(d)
		}
	})
	if o.OnWindow != nil {
		svc.Store().Subscribe(o.OnWindow)
	}
	readers := make([]reader, len(o.Devices))
	for i, d := range o.Devices {
		if readers[i], err = newReader(d, o.Start, svc); err != nil {
			return nil, err
		}
	}
	if err := svc.Start(ctx); err != nil {
		return nil, fmt.Errorf("twin: start the sandboxed service: %w", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			err = errors.Join(err, svc.Stop())
		}
	}()
	res = &Result{Start: o.Start, End: o.Start.Add(o.Duration)}
	for _, d := range o.Devices {
		if d.Scenario != nil {
			res.Episodes = append(res.Episodes, backtest.FromScenario(d.Name, d.Scenario, o.Start, o.Duration)...)
		}
	}
	backtest.SortEpisodes(res.Episodes)
	n := svc.Normalizer()
	var batch []schema.Observation
	wall0 := time.Now()
	for el := time.Duration(0); el < o.Duration; el += o.Interval {
		if o.Speed > 0 {
			if wait := time.Until(wall0.Add(time.Duration(float64(el) / o.Speed))); wait > 0 {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(wait):
				}
			}
		}
		at := o.Start.Add(el)
		for _, r := range readers {
			if batch, err = r(batch[:0], at); err != nil {
				return nil, err
			}
			res.Reads++
			res.Observations += len(batch)
			if err := n.Observe(ctx, batch); err != nil {
				return nil, fmt.Errorf("twin: normalizer refused a read at %s: %w", at.Format(time.RFC3339), err)
			}
		}
	}
	stopped = true
	if err := svc.Stop(); err != nil {
		return nil, fmt.Errorf("twin: stop the sandboxed service: %w", err)
	}
	res.Wall = time.Since(wall0)
	res.Speed = o.Duration.Seconds() / res.Wall.Seconds()
	res.Decisions = decisions.Load()
	res.RowsDropped = counterSum(reg, "netfeat_inference_rows_dropped_total")
	if res.RowsDropped > 0 {
		log.Warn("twin: inference dropped closed windows (its queues were full): lower the speed", "rows", res.RowsDropped)
	}
	return res, nil
}

// counterSum adds up every series of the counter name in reg.
func counterSum(reg prometheus.Gatherer, name string) int64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			n += m.GetCounter().GetValue()
		}
	}
	return int64(n)
}

// reader appends what a device shows at a virtual instant.
type reader func(out []schema.Observation, at time.Time) ([]schema.Observation, error)

func newReader(d Device, start time.Time, svc *service.Service) (reader, error) {
	switch {
	case d.SNMP != nil:
		_, scalars, columns := svc.Normalizer().SNMPPlan(d.Name, d.SNMP.SysObjectID(), d.SNMP.SysDescr())
		dev := d.SNMP
		return func(out []schema.Observation, at time.Time) ([]schema.Observation, error) {
			pdus, err := dev.Read(scalars, columns, at)
			if err != nil {
				return out, fmt.Errorf("twin: device %s: %w", d.Name, err)
			}
			ts := at.UnixNano()
			for i := range pdus {
				if o, ok := snmp.Observation(d.Name, &pdus[i], ts); ok {
					out = append(out, o)
				}
			}
			return out, nil
		}, nil
	case d.GNMI != nil:
		var subs []*gpb.Path
		for _, p := range d.GNMIPaths {
			sp, err := gnmipath.Parse(p)
			if err != nil {
				return nil, fmt.Errorf("twin: device %s: subscription %q: %w", d.Name, p, err)
			}
			subs = append(subs, sp)
		}
		dec := gnmi.NewDecoder(d.Name, subs)
		srv := d.GNMI
		var prev time.Time
		return func(out []schema.Observation, at time.Time) ([]schema.Observation, error) {
			// The link changes since the last read, at their instants, as
			// an ON_CHANGE subscription receives them; then the sample.
			if !prev.IsZero() {
				for _, n := range srv.LinkEvents(start, prev, at) {
					if subscribed(subs, n) {
						out = dec.Decode(out, n, n.GetTimestamp())
					}
				}
			}
			prev = at
			ts := at.UnixNano()
			for _, n := range srv.Snapshot(start, at) {
				if subscribed(subs, n) {
					out = dec.Decode(out, n, ts)
				}
			}
			return out, nil
		}, nil
	}
	return nil, fmt.Errorf("twin: device %s has no simulator", d.Name)
}

// subscribed reports whether the single-update notification n falls under
// one of subs (element names compared, keys ignored; an origin-less side
// matches any origin). No subscriptions: everything.
func subscribed(subs []*gpb.Path, n *gpb.Notification) bool {
	if len(subs) == 0 {
		return true
	}
	origin := n.GetPrefix().GetOrigin()
	var elems []*gpb.PathElem
	for _, u := range n.GetUpdate() {
		elems = u.GetPath().GetElem()
	}
next:
	for _, s := range subs {
		if so := s.GetOrigin(); so != "" && origin != "" && so != origin && !(origin == "openconfig" && strings.HasPrefix(so, "openconfig")) {
			continue
		}
		se := s.GetElem()
		if len(se) > len(elems) {
			continue
		}
		for i, e := range se {
			if e.GetName() != elems[i].GetName() {
				continue next
			}
		}
		return true
	}
	return false
}
