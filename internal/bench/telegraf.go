package bench

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/netfeat/netfeat/collectors/gnmi"
)

// telegrafSubject is where the peer's NATS output publishes.
const telegrafSubject = "telegraf.bench"

// telegrafSetup is what goes into the peer's configuration file.
type telegrafSetup struct {
	natsURL  string
	interval time.Duration
	snmp     []endpoint
	// scalars and columns are the OIDs netfeat's SNMP plan polls, so the
	// peer fetches the same values.
	scalars, columns []string
	gnmi             []endpoint
}

// config renders telegraf.conf: the snmp or gnmi input against the same
// simulated devices netfeat used, and the NATS output. The buffer is sized
// so that Telegraf does not drop metrics between flushes.
func (s telegrafSetup) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by netfeat bench\n[agent]\n  interval = %q\n  round_interval = false\n  collection_jitter = \"0s\"\n", s.interval)
	b.WriteString("  metric_batch_size = 5000\n  metric_buffer_limit = 2000000\n  flush_interval = \"1s\"\n  flush_jitter = \"0s\"\n  omit_hostname = true\n")
	fmt.Fprintf(&b, "\n[[outputs.nats]]\n  servers = [%q]\n  subject = %q\n  data_format = \"influx\"\n", s.natsURL, telegrafSubject)
	if len(s.snmp) > 0 {
		b.WriteString("\n[[inputs.snmp]]\n  agents = [")
		for i, e := range s.snmp {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", "udp://"+e.addr)
		}
		b.WriteString("]\n  version = 2\n  community = \"public\"\n  timeout = \"2s\"\n  retries = 1\n  max_repetitions = 25\n")
		for _, oid := range s.scalars {
			fmt.Fprintf(&b, "  [[inputs.snmp.field]]\n    name = %q\n    oid = %q\n", "oid_"+strings.ReplaceAll(oid, ".", "_"), "."+oid)
		}
		b.WriteString("  [[inputs.snmp.table]]\n    name = \"ifmib\"\n")
		for _, oid := range s.columns {
			fmt.Fprintf(&b, "    [[inputs.snmp.table.field]]\n      name = %q\n      oid = %q\n", "oid_"+strings.ReplaceAll(oid, ".", "_"), "."+oid)
		}
	}
	if len(s.gnmi) > 0 {
		b.WriteString("\n[[inputs.gnmi]]\n  addresses = [")
		for i, e := range s.gnmi {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", e.addr)
		}
		b.WriteString("]\n  encoding = \"proto\"\n  redial = \"10s\"\n")
		for i, p := range gnmi.PlatformPaths(gnmi.PlatformIOSXR) {
			origin, path, _ := strings.Cut(p, ":")
			fmt.Fprintf(&b, "  [[inputs.gnmi.subscription]]\n    name = \"s%d\"\n    origin = %q\n    path = %q\n    subscription_mode = \"sample\"\n    sample_interval = %q\n",
				i, origin, "/"+path, s.interval)
		}
	}
	return b.String()
}

// countFields returns the number of field values in Influx line protocol:
// every line is `measurement[,tags] field=value[,field=value...] [ts]`,
// with backslash escapes outside and inside strings, and commas and
// spaces allowed inside double-quoted string values.
func countFields(data []byte) int {
	n := 0
	for len(data) > 0 {
		line := data
		if i := indexUnquotedNewline(data); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		n += fieldsInLine(line)
	}
	return n
}

func indexUnquotedNewline(b []byte) int {
	inQuote := false
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case '\n':
			if !inQuote {
				return i
			}
		}
	}
	return -1
}

func fieldsInLine(line []byte) int {
	i := 0
	// measurement and tags: up to the first unescaped space.
	for ; i < len(line); i++ {
		if line[i] == '\\' {
			i++
			continue
		}
		if line[i] == ' ' {
			break
		}
	}
	if i >= len(line) {
		return 0
	}
	fields, inQuote := 1, false
	for i++; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case c == ',' && !inQuote:
			fields++
		case c == ' ' && !inQuote:
			return fields
		}
	}
	return fields
}

