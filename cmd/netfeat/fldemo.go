package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/backtest"
	"github.com/netfeat/netfeat/examples"
	"github.com/netfeat/netfeat/federated"
	"github.com/netfeat/netfeat/internal/sim/scenario"
	"github.com/netfeat/netfeat/internal/twin"
	"github.com/netfeat/netfeat/learning"
	"github.com/netfeat/netfeat/schema"
)

// The federated demonstration (`netfeat fl demo`, docs/learning.md,
// "Demonstration"): edge A's devices congest, edge B's and edge C's never
// do; after a few rounds the global model detects a congestion on one of B's
// devices that B never saw. Three edges, so that secure aggregation runs at
// its default min_edges: with two, each edge could derive the other's update
// from the new global and its own.
const (
	// flDemoModel is the federated model's name (a subject token).
	flDemoModel = "congestion"
	// flDemoGrace: a detection up to this long after the held-out episode
	// ended still counts (as netfeat backtest's default --grace).
	flDemoGrace = time.Minute
	// flDemoThreshold: a window is called congested when the model's
	// probability is at least this.
	flDemoThreshold = 0.5
)

// flDemoSpace is the shared feature space of the demonstration's model:
// the eight features of the view interface_1m (the shipped congestion
// model's inputs), utilisations as they are (a ratio of the link speed, 0
// to 1 and a little over) and the per-second error and drop rates through
// log1p over 7 (≈ log1p(1000): 1000 per second maps to about 1). The same
// on every edge, whatever its devices.
var flDemoSpace = learning.FeatureSpace{
	{Name: "interface_in_utilization__mean_1m", Scale: 1},
	{Name: "interface_in_utilization__max_1m", Scale: 1},
	{Name: "interface_out_utilization__mean_1m", Scale: 1},
	{Name: "interface_out_utilization__max_1m", Scale: 1},
	{Name: "interface_in_errors_ps__mean_1m", Log1p: true, Scale: 7},
	{Name: "interface_in_errors_ps__max_1m", Log1p: true, Scale: 7},
	{Name: "interface_out_discards_ps__mean_1m", Log1p: true, Scale: 7},
	{Name: "interface_out_discards_ps__max_1m", Log1p: true, Scale: 7},
}

// flDemoDevice is one demo device of a site and its scenario (a path in
// examples.Demo).
type flDemoDevice struct {
	target   string
	scenario string
}

// flDemoSite is a twin run of one edge's devices.
type flDemoSite struct {
	name     string
	what     string
	devices  []flDemoDevice
	duration time.Duration
}

var (
	// Edge A: the Nokia's uplink congests every 3 minutes (SNMP); the
	// Ericsson stays quiet.
	flDemoA = flDemoSite{name: "edge-a", what: "training", duration: 6 * time.Minute, devices: []flDemoDevice{
		{"nokia-7210", "demo-scenarios/nokia-7210.yaml"}, {"ericsson-ml", "demo-scenarios/ericsson-ml.yaml"}}}
	// Edge B: the Ericsson stays quiet, the Cisco has input errors and a
	// link down (gNMI): incidents, but never a congestion.
	flDemoB = flDemoSite{name: "edge-b", what: "training", duration: 6 * time.Minute, devices: []flDemoDevice{
		{"ericsson-ml", "demo-scenarios/ericsson-ml.yaml"}, {"cisco-xr1", "demo-scenarios/cisco-xr1.yaml"}}}
	// Edge C: another site's Nokia (SNMP) and Cisco (gNMI), busier than A's
	// and B's: input errors on the Nokia's to_nokia-sw-b and an access port
	// down, the Cisco's GigabitEthernet0/0/0/0 flapping then erroring. Never
	// a congestion.
	flDemoC = flDemoSite{name: "edge-c", what: "training", duration: 6 * time.Minute, devices: []flDemoDevice{
		{"nokia-7210", "fl-demo/nokia-7210-errors.yaml"}, {"cisco-xr1", "fl-demo/cisco-xr1-flap.yaml"}}}
	// B's held-out run: the same devices, and the Cisco's
	// GigabitEthernet0/0/0/0 congests.
	flDemoHeldOut = flDemoSite{name: "edge-b", what: "held-out", duration: 3 * time.Minute, devices: []flDemoDevice{
		{"ericsson-ml", "demo-scenarios/ericsson-ml.yaml"}, {"cisco-xr1", "fl-demo/cisco-xr1-congestion.yaml"}}}
)

