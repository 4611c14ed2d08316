package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/netfeat/netfeat/schema"
	"github.com/netfeat/netfeat/service"
)

// benchView is the feature view every workload configures: the inbound
// bit rate of every interface, windows of one hop. benchRule fires on every
// window, so each window close of each entity yields one decision.
const (
	benchView = "bench"
	benchRule = "bench_every_window"
)

// seriesFor is a store.max_series that holds every series of devices
// simulated routers of interfaces interfaces (about 29 per interface and
// 50 per device in the SNMP simulator's IF-MIB and system tables, with
// room to spare), or 0 when the default of 2,000,000 does: a bench of
// 5,000 routers would otherwise measure a store refusing most samples.
func seriesFor(devices, interfaces int) int {
	n := devices * (interfaces*40 + 100)
	if n <= 2_000_000 {
		return 0
	}
	return n
}

// endpoint is a device the service polls or subscribes to.
type endpoint struct{ name, addr string }

// serviceSetup is what the bench puts in the service's configuration file.
type serviceSetup struct {
	dataDir      string
	httpListen   string
	natsListen   string
	memoryBudget int64
	memoryLimit  int64 // memory_limit; 0: none
	// maxSeries is store.max_series; 0 keeps the default (2,000,000),
	// which a few thousand polled routers exceed.
	maxSeries int
	hop       time.Duration
	lateness  time.Duration
	snmp      []endpoint
	gnmi      []endpoint
	interval  time.Duration
	// events: the trap listener, the router polled for its interface
	// names and the gNMI target streaming oper-status ON_CHANGE.
	events *eventSetup
	cpus   string // taskset -c list for a child service; empty: any CPU
	// edge, when set, makes the service a fleet edge (role edge, its
	// embedded NATS server a leaf node of the hub) forwarding every sample.
	edge *edgeSetup
}

// edgeSetup is what the fleet bench adds to an edge's configuration.
type edgeSetup struct {
	site, leafURL string
}

// eventSetup is what --events adds to the service's configuration.
type eventSetup struct {
	trapListen, trapRouter, gnmiTarget string
}

// yaml renders the configuration file.
func (s serviceSetup) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by netfeat bench\ndata_dir: %q\nshutdown_timeout: 30s\n", s.dataDir)
	fmt.Fprintf(&b, "log: {level: warn, format: json}\nhttp: {listen: %q}\n", s.httpListen)
	if e := s.edge; e != nil {
		fmt.Fprintf(&b, "role: edge\nsite: %s\nnats:\n  listen: %q\n  leaf: {remotes: [{urls: [%q]}]}\n", e.site, s.natsListen, e.leafURL)
		b.WriteString("fleet:\n  edge: {sample_forwarding: {mode: all}}\n")
	} else {
		fmt.Fprintf(&b, "nats: {listen: %q, jetstream: false}\n", s.natsListen)
	}
	if s.maxSeries > 0 {
		fmt.Fprintf(&b, "store: {memory_budget: %d, max_series: %d}\n", s.memoryBudget, s.maxSeries)
	} else {
		fmt.Fprintf(&b, "store: {memory_budget: %d}\n", s.memoryBudget)
	}
	if s.memoryLimit > 0 {
		fmt.Fprintf(&b, "memory_limit: %d\n", s.memoryLimit)
	}
	b.WriteString(s.viewYAML())
	// publish: all, so that every window close of every entity yields a
	// decision on NATS (by default only lifecycle transitions are).
	fmt.Fprintf(&b, "inference:\n  publish: all\n  rules:\n    - {name: %s, view: %s, feature: %s, op: \">=\", threshold: 0, action: alert}\n",
		benchRule, benchView, schema.FeatureName("interface.in.bps", schema.AggCount, s.hop))
	if e := s.events; e != nil {
		// Each interface flaps many times a minute: the flap guard (6
		// transitions a minute per entity by default) is turned off so
		// that every change gets its decision.
		fmt.Fprintf(&b, "  lifecycle: {flap_limit: 0}\n  event_rules:\n    - {name: %s, metric: interface.oper_status, op: \"!=\", state: up, action: reroute, resolve_action: restore}\n", eventRule)
		fmt.Fprintf(&b, "snmp:\n  trap_listen: %q\n  defaults: {version: \"2c\", community: public, interval: %s, timeout: 2s, retries: 1}\n  targets:\n    - {name: %q, address: %q}\n",
			e.trapListen, eventPollInterval, trapDeviceName, e.trapRouter)
		fmt.Fprintf(&b, "gnmi:\n  targets:\n    - {name: %q, address: %q, insecure: true, subscriptions: [{path: %q, mode: on_change}]}\n",
			gnmiDeviceName, e.gnmiTarget, operStatusPath)
	}
	if len(s.snmp) > 0 {
		fmt.Fprintf(&b, "snmp:\n  max_concurrency: 64\n  defaults: {version: \"2c\", community: public, interval: %s, timeout: 2s, retries: 1, max_repetitions: 25}\n  targets:\n", s.interval)
		for _, e := range s.snmp {
			fmt.Fprintf(&b, "    - {name: %q, address: %q}\n", e.name, e.addr)
		}
	}
	if len(s.gnmi) > 0 {
		b.WriteString("gnmi:\n  targets:\n")
		for _, e := range s.gnmi {
			fmt.Fprintf(&b, "    - {name: %q, address: %q, platform: iosxr, insecure: true, sample_interval: %s}\n", e.name, e.addr, s.interval)
		}
	}
	return b.String()
}

