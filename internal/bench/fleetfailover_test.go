package bench

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	failoverTargets   = flag.Int("failover.targets", 20, "TestRunFailover: simulated SNMP devices")
	failoverInterval  = flag.Duration("failover.interval", 2*time.Second, "TestRunFailover: poll interval")
	failoverRecording = flag.String("failover.recording", "../../testdata/snmp/timos.snmprec",
		"TestRunFailover: .snmprec the devices replay; empty: the synthetic router RunFailover uses by default")
)

// buildNetfeat builds cmd/netfeat into a temporary directory, or skips the
// test when it cannot be built.
func buildNetfeat(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "netfeat")
	out, err := exec.Command("go", "build", "-tags", "duckdb_arrow", "-o", bin, "../../cmd/netfeat").CombinedOutput()
	if err != nil {
		t.Skipf("cannot build netfeat: %v: %s", err, out)
	}
	return bin
}

// TestRunFailover runs the failover phase with two real `netfeat serve`
// nodes and checks the report's invariants: the killed node's targets all
// owned again, none unowned at the lease TTL, no target unpolled for more
// than two intervals, at the devices and in the nodes' samples tables.
//
// The figures (200 targets at 10 s, about 2 minutes):
//
//	go test -tags duckdb_arrow -count=1 -run TestRunFailover -v ./internal/bench \
//	    -args -failover.targets 200 -failover.interval 10s -failover.recording=
func TestRunFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two netfeat processes for about 20 s")
	}
	bin := buildNetfeat(t)
	o := FailoverOptions{
		Binary: bin, Dir: t.TempDir(), Targets: *failoverTargets, Interval: *failoverInterval,
		Recording: *failoverRecording,
		Progress:  func(phase string) { t.Logf("phase %s", phase) },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := RunFailover(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	rep.WriteText(&text)
	js, _ := json.Marshal(rep)
	t.Logf("\n%s%s", text.String(), js)

	bound := 2 * o.Interval.Seconds()
	if rep.Targets != o.Targets || rep.IntervalS != o.Interval.Seconds() {
		t.Errorf("report is of %d targets at %gs, want %d at %v", rep.Targets, rep.IntervalS, o.Targets, o.Interval)
	}
	if rep.NodeAOwned+rep.NodeBOwned != o.Targets || rep.NodeAOwned == 0 || rep.NodeBOwned == 0 {
		t.Errorf("owned before the kill: a %d + b %d, want both > 0 and %d in all", rep.NodeAOwned, rep.NodeBOwned, o.Targets)
	}
	if rep.KilledOwned != rep.NodeBOwned {
		t.Errorf("killed node owned %d, node b %d", rep.KilledOwned, rep.NodeBOwned)
	}
	if rep.OwnedAgainS < 0 {
		t.Errorf("the survivor never owned every target")
	}
	if rep.UnownedAfterTTL != 0 {
		t.Errorf("%d targets unowned at the kill + lease TTL", rep.UnownedAfterTTL)
	}
	if rep.UnownedCheckS < rep.LeaseTTLS {
		t.Errorf("unowned count read %.2fs after the kill, before the lease TTL %gs", rep.UnownedCheckS, rep.LeaseTTLS)
	}
	if rep.MaxGapS <= 0 || rep.MaxGapS > bound {
		t.Errorf("longest gap at the devices %.2fs (%s), want in (0, %gs]", rep.MaxGapS, rep.MaxGapTarget, bound)
	}
	if rep.MaxGapAroundKillS > rep.MaxGapS {
		t.Errorf("gap around the kill %.2fs exceeds the whole window's %.2fs", rep.MaxGapAroundKillS, rep.MaxGapS)
	}
	if rep.PollsMin < 1 || rep.PollsMax < rep.PollsMin {
		t.Errorf("polls per target %d to %d", rep.PollsMin, rep.PollsMax)
	}
	if rep.SamplesTargets != o.Targets || rep.SamplesMaxGapS <= 0 || rep.SamplesMaxGapS > bound {
		t.Errorf("samples tables: %d targets, longest gap %.2fs (%s), want %d and in (0, %gs]; notes %v",
			rep.SamplesTargets, rep.SamplesMaxGapS, rep.SamplesMaxGapTarget, o.Targets, bound, rep.Notes)
	}
}

func TestFailoverOptionsDefaults(t *testing.T) {
	tests := []struct {
		name     string
		o        FailoverOptions
		leaseTTL time.Duration
		err      string
	}{
		{"issue defaults", FailoverOptions{Binary: "x", Dir: "d"}, 10 * time.Second, ""},
		{"lease follows a short interval", FailoverOptions{Binary: "x", Dir: "d", Interval: 3 * time.Second}, 3 * time.Second, ""},
		{"lease whole seconds", FailoverOptions{Binary: "x", Dir: "d", Interval: 4500 * time.Millisecond}, 4 * time.Second, ""},
		{"lease at least 2s", FailoverOptions{Binary: "x", Dir: "d", Interval: time.Second}, 2 * time.Second, ""},
		{"lease at most the cluster default", FailoverOptions{Binary: "x", Dir: "d", Interval: time.Minute}, 10 * time.Second, ""},
		{"no binary", FailoverOptions{Dir: "d"}, 0, "binary"},
		{"one target", FailoverOptions{Binary: "x", Dir: "d", Targets: 1}, 0, "at least 2"},
		{"fractional lease", FailoverOptions{Binary: "x", Dir: "d", LeaseTTL: 2500 * time.Millisecond}, 0, "whole number"},
		{"interval too short", FailoverOptions{Binary: "x", Dir: "d", Interval: 100 * time.Millisecond}, 0, "interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := tc.o.withDefaults()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.LeaseTTL != tc.leaseTTL || o.Targets != 200 || o.Settle != 2*o.Interval || o.After != 2*o.Interval {
				t.Errorf("defaults: lease %v targets %d settle %v after %v; want lease %v", o.LeaseTTL, o.Targets, o.Settle, o.After, tc.leaseTTL)
			}
		})
	}
}

func TestFailoverLogScan(t *testing.T) {
	log := strings.Join([]string{
		`{"time":"2026-12-07T22:28:13Z","level":"INFO","msg":"snmp poller started"}`,
		`{"time":"2026-12-07T22:28:14Z","level":"WARN","msg":"snmp poll failed","device":"pe0001","reason":"timeout"}`,
		`{"time":"2026-12-07T22:28:15Z","level":"WARN","msg":"snmp poll failed","device":"pe0002","reason":"timeout"}`,
		`{"time":"2026-12-07T22:28:16Z","level":"ERROR","msg":"cluster: renewal failed"}`,
		`not JSON`,
	}, "\n") + "\n"
	path := filepath.Join(t.TempDir(), "netfeat.log")
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	polls, warnings, msgs := failoverLogScan(path)
	if polls != 2 || warnings != 3 || strings.Join(msgs, "|") != "snmp poll failed|cluster: renewal failed" {
		t.Errorf("got %d poll failures, %d warnings, %q", polls, warnings, msgs)
	}
}
