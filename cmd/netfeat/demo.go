package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/netfeat/netfeat/examples"
	"github.com/netfeat/netfeat/inference/watch"
	"github.com/netfeat/netfeat/internal/apiclient"
	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
	"github.com/netfeat/netfeat/internal/sim/scenario"
	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/models"
	"github.com/netfeat/netfeat/query"
	"github.com/netfeat/netfeat/recording"
	"github.com/netfeat/netfeat/schema"
	"github.com/netfeat/netfeat/service"
	"github.com/netfeat/netfeat/testdata"
)

func init() { extraCommands = append(extraCommands, newDemoCmd) }

// demoDevice is one simulated device of the demo: the service target it
// stands behind (examples/demo.yaml) and what it replays. Its scenario is
// examples/demo-scenarios/<target>.yaml.
type demoDevice struct {
	target    string
	what      string // shown in the banner
	recording string // SNMP: file in --recordings; empty for the gNMI router
}

var demoDevices = []demoDevice{
	{target: "nokia-7210", what: "Nokia 7210 SAS, SNMP v2c", recording: "timos.snmprec"},
	{target: "ericsson-ml", what: "Ericsson MINI-LINK 6352, SNMP v2c", recording: "ericsson-ml.snmprec"},
	{target: "cisco-xr1", what: "Cisco IOS-XR, gNMI (embedded MDT capture)"},
}

// demoModelFile is the model path examples/demo.yaml names; the demo writes
// the embedded copy into the data directory and points the config there.
const demoModelFile = "models/congestion.json"

type demoOptions struct {
	httpListen string
	natsListen string
	duration   time.Duration
	dataDir    string
	recordings string
	speed      float64
	all        bool
	status     time.Duration
	// scenarios, when set, is a directory holding <target>.yaml for each
	// device, used instead of the embedded examples/demo-scenarios.
	scenarios string
	// trainingSet, when set, is where the run's interface_1m windows are
	// written at the end, labelled with the scenarios' ground truth
	// (demotrain.go).
	trainingSet string
}

