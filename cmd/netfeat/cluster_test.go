package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netfeat/netfeat/cluster"
	"github.com/netfeat/netfeat/internal/testkit"
)

// TestClusterCmd runs two cluster nodes and drives them with `netfeat
// cluster status`, `drain` and `undrain`.
func TestClusterCmd(t *testing.T) {
	ns := testkit.StartNATS(t, server.Options{JetStream: true, StoreDir: t.TempDir()})
	url := ns.ClientURL()
	if out, err := runCmd(t, "cluster", "status", "--nats", url); err == nil || !strings.Contains(err.Error(), `no cluster bucket "netfeat_cluster"`) {
		t.Fatalf("status before any node: %v\n%s", err, out)
	}
	targets := []string{"pe1", "pe2", "pe3", "pe4", "pe5", "pe6"}
	nodes := map[string]*cluster.Node{}
	for _, name := range []string{"n1", "n2"} {
		js, err := jetstream.New(testkit.ConnectNATS(t, url))
		if err != nil {
			t.Fatal(err)
		}
		n, err := cluster.New(cluster.Config{Node: name, LeaseTTL: 2 * time.Second, Targets: targets}, js, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Stop(context.Background()) })
		nodes[name] = n
	}
	status := func() cluster.Status {
		out, err := runCmd(t, "cluster", "status", "--json", "--nats", url)
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		var st cluster.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		return st
	}
	owned := func(st cluster.Status, node string) int {
		for _, n := range st.Nodes {
			if n.Node == node {
				return n.Owned
			}
		}
		return -1
	}
	testkit.Eventually(t, "both nodes own targets", func() bool {
		st := status()
		return owned(st, "n1") > 0 && owned(st, "n1")+owned(st, "n2") == len(targets)
	})

	out, err := runCmd(t, "cluster", "status", "--nats", url)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NODE", "LEASE EXPIRES", "n1    live", "n2    live", "TARGET", "pe1 "} {
		if !strings.Contains(out, want) {
			t.Fatalf("status table lacks %q:\n%s", want, out)
		}
	}

	for _, step := range []struct {
		args   []string
		want   string
		n2Owns func(int) bool
	}{
		{[]string{"drain", "n2"}, "n2: draining", func(o int) bool { return o == 0 }},
		{[]string{"undrain", "n2"}, "n2: undrained", func(o int) bool { return o > 0 }},
	} {
		out, err := runCmd(t, append([]string{"cluster"}, append(step.args, "--nats", url)...)...)
		if err != nil || !strings.Contains(out, step.want) {
			t.Fatalf("%v: %v\n%s", step.args, err, out)
		}
		testkit.Eventually(t, strings.Join(step.args, " "), func() bool {
			st := status()
			return step.n2Owns(owned(st, "n2")) && owned(st, "n1")+owned(st, "n2") == len(targets)
		})
		if step.args[0] == "drain" && !strings.Contains(mustRun(t, "cluster", "status", "--nats", url), "n2    draining") {
			t.Fatal("status does not show n2 draining")
		}
	}
	if _, err := runCmd(t, "cluster", "drain", "--nats", url); err == nil {
		t.Fatal("drain without a node name accepted")
	}
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runCmd(t, args...)
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return out
}