// telegrafRun runs the peer against the devices and measures it like the
// netfeat service: values delivered to NATS, CPU and memory from /proc.
func telegrafRun(ctx context.Context, o Options, dir string, setup telegrafSetup, progress func(Progress)) (*PeerRun, error) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true, MaxPayload: 8 << 20})
	if err != nil {
		return nil, fmt.Errorf("NATS server for the peer: %w", err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		return nil, fmt.Errorf("NATS server for the peer did not start")
	}
	nc, err := nats.Connect(ns.ClientURL(), nats.Name("netfeat-bench-telegraf"))
	if err != nil {
		return nil, fmt.Errorf("connect to the peer's NATS: %w", err)
	}
	defer nc.Close()
	var fields, msgs atomic.Int64
	sub, err := nc.Subscribe(telegrafSubject, func(m *nats.Msg) {
		msgs.Add(1)
		fields.Add(int64(countFields(m.Data)))
	})
	if err == nil {
		err = sub.SetPendingLimits(-1, -1)
	}
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", telegrafSubject, err)
	}
	setup.natsURL = ns.ClientURL()
	cfgPath := filepath.Join(dir, "telegraf.conf")
	if err := writeFile(cfgPath, setup.config()); err != nil {
		return nil, err
	}
	t, err := startProcess(exec.Command(o.PeerTelegraf, "--config", cfgPath), filepath.Join(dir, "telegraf.log"))
	if err != nil {
		return nil, err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = t.stop(stopCtx)
	}()
	sample := func() (int64, ProcStat, error) {
		ps, err := ReadProc(t.pid)
		return fields.Load(), ps, err
	}
	// Warm up: the peer connects, walks or syncs, and flushes once.
	if err := waitPhase(ctx, t, "telegraf warm-up", o.Warmup+o.Interval, progress, sample); err != nil {
		return nil, err
	}
	f0, p0, err := sample()
	if err != nil {
		return nil, fmt.Errorf("telegraf: %w", err)
	}
	t0 := time.Now()
	if err := waitPhase(ctx, t, "telegraf", o.Duration, progress, sample); err != nil {
		return nil, err
	}
	f1, p1, err := sample()
	if err != nil {
		return nil, fmt.Errorf("telegraf: %w", err)
	}
	el := time.Since(t0).Seconds()
	if f1 == f0 {
		return nil, fmt.Errorf("telegraf delivered no values to NATS in %v%s", o.Duration, logTail(t.logs))
	}
	pr := &PeerRun{
		Name: "telegraf", Values: f1 - f0, ValuesPerSec: float64(f1-f0) / el, Seconds: el,
		CPUSeconds: (p1.CPU - p0.CPU).Seconds(), PeakRSSBytes: p1.HWM, NATSMessages: msgs.Load(),
	}
	pr.finish(o.Interval)
	return pr, nil
}

// waitPhase waits d while reporting progress from sample (values so far
// and the process's /proc figures); it fails if the process exits.
func waitPhase(ctx context.Context, t *target, phase string, d time.Duration, progress func(Progress), sample func() (int64, ProcStat, error)) error {
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastV, lastP, _ := sample()
	lastT := start
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.exited:
			return fmt.Errorf("%s: the process exited%s", phase, logTail(t.logs))
		case now := <-tick.C:
			v, p, err := sample()
			if err != nil {
				return fmt.Errorf("%s: %w", phase, err)
			}
			dt := now.Sub(lastT).Seconds()
			if progress != nil {
				progress(Progress{Phase: phase, Elapsed: now.Sub(start), Total: d, ObsPerSec: float64(v-lastV) / dt,
					CPUPercent: 100 * (p.CPU - lastP.CPU).Seconds() / dt, RSS: p.RSS})
			}
			lastV, lastP, lastT = v, p, now
			if now.Sub(start) >= d {
				return nil
			}
		}
	}
}

// PeerRun is one collector's figures in the side-by-side comparison.
type PeerRun struct {
	Name string `json:"name"`
	// Values are raw device values collected: for netfeat the normalizer's
	// observations, for Telegraf the field values delivered to NATS.
	Values       int64   `json:"values"`
	ValuesPerSec float64 `json:"values_per_s"`
	Seconds      float64 `json:"seconds"`
	CPUSeconds   float64 `json:"cpu_s"`
	// CPUPerMillionValues is CPU seconds per million values.
	CPUPerMillionValues float64 `json:"cpu_s_per_million_values"`
	PeakRSSBytes        int64   `json:"peak_rss_bytes"`
	// RSSPerSeries is peak RSS divided by the values collected per
	// interval (the number of monitored series): memory per series.
	RSSPerSeries float64 `json:"peak_rss_bytes_per_series"`
	NATSMessages int64   `json:"nats_messages,omitempty"`
}

func (p *PeerRun) finish(interval time.Duration) {
	if p.Values > 0 {
		p.CPUPerMillionValues = p.CPUSeconds / (float64(p.Values) / 1e6)
	}
	if series := p.ValuesPerSec * interval.Seconds(); series > 0 {
		p.RSSPerSeries = float64(p.PeakRSSBytes) / series
	}
}

// Comparison is netfeat beside a peer on the same simulated devices.
type Comparison struct {
	Netfeat PeerRun `json:"netfeat"`
	Peer    PeerRun `json:"peer"`
	// CPURatio is the peer's CPU per value over netfeat's (> 1: netfeat
	// uses less); RSSRatio the same for peak RSS per series.
	CPURatio float64  `json:"cpu_per_value_ratio_peer_over_netfeat"`
	RSSRatio float64  `json:"rss_per_series_ratio_peer_over_netfeat"`
	Notes    []string `json:"notes"`
}