func newDemoCmd() *cobra.Command {
	o := demoOptions{status: 15 * time.Second}
	cmd := &cobra.Command{
		Use:   "demo [--http-listen ADDR] [--nats-listen ADDR] [--duration D]",
		Short: "Run the live demo: simulated devices with scripted incidents, the real pipeline, decisions printed live",
		Long: `Run netfeat end to end in one process, on loopback only: an embedded NATS
server, three simulated devices replaying real recordings (a Nokia 7210 and an
Ericsson MINI-LINK over SNMP, a Cisco IOS-XR router over gNMI), the real
pipeline (collectors, normalizer, feature store, inference) configured by the
embedded examples/demo.yaml, and the decisions printed live as they land on
NATS, in the format of netfeat watch.

The devices follow examples/demo-scenarios/: a steady load, then a congestion
episode on the Nokia's uplink (0:20–1:35) and, on the Cisco, input errors
climbing (0:45) before a link goes down (1:00–1:40); the timeline repeats
every three minutes. --speed N plays it N times faster.

Only decisions with an action are printed (--all prints every one), with a
status line every 15 s; at the end, a summary per model and device and what
each scripted incident triggered. The SNMP recordings are built in
(testdata/snmp/timos.snmprec and ericsson-ml.snmprec); --recordings reads
them from a directory instead.`,
		Example: `  netfeat demo
  netfeat demo --duration 2m
  netfeat demo --http-listen 127.0.0.1:19464 --nats-listen 127.0.0.1:14222 --speed 4 --duration 40s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.speed <= 0 {
				return fmt.Errorf("--speed must be positive, got %v", o.speed)
			}
			if o.duration < 0 {
				return fmt.Errorf("--duration must not be negative, got %v", o.duration)
			}
			level, _ := cmd.Flags().GetString("log-level")
			format, _ := cmd.Flags().GetString("log-format")
			if level == "" {
				level = "warn" // the decisions are the output; warnings and errors still show
			}
			if format == "" {
				format = "text"
			}
			log, err := service.NewLogger(cmd.ErrOrStderr(), level, format)
			if err != nil {
				return err
			}
			return runDemo(cmd.Context(), o, cmd.OutOrStdout(), log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.httpListen, "http-listen", "127.0.0.1:9464", "HTTP API address (query, metrics, models)")
	f.StringVar(&o.natsListen, "nats-listen", "127.0.0.1:4222", "embedded NATS server address (decisions)")
	f.Var((*secondsOrDuration)(&o.duration), "duration", "stop after this long, e.g. 90s, 2m or 60 (seconds); 0 runs until Ctrl-C")
	f.StringVar(&o.dataDir, "data-dir", "", "keep the feature store, registry and outbox here (default: a temporary directory removed at exit)")
	f.StringVar(&o.recordings, "recordings", "", "directory holding the SNMP recordings timos.snmprec and ericsson-ml.snmprec (default: the built-in copies)")
	f.Float64Var(&o.speed, "speed", 1, "play the scenarios' timeline this many times faster")
	f.BoolVar(&o.all, "all", false, `print every decision, also those whose action is "none"`)
	f.StringVar(&o.scenarios, "scenarios", "", "directory with a scenario per device (nokia-7210.yaml, ericsson-ml.yaml, cisco-xr1.yaml) instead of the built-in ones")
	f.StringVar(&o.trainingSet, "training-set", "", "at the end, write the run's interface_1m windows labelled with the scenarios' ground truth to this .csv or .parquet file (models/README.md)")
	return cmd
}

// secondsOrDuration is a duration flag that also takes a bare number of
// seconds (DURATION=60 make demo).
type secondsOrDuration time.Duration

func (d *secondsOrDuration) String() string { return time.Duration(*d).String() }
func (d *secondsOrDuration) Type() string   { return "duration" }

func (d *secondsOrDuration) Set(s string) error {
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		*d = secondsOrDuration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration like 90s or 2m, or seconds: %w", err)
	}
	*d = secondsOrDuration(v)
	return nil
}

// runDemo runs the demo until ctx ends or o.duration has passed, then
// prints the summary.
func runDemo(ctx context.Context, o demoOptions, out io.Writer, log *slog.Logger) (err error) {
	start := time.Now()
	dataDir, keep := o.dataDir, o.dataDir != ""
	if keep {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
	} else {
		if dataDir, err = os.MkdirTemp("", "netfeat-demo-"); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		defer os.RemoveAll(dataDir)
	}
	quietGlog(dataDir)
	for _, l := range []struct{ addr, flag string }{{o.natsListen, "--nats-listen"}, {o.httpListen, "--http-listen"}} {
		if err := checkFree(l.addr); err != nil {
			return fmt.Errorf("%w (another netfeat running? %s chooses another address)", err, l.flag)
		}
	}

	scenarios, err := demoScenarios(o.scenarios, o.speed)
	if err != nil {
		return err
	}
	simStart := time.Now()
	sims, err := startDemoDevices(ctx, o.recordings, scenarios, log)
	if err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		err = errors.Join(err, sims.stop(stopCtx))
	}()

	cfg, err := demoConfig(o, dataDir, sims.addrs)
	if err != nil {
		return err
	}
	svc, err := service.New(cfg, service.NewRegistry(), log)
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	stopped := false
	stopService := func() error {
		if stopped {
			return nil
		}
		stopped = true
		return svc.Stop()
	}
	defer func() { err = errors.Join(err, stopService()) }()

	natsURL, httpURL := svc.NATS().ClientURL(), "http://"+svc.HTTP().Addr()
	nc, err := nats.Connect(natsURL, nats.Name("netfeat demo"))
	if err != nil {
		return fmt.Errorf("connect to the demo's NATS at %s: %w", natsURL, err)
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 8192)
	sub, err := nc.ChanSubscribe("netfeat.decisions.>", msgs)
	if err != nil {
		return fmt.Errorf("subscribe to decisions: %w", err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("subscribe to decisions: %w", err)
	}

	printBanner(out, o, sims, scenarios, dataDir, keep, natsURL, httpURL)
	tally := newDemoTally(start, simStart)
	printer := watch.NewPrinter(out, watch.Options{ActionsOnly: !o.all})
	var deadline <-chan time.Time
	if o.duration > 0 {
		deadline = time.After(o.duration - time.Since(start))
	}
	status := time.NewTicker(o.status)
	defer status.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		case <-status.C:
			fmt.Fprintf(out, "· %s  %s\n", sinceStart(time.Since(start)), tally.progress())
		case m := <-msgs:
			var d schema.Decision
			if err := json.Unmarshal(m.Data, &d); err == nil {
				tally.observe(d, time.Now())
			}
			if _, err := printer.Print(m.Data); err != nil {
				return fmt.Errorf("print decision: %w", err)
			}
		}
	}
	_ = sub.Unsubscribe()
	ran := time.Since(start)
	if o.trainingSet != "" && ctx.Err() == nil {
		client := &query.Client{Client: apiclient.Client{BaseURL: httpURL}}
		if err := writeTrainingSet(ctx, client, scenarios, simStart, o.trainingSet, out); err != nil {
			return err
		}
	}
	if err := stopService(); err != nil {
		return err
	}
	tally.summary(out, ran, scenarios)
	return nil
}

// checkFree fails when addr cannot be listened on (most often: in use),
// before anything starts, so the demo does not stop half-way with a
// component's timeout.
func checkFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	return l.Close()
}

// quietGlog sends the glog output of openconfig's gNMI packages (one line
// per subscription) to files in dir instead of the terminal.
func quietGlog(dir string) {
	_ = flag.Set("logtostderr", "false")
	_ = flag.Set("stderrthreshold", "FATAL")
	_ = flag.Set("log_dir", dir)
}

// demoScenario is one device's scenario.
type demoScenario struct {
	device demoDevice
	sc     *scenario.Scenario
}

// demoScenarios loads each device's scenario, sped up: the embedded one,
// or dir/<target>.yaml when dir is set.
func demoScenarios(dir string, speed float64) ([]demoScenario, error) {
	out := make([]demoScenario, len(demoDevices))
	for i, d := range demoDevices {
		name := "demo-scenarios/" + d.target + ".yaml"
		data, err := fs.ReadFile(examples.Demo, name)
		if err != nil {
			return nil, fmt.Errorf("embedded scenario: %w", err)
		}
		name = "examples/" + name
		if dir != "" {
			name = filepath.Join(dir, d.target+".yaml")
			if data, err = os.ReadFile(name); err != nil {
				return nil, fmt.Errorf("scenarios %s: each demo device needs its scenario: %w", dir, err)
			}
		}
		sc, err := scenario.Parse(name, data)
		if err != nil {
			return nil, err
		}
		out[i] = demoScenario{device: d, sc: sc.Faster(speed)}
	}
	return out, nil
}

// demoSims are the running simulators and the address of each target.
type demoSims struct {
	snmp  *snmpagent.Simulator
	gnmi  *gnmitarget.Server
	addrs map[string]string
}

func (s *demoSims) stop(ctx context.Context) error {
	var err error
	if s.gnmi != nil {
		err = s.gnmi.Stop(ctx)
	}
	if s.snmp != nil {
		err = errors.Join(err, s.snmp.Stop(ctx))
	}
	return err
}

// startDemoDevices starts the SNMP agents and the gNMI target on random
// loopback ports, each following its scenario.
func startDemoDevices(ctx context.Context, recordings string, scenarios []demoScenario, log *slog.Logger) (*demoSims, error) {
	s := &demoSims{snmp: snmpagent.NewSimulator(log), addrs: map[string]string{}}
	var gnmiScenario *scenario.Scenario
	for _, ds := range scenarios {
		if ds.device.recording == "" {
			gnmiScenario = ds.sc
			continue
		}
		mib, err := demoMIB(recordings, ds.device.recording)
		if err != nil {
			return nil, err
		}
		d, err := snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: ds.device.target, Community: "public", Scenario: ds.sc})
		if err != nil {
			return nil, err
		}
		if err := s.snmp.Add(d, "127.0.0.1:0"); err != nil {
			return nil, err
		}
	}
	if err := s.snmp.Start(ctx); err != nil {
		return nil, err
	}
	for _, ep := range s.snmp.Endpoints() {
		s.addrs[ep.Device.Name()] = ep.Addr
	}
	g, err := gnmitarget.New(gnmitarget.Options{Listen: "127.0.0.1:0", Platform: "iosxr", Interval: time.Second, Scenario: gnmiScenario}, log)
	if err == nil {
		err = g.Start(ctx)
	}
	if err != nil {
		return nil, errors.Join(err, s.stop(context.WithoutCancel(ctx)))
	}
	s.gnmi = g
	for _, d := range demoDevices {
		if d.recording == "" {
			s.addrs[d.target] = g.Addr()
		}
	}
	return s, nil
}

// demoMIB reads a device's recording from dir, or from the embedded copy
// of testdata/snmp when dir is empty.
func demoMIB(dir, name string) (*snmpagent.MIB, error) {
	if dir != "" {
		m, err := snmpagent.LoadMIB(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("--recordings %s must hold %s (leave it out for the built-in recordings): %w", dir, name, err)
		}
		return m, nil
	}
	f, err := testdata.Demo.Open("snmp/" + name)
	if err != nil {
		return nil, fmt.Errorf("embedded recording: %w", err)
	}
	defer f.Close()
	recs, err := recording.ReadSNMPRec(f, name)
	if err != nil {
		return nil, err
	}
	return snmpagent.NewMIB(recs)
}

// demoConfig is examples/demo.yaml with the simulators' addresses, the
// listen addresses, the data directory and the embedded model file.
func demoConfig(o demoOptions, dataDir string, addrs map[string]string) (*service.Config, error) {
	data, err := fs.ReadFile(examples.Demo, "demo.yaml")
	if err != nil {
		return nil, fmt.Errorf("embedded configuration: %w", err)
	}
	cfg, err := service.ParseConfig("examples/demo.yaml", data)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = dataDir
	cfg.HTTP.Listen, cfg.NATS.Listen = o.httpListen, o.natsListen
	placed := 0
	for i := range cfg.SNMP.Targets {
		if a, ok := addrs[cfg.SNMP.Targets[i].Name]; ok {
			cfg.SNMP.Targets[i].Address = a
			placed++
		}
	}
	for i := range cfg.GNMI.Targets {
		if a, ok := addrs[cfg.GNMI.Targets[i].Name]; ok {
			cfg.GNMI.Targets[i].Address = a
			placed++
		}
	}
	if placed != len(addrs) {
		return nil, fmt.Errorf("examples/demo.yaml: its targets do not match the simulated devices %v", slices.Sorted(mapsKeys(addrs)))
	}
	for i := range cfg.Inference.Models {
		if cfg.Inference.Models[i].File != demoModelFile {
			continue
		}
		path := filepath.Join(dataDir, demoModelFile)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("write the model: %w", err)
		}
		if err := os.WriteFile(path, models.Congestion, 0o644); err != nil {
			return nil, fmt.Errorf("write the model: %w", err)
		}
		cfg.Inference.Models[i].File = path
	}
	return cfg, nil
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// selfName is how to call this binary in the hints: as invoked, unless
// `go run` built it into a temporary directory.
func selfName() string {
	self := os.Args[0]
	if strings.Contains(self, "go-build") || filepath.IsAbs(self) && strings.HasPrefix(self, os.TempDir()) {
		return "netfeat"
	}
	return self
}

func printBanner(out io.Writer, o demoOptions, sims *demoSims, scenarios []demoScenario, dataDir string, keep bool, natsURL, httpURL string) {
	self := selfName()
	fmt.Fprintln(out, "netfeat demo: simulated devices replaying real recordings, the real pipeline, decisions live")
	fmt.Fprintln(out, "== devices")
	for _, d := range demoDevices {
		fmt.Fprintf(out, "   %-12s %-42s %s\n", d.target, d.what, sims.addrs[d.target])
	}
	type line struct {
		at   time.Duration
		text string
	}
	var lines []line
	var repeat time.Duration
	for _, ds := range scenarios {
		repeat = max(repeat, ds.sc.Repeat)
		for _, e := range ds.sc.Events {
			lines = append(lines, line{e.At, ds.device.target + "/" + e.String()})
		}
	}
	slices.SortStableFunc(lines, func(a, b line) int { return int(a.at - b.at) })
	head := "== scenario (times from the start"
	if repeat > 0 {
		head += fmt.Sprintf("; it repeats every %s", sinceStart(repeat)[1:])
	}
	if o.speed != 1 {
		head += fmt.Sprintf("; %g× speed", o.speed)
	}
	fmt.Fprintln(out, head+")")
	for _, l := range lines {
		fmt.Fprintf(out, "   %s\n", l.text)
	}
	fmt.Fprintf(out, "== web console: %s/ (actions live, devices, charts, SQL, models)\n", httpURL)
	fmt.Fprintln(out, "== while it runs, in another terminal")
	fmt.Fprintf(out, "   %s watch --nats %s --actions-only\n", self, natsURL)
	fmt.Fprintf(out, "   nats sub 'netfeat.decisions.>' --server %s\n", natsURL)
	fmt.Fprintf(out, "   %s query --server %s \"SELECT model, action, count(*) FROM decisions GROUP BY ALL ORDER BY ALL\"\n", self, httpURL)
	fmt.Fprintf(out, "   %s query --server %s \"SELECT * FROM devices\"\n", self, httpURL)
	fmt.Fprintf(out, "   %s models list --server %s\n", self, httpURL)
	fmt.Fprintf(out, "   curl -s %s/metrics | grep ^netfeat_\n", httpURL)
	if keep {
		fmt.Fprintf(out, "== data in %s\n", dataDir)
	} else {
		fmt.Fprintf(out, "== data in %s (removed at exit; --data-dir DIR keeps it)\n", dataDir)
	}
	stop := "Ctrl-C stops"
	if o.duration > 0 {
		stop = fmt.Sprintf("stops after %s or on Ctrl-C", o.duration)
	}
	if o.all {
		fmt.Fprintf(out, "== every decision, live (the first after the first 5 s window hop); %s\n", stop)
	} else {
		fmt.Fprintf(out, "== decisions with an action, live (--all shows every one); %s\n", stop)
	}
}

// sinceStart writes d as +m:ss.
func sinceStart(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("+%d:%02d", d/time.Minute, (d%time.Minute)/time.Second)
}

// demoTally counts the decisions the demo received and times each action's
// lifecycle against the scripted incidents.
type demoTally struct {
	start    time.Time // the demo's start, for +m:ss
	simStart time.Time // the simulators' start, from which scenario times count
	first    time.Duration
	total    int                              // decisions received (transitions and repeats)
	byModel  map[[2]string]*modelCount        // model, device
	byEntity map[string]map[string]*lifeTally // entity → model
}

type modelCount struct{ firing, resolved, repeats int }

// lifeTally is one (model, entity) action as the demo saw it.
type lifeTally struct {
	action, resolveAction     string
	firing, resolved, repeats int
	firstFiring, firstResolve time.Time // when received
	// eventLatency is, for an event-triggered firing or resolved, the time
	// from the device's timestamp of the change to the decision's arrival.
	fireEvent, resolveEvent time.Duration
}

func newDemoTally(start, simStart time.Time) *demoTally {
	return &demoTally{start: start, simStart: simStart, byModel: map[[2]string]*modelCount{}, byEntity: map[string]map[string]*lifeTally{}}
}

func (t *demoTally) observe(d schema.Decision, at time.Time) {
	if t.total == 0 {
		t.first = at.Sub(t.start)
	}
	t.total++
	k := [2]string{d.Model, d.Entity.Device}
	mc := t.byModel[k]
	if mc == nil {
		mc = &modelCount{}
		t.byModel[k] = mc
	}
	e := d.Entity.String()
	if t.byEntity[e] == nil {
		t.byEntity[e] = map[string]*lifeTally{}
	}
	lt := t.byEntity[e][d.Model]
	if lt == nil {
		lt = &lifeTally{}
		t.byEntity[e][d.Model] = lt
	}
	var evLat time.Duration
	if d.Event != nil && d.Trigger == schema.TriggerEvent {
		evLat = at.Sub(d.Event.Time)
	}
	switch {
	case d.State == schema.StateFiring && !d.Transition:
		mc.repeats++
		lt.repeats++
	case d.State == schema.StateFiring:
		mc.firing++
		lt.firing++
		lt.action = d.Action
		if lt.firstFiring.IsZero() {
			lt.firstFiring, lt.fireEvent = at, evLat
		}
	case d.State == schema.StateResolved:
		mc.resolved++
		lt.resolved++
		lt.resolveAction = d.Action
		if lt.firstResolve.IsZero() && !lt.firstFiring.IsZero() {
			lt.firstResolve, lt.resolveEvent = at, evLat
		}
	}
}

func (t *demoTally) progress() string {
	if t.total == 0 {
		return "no action yet (windows close every 5 s once two polls gave rates; only transitions are published)"
	}
	n := 0
	for _, mc := range t.byModel {
		n += mc.firing
	}
	return fmt.Sprintf("%d decisions published so far, %d of them firing", t.total, n)
}

// summary prints the transitions per model and device, and for each
// scripted incident how long after it each action fired and resolved.
func (t *demoTally) summary(out io.Writer, ran time.Duration, scenarios []demoScenario) {
	fmt.Fprintf(out, "== summary: ran %s; %d decisions published (lifecycle transitions and repeats; every decision is in SQL)", ran.Round(100*time.Millisecond), t.total)
	if t.total > 0 {
		fmt.Fprintf(out, "; the first came %s after the start", t.first.Round(100*time.Millisecond))
	}
	fmt.Fprintln(out)
	if t.total > 0 {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "   MODEL\tDEVICE\tFIRING\tRESOLVED\tREPEATS")
		keys := slices.SortedFunc(maps.Keys(t.byModel), func(a, b [2]string) int { return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1]) })
		for _, k := range keys {
			c := t.byModel[k]
			fmt.Fprintf(tw, "   %s\t%s\t%6d\t%8d\t%7d\n", k[0], k[1], c.firing, c.resolved, c.repeats)
		}
		tw.Flush()
	}
	fmt.Fprintln(out, "== what the scripted incidents triggered (times from the incident's scripted start and end)")
	scripted := map[string]bool{}
	for _, ds := range scenarios {
		byIface := map[string][]string{}
		begins := map[string]time.Duration{}
		spans := map[string][]incidentSpan{}
		var order []string
		for _, e := range ds.sc.Events {
			if byIface[e.Interface] == nil {
				order = append(order, e.Interface)
				begins[e.Interface] = e.At
			}
			byIface[e.Interface] = append(byIface[e.Interface], e.String())
			begins[e.Interface] = min(begins[e.Interface], e.At)
			spans[e.Interface] = append(spans[e.Interface], incidentSpan{t.simStart.Add(e.At), t.simStart.Add(e.Until), e.Ramp})
		}
		for _, iface := range order {
			entity := ds.device.target + "/" + iface
			scripted[entity] = true
			fmt.Fprintf(out, "   %s\n", strings.Join(prefixAll(ds.device.target+"/", byIface[iface]), "\n   "))
			if ran < begins[iface] && len(t.byEntity[entity]) == 0 {
				fmt.Fprintln(out, "      → not reached: the run ended before it began")
				continue
			}
			t.printActions(out, entity, spans[iface])
		}
	}
	var others []string
	for e, m := range t.byEntity {
		if !scripted[e] && fired(m) {
			others = append(others, e)
		}
	}
	slices.Sort(others)
	if len(others) == 0 {
		fmt.Fprintln(out, "   no action anywhere else")
		return
	}
	fmt.Fprintln(out, "== actions on other interfaces")
	for _, e := range others {
		fmt.Fprintf(out, "   %s\n", e)
		t.printActions(out, e, nil)
	}
}

func fired(m map[string]*lifeTally) bool {
	for _, lt := range m {
		if lt.firing > 0 {
			return true
		}
	}
	return false
}

func prefixAll(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

// printActions prints each model's lifecycle on entity: when it first
// fired and resolved, from the begin and end of the scripted incident that
// fired it (the last one begun before), and how many transitions it
// published.
func (t *demoTally) printActions(out io.Writer, entity string, incidents []incidentSpan) {
	lts := t.byEntity[entity]
	models := slices.Collect(maps.Keys(lts))
	slices.SortFunc(models, func(a, b string) int {
		return cmp.Or(lts[a].firstFiring.Compare(lts[b].firstFiring), strings.Compare(a, b))
	})
	n := 0
	for _, m := range models {
		lt := lts[m]
		if lt.firing == 0 {
			continue
		}
		n++
		var begin, end time.Time
		var ramp time.Duration
		for _, in := range incidents {
			if begin.IsZero() || !in.begin.After(lt.firstFiring) {
				begin, end, ramp = in.begin, in.end, in.ramp
			}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "      → %s %s: firing at %s", m, lt.action, sinceStart(lt.firstFiring.Sub(t.start)))
		if !begin.IsZero() {
			fmt.Fprintf(&b, ", %s after the incident began", demoLatency(lt.firstFiring.Sub(begin)))
			if d := lt.firstFiring.Sub(begin.Add(ramp)); ramp > 0 && d >= 0 {
				fmt.Fprintf(&b, " and %s after its ramp reached full strength", demoLatency(d))
			} else if ramp > 0 {
				fmt.Fprintf(&b, " and %s before its ramp reached full strength", demoLatency(-d))
			}
		}
		if lt.fireEvent > 0 {
			fmt.Fprintf(&b, " (%s after the device's timestamp of the change)", demoLatency(lt.fireEvent))
		}
		if !lt.firstResolve.IsZero() {
			fmt.Fprintf(&b, "; resolved (%s) at %s", lt.resolveAction, sinceStart(lt.firstResolve.Sub(t.start)))
			if !end.IsZero() {
				fmt.Fprintf(&b, ", %s after it ended", demoLatency(lt.firstResolve.Sub(end)))
			}
			if lt.resolveEvent > 0 {
				fmt.Fprintf(&b, " (%s after the device's timestamp)", demoLatency(lt.resolveEvent))
			}
		} else {
			b.WriteString("; not resolved yet")
		}
		fmt.Fprintf(&b, "; %d firing, %d resolved, %d repeats", lt.firing, lt.resolved, lt.repeats)
		fmt.Fprintln(out, b.String())
	}
	if n == 0 {
		fmt.Fprintln(out, "      → no action")
	}
}

// incidentSpan is a scripted incident's wall-clock begin and end, and its
// ramp.
type incidentSpan struct {
	begin, end time.Time
	ramp       time.Duration
}

// demoLatency rounds d for reading: ms below a second, 0.1 s above.
func demoLatency(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + demoLatency(-d)
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
