// Package natsproc runs real nats-server processes and the WAN between
// them on loopback: a JetStream cluster of N nodes with a leafnode port each,
// and a Link (a TCP proxy) that can be cut and restored and counts the bytes
// it carries. The fleet tests (internal/fleettest) and `netfeat bench
// --fleet` both use it.
package natsproc

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
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HubDomain is the JetStream domain of the hub cluster.
const HubDomain = "hub"

// ErrNoServer is returned by FindServer when no nats-server binary is found.
var ErrNoServer = errors.New("nats-server not found")

// FindServer returns the path of the nats-server binary: $NETFEAT_NATS_SERVER,
// else bin/nats-server at the repository root above the working directory
// (scripts/install-nats-server.sh puts it there), else nats-server on PATH.
func FindServer() (string, error) {
	if p := os.Getenv("NETFEAT_NATS_SERVER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w at $NETFEAT_NATS_SERVER=%s: %v", ErrNoServer, p, err)
		}
		return p, nil
	}
	var tried []string
	if root, err := repoRoot(); err == nil {
		p := filepath.Join(root, "bin", "nats-server")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	tried = append(tried, "$PATH")
	return "", fmt.Errorf("%w at %s (run scripts/install-nats-server.sh or set NETFEAT_NATS_SERVER)", ErrNoServer, strings.Join(tried, " or "))
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

// FreePorts returns n distinct free loopback TCP ports. The listeners are
// held until all are chosen, so the ports are distinct; another process may
// still take one before the server binds it, which the start then reports.
func FreePorts(n int) ([]int, error) {
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
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// Node is one nats-server process of a cluster.
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

// Pid is the node's process id, 0 when it is not running.
func (n *Node) Pid() int {
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	// Binary is the nats-server executable (FindServer).
	Binary string
	// Dir holds each node's configuration, log and JetStream store.
	Dir string
	// Nodes is the cluster size (3 for replicas 3).
	Nodes int
	// Domain is the JetStream domain; empty means HubDomain.
	Domain string
	// Ready bounds the wait for a JetStream meta leader; 0 means 30 s.
	Ready time.Duration
	// CPUs, when set, runs every node under `taskset -c CPUs`.
	CPUs string
}

// Cluster is a JetStream cluster of nats-server processes.
type Cluster struct {
	bin   string
	cpus  string
	Nodes []*Node
}

// StartCluster starts a JetStream cluster of nats-server processes on
// loopback (a leafnode port each, config and store under o.Dir) and waits
// until it has a meta leader. The caller must Stop it.
func StartCluster(ctx context.Context, o ClusterOptions) (*Cluster, error) {
	if o.Domain == "" {
		o.Domain = HubDomain
	}
	if o.Ready == 0 {
		o.Ready = 30 * time.Second
	}
	c := &Cluster{bin: o.Binary, cpus: o.CPUs}
	ports, err := FreePorts(3 * o.Nodes)
	if err != nil {
		return nil, err
	}
	for i := range o.Nodes {
		c.Nodes = append(c.Nodes, &Node{
			Name:       o.Domain + "-" + strconv.Itoa(i+1),
			ClientPort: ports[3*i], ClusterPort: ports[3*i+1], LeafPort: ports[3*i+2],
			dir: filepath.Join(o.Dir, "n"+strconv.Itoa(i+1)),
		})
	}
	var routes []string
	for _, nd := range c.Nodes {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", nd.ClusterPort))
	}
	for _, nd := range c.Nodes {
		if err := os.MkdirAll(nd.dir, 0o755); err != nil {
			return nil, err
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
  name: %s
  listen: 127.0.0.1:%d
  routes: [%s]
}
leafnodes {
  listen: 127.0.0.1:%d
  # Leaf nodes reach the hub only through their Link: the cluster must not
  # gossip its leafnode addresses, or an edge would reconnect around a cut.
  no_advertise: true
}
`, nd.Name, nd.ClientPort, filepath.Join(nd.dir, "js"), o.Domain, o.Domain, nd.ClusterPort, strings.Join(routes, ", "), nd.LeafPort)
		if err := os.WriteFile(nd.conf, []byte(conf), 0o644); err != nil {
			return nil, err
		}
	}
	for i := range c.Nodes {
		if err := c.start(i); err != nil {
			c.Stop()
			return nil, err
		}
	}
	rctx, cancel := context.WithTimeout(ctx, o.Ready)
	defer cancel()
	if err := c.WaitReady(rctx); err != nil {
		c.Stop()
		return nil, fmt.Errorf("nats cluster not ready: %w\n%s", err, c.LogTails(30))
	}
	return c, nil
}

// start starts node i's process and waits until it accepts clients.
func (c *Cluster) start(i int) error {
	nd := c.Nodes[i]
	logf, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.bin, "-c", nd.conf)
	if c.cpus != "" {
		// taskset execs nats-server: same pid, every thread on the CPUs.
		cmd = exec.Command("taskset", "-c", c.cpus, c.bin, "-c", nd.conf)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", nd.Name, err)
	}
	nd.cmd, nd.exited = cmd, make(chan struct{})
	go func(ch chan struct{}) { _ = cmd.Wait(); logf.Close(); close(ch) }(nd.exited)
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(nd.ClientURL(), "nats://"), time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-nd.exited:
			return fmt.Errorf("%s exited at start\n%s", nd.Name, c.LogTails(30))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not accept clients: %w\n%s", nd.Name, err, c.LogTails(30))
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

// Connect returns a client connection to the cluster that reconnects
// forever.
func (c *Cluster) Connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond), nats.Name(name))
	if err != nil {
		return nil, fmt.Errorf("connect to the nats cluster: %w", err)
	}
	return nc, nil
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

// Restart starts node i again over its store (killing it first if it
// runs).
func (c *Cluster) Restart(i int) error {
	c.Kill(i)
	return c.start(i)
}

// Stop stops the processes this cluster started: SIGTERM, then SIGKILL
// after 5 s.
func (c *Cluster) Stop() {
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

// LogTails returns the last n lines of every node's log.
func (c *Cluster) LogTails(n int) string {
	var b strings.Builder
	for _, nd := range c.Nodes {
		data, _ := os.ReadFile(nd.logPath)
		lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "== %s log (tail):\n%s\n", nd.Name, bytes.Join(lines, []byte("\n")))
	}
	return b.String()
}