// flDemoOptions configure a demonstration.
type flDemoOptions struct {
	rounds     int
	speed      float64
	epochs     int
	lr         float64
	l2         float64
	posWeight  float64
	clipNorm   float64
	recordings string
	log        *slog.Logger
}

func (o *flDemoOptions) check() error {
	switch {
	case o.rounds < 1 || o.rounds > 100:
		return fmt.Errorf("--rounds must be in [1, 100], got %d", o.rounds)
	case o.speed < 0:
		return fmt.Errorf("--speed must not be negative, got %v", o.speed)
	case o.epochs < 1:
		return fmt.Errorf("--epochs must be positive, got %d", o.epochs)
	case !(o.lr > 0):
		return fmt.Errorf("--learning-rate must be positive, got %v", o.lr)
	case !(o.l2 >= 0):
		return fmt.Errorf("--l2 must not be negative, got %v", o.l2)
	case !(o.posWeight > 0):
		return fmt.Errorf("--positive-weight must be positive, got %v", o.posWeight)
	case !(o.clipNorm > 0):
		return fmt.Errorf("--clip-norm must be positive, got %v", o.clipNorm)
	}
	return nil
}

// flWindow is one closed window of interface_1m in a twin run: its entity,
// end, features in the shared space and label (1 congested at the window's
// end, 0 not, -1 ambiguous: a congestion ended within the window).
type flWindow struct {
	device, component string
	end               time.Time
	x                 []float64
	label             float64
}

// flSiteData is what a site's twin run produced.
type flSiteData struct {
	site     flDemoSite
	start    time.Time
	windows  []flWindow // in window order
	raw      [][]float64
	ds       *learning.Dataset
	episodes []backtest.Episode
	run      *twin.Result
}

// flDemoSiteReport describes a site's data in the report.
type flDemoSiteReport struct {
	Edge      string             `json:"edge"`
	Set       string             `json:"set"` // training, held-out
	Devices   []string           `json:"devices"`
	Scenarios []string           `json:"scenarios"`
	Virtual   string             `json:"virtual_time"`
	Wall      string             `json:"wall_time"`
	Windows   int                `json:"windows"`   // labelled windows (the rows)
	Positives int                `json:"positives"` // congested at the window's end
	Ambiguous int                `json:"ambiguous"` // left out: a congestion ended within the window
	Episodes  []backtest.Episode `json:"episodes"`
}

func (d *flSiteData) report() flDemoSiteReport {
	r := flDemoSiteReport{Edge: d.site.name, Set: d.site.what, Virtual: d.site.duration.String(),
		Wall: d.run.Wall.Round(time.Millisecond).String(), Windows: d.ds.Len(), Episodes: d.episodes}
	for _, dev := range d.site.devices {
		r.Devices = append(r.Devices, dev.target)
		r.Scenarios = append(r.Scenarios, "examples/"+dev.scenario)
	}
	for _, w := range d.windows {
		switch w.label {
		case 1:
			r.Positives++
		case -1:
			r.Ambiguous++
		}
	}
	return r
}

// flDetection says whether and when weights detect the held-out episode.
type flDetection struct {
	Detected bool `json:"detected"`
	// FirstWindowEnd is the end of the first window of the episode's
	// interface scored congested between the episode's start and its end
	// plus the grace; LeadSeconds its distance from the episode's start.
	FirstWindowEnd *time.Time `json:"first_window_end,omitempty"`
	LeadSeconds    *float64   `json:"lead_time_seconds,omitempty"`
	// Precision, recall and the counts are the window-level scores on the
	// held-out set (F1 is the round's f1_after).
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	TP        int     `json:"tp"`
	FP        int     `json:"fp"`
	FN        int     `json:"fn"`
}

// flDemoRound is one round of the demonstration.
type flDemoRound struct {
	Round   uint64 `json:"round"`
	Result  string `json:"result"`
	Samples int64  `json:"samples"`
	// Edges sent keys in the round; Updates of them had their masked
	// update accepted (the coordinator's status).
	Edges    int      `json:"edges"`
	Updates  int      `json:"updates"`
	F1Before *float64 `json:"f1_before"`
	F1After  *float64 `json:"f1_after"`
	flDetection
	// BytesPerEdge counts, per edge, the subjects and payloads of the
	// messages it sent to the hub and of the hub's messages it received, as
	// a spy on the hub's server saw them cross.
	BytesPerEdge map[string]int `json:"bytes_per_edge"`
	// Bytes counts every message of the round at the hub (subjects and
	// payloads); HubBytesIn and HubBytesOut the payloads only, from the
	// coordinator's netfeat_fl_bytes_total.
	Bytes       int `json:"bytes"`
	HubBytesIn  int `json:"hub_bytes_in"`
	HubBytesOut int `json:"hub_bytes_out"`
	Messages    int `json:"messages"`
}

