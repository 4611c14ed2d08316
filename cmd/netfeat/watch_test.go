package main

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/netfeat/netfeat/internal/testkit"
	"github.com/netfeat/netfeat/schema"
)

// TestWatchReconnects: watch reports that its NATS server went away, and
// when a server is back on the same address, says so and shows decisions
// again.
func TestWatchReconnects(t *testing.T) {
	srv := testkit.StartNATS(t, server.Options{})
	port := srv.Addr().(*net.TCPAddr).Port
	url := srv.ClientURL()

	var out, errOut testkit.SyncBuffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"watch", "--nats", url, "--utc"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(t.Context()) }()
	testkit.Eventually(t, "watch subscribed", func() bool { return strings.Contains(errOut.String(), "watching ") })

	publish := func(url, device string) {
		t.Helper()
		nc := testkit.ConnectNATS(t, url)
		d := schema.Decision{SchemaVersion: 1, ID: "id-" + device, Time: time.Now(), Entity: schema.Entity{Device: device},
			Model: "m", ModelVersion: "v1", Score: 0.5, Action: "alert", Reason: "test"}
		b, _ := json.Marshal(d)
		if err := nc.Publish(schema.DecisionSubject("m", device), b); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		nc.Close()
	}
	// Decisions published before the subscription is known to the
	// server may be missed: publish until one shows.
	testkit.Eventually(t, "a decision before the restart", func() bool {
		publish(url, "before")
		return strings.Contains(out.String(), "before")
	})

	steps := []struct {
		name   string
		action func()
		stderr string // what watch then says
	}{
		{"server stops", func() { srv.Shutdown(); srv.WaitForShutdown() }, "lost the connection to NATS at " + url},
		{"server is back", func() { srv = testkit.StartNATS(t, server.Options{Port: port}) }, "reconnected to NATS at"},
	}
	for _, st := range steps {
		st.action()
		testkit.Eventually(t, st.name+": "+st.stderr, func() bool { return strings.Contains(errOut.String(), st.stderr) })
	}
	testkit.Eventually(t, "a decision after the restart", func() bool {
		publish(srv.ClientURL(), "after")
		return strings.Contains(out.String(), "after")
	})
	select {
	case err := <-done:
		t.Fatalf("watch ended: %v", err)
	default:
	}
}

// TestWatchWaitsForServer: watch started before its NATS server says it
// waits, and shows decisions once the server is up.
func TestWatchWaitsForServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)

	var out, errOut testkit.SyncBuffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"watch", "--nats", url, "--utc"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(t.Context()) }()
	testkit.Eventually(t, "watch says it waits", func() bool {
		return strings.Contains(errOut.String(), "no NATS server answers at "+url+" yet")
	})
	srv := testkit.StartNATS(t, server.Options{Port: port})
	testkit.Eventually(t, "watch says it is connected", func() bool {
		return strings.Contains(errOut.String(), "connected to NATS at") && strings.Contains(errOut.String(), "watching ")
	})
	testkit.Eventually(t, "a decision", func() bool {
		nc := testkit.ConnectNATS(t, srv.ClientURL())
		defer nc.Close()
		d := schema.Decision{SchemaVersion: 1, ID: "id-late", Time: time.Now(), Entity: schema.Entity{Device: "late"},
			Model: "m", ModelVersion: "v1", Score: 0.5, Action: "alert", Reason: "test"}
		b, _ := json.Marshal(d)
		if err := nc.Publish(schema.DecisionSubject("m", "late"), b); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(out.String(), "late")
	})
	select {
	case err := <-done:
		t.Fatalf("watch ended: %v", err)
	default:
	}
}

// TestWatchAuthRefused: a server that refuses watch's credentials ends it
// with the server's reason, rather than waiting as for a server not up.
func TestWatchAuthRefused(t *testing.T) {
	srv := testkit.StartNATS(t, server.Options{Username: "ops", Password: "secret"})
	var out, errOut testkit.SyncBuffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"watch", "--nats", srv.ClientURL()})
	err := root.ExecuteContext(t.Context())
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("watch: %v, want the authorization error", err)
	}
	if strings.Contains(errOut.String(), "no NATS server answers") {
		t.Errorf("watch said it waits for a server that answered:\n%s", errOut.String())
	}
}
