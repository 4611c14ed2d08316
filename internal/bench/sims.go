package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netfeat/netfeat/internal/sim/gnmitarget"
	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/recording"
)

// snmpSims are the simulated SNMP devices of a run, served by a
// `netfeat sim snmp` child process so that their CPU is not the service's
// (nor the bench's).
type snmpSims struct {
	proc      *target // pid, stop and log of the simulator process
	endpoints []endpoint
	// perPoll is the values one poll of a device yields under the
	// generic profile's plan.
	perPoll int
}

// startSNMPSims serves devices copies of an IF-MIB router with ifaces
// interfaces, each on its own loopback UDP port, from `bin sim snmp` (run
// under `taskset -c cpus` when cpus is set), and counts what one poll of
// the plan (scalars, table columns) yields.
func startSNMPSims(ctx context.Context, bin, dir, cpus string, devices, ifaces int, scalars, columns []string) (*snmpSims, error) {
	text := snmpagent.SyntheticRouter(ifaces)
	recs, err := recording.ReadSNMPRec(strings.NewReader(text), "snmp.snmprec")
	if err != nil {
		return nil, fmt.Errorf("bench recording: %w", err)
	}
	s := &snmpSims{}
	for _, r := range recs {
		polled := slices.Contains(scalars, r.OID)
		for _, c := range columns {
			polled = polled || strings.HasPrefix(r.OID, c+".")
		}
		if polled {
			s.perPoll++
		}
	}
	file := filepath.Join(dir, "snmp.snmprec")
	if err := writeFile(file, text); err != nil {
		return nil, err
	}
	args := []string{bin, "sim", "snmp", "--recording", file, "--devices", strconv.Itoa(devices),
		"--listen", "127.0.0.1:0", "--community", "public", "--rate", "125000"}
	if cpus != "" {
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("simulator output: %w", err)
	}
	logPath := filepath.Join(dir, "sim-snmp.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("simulator log: %w", err)
	}
	cmd.Stderr = lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start SNMP simulator: %w", err)
	}
	s.proc = processTarget(cmd, lf, logPath)
	// One "NAME ADDRESS" line per device once every device listens.
	lines := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for len(s.endpoints) < devices && sc.Scan() {
			name, addr, ok := strings.Cut(sc.Text(), " ")
			if !ok {
				lines <- fmt.Errorf("SNMP simulator printed %q, want NAME ADDRESS", sc.Text())
				return
			}
			s.endpoints = append(s.endpoints, endpoint{name: name, addr: addr})
		}
		if len(s.endpoints) < devices {
			lines <- fmt.Errorf("SNMP simulator listed %d devices, want %d%s", len(s.endpoints), devices, logTail(logPath))
			return
		}
		go io.Copy(io.Discard, out)
		lines <- nil
	}()
	select {
	case err = <-lines:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(2 * time.Minute):
		err = errors.New("SNMP simulator: no device list after 2 minutes")
	}
	if err != nil {
		return nil, errors.Join(err, s.proc.stop(context.Background()))
	}
	return s, nil
}

// cpu returns the simulator process's CPU time so far.
func (s *snmpSims) cpu() time.Duration {
	p, err := ReadProc(s.proc.pid)
	if err != nil {
		return 0
	}
	return p.CPU
}

func (s *snmpSims) stop(ctx context.Context) error { return s.proc.stop(ctx) }

// gnmiSims are the simulated gNMI targets of a run.
type gnmiSims struct {
	servers   []*gnmitarget.Server
	endpoints []endpoint
}

// startGNMISims starts n simulated IOS-XR targets publishing every leaf
// every interval.
func startGNMISims(ctx context.Context, n int, interval time.Duration) (*gnmiSims, error) {
	g := &gnmiSims{}
	for i := range n {
		name := fmt.Sprintf("xr-%04d", i+1)
		s, err := gnmitarget.New(gnmitarget.Options{Listen: "127.0.0.1:0", Name: name, Platform: "iosxr", Interval: interval}, nil)
		if err == nil {
			err = s.Start(ctx)
		}
		if err != nil {
			return nil, errors.Join(fmt.Errorf("gnmi simulator %s: %w", name, err), g.stop(context.Background()))
		}
		g.servers = append(g.servers, s)
		g.endpoints = append(g.endpoints, endpoint{name: name, addr: s.Addr()})
	}
	return g, nil
}

// leaves is the number of leaves each target republishes every interval.
func (g *gnmiSims) leaves() int {
	if len(g.servers) == 0 {
		return 0
	}
	return g.servers[0].Leaves()
}

// responses returns the Subscribe responses the targets sent.
func (g *gnmiSims) responses() int64 {
	var n int64
	for _, s := range g.servers {
		n += s.Stats().Responses
	}
	return n
}

func (g *gnmiSims) stop(ctx context.Context) error {
	var errs []error
	for _, s := range g.servers {
		errs = append(errs, s.Stop(ctx))
	}
	return errors.Join(errs...)
}
