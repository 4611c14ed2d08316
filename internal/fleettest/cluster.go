// Package fleettest runs the fleet topology for tests on loopback: a hub
// cluster of real nats-server processes (JetStream domain "hub"), edges as
// embedded nats-servers that are leaf nodes of it (JetStream domain = the
// site), and a Link between them that a test can cut and restore.
package fleettest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HubDomain is the JetStream domain of the hub cluster.
const HubDomain = "hub"

// NATSServer returns the path of the nats-server binary: $NETFEAT_NATS_SERVER,
// else bin/nats-server at the repository root (scripts/install-nats-server.sh
// puts it there). When it is absent the test is skipped, or fails when
// NETFEAT_REQUIRE_FLEET is set (CI sets it after running the script).
func NATSServer(t testing.TB) string {
	t.Helper()
	p := os.Getenv("NETFEAT_NATS_SERVER")
	if p == "" {
		root, err := repoRoot()
		if err != nil {
			t.Fatalf("fleettest: %v", err)
		}
		p = filepath.Join(root, "bin", "nats-server")
	}
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("fleettest: nats-server not found at %s (run scripts/install-nats-server.sh or set NETFEAT_NATS_SERVER)", p)
		if os.Getenv("NETFEAT_REQUIRE_FLEET") != "" {
			t.Fatal(msg + "; NETFEAT_REQUIRE_FLEET is set")
		}
		t.Skip(msg)
	}
	return p
}

// repoRoot walks up from the working directory to the directory of go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// freePorts returns n distinct free loopback TCP ports. The listeners are
// held until all are chosen, so the ports are distinct; another process may
// still take one before the server binds it, which the start then reports.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("fleettest: free port: %v", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// Node is one nats-server process of the hub cluster.
type Node struct {
	Name                              string
	ClientPort, ClusterPort, LeafPort int
	dir, conf, logPath                string
	cmd                               *exec.Cmd
	exited                            chan struct{}
}

// ClientURL is the node's client URL.
func (n *Node) ClientURL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.ClientPort) }

// LeafAddr is the node's leafnode listen address.
func (n *Node) LeafAddr() string { return "127.0.0.1:" + strconv.Itoa(n.LeafPort) }

// Cluster is a hub cluster of nats-server processes.
type Cluster struct {
	t     testing.TB
	bin   string
	Nodes []*Node
}

// StartCluster starts a JetStream cluster of n nats-server processes on
// loopback (JetStream domain HubDomain, a leafnode port each, config and
// store under t.TempDir()), waits until it has a meta leader, and stops the
// processes at the end of the test.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: NATSServer(t)}
	ports := freePorts(t, 3*n)
	base := t.TempDir()
	for i := range n {
		c.Nodes = append(c.Nodes, &Node{
			Name:       "hub-" + strconv.Itoa(i+1),
			ClientPort: ports[3*i], ClusterPort: ports[3*i+1], LeafPort: ports[3*i+2],
			dir: filepath.Join(base, "n"+strconv.Itoa(i+1)),
		})
	}
	var routes []string
	for _, nd := range c.Nodes {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", nd.ClusterPort))
	}
	for _, nd := range c.Nodes {
		if err := os.MkdirAll(nd.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		nd.conf = filepath.Join(nd.dir, "nats.conf")
		nd.logPath = filepath.Join(nd.dir, "nats.log")
		conf := fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream {
  store_dir: %q
  domain: %s
}
cluster {
  name: hub
  listen: 127.0.0.1:%d
  routes: [%s]
}
leafnodes {
  listen: 127.0.0.1:%d
  # Leaf nodes reach the hub only through their Link: the cluster must not
  # gossip its leafnode addresses, or an edge would reconnect around a cut.
  no_advertise: true
}
`, nd.Name, nd.ClientPort, filepath.Join(nd.dir, "js"), HubDomain, nd.ClusterPort, strings.Join(routes, ", "), nd.LeafPort)
		if err := os.WriteFile(nd.conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(c.stopAll)
	for i := range c.Nodes {
		c.start(i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		c.dumpLogs()
		t.Fatalf("fleettest: cluster not ready: %v", err)
	}
	return c
}

// start starts node i's process.
func (c *Cluster) start(i int) {
	nd := c.Nodes[i]
	logf, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, "-c", nd.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("fleettest: start %s: %v", nd.Name, err)
	}
	nd.cmd, nd.exited = cmd, make(chan struct{})
	go func(ch chan struct{}) { cmd.Wait(); logf.Close(); close(ch) }(nd.exited)
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(nd.ClientURL(), "nats://"), time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-nd.exited:
			c.dumpLogs()
			c.t.Fatalf("fleettest: %s exited at start", nd.Name)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.dumpLogs()
			c.t.Fatalf("fleettest: %s does not accept clients: %v", nd.Name, err)
		}
	}
}

// URLs returns the client URLs of every node, comma-separated, for
// nats.Connect.
func (c *Cluster) URLs() string {
	var us []string
	for _, nd := range c.Nodes {
		us = append(us, nd.ClientURL())
	}
	return strings.Join(us, ",")
}

// LeafAddrs returns the leafnode addresses of every node.
func (c *Cluster) LeafAddrs() []string {
	var as []string
	for _, nd := range c.Nodes {
		as = append(as, nd.LeafAddr())
	}
	return as
}

// Connect returns a client connection to the cluster, closed at the end of
// the test.
func (c *Cluster) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Name("fleettest"))
	if err != nil {
		t.Fatalf("fleettest: connect to hub: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// WaitReady waits until the cluster's JetStream answers API requests (it
// has a meta leader).
func (c *Cluster) WaitReady(ctx context.Context) error {
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Kill kills node i with SIGKILL and waits for it to exit.
func (c *Cluster) Kill(i int) {
	nd := c.Nodes[i]
	if nd.cmd == nil {
		return
	}
	_ = nd.cmd.Process.Signal(syscall.SIGKILL)
	<-nd.exited
	nd.cmd = nil
}

// Restart starts node i again over its store.
func (c *Cluster) Restart(i int) {
	c.Kill(i)
	c.start(i)
}

// stopAll stops the processes this cluster started, and on failure prints
// the end of their logs.
func (c *Cluster) stopAll() {
	if c.t.Failed() {
		c.dumpLogs()
	}
	for _, nd := range c.Nodes {
		if nd.cmd == nil {
			continue
		}
		_ = nd.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-nd.exited:
		case <-time.After(5 * time.Second):
			_ = nd.cmd.Process.Signal(syscall.SIGKILL)
			<-nd.exited
		}
		nd.cmd = nil
	}
}

func (c *Cluster) dumpLogs() {
	for _, nd := range c.Nodes {
		b, _ := os.ReadFile(nd.logPath)
		lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		c.t.Logf("== %s log (tail):\n%s", nd.Name, bytes.Join(lines, []byte("\n")))
	}
}
