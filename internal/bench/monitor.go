package bench

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// snapshot is the service's state at one instant: its metrics and its
// process figures.
type snapshot struct {
	at time.Time
	m  Metrics
	p  ProcStat
}

func (s snapshot) observations() float64 { return s.m.Sum("netfeat_normalize_observations_total") }
func (s snapshot) samples() float64      { return s.m.Sum("netfeat_store_samples_appended_total") }

func (s snapshot) drops() float64 {
	var n float64
	for _, d := range s.m.Drops() {
		n += d.Value
	}
	return n
}

// monitor samples the service under test.
type monitor struct {
	t      *target
	client *http.Client
	url    string
	// counts returns the decisions received and queries done so far.
	counts   func() (decisions, queries int)
	progress func(Progress)
}

func newMonitor(t *target, progress func(Progress), counts func() (int, int)) *monitor {
	return &monitor{t: t, client: &http.Client{Timeout: 10 * time.Second}, url: "http://" + t.httpAddr + "/metrics",
		counts: counts, progress: progress}
}

// snap scrapes /metrics and reads the process's /proc figures.
func (m *monitor) snap(ctx context.Context) (snapshot, error) {
	at := time.Now()
	p, err := ReadProc(m.t.pid)
	if err != nil {
		return snapshot{}, err
	}
	mt, err := Scrape(ctx, m.client, m.url)
	if err != nil {
		return snapshot{}, err
	}
	return snapshot{at: at, m: mt, p: p}, nil
}

// watch waits d, reporting progress every second; it fails when the
// service's process exits or cannot be scraped. Without a progress
// callback it does not scrape: serving /metrics costs the service CPU
// (about 5% of a core with 1,000 SNMP devices' series), which would be
// counted as the service's.
func (m *monitor) watch(ctx context.Context, phase string, d time.Duration) error {
	if m.progress == nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.t.exited:
			return fmt.Errorf("%s: netfeat serve exited%s", phase, logTail(m.t.logs))
		case <-time.After(d):
			return nil
		}
	}
	start := time.Now()
	last, err := m.snap(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", phase, err)
	}
	d0, q0 := m.counts()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.t.exited:
			return fmt.Errorf("%s: netfeat serve exited%s", phase, logTail(m.t.logs))
		case <-end.C:
			return nil
		case <-tick.C:
			s, err := m.snap(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", phase, err)
			}
			dt := s.at.Sub(last.at).Seconds()
			dn, qn := m.counts()
			m.progress(Progress{
				Phase: phase, Elapsed: time.Since(start), Total: d,
				ObsPerSec: (s.observations() - last.observations()) / dt, SamplesPerSec: (s.samples() - last.samples()) / dt,
				Decisions: dn - d0, Queries: qn - q0, Drops: s.drops(),
				CPUPercent: 100 * (s.p.CPU - last.p.CPU).Seconds() / dt, RSS: s.p.RSS,
			})
			last = s
		}
	}
}
