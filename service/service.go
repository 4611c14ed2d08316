// Package service wires netfeat's stages into one process: it owns the
// configuration file, the start/stop order, the embedded or external NATS
// connection, the HTTP API (/healthz, /readyz, /metrics and the stages'
// APIs) and graceful draining on shutdown.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/netfeat/netfeat/console"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Version is the netfeat release, set at link time with
// -ldflags "-X github.com/netfeat/netfeat/service.Version=v1.2.3".
var Version = "dev"

// BuildVersion returns Version, or the module version and VCS revision
// recorded by the Go toolchain when Version was not set.
func BuildVersion() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev := ""
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				rev = s.Value[:12]
			}
		}
		if rev != "" {
			return "dev-" + rev
		}
	}
	return Version
}

// NewRegistry returns a fresh Prometheus registry with the Go runtime and
// process collectors and netfeat_build_info registered.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "netfeat_build_info",
			Help:        "Always 1; the version label says which netfeat is running.",
			ConstLabels: prometheus.Labels{"version": BuildVersion()},
		}, func() float64 { return 1 }),
	)
	return reg
}

// Service is a running netfeat process.
type Service struct {
	cfg *Config
	// loaded is the configuration as given to New, before New derived
	// settings from it: what a reloaded file is compared with.
	loaded Config
	reg    *prometheus.Registry
	log    *slog.Logger
	group  Group

	nats *NATS
	http *HTTP
	pipe pipeline
	edge *edgeForwarder // role edge only
	hub  *hubSink       // role hub only: the fleet tables
	// targets owns the targets that change at run time (targets_file,
	// /v1/targets); nil on a hub.
	targets *targetSet
	fl      *federatedHub  // role hub with a federated section only
	flEdge  *federatedEdge // role edge with a federated section only
	// feed is the console's live action feed (GET /v1/actions/stream).
	feed *console.ActionFeed
}

// readiness exports netfeat_component_ready, computed at scrape time.
type readiness struct {
	group *Group
	desc  *prometheus.Desc
}

func (r readiness) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

func (r readiness) Collect(ch chan<- prometheus.Metric) {
	for _, st := range r.group.Status() {
		v := 1.0
		if st.Err != nil {
			v = 0
		}
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.GaugeValue, v, st.Name)
	}
}

// New builds the service's components from cfg without starting anything.
// reg receives every metric; log every log line.
func New(cfg *Config, reg *prometheus.Registry, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	loaded := *cfg // before New derives settings: what ReloadConfig compares with
	cfg.Inference.Drift = driftConfig(cfg.Learning.Drift)
	s := &Service{cfg: cfg, loaded: loaded, reg: reg, log: log}
	s.group.Log = log
	reg.MustRegister(readiness{group: &s.group, desc: prometheus.NewDesc("netfeat_component_ready",
		"1 when the component is started and ready, 0 otherwise.", []string{"component"}, nil)})

	s.nats = NewNATS(cfg.NATS, cfg.DataDir, reg, log)
	s.nats.querySubject = cfg.Query.NATSSubject
	s.group.Add(s.nats)
	s.buildFleet()
	build := s.buildPipeline
	if cfg.Role == RoleHub {
		build = s.buildHub
	}
	if err := build(); err != nil {
		return nil, err
	}
	if err := s.buildFederated(); err != nil {
		return nil, err
	}
	s.http = NewHTTP(cfg.HTTP, reg, reg, s.Ready, log)
	s.mountAPIs()
	s.mountFederated()
	if err := s.mountDeviceMetrics(); err != nil {
		return nil, err
	}
	s.group.Add(s.http)
	// After HTTP, so it stops first: its open streams end and do not hold
	// up HTTP's graceful stop.
	s.group.Add(ComponentFuncs{ComponentName: "console", StopFunc: s.feed.Stop})
	return s, nil
}

// NATS returns the NATS component.
func (s *Service) NATS() *NATS { return s.nats }

// HTTP returns the HTTP component.
func (s *Service) HTTP() *HTTP { return s.http }

// Add appends a component to start after those already added (before
// Start). Tests and the demo use it to attach extra stages.
func (s *Service) Add(c Component) { s.group.Add(c) }

// Ready reports whether every stage is started and ready.
func (s *Service) Ready() error { return s.group.Ready() }

// Start starts every component in order; on failure the started ones are
// stopped and the error names the component that failed.
// A configured memory_limit is applied first.
func (s *Service) Start(ctx context.Context) error {
	if err := s.checkLearningGate(); err != nil {
		return err
	}
	if s.cfg.MemoryLimit > 0 {
		prev := debug.SetMemoryLimit(int64(s.cfg.MemoryLimit))
		s.log.Info("Go memory limit set", "bytes", int64(s.cfg.MemoryLimit), "previous", prev)
	}
	s.cfg.warnUnauthenticated(s.log)
	return s.group.Start(ctx, s.cfg.ShutdownTimeout)
}

// Stop drains and stops every component in reverse order within the
// configured shutdown timeout.
func (s *Service) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	t0 := time.Now()
	err := s.group.Stop(ctx)
	s.log.Info("shutdown complete", "took", time.Since(t0).Round(time.Millisecond), "err", err)
	return err
}

// Run starts the service, waits for ctx to be cancelled (SIGINT/SIGTERM),
// then drains and stops it.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Start(ctx); err != nil {
		return err
	}
	s.log.Info("netfeat running", "version", BuildVersion(), "http", "http://"+s.http.Addr(), "nats", s.nats.ClientURL())
	<-ctx.Done()
	s.log.Info("shutting down", "deadline", s.cfg.ShutdownTimeout)
	return s.Stop()
}