// flDemoReport is the demonstration's result (`netfeat fl demo --json`).
type flDemoReport struct {
	Source   string                    `json:"source"`
	Model    string                    `json:"model"`
	Dim      int                       `json:"dim"`
	Space    learning.FeatureSpace     `json:"feature_space"`
	Trainer  learning.FederatedOptions `json:"trainer"`
	ClipNorm float64                   `json:"clip_norm"`
	Edges    []flDemoSiteReport        `json:"edges"`
	HeldOut  flDemoSiteReport          `json:"held_out"`
	Episode  backtest.Episode          `json:"episode"` // the held-out congestion
	Rounds   []flDemoRound             `json:"rounds"`
	// BytesPerRound is each round's total at the hub (Rounds[i].Bytes);
	// MaxBytesPerEdgeRound the most one edge sent and received in one round.
	BytesPerRound        []int `json:"bytes_per_round"`
	MaxBytesPerEdgeRound int   `json:"max_bytes_per_edge_round"`
	// BLocalOnlyF1 scores, on the same held-out set, the same trainer run
	// for as many rounds on edge B's rows alone (no federation).
	BLocalOnlyF1        float64     `json:"b_local_only_f1"`
	BLocalOnlyDetection flDetection `json:"b_local_only_detection"`
	// Subjects are the distinct subjects seen at the hub, round numbers
	// replaced by <round>.
	Subjects []string `json:"subjects"`
	// Status is the coordinator's status, as `netfeat fl status --json`
	// prints it, with f1_before/f1_after.
	Status federated.Status `json:"status"`
	Wall   string           `json:"wall_time"`

	// For the test: every edge's raw and transformed feature rows, and
	// every message seen at the hub.
	rows [][]float64
	msgs []flSeen
}

// flSeen is a message the spy saw at the hub.
type flSeen struct {
	subj string
	data []byte
}

