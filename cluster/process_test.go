package cluster

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// childEnv makes the test binary run one cluster node instead of the
// tests: "url|node|lease_ttl_seconds|targets".
const childEnv = "NETFEAT_CLUSTER_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild runs a node until it is killed or its stdin closes (the
// parent test ended), printing "started" once it has joined.
func runChild(spec string) error {
	f := strings.Split(spec, "|")
	if len(f) != 4 {
		return fmt.Errorf("bad spec %q", spec)
	}
	ttl, err1 := strconv.Atoi(f[2])
	count, err2 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("bad spec %q", spec)
	}
	nc, err := nats.Connect(f[0])
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	n, err := New(Config{Node: f[1], LeaseTTL: time.Duration(ttl) * time.Second, Targets: names("router-", count)}, js, nil, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		return err
	}
	fmt.Println("started")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return n.Stop(ctx)
}

// The failover figure of issue 16 with real processes: two nodes share
// 200 targets, one is a separate process killed with SIGKILL; the
// survivor owns every target within the lease TTL of the kill.
func TestKilledProcessFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	s := newSite(t, 200)
	a := s.start("a", testTTL)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|b|%d|%d", childEnv, s.ns.url(), int(testTTL/time.Second), len(s.targets)))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "started\n" {
		t.Fatalf("child did not start: %q, %v", line, err)
	}

	// Settled: a owns what the assignment gives it and the bucket says b
	// validly owns the rest.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var bOwned []string
	waitFor(t, 5*time.Second, "settle with the child", func() (bool, string) {
		st, err := a.Status(ctx)
		if err != nil {
			return false, err.Error()
		}
		bOwned = bOwned[:0]
		for _, ts := range st.Targets {
			if ts.Owner == "b" && ts.Valid {
				bOwned = append(bOwned, ts.Target)
			}
		}
		want := 0
		for _, tg := range s.targets {
			if Assign(tg, []string{"a", "b"}) == "b" {
				want++
			}
		}
		return len(bOwned) == want && len(a.Owned())+want == len(s.targets),
			fmt.Sprintf("b owns %d of %d, a owns %d", len(bOwned), want, len(a.Owned()))
	})
	s.tl.Record("b", bOwned)

	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	killed := time.Now()
	s.tl.Record("b", nil)
	took := waitFor(t, testTTL+time.Second, "a owns every target", func() (bool, string) {
		return len(a.Owned()) == len(s.targets), fmt.Sprintf("a owns %d", len(a.Owned()))
	})
	gap := LongestGap(s.tl.Events(), s.targets, killed, time.Now())
	t.Logf("kill -9 of a node process owning %d of 200 targets: all owned again %v after the kill; longest gap %v (%s); lease TTL %v",
		len(bOwned), took.Round(time.Millisecond), gap.Duration().Round(time.Millisecond), gap.Target, testTTL)
	if gap.Duration() > testTTL {
		t.Fatalf("a target was unowned %v, longer than the lease TTL %v", gap.Duration(), testTTL)
	}
	checkNoOverlap(t, &s.tl)
}
