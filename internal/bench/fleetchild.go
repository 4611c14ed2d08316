package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/netfeat/netfeat/service"
)

// FleetChildEnv carries a fleet child's settings (childSettings as JSON)
// from the bench to the `netfeat bench --fleet-child` process it starts.
const FleetChildEnv = "NETFEAT_BENCH_FLEET_CHILD"

// childSettings tell a fleet child what to run: a netfeat service from a
// configuration file, fed by an injector at a rate.
type childSettings struct {
	Config     string  `json:"config"`
	Rate       float64 `json:"rate"` // observations per second
	Devices    int     `json:"devices"`
	Interfaces int     `json:"interfaces"`
	Hop        string  `json:"hop"`
	// CPUProfile, when set, is a file for a CPU profile of the process
	// from the start of the load until it stops.
	CPUProfile string `json:"cpu_profile,omitempty"`
}

// childStatus is a line a fleet child writes on its stdout: first the
// addresses once the service runs, then the injected counts every 500 ms,
// last Stopped.
type childStatus struct {
	HTTP         string  `json:"http,omitempty"`
	NATS         string  `json:"nats,omitempty"`
	GenNsPerObs  float64 `json:"gen_ns_per_obs,omitempty"`
	Observations int64   `json:"observations"`
	InjectErrors int64   `json:"inject_errors"`
	LastError    string  `json:"last_error,omitempty"`
	Stopped      bool    `json:"stopped,omitempty"`
}

// RunFleetChild is `netfeat bench --fleet-child`: it runs the service the
// settings in $NETFEAT_BENCH_FLEET_CHILD name, in this process, injects
// observations into its normalizer at their rate until stdin says "pause"
// or closes, and stops the service when stdin closes. It reports on out (childStatus lines): the fleet bench
// measures this process's CPU and subtracts the generator's.
func RunFleetChild(ctx context.Context, settings string, in io.Reader, out io.Writer) (err error) {
	var s childSettings
	if err := json.Unmarshal([]byte(settings), &s); err != nil {
		return fmt.Errorf("fleet child: settings in $%s: %w", FleetChildEnv, err)
	}
	hop, err := time.ParseDuration(s.Hop)
	if err != nil {
		return fmt.Errorf("fleet child: hop: %w", err)
	}
	text, err := os.ReadFile(s.Config)
	if err != nil {
		return fmt.Errorf("fleet child: %w", err)
	}
	cfg, err := parseServiceConfig(string(text))
	if err != nil {
		return err
	}
	lf, err := os.Create(filepath.Join(filepath.Dir(s.Config), "netfeat.log"))
	if err != nil {
		return fmt.Errorf("fleet child: service log: %w", err)
	}
	defer lf.Close()
	log, err := service.NewLogger(lf, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	svc, err := service.New(cfg, service.NewRegistry(), log)
	if err != nil {
		return fmt.Errorf("fleet child: build service: %w", err)
	}
	if err := svc.Start(ctx); err != nil {
		return fmt.Errorf("fleet child: start service: %w", err)
	}
	defer func() { err = errors.Join(err, svc.Stop()) }()

	enc := json.NewEncoder(out)
	var encMu sync.Mutex
	emit := func(st childStatus) {
		encMu.Lock()
		defer encMu.Unlock()
		_ = enc.Encode(st)
	}
	devs := make([]int, s.Devices)
	for i := range devs {
		devs[i] = i
	}
	book := newWindowBook(hop, hop, s.Interfaces)
	inj := newInjector(svc.Normalizer(), book, devs, s.Interfaces)
	emit(childStatus{HTTP: svc.HTTP().Addr(), NATS: svc.NATS().ClientURL(), GenNsPerObs: generatorCost(s.Interfaces)})

	// stdin: a line "pause" stops injecting (the service runs on, so that
	// its streams can be read); EOF stops everything.
	run, stop := context.WithCancel(ctx)
	defer stop()
	inject, pause := context.WithCancel(run)
	defer pause()
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			if sc.Text() == "pause" {
				pause()
			}
		}
		stop()
	}()
	if s.CPUProfile != "" {
		f, err := os.Create(s.CPUProfile)
		if err != nil {
			return fmt.Errorf("fleet child: cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("fleet child: cpu profile: %w", err)
		}
		go func() {
			<-inject.Done()
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	var wg sync.WaitGroup
	if s.Rate > 0 { // 0: the service's collectors are the load
		wg.Go(func() { inj.run(inject, s.Rate, time.Now().Add(100*365*24*time.Hour)) })
	}
	status := func() childStatus {
		st := childStatus{Observations: inj.obs.Load(), InjectErrors: inj.errs.Load()}
		if e := inj.lastErr(); e != nil {
			st.LastError = e.Error()
		}
		return st
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for run.Err() == nil {
		select {
		case <-tick.C:
			emit(status())
		case <-run.Done():
		}
	}
	wg.Wait()
	st := status()
	st.Stopped = true
	emit(st)
	return nil
}