func newFLDemoCmd() *cobra.Command {
	var (
		o       flDemoOptions
		jsonOut bool
	)
	cmd := &cobra.Command{
		Use:   "demo [--rounds K] [--speed N] [--json]",
		Short: "Demonstrate federated learning: an edge that never saw a congestion detects one after K rounds",
		Long: `Run a federated learning demonstration on this machine, on loopback only.

Three edges each run a digital twin of demo devices into the real pipeline
(normalizer, feature store; sandboxed, as netfeat twin) and label the
closed 1-minute interface windows with their scenarios' incidents: edge A's
Nokia uplink congests every 3 minutes; edge B's devices have input errors
and a link down, edge C's (another site's Nokia and Cisco, busier) input
errors and link flaps, but neither ever a congestion. A held-out twin run of edge B's
devices has a congestion on its Cisco's GigabitEthernet0/0/0/0, which B
never trained on.

An embedded NATS hub and one NATS server per edge (leaf nodes of the hub,
on 127.0.0.1, random ports) carry K federated rounds (secure aggregation,
min_edges 3: all three edges in every round): each edge trains a logistic
regression on its own windows, in a feature space fixed for every edge, and
sends only its masked update. After each
round the report shows F1 on B's held-out windows before and after,
whether B's held-out congestion is detected and how long after it began,
and the bytes each edge exchanged with the hub; and, for comparison, the
same trainer on B's windows alone.`,
		Example: `  netfeat fl demo
  netfeat fl demo --rounds 3 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			log, err := twinLogger(cmd)
			if err != nil {
				return err
			}
			o.log = log
			rep, err := runFLDemo(cmd.Context(), o)
			if err != nil {
				return err
			}
			if jsonOut {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			printFLDemo(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.rounds, "rounds", 5, "federated rounds to run")
	fl.Float64Var(&o.speed, "speed", 0, "run the twins at most this many times faster than real time (0: as fast as the pipeline takes it)")
	fl.IntVar(&o.epochs, "epochs", 20, "local gradient steps per round on each edge")
	fl.Float64Var(&o.lr, "learning-rate", 2, "local gradient step size")
	fl.Float64Var(&o.l2, "l2", 1e-3, "L2 penalty of the local training")
	fl.Float64Var(&o.posWeight, "positive-weight", 20, "how many times a congested window counts in the local loss (congested windows are about 1 in 60 of edge A's)")
	fl.Float64Var(&o.clipNorm, "clip-norm", 10, "each edge clips its update to this norm (federated.clip_norm)")
	fl.StringVar(&o.recordings, "recordings", "", "directory holding the SNMP recordings timos.snmprec and ericsson-ml.snmprec (default: the built-in copies)")
	fl.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	return cmd
}

// runFLDemo runs the demonstration: the twins, the NATS servers, the
// rounds.
func runFLDemo(ctx context.Context, o flDemoOptions) (*flDemoReport, error) {
	t0 := time.Now()
	if err := flDemoSpace.Validate(); err != nil {
		return nil, err
	}
	topt := learning.FederatedOptions{Epochs: o.epochs, LearningRate: o.lr, L2: o.l2, PositiveWeight: o.posWeight}
	var sites []*flSiteData
	for _, s := range []flDemoSite{flDemoA, flDemoB, flDemoC, flDemoHeldOut} {
		d, err := runFLDemoTwin(ctx, s, o)
		if err != nil {
			return nil, fmt.Errorf("fl demo: %s %s twin: %w", s.name, s.what, err)
		}
		sites = append(sites, d)
	}
	edges, b, held := sites[:3], sites[1], sites[3]
	var episode *backtest.Episode
	for i, e := range held.episodes {
		if e.Kind == string(scenario.Congestion) {
			episode = &held.episodes[i]
			break
		}
	}
	switch {
	case episode == nil:
		return nil, errors.New("fl demo: the held-out run has no congestion episode")
	}
	for _, d := range edges[1:] {
		if slices.ContainsFunc(d.windows, func(w flWindow) bool { return w.label == 1 }) {
			return nil, fmt.Errorf("fl demo: %s's training windows hold a congestion: the demonstration needs it never to have seen one", d.site.name)
		}
	}
	if err := held.ds.Validate(1); err != nil {
		return nil, fmt.Errorf("fl demo: held-out set: %w", err)
	}

	rep := &flDemoReport{
		Source: "twin: the demo's devices, sandboxed pipeline (normalizer, feature store), view interface_1m",
		Model:  flDemoModel, Dim: len(flDemoSpace) + 1, Space: flDemoSpace, Trainer: topt, ClipNorm: o.clipNorm,
		HeldOut: held.report(), Episode: *episode,
	}
	for _, d := range edges {
		rep.Edges = append(rep.Edges, d.report())
		rep.rows = append(rep.rows, d.raw...)
		for _, w := range d.windows {
			rep.rows = append(rep.rows, w.x)
		}
	}

	// B alone: the same trainer, as many rounds, the same clipping.
	trB, err := learning.NewFederatedTrainer(b.ds, topt)
	if err != nil {
		return nil, fmt.Errorf("fl demo: edge B: %w", err)
	}
	local := make([]float64, rep.Dim)
	for range o.rounds {
		u, _, err := trB.Train(ctx, local)
		if err != nil {
			return nil, fmt.Errorf("fl demo: B alone: %w", err)
		}
		clipTo(u, o.clipNorm)
		for j := range local {
			local[j] += u[j]
		}
	}
	rep.BLocalOnlyDetection, rep.BLocalOnlyF1, err = detect(local, held, *episode)
	if err != nil {
		return nil, err
	}

	if err := runFLRounds(ctx, o, topt, edges, held, *episode, rep); err != nil {
		return nil, err
	}
	rep.Wall = time.Since(t0).Round(time.Millisecond).String()
	return rep, nil
}

// clipTo scales u down to norm c when it is longer.
func clipTo(u []float64, c float64) {
	var s float64
	for _, v := range u {
		s += v * v
	}
	if n := math.Sqrt(s); n > c {
		for j := range u {
			u[j] *= c / n
		}
	}
}

// runFLDemoTwin runs a site's twin and labels its closed windows of
// interface_1m.
func runFLDemoTwin(ctx context.Context, s flDemoSite, o flDemoOptions) (*flSiteData, error) {
	dir, err := os.MkdirTemp("", "netfeat-fl-demo-")
	if err != nil {
		return nil, fmt.Errorf("sandbox data directory: %w", err)
	}
	defer os.RemoveAll(dir)
	quietGlog(dir)
	setup, err := twinConfig(dir)
	if err != nil {
		return nil, err
	}
	start := twin.Begin(time.Now(), s.duration)
	scen := map[string]*scenario.Scenario{}
	var devices []twin.Device
	for _, dev := range s.devices {
		i := slices.IndexFunc(demoDevices, func(d demoDevice) bool { return d.target == dev.target })
		if i < 0 {
			return nil, fmt.Errorf("%s is not a demo device", dev.target)
		}
		data, err := fs.ReadFile(examples.Demo, dev.scenario)
		if err != nil {
			return nil, fmt.Errorf("embedded scenario: %w", err)
		}
		sc, err := scenario.Parse("examples/"+dev.scenario, data)
		if err != nil {
			return nil, err
		}
		scen[dev.target] = sc
		td, err := demoTwinDevice(setup.cfg, demoScenario{device: demoDevices[i], sc: sc}, o.recordings, start, o.log)
		if err != nil {
			return nil, err
		}
		devices = append(devices, td)
	}
	var (
		mu   sync.Mutex
		rows []*schema.FeatureRow
	)
	res, err := twin.Run(ctx, twin.Options{
		Config: setup.cfg, DataDir: filepath.Join(dir, "data"), Devices: devices, Start: start, Duration: s.duration,
		Speed: o.speed, Log: o.log,
		OnWindow: func(row *schema.FeatureRow) {
			if row.View != trainingView {
				return
			}
			mu.Lock()
			rows = append(rows, row)
			mu.Unlock()
		},
	})
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].WindowEnd != rows[j].WindowEnd {
			return rows[i].WindowEnd < rows[j].WindowEnd
		}
		if rows[i].Device != rows[j].Device {
			return rows[i].Device < rows[j].Device
		}
		return rows[i].Component < rows[j].Component
	})
	d := &flSiteData{site: s, start: start, run: res, ds: &learning.Dataset{Names: flDemoSpace.Names()}}
	for _, e := range res.Episodes {
		if e.Kind != backtest.Hot {
			d.episodes = append(d.episodes, e)
		}
	}
	raw := make([]float64, len(flDemoSpace))
	for _, r := range rows {
		end := time.Unix(0, r.WindowEnd)
		at := end.Sub(start)
		if at < trainingWindow {
			continue // a partial window: the run had not lasted a minute yet
		}
		for j, name := range flDemoSpace.Names() {
			v, ok := r.Feature(name)
			if !ok {
				return nil, fmt.Errorf("view %s has no feature %s", r.View, name)
			}
			raw[j] = v
		}
		x, err := flDemoSpace.Apply(nil, raw)
		if err != nil {
			return nil, fmt.Errorf("window of %s/%s ending %s: %w", r.Device, r.Component, end.Format(time.RFC3339), err)
		}
		label := 0.0
		if sc := scen[r.Device]; sc != nil {
			switch {
			case congestedAt(sc, r.Component, at):
				label = 1
			case congestedWithin(sc, r.Component, at-trainingWindow, at):
				label = -1
			}
		}
		d.windows = append(d.windows, flWindow{device: r.Device, component: r.Component, end: end, x: x, label: label})
		d.raw = append(d.raw, slices.Clone(raw))
		if label >= 0 {
			if err := d.ds.Add(x, label); err != nil {
				return nil, err
			}
		}
	}
	if d.ds.Len() == 0 {
		return nil, errors.New("no full window of " + trainingView)
	}
	return d, nil
}

// detect scores the held-out windows with weights w: window-level F1 on
// the labelled windows, and whether the episode was detected.
func detect(w []float64, held *flSiteData, ep backtest.Episode) (flDetection, float64, error) {
	score := learning.WeightsScorer(w)
	m, err := learning.Evaluate(held.ds, score, flDemoThreshold)
	if err != nil {
		return flDetection{}, 0, fmt.Errorf("fl demo: score the held-out set: %w", err)
	}
	det := flDetection{Precision: m.Precision, Recall: m.Recall, TP: m.TP, FP: m.FP, FN: m.FN}
	for _, win := range held.windows {
		if win.device != ep.Device || win.component != ep.Component || win.end.Before(ep.Start) || win.end.After(ep.End.Add(flDemoGrace)) {
			continue
		}
		p, err := score(win.x)
		if err != nil {
			return flDetection{}, 0, err
		}
		if p >= flDemoThreshold {
			end := win.end
			lead := end.Sub(ep.Start).Seconds()
			det.Detected, det.FirstWindowEnd, det.LeadSeconds = true, &end, &lead
			break
		}
	}
	return det, m.F1, nil
}

// runFLRounds starts the hub and the edges' NATS servers, the coordinator
// and the participants, and runs the rounds: every edge takes part in every
// round (min_edges, expect and max_edges are the number of edges).
func runFLRounds(ctx context.Context, o flDemoOptions, topt learning.FederatedOptions, edges []*flSiteData, held *flSiteData, ep backtest.Episode, rep *flDemoReport) error {
	n := len(edges)
	cfg := federated.Config{
		Model: flDemoModel, Dim: rep.Dim, MinEdges: n, MaxEdges: n, Expect: n, Deadline: 10 * time.Second,
		ClipNorm: o.clipNorm, Interval: time.Hour,
	}
	hubOpts := &server.Options{
		ServerName: "hub", Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		LeafNode: server.LeafNodeOpts{Host: "127.0.0.1", Port: -1},
	}
	hub, err := startFLDemoServer(hubOpts)
	if err != nil {
		return err
	}
	defer shutdownFLServer(hub)
	hubNC, err := nats.Connect(hub.ClientURL(), nats.Name("fl-demo-hub"))
	if err != nil {
		return fmt.Errorf("fl demo: connect to the hub: %w", err)
	}
	defer hubNC.Close()

	// The spy: everything that crosses to the hub, as the hub sees it.
	spyNC, err := nats.Connect(hub.ClientURL(), nats.Name("fl-demo-spy"))
	if err != nil {
		return fmt.Errorf("fl demo: connect the spy: %w", err)
	}
	defer spyNC.Close()
	var (
		mu   sync.Mutex
		msgs []flSeen
	)
	if _, err := spyNC.Subscribe(">", func(m *nats.Msg) {
		mu.Lock()
		msgs = append(msgs, flSeen{subj: m.Subject, data: slices.Clone(m.Data)})
		mu.Unlock()
	}); err != nil {
		return fmt.Errorf("fl demo: spy: %w", err)
	}
	if err := spyNC.Flush(); err != nil {
		return fmt.Errorf("fl demo: spy: %w", err)
	}

	reg := prometheus.NewRegistry()
	c, err := federated.NewCoordinator(cfg, hubNC, reg, o.log)
	if err != nil {
		return err
	}
	var evalErr error
	c.SetEvaluator(func(w []float64) (float64, bool) {
		m, err := learning.Evaluate(held.ds, learning.WeightsScorer(w), flDemoThreshold)
		if err != nil {
			evalErr = err
			return 0, false
		}
		return m.F1, true
	})
	if err := c.Subscribe(); err != nil {
		return err
	}

	// What each edge subscribes to: the hub's messages of the model.
	startSubs := federated.DefaultSubjectPrefix + "." + flDemoModel + ".*." + federated.PhaseStart
	var ps []*federated.Participant
	defer func() {
		for _, p := range ps {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = p.Stop(sctx)
			cancel()
		}
	}()
	for _, d := range edges {
		leaf, err := startFLDemoLeaf(d.site.name, hubOpts.LeafNode.Port)
		if err != nil {
			return err
		}
		defer shutdownFLServer(leaf)
		nc, err := nats.Connect(leaf.ClientURL(), nats.Name("fl-demo-"+d.site.name))
		if err != nil {
			return fmt.Errorf("fl demo: connect to %s's server: %w", d.site.name, err)
		}
		defer nc.Close()
		tr, err := learning.NewFederatedTrainer(d.ds, topt)
		if err != nil {
			return fmt.Errorf("fl demo: %s: %w", d.site.name, err)
		}
		p, err := federated.NewParticipant(cfg, d.site.name, nc, tr, prometheus.NewRegistry(), o.log)
		if err != nil {
			return err
		}
		if err := p.Start(ctx); err != nil {
			return err
		}
		ps = append(ps, p)
		// The hub's subscriptions must reach the edge's server, so that its
		// keys and updates cross.
		keys := federated.Subject(federated.DefaultSubjectPrefix, flDemoModel, 1, federated.PhaseKeys, d.site.name)
		if err := waitFL(ctx, "the hub's interest at "+d.site.name, func() bool { return leaf.GlobalAccount().Interest(keys) > 0 }); err != nil {
			return err
		}
	}
	// And every edge's subscriptions the hub's (its leaf connections').
	if err := waitFL(ctx, "the edges' interest at the hub", func() bool {
		lz, err := hub.Leafz(&server.LeafzOptions{Subscriptions: true})
		if err != nil {
			return false
		}
		k := 0
		for _, l := range lz.Leafs {
			if slices.Contains(l.Subs, startSubs) {
				k++
			}
		}
		return k == n
	}); err != nil {
		return err
	}

	bytesIn := func() float64 { return counterValue(reg, "netfeat_fl_bytes_total", "in") }
	bytesOut := func() float64 { return counterValue(reg, "netfeat_fl_bytes_total", "out") }
	seen := 0
	for k := 1; k <= o.rounds; k++ {
		in0, out0 := bytesIn(), bytesOut()
		st := c.RunRound(ctx)
		if evalErr != nil {
			return fmt.Errorf("fl demo: evaluate: %w", evalErr)
		}
		if st.Result != "completed" {
			return fmt.Errorf("fl demo: round %d: %s: %s", st.Round, st.Result, st.Error)
		}
		w, v := c.Global()
		for _, p := range ps {
			if err := waitFL(ctx, "the edges to hold the new global", func() bool { _, pv := p.Global(); return pv == v }); err != nil {
				return err
			}
		}
		if err := spyNC.Flush(); err != nil {
			return fmt.Errorf("fl demo: spy: %w", err)
		}
		globalSubj := federated.Subject(federated.DefaultSubjectPrefix, flDemoModel, st.Round, federated.PhaseGlobal, "")
		if err := waitFL(ctx, "the global message at the spy", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.ContainsFunc(msgs[seen:], func(m flSeen) bool { return m.subj == globalSubj })
		}); err != nil {
			return err
		}
		det, _, err := detect(w, held, ep)
		if err != nil {
			return err
		}
		r := flDemoRound{Round: st.Round, Result: st.Result, Samples: st.Samples, Edges: st.Edges, Updates: st.Updates, F1Before: st.F1Before, F1After: st.F1After,
			flDetection: det, BytesPerEdge: map[string]int{}, HubBytesIn: int(bytesIn() - in0), HubBytesOut: int(bytesOut() - out0)}
		mu.Lock()
		broadcast := 0
		for _, m := range msgs[seen:] {
			rnd, _, edge, ok := parseFLSubject(m.subj)
			if !ok || rnd != st.Round {
				continue
			}
			size := len(m.subj) + len(m.data)
			r.Messages++
			r.Bytes += size
			if edge == "" {
				broadcast += size
			} else {
				r.BytesPerEdge[edge] += size
			}
		}
		seen = len(msgs)
		mu.Unlock()
		for _, d := range edges {
			r.BytesPerEdge[d.site.name] += broadcast
			rep.MaxBytesPerEdgeRound = max(rep.MaxBytesPerEdgeRound, r.BytesPerEdge[d.site.name])
		}
		rep.Rounds = append(rep.Rounds, r)
		rep.BytesPerRound = append(rep.BytesPerRound, r.Bytes)
	}
	rep.Status = c.Status()
	mu.Lock()
	rep.msgs = slices.Clone(msgs)
	subjects := map[string]bool{}
	for _, m := range msgs {
		if _, phase, edge, ok := parseFLSubject(m.subj); ok {
			s := federated.DefaultSubjectPrefix + "." + flDemoModel + ".<round>." + phase
			if edge != "" {
				s += "." + edge
			}
			subjects[s] = true
		} else {
			subjects[m.subj] = true
		}
	}
	mu.Unlock()
	for s := range subjects {
		rep.Subjects = append(rep.Subjects, s)
	}
	slices.Sort(rep.Subjects)
	return nil
}

// parseFLSubject splits a subject of the demonstration's model into its
// round, phase and edge ("" for the hub's).
func parseFLSubject(subj string) (uint64, string, string, bool) {
	rest, ok := strings.CutPrefix(subj, federated.DefaultSubjectPrefix+"."+flDemoModel+".")
	if !ok {
		return 0, "", "", false
	}
	parts := strings.Split(rest, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, "", "", false
	}
	rnd, err := strconv.ParseUint(parts[0], 10, 64)
	if err != nil {
		return 0, "", "", false
	}
	edge := ""
	if len(parts) == 3 {
		edge = parts[2]
	}
	return rnd, parts[1], edge, true
}

// counterValue returns the value of counter name with the label value
// lv in reg (0 when absent).
func counterValue(reg prometheus.Gatherer, name, lv string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == lv {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// waitFL polls cond every 10 ms until it holds, for at most 10 s.
func waitFL(ctx context.Context, what string, cond func() bool) error {
	end := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			return fmt.Errorf("fl demo: timed out waiting for %s", what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("fl demo: waiting for %s: %w", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// startFLDemoServer starts an embedded NATS server.
func startFLDemoServer(opts *server.Options) (*server.Server, error) {
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("fl demo: NATS server %s: %w", opts.ServerName, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		shutdownFLServer(srv)
		return nil, fmt.Errorf("fl demo: NATS server %s not ready", opts.ServerName)
	}
	return srv, nil
}

// startFLDemoLeaf starts an edge's NATS server as a leaf node of the hub
// whose leafnode listener is on 127.0.0.1:port, denying netfeat.> both ways
// as the service's edges do.
func startFLDemoLeaf(name string, port int) (*server.Server, error) {
	if port <= 0 {
		return nil, fmt.Errorf("fl demo: the hub's leafnode port is %d", port)
	}
	u := &url.URL{Scheme: "nats-leaf", Host: "127.0.0.1:" + strconv.Itoa(port)}
	srv, err := startFLDemoServer(&server.Options{
		ServerName: name, Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true,
		LeafNode: server.LeafNodeOpts{
			ReconnectInterval: 100 * time.Millisecond,
			Remotes: []*server.RemoteLeafOpts{{
				URLs: []*url.URL{u}, DenyImports: []string{"netfeat.>"}, DenyExports: []string{"netfeat.>"},
			}},
		},
	})
	if err != nil {
		return nil, err
	}
	if err := waitFL(context.Background(), name+"'s leaf connection", func() bool { return srv.NumLeafNodes() > 0 }); err != nil {
		shutdownFLServer(srv)
		return nil, err
	}
	return srv, nil
}

func shutdownFLServer(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// printFLDemo prints the report as text.
func printFLDemo(w io.Writer, r *flDemoReport) {
	fmt.Fprintf(w, "netfeat fl demo: model %s, %d weights (%d features of interface_1m and a bias); %s\n", r.Model, r.Dim, r.Dim-1, r.Source)
	for _, s := range append(slices.Clone(r.Edges), r.HeldOut) {
		fmt.Fprintf(w, "== %s %s: %s (%s), %s of virtual time in %s: %d windows, %d congested, %d left out (a congestion ended within the window)\n",
			s.Edge, s.Set, strings.Join(s.Devices, ", "), strings.Join(s.Scenarios, ", "), s.Virtual, s.Wall, s.Windows, s.Positives, s.Ambiguous)
	}
	e := r.Episode
	fmt.Fprintf(w, "== held-out congestion: %s/%s from %s to %s (never in edge B's training windows)\n",
		e.Device, e.Component, e.Start.Format(time.TimeOnly), e.End.Format(time.TimeOnly))
	fmt.Fprintf(w, "== trainer: %d local steps per round, learning rate %g, L2 %g, congested windows weigh %g; updates clipped to norm %g; hub and edges' NATS servers on 127.0.0.1\n",
		r.Trainer.Epochs, r.Trainer.LearningRate, r.Trainer.L2, r.Trainer.PositiveWeight, r.ClipNorm)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "ROUND\tRESULT\tEDGES\tSAMPLES\tF1 BEFORE\tF1 AFTER\tPRECISION\tRECALL\tB DETECTS\tLEAD"
	for _, e := range r.Edges {
		head += "\tBYTES " + e.Edge
	}
	fmt.Fprintln(tw, head+"\tHUB IN\tHUB OUT")
	for _, x := range r.Rounds {
		line := fmt.Sprintf("%d\t%s\t%d\t%d\t%s\t%s\t%.3f\t%.3f\t%s\t%s", x.Round, x.Result, x.Updates, x.Samples, f1Cell(x.F1Before), f1Cell(x.F1After),
			x.Precision, x.Recall, yesNo(x.Detected), leadCell(x.LeadSeconds))
		for _, e := range r.Edges {
			line += fmt.Sprintf("\t%d", x.BytesPerEdge[e.Edge])
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\n", line, x.HubBytesIn, x.HubBytesOut)
	}
	_ = tw.Flush()
	l := r.BLocalOnlyDetection
	fmt.Fprintf(w, "== B alone (the same trainer, %d rounds on edge B's windows only): F1 %.3f, precision %.3f, recall %.3f, detects: %s\n",
		len(r.Rounds), r.BLocalOnlyF1, l.Precision, l.Recall, yesNo(l.Detected))
	fmt.Fprintf(w, "== at most %d bytes per edge per round; subjects seen at the hub: %s\n", r.MaxBytesPerEdgeRound, strings.Join(r.Subjects, " "))
	fmt.Fprintf(w, "== took %s\n", r.Wall)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func leadCell(s *float64) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%+.0fs", *s)
}