// viewYAML renders the views section: the bench view.
func (s serviceSetup) viewYAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "views:\n  - name: %s\n    entity: component\n    metrics: [interface.in.bps]\n    aggregations: [count, mean, max]\n", benchView)
	fmt.Fprintf(&b, "    windows: [%s]\n    hop: %s\n    allowed_lateness: %s\n", s.hop, s.hop, s.lateness)
	return b.String()
}

// parseServiceConfig decodes and validates a configuration the bench wrote,
// as `netfeat serve -c` would.
func parseServiceConfig(text string) (*service.Config, error) {
	cfg, err := service.ParseConfig("netfeat.yaml", []byte(text))
	if err != nil {
		return nil, fmt.Errorf("service configuration: %w", err)
	}
	return cfg, nil
}

// target is the netfeat service under test.
type target struct {
	// mode says where the service runs: "in-process" or "child process".
	mode     string
	pid      int // 0: this process
	httpAddr string
	natsURL  string
	stop     func(context.Context) error
	// exited is closed when a child process ends (nil in-process).
	exited <-chan struct{}
	logs   string // the service's log file
}

// startInProcess runs the service in this process.
func startInProcess(ctx context.Context, dir string, setup serviceSetup) (*target, *service.Service, error) {
	setup.httpListen, setup.natsListen = "127.0.0.1:0", "127.0.0.1:0"
	cfgPath := filepath.Join(dir, "netfeat.yaml")
	text := setup.yaml()
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		return nil, nil, fmt.Errorf("write service configuration: %w", err)
	}
	cfg, err := parseServiceConfig(text)
	if err != nil {
		return nil, nil, err
	}
	logPath := filepath.Join(dir, "netfeat.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, nil, fmt.Errorf("service log: %w", err)
	}
	log, err := service.NewLogger(lf, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		lf.Close()
		return nil, nil, err
	}
	svc, err := service.New(cfg, service.NewRegistry(), log)
	if err != nil {
		lf.Close()
		return nil, nil, fmt.Errorf("build service: %w", err)
	}
	if err := svc.Start(ctx); err != nil {
		lf.Close()
		return nil, nil, fmt.Errorf("start service: %w%s", err, logTail(logPath))
	}
	t := &target{
		mode: "in-process", httpAddr: svc.HTTP().Addr(), natsURL: svc.NATS().ClientURL(), logs: logPath,
		stop: func(context.Context) error { return errors.Join(svc.Stop(), lf.Close()) },
	}
	return t, svc, nil
}

// startChild runs `netfeat serve` as a child process and waits until it is
// ready.
func startChild(ctx context.Context, bin, dir string, setup serviceSetup) (*target, error) {
	var err error
	if setup.httpListen, err = freePort(); err != nil {
		return nil, err
	}
	if setup.natsListen, err = freePort(); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "netfeat.yaml")
	if err := os.WriteFile(cfgPath, []byte(setup.yaml()), 0o644); err != nil {
		return nil, fmt.Errorf("write service configuration: %w", err)
	}
	logPath := filepath.Join(dir, "netfeat.log")
	cmd := exec.Command(bin, "serve", "-c", cfgPath)
	if setup.cpus != "" {
		// taskset execs netfeat: same pid, every thread on the CPUs.
		cmd = exec.Command("taskset", "-c", setup.cpus, bin, "serve", "-c", cfgPath)
	}
	t, err := startProcess(cmd, logPath)
	if err != nil {
		return nil, err
	}
	t.mode, t.httpAddr, t.natsURL = "child process", setup.httpListen, "nats://"+setup.natsListen
	if err := waitReady(ctx, t, 90*time.Second); err != nil {
		return nil, errors.Join(err, t.stop(context.Background()))
	}
	return t, nil
}

// startProcess starts cmd with its output in logPath; the target's stop
// sends SIGTERM and waits (SIGKILL when ctx ends first).
func startProcess(cmd *exec.Cmd, logPath string) (*target, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("process log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	return processTarget(cmd, lf, logPath), nil
}

// processTarget watches a started cmd that logs to lf (closed when cmd
// exits); the target's stop sends SIGTERM and waits (SIGKILL when ctx
// ends first).
func processTarget(cmd *exec.Cmd, lf *os.File, logPath string) *target {
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		lf.Close()
		close(exited)
	}()
	name := filepath.Base(cmd.Path)
	if len(cmd.Args) > 3 && name == "taskset" {
		name = filepath.Base(cmd.Args[3])
	}
	t := &target{pid: cmd.Process.Pid, exited: exited, logs: logPath}
	t.stop = func(ctx context.Context) error {
		select {
		case <-exited:
			return fmt.Errorf("%s exited early: %v%s", name, waitErr, logTail(logPath))
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			return nil
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%s did not stop on SIGTERM in time; killed", name)
		}
	}
	return t
}

// waitReady polls /readyz until it answers 200, the child exits or the
// timeout passes.
func waitReady(ctx context.Context, t *target, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + t.httpAddr + "/readyz"
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = strings.TrimSpace(string(b))
		} else {
			last = err.Error()
		}
		select {
		case <-t.exited:
			return fmt.Errorf("netfeat serve exited before it was ready%s", logTail(t.logs))
		case <-ctx.Done():
			return fmt.Errorf("netfeat serve not ready after %v: %s%s", timeout, last, logTail(t.logs))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freePort returns a loopback address whose TCP port was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// logTail returns the last lines of a log file, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return "\n--- " + path + " (last lines):\n" + string(bytes.Join(lines, []byte("\n")))
}
