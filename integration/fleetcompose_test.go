package integration

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/conf"
	"github.com/netfeat/netfeat/internal/fleettest"
	"github.com/netfeat/netfeat/internal/testkit"
	"gopkg.in/yaml.v3"
)

// fleetComposeDir holds the fleet's compose file and every file it mounts.
const fleetComposeDir = "../deploy/fleet"

// fleetComposeEnv stands for the variables the compose file interpolates
// (`${NETFEAT_TOKEN:?...}`): `export NETFEAT_TOKEN=...` before `docker
// compose up`.
var fleetComposeEnv = map[string]string{"NETFEAT_TOKEN": "fleet-compose-test-token"}

// fleetService is the part of a service of deploy/fleet/docker-compose.yml
// that the fleet relies on.
type fleetService struct {
	Build       string            `yaml:"build"`
	Image       string            `yaml:"image"`
	Restart     string            `yaml:"restart"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Healthcheck struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Ports   []string `yaml:"ports"`
	Volumes []string `yaml:"volumes"`
}

// Kinds of service in the fleet compose file.
const (
	kindNATS    = "nats"    // the official nats image: nats-server
	kindNetfeat = "netfeat" // the repository's image: netfeat serve or sim
)

func (s fleetService) kind() string {
	if strings.HasPrefix(s.Image, "nats:") {
		return kindNATS
	}
	if s.Build != "" {
		return kindNetfeat
	}
	return ""
}

// healthy reports whether compose would wait for the service's health
// check (depends_on condition service_healthy) rather than its start.
func (s fleetService) healthy() bool { return len(s.Healthcheck.Test) > 0 && !s.Healthcheck.Disable }

// fleetMount is one entry of a service's volumes.
type fleetMount struct {
	source, target string
	named          bool   // a named volume, else a file of deploy/fleet
	host           string // the loopback run's stand-in: a temporary directory or the rewritten file
}

// fleetPlan is the compose file and how the loopback run maps it onto this
// machine: every service's listen ports onto free loopback ports, its
// mounts onto temporary files and directories, and the image's paths onto
// the repository.
type fleetPlan struct {
	t        *testing.T
	name     string
	services map[string]fleetService
	volumes  map[string]any
	img      dockerImage
	mounts   map[string][]fleetMount
	// ports maps a service and a port it listens on (inside its container)
	// to the loopback port the run uses instead.
	ports map[string]map[int]int
	// refs records, per service, the services its command and files name
	// (host:port), for the depends_on check.
	refs map[string]map[string]bool
	// unmapped lists absolute paths in commands that are neither mounted
	// nor copied into the image.
	unmapped []string
	dir      string
}

var (
	// composeAddr is host:port in a command or a mounted file: a service
	// name, or one of selfHosts for the service's own listen addresses.
	composeAddr = regexp.MustCompile(`\b([A-Za-z0-9][A-Za-z0-9.-]*):(\d{1,5})\b`)
	// composePath is an absolute path at the start of a value.
	composePath = regexp.MustCompile(`(^|[\s"'\[,=])(/[A-Za-z0-9._/-]*)`)
	selfHosts   = map[string]bool{"0.0.0.0": true, "127.0.0.1": true, "localhost": true}
	composeVar  = regexp.MustCompile(`^\$\{(\w+)(?:[:?-].*)?\}$`)
)

// readFleetPlan parses the fleet compose file and prepares the loopback
// run: free ports, temporary volumes, and every mounted file rewritten into
// a temporary directory. What cannot be mapped fails the test.
func readFleetPlan(t *testing.T) *fleetPlan {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fleetComposeDir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf struct {
		Name     string                  `yaml:"name"`
		Services map[string]fleetService `yaml:"services"`
		Volumes  map[string]any          `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(raw, &cf); err != nil {
		t.Fatalf("deploy/fleet/docker-compose.yml: %v", err)
	}
	p := &fleetPlan{t: t, name: cf.Name, services: cf.Services, volumes: cf.Volumes,
		img: readDockerfile(t, "../Dockerfile"), mounts: map[string][]fleetMount{},
		ports: map[string]map[int]int{}, refs: map[string]map[string]bool{}, dir: t.TempDir()}
	used := map[int]bool{}
	for _, name := range p.names() {
		s := p.services[name]
		if s.kind() == "" {
			t.Fatalf("service %s: neither the nats image nor the repository's build", name)
		}
		p.refs[name] = map[string]bool{}
		p.ports[name] = map[int]int{}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Fatalf("service %s: volume %q is not SOURCE:TARGET", name, v)
			}
			m := fleetMount{source: parts[0], target: parts[1]}
			if strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/") {
				m.host = filepath.Join(p.dir, name, filepath.Base(m.target))
			} else {
				m.named = true
				m.host = filepath.Join(p.dir, "volumes", m.source)
				if err := os.MkdirAll(m.host, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			p.mounts[name] = append(p.mounts[name], m)
		}
		// Longest target first, so that /a/b wins over /a.
		sort.Slice(p.mounts[name], func(i, j int) bool { return len(p.mounts[name][i].target) > len(p.mounts[name][j].target) })
		// The service's own listen addresses, in its command and files.
		for _, text := range append(slices.Clone(s.Command), p.mountedTexts(name)...) {
			for _, m := range composeAddr.FindAllStringSubmatch(text, -1) {
				port, _ := strconv.Atoi(m[2])
				if selfHosts[m[1]] && p.ports[name][port] == 0 {
					p.ports[name][port] = freeLoopbackPort(t, used)
				}
			}
		}
	}
	// Every mounted file, rewritten for loopback.
	for _, name := range p.names() {
		for _, m := range p.mounts[name] {
			if m.named {
				continue
			}
			b, err := os.ReadFile(filepath.Join(fleetComposeDir, m.source))
			if err != nil {
				t.Fatalf("service %s: %v", name, err)
			}
			if err := os.MkdirAll(filepath.Dir(m.host), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(m.host, []byte(p.rewrite(name, string(b), false)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return p
}

// names returns the service names, sorted.
func (p *fleetPlan) names() []string {
	var ns []string
	for n := range p.services {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// mountedTexts returns the contents of the files mounted into a service.
func (p *fleetPlan) mountedTexts(name string) []string {
	var out []string
	for _, m := range p.mounts[name] {
		if !m.named {
			b, err := os.ReadFile(filepath.Join(fleetComposeDir, m.source))
			if err != nil {
				p.t.Fatalf("service %s: %v", name, err)
			}
			out = append(out, string(b))
		}
	}
	return out
}

// rewrite maps text of service name (a command argument or a mounted file)
// onto loopback: the service's own listen addresses (0.0.0.0:P,
// 127.0.0.1:P) and other services' addresses (SERVICE:P) become
// 127.0.0.1 and the free port chosen for them; absolute paths under a
// mount become the stand-in, and (for the repository's image) paths the
// Dockerfile copies become the repository's files. Nothing else changes.
func (p *fleetPlan) rewrite(name, text string, command bool) string {
	text = composeAddr.ReplaceAllStringFunc(text, func(s string) string {
		m := composeAddr.FindStringSubmatch(s)
		port, _ := strconv.Atoi(m[2])
		target := m[1]
		if selfHosts[target] {
			target = name
		} else if _, ok := p.services[target]; !ok {
			return s // not an address of the fleet
		} else {
			p.refs[name][target] = true
		}
		lp, ok := p.ports[target][port]
		if !ok {
			p.t.Errorf("service %s names %s, but %s listens on no port %d", name, s, target, port)
			return s
		}
		return fmt.Sprintf("127.0.0.1:%d", lp)
	})
	return composePath.ReplaceAllStringFunc(text, func(s string) string {
		m := composePath.FindStringSubmatch(s)
		if h, ok := p.hostPath(name, m[2]); ok {
			return m[1] + h
		}
		if command {
			p.unmapped = append(p.unmapped, name+": "+m[2])
		}
		return s
	})
}

// hostPath maps a path inside service name's container to this machine.
func (p *fleetPlan) hostPath(name, path string) (string, bool) {
	for _, m := range p.mounts[name] {
		if path == m.target {
			return m.host, true
		}
		if strings.HasPrefix(path, m.target+"/") {
			return filepath.Join(m.host, strings.TrimPrefix(path, m.target+"/")), true
		}
	}
	if p.services[name].kind() == kindNetfeat {
		if h := p.img.hostPath(path); h != "" {
			abs, err := filepath.Abs(h)
			if err != nil {
				p.t.Fatal(err)
			}
			return abs, true
		}
	}
	return "", false
}

// mount returns the mount of service name at target.
func (p *fleetPlan) mount(name, target string) (fleetMount, bool) {
	for _, m := range p.mounts[name] {
		if m.target == target {
			return m, true
		}
	}
	return fleetMount{}, false
}

// argAfter returns the argument after flag in a command, or "".
func argAfter(cmd []string, flag string) string {
	if i := slices.Index(cmd, flag); i >= 0 && i+1 < len(cmd) {
		return cmd[i+1]
	}
	return ""
}

// isServe reports whether the service runs `netfeat serve`.
func (p *fleetPlan) isServe(name string) bool {
	s := p.services[name]
	return s.kind() == kindNetfeat && len(s.Command) > 0 && s.Command[0] == "serve"
}

// netfeatConfig is what the fleet test reads of a mounted netfeat config.
type netfeatConfig struct {
	Role string `yaml:"role"`
	Site string `yaml:"site"`
	NATS struct {
		URL    string `yaml:"url"`
		Listen string `yaml:"listen"`
		Leaf   struct {
			Remotes []struct {
				URLs []string `yaml:"urls"`
			} `yaml:"remotes"`
		} `yaml:"leaf"`
	} `yaml:"nats"`
	Views []map[string]any `yaml:"views"`
}

// serveConfig returns the repository path and the parsed contents of the
// configuration a `netfeat serve` service mounts at its -c path.
func (p *fleetPlan) serveConfig(name string) (string, netfeatConfig) {
	p.t.Helper()
	target := argAfter(p.services[name].Command, "-c")
	m, ok := p.mount(name, target)
	if !ok || m.named {
		p.t.Fatalf("service %s: -c %s is not a mounted file", name, target)
	}
	path := filepath.Join(fleetComposeDir, m.source)
	b, err := os.ReadFile(path)
	if err != nil {
		p.t.Fatal(err)
	}
	var c netfeatConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		p.t.Fatalf("%s: %v", path, err)
	}
	return path, c
}

// natsConfig returns the repository path and the parsed contents of a
// nats service's configuration file (its -c path).
func (p *fleetPlan) natsConfig(name string) (string, map[string]any) {
	p.t.Helper()
	cmd := p.services[name].Command
	target := argAfter(cmd, "-c")
	m, ok := p.mount(name, target)
	if !ok || m.named {
		p.t.Fatalf("service %s: -c %q is not a mounted file", name, target)
	}
	path := filepath.Join(fleetComposeDir, m.source)
	b, err := os.ReadFile(path)
	if err != nil {
		p.t.Fatal(err)
	}
	c, err := conf.Parse(string(b))
	if err != nil {
		p.t.Fatalf("%s: %v", path, err)
	}
	return path, c
}

// freeLoopbackPort returns a loopback port free for both TCP and UDP (the
// SNMP simulator listens on UDP) and not in used, and adds it to used.
func freeLoopbackPort(t *testing.T, used map[int]bool) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		if used[port] {
			continue
		}
		used[port] = true
		return port
	}
	t.Fatal("no loopback port free for both TCP and UDP")
	return 0
}

// goModVersion returns the version go.mod requires of module mod.
func goModVersion(t *testing.T, mod string) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(mod) + `\s+v(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("go.mod does not require %s", mod)
	}
	return string(m[1])
}

// TestFleetComposeFile checks deploy/fleet/docker-compose.yml without
// Docker: the services of the fleet (three NATS nodes, a hub, two edges and
// their simulators) and their wiring: pinned images, the repository's
// build, restart policies, health checks, that every service another names
// is in its depends_on, published ports (loopback only, on a port the
// service listens on), volumes, the NATS cluster (domain hub, routes to
// every node, leafnode port not advertised), the hub's nats.url and the
// edges' leaf remotes naming every node, the hub's views equal to the
// edges'; and runs `netfeat config check` on every netfeat configuration
// and `nats-server -t` on every NATS configuration it mounts.
func TestFleetComposeFile(t *testing.T) {
	p := readFleetPlan(t)
	if p.name == "" {
		t.Error("no project name: it would clash with the root docker-compose.yml's volumes")
	}
	for _, name := range p.names() {
		for _, a := range p.services[name].Command {
			p.rewrite(name, a, true) // records references and unmapped paths
		}
	}
	for _, u := range p.unmapped {
		t.Errorf("%s is neither mounted nor in the image", u)
	}

	// Root compose's image name: the fleet builds the same image.
	var root composeFile
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	natsImage := "nats:" + goModVersion(t, "github.com/nats-io/nats-server/v2") + "-alpine"

	var natsNodes, hubs, edges, sims []string
	sites := map[string]string{}
	for _, name := range p.names() {
		s := p.services[name]
		if s.Restart != "unless-stopped" {
			t.Errorf("service %s: restart %q, want unless-stopped", name, s.Restart)
		}
		switch s.kind() {
		case kindNATS:
			natsNodes = append(natsNodes, name)
			if s.Image != natsImage {
				t.Errorf("service %s: image %s, want %s (go.mod's nats-server)", name, s.Image, natsImage)
			}
			if len(s.Command) == 0 || !strings.HasPrefix(s.Command[0], "-") {
				t.Errorf("service %s: command %q: the image's entrypoint runs nats-server only for arguments starting with -", name, s.Command)
			}
		case kindNetfeat:
			if abs, _ := filepath.Abs(filepath.Join(fleetComposeDir, s.Build)); abs != mustAbs(t, "..") {
				t.Errorf("service %s: build %s is not the repository root", name, s.Build)
			}
			if want := root.Services["netfeat"].Image; s.Image != want {
				t.Errorf("service %s: image %q, want the root compose's %q", name, s.Image, want)
			}
			for _, a := range s.Command {
				if h, ok := p.hostPath(name, a); ok && strings.HasPrefix(a, "/") {
					if _, err := os.Stat(h); err != nil {
						t.Errorf("service %s: %s: %v", name, a, err)
					}
				}
			}
			if !p.isServe(name) {
				sims = append(sims, name)
				if len(s.Command) < 2 || s.Command[0] != "sim" {
					t.Errorf("service %s: command %q, want serve or sim", name, s.Command)
				}
				continue
			}
			_, c := p.serveConfig(name)
			switch c.Role {
			case "hub":
				hubs = append(hubs, name)
			case "edge":
				edges = append(edges, name)
				if other, ok := sites[c.Site]; ok {
					t.Errorf("services %s and %s are both site %q", other, name, c.Site)
				}
				sites[c.Site] = name
			default:
				t.Errorf("service %s: role %q, want hub or edge", name, c.Role)
			}
			if d := argAfter(s.Command, "--data-dir"); d == "" {
				t.Errorf("service %s: no --data-dir", name)
			} else if m, ok := p.mount(name, d); !ok || !m.named {
				t.Errorf("service %s: --data-dir %s is not a named volume", name, d)
			}
			if l := argAfter(s.Command, "--http-listen"); !strings.HasPrefix(l, "0.0.0.0:") {
				t.Errorf("service %s: --http-listen %q, want 0.0.0.0:PORT (published and health-checked)", name, l)
			}
			for k, v := range s.Environment {
				if m := composeVar.FindStringSubmatch(v); m != nil && fleetComposeEnv[m[1]] == "" {
					t.Errorf("service %s: %s=%s: a variable the test does not know", name, k, v)
				}
			}
			if !strings.Contains(s.Environment["NETFEAT_TOKEN"], "${NETFEAT_TOKEN:?") {
				t.Errorf("service %s: NETFEAT_TOKEN %q, want ${NETFEAT_TOKEN:?...} (compose refuses to start without it)", name, s.Environment["NETFEAT_TOKEN"])
			}
		}
	}
	if len(natsNodes) != 3 || len(hubs) != 1 || len(edges) != 2 || len(sims) != 2 {
		t.Fatalf("services: nats %v, hubs %v, edges %v, simulators %v; want 3, 1, 2, 2", natsNodes, hubs, edges, sims)
	}
	if _, ok := sites["paris"]; !ok {
		t.Errorf("no edge of site paris: %v", sites)
	}
	if _, ok := sites["lyon"]; !ok {
		t.Errorf("no edge of site lyon: %v", sites)
	}

	// Health checks: compose waits on them (depends_on service_healthy).
	for _, name := range append(append(slices.Clone(natsNodes), hubs...), edges...) {
		hc := p.services[name].Healthcheck
		if !p.services[name].healthy() || hc.Test[0] != "CMD" {
			t.Errorf("service %s: health check %q, want CMD ...", name, hc.Test)
			continue
		}
		if p.isServe(name) && (len(hc.Test) < 3 || hc.Test[1] != "/usr/local/bin/netfeat" || hc.Test[2] != "healthcheck") {
			t.Errorf("service %s: health check %q, want netfeat healthcheck", name, hc.Test)
		}
		if p.services[name].kind() == kindNATS && (hc.Test[1] != "wget" || !strings.Contains(hc.Test[len(hc.Test)-1], "/healthz")) {
			t.Errorf("service %s: health check %q, want wget of /healthz", name, hc.Test)
		}
	}
	// Every service a netfeat service names is in its depends_on, and is
	// waited for when it has a health check. The NATS nodes name each other
	// (routes) and start together.
	for _, name := range p.names() {
		deps := p.services[name].DependsOn
		for ref := range p.refs[name] {
			if p.services[name].kind() == kindNATS {
				continue
			}
			want := "service_started"
			if p.services[ref].healthy() {
				want = "service_healthy"
			}
			if d, ok := deps[ref]; !ok || d.Condition != want {
				t.Errorf("service %s names %s: depends_on %s condition %q, want %s", name, ref, ref, d.Condition, want)
			}
		}
		for dep := range deps {
			if _, ok := p.services[dep]; !ok {
				t.Errorf("service %s depends on %s, which is no service", name, dep)
			}
		}
	}
	// Published ports: loopback of the host only, on a port the service
	// listens on, each host port once.
	hostPorts := map[string]string{}
	for _, name := range p.names() {
		for _, pp := range p.services[name].Ports {
			parts := strings.Split(pp, ":")
			if len(parts) != 3 || parts[0] != "127.0.0.1" {
				t.Errorf("service %s: port %q, want 127.0.0.1:HOST:CONTAINER", name, pp)
				continue
			}
			if other, ok := hostPorts[parts[1]]; ok {
				t.Errorf("services %s and %s both publish host port %s", other, name, parts[1])
			}
			hostPorts[parts[1]] = name
			cp, _ := strconv.Atoi(parts[2])
			if p.ports[name][cp] == 0 {
				t.Errorf("service %s publishes %s, but listens on no port %d", name, pp, cp)
			}
		}
	}
	for _, name := range append(slices.Clone(hubs), edges...) {
		if _, ok := p.published(name, 9464); !ok {
			t.Errorf("service %s: its HTTP API (9464) is not published", name)
		}
	}
	// Named volumes: declared, and each used by one service.
	volUser := map[string]string{}
	for _, name := range p.names() {
		for _, m := range p.mounts[name] {
			if !m.named {
				if _, err := os.Stat(filepath.Join(fleetComposeDir, m.source)); err != nil {
					t.Errorf("service %s: %v", name, err)
				}
				continue
			}
			if _, ok := p.volumes[m.source]; !ok {
				t.Errorf("service %s: volume %s is not declared", name, m.source)
			}
			if other, ok := volUser[m.source]; ok {
				t.Errorf("services %s and %s share volume %s", other, name, m.source)
			}
			volUser[m.source] = name
		}
	}
	for v := range p.volumes {
		if _, ok := volUser[v]; !ok {
			t.Errorf("volume %s is declared but no service mounts it", v)
		}
	}

	// The NATS cluster: each node's configuration.
	clusterNames := map[string]bool{}
	portOf := func(c map[string]any, block, key string) int {
		v := c[key]
		if block != "" {
			b, _ := c[block].(map[string]any)
			v = b[key]
		}
		_, ps, _ := strings.Cut(fmt.Sprint(v), ":")
		n, _ := strconv.Atoi(ps)
		return n
	}
	clientPort, routePort, leafPort := map[string]int{}, map[string]int{}, map[string]int{}
	for _, name := range natsNodes {
		path, c := p.natsConfig(name)
		clientPort[name], routePort[name], leafPort[name] = portOf(c, "", "listen"), portOf(c, "cluster", "listen"), portOf(c, "leafnodes", "listen")
		if c["server_name"] != name {
			t.Errorf("%s: server_name %v, want the service name %s", path, c["server_name"], name)
		}
		js, _ := c["jetstream"].(map[string]any)
		if js["domain"] != fleettest.HubDomain {
			t.Errorf("%s: jetstream.domain %v, want %s", path, js["domain"], fleettest.HubDomain)
		}
		if m, ok := p.mount(name, fmt.Sprint(js["store_dir"])); !ok || !m.named {
			t.Errorf("%s: jetstream.store_dir %v is not a named volume", path, js["store_dir"])
		}
		cl, _ := c["cluster"].(map[string]any)
		clusterNames[fmt.Sprint(cl["name"])] = true
		leaf, _ := c["leafnodes"].(map[string]any)
		if leaf["no_advertise"] != true {
			t.Errorf("%s: leafnodes.no_advertise %v, want true", path, leaf["no_advertise"])
		}
		for _, port := range []int{clientPort[name], routePort[name], leafPort[name]} {
			if port == 0 || p.ports[name][port] == 0 {
				t.Errorf("%s: listen, cluster.listen and leafnodes.listen must be 0.0.0.0:PORT", path)
			}
		}
	}
	if len(clusterNames) != 1 {
		t.Errorf("NATS cluster names %v, want one", clusterNames)
	}
	for _, name := range natsNodes {
		path, c := p.natsConfig(name)
		cl, _ := c["cluster"].(map[string]any)
		routes := fmt.Sprint(cl["routes"])
		for _, n := range natsNodes {
			if want := fmt.Sprintf("nats-route://%s:%d", n, routePort[n]); !strings.Contains(routes, want) {
				t.Errorf("%s: cluster.routes %s lack %s", path, routes, want)
			}
		}
	}

	// The hub and the edges: their configurations name every node.
	_, hub := p.serveConfig(hubs[0])
	for _, n := range natsNodes {
		if want := fmt.Sprintf("nats://%s:%d", n, clientPort[n]); !slices.Contains(strings.Split(hub.NATS.URL, ","), want) {
			t.Errorf("hub: nats.url %q lacks %s", hub.NATS.URL, want)
		}
	}
	hubViews, _ := yaml.Marshal(hub.Views)
	for _, e := range edges {
		_, c := p.serveConfig(e)
		var urls []string
		for _, r := range c.NATS.Leaf.Remotes {
			urls = append(urls, r.URLs...)
		}
		for _, n := range natsNodes {
			if want := fmt.Sprintf("nats-leaf://%s:%d", n, leafPort[n]); !slices.Contains(urls, want) {
				t.Errorf("%s: nats.leaf.remotes %v lack %s", e, urls, want)
			}
		}
		if v, _ := yaml.Marshal(c.Views); string(v) != string(hubViews) {
			t.Errorf("%s: views differ from the hub's: a fleet table needs the edges' view\nedge:\n%s\nhub:\n%s", e, v, hubViews)
		}
	}
	// config check, as `netfeat serve` loads them (the token is read at
	// start, not by config check).
	for _, name := range append(slices.Clone(hubs), edges...) {
		path, _ := p.serveConfig(name)
		cmd := exec.Command(netfeatBin, "config", "check", path)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("config check %s: %v\n%s", path, err, out)
		}
	}
	// nats-server's own configuration test, with the version the image
	// runs (skipped without bin/nats-server unless NETFEAT_REQUIRE_FLEET).
	t.Run("nats-server -t", func(t *testing.T) {
		natsBin := fleettest.NATSServer(t)
		for _, name := range natsNodes {
			path, _ := p.natsConfig(name)
			if out, err := exec.Command(natsBin, "-t", "-c", path).CombinedOutput(); err != nil {
				t.Errorf("nats-server -t -c %s: %v\n%s", path, err, out)
			}
		}
	})
}

// published returns the host port on which service name publishes its
// container port.
func (p *fleetPlan) published(name string, port int) (string, bool) {
	for _, pp := range p.services[name].Ports {
		parts := strings.Split(pp, ":")
		if len(parts) == 3 && parts[2] == strconv.Itoa(port) {
			return parts[1], true
		}
	}
	return "", false
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// composeProc is one service of the loopback run.
type composeProc struct {
	name   string
	cmd    *exec.Cmd
	logs   *testkit.SyncBuffer
	exited chan struct{}
}

// startOrder returns the services in the order compose starts them: every
// service after its depends_on, ties by name.
func (p *fleetPlan) startOrder() []string {
	p.t.Helper()
	var order []string
	done := map[string]bool{}
	for len(order) < len(p.services) {
		var ready []string
		for _, name := range p.names() {
			if done[name] {
				continue
			}
			ok := true
			for dep := range p.services[name].DependsOn {
				ok = ok && done[dep]
			}
			if ok {
				ready = append(ready, name)
			}
		}
		if len(ready) == 0 {
			p.t.Fatalf("depends_on has a cycle among the services not started: %v", order)
		}
		for _, n := range ready {
			done[n] = true
		}
		order = append(order, ready...)
	}
	return order
}

// start runs service name as its container would: nats-server with the
// command's arguments (the image's entrypoint prepends nats-server), or the
// netfeat binary (the Dockerfile's ENTRYPOINT) with them, rewritten for
// loopback, with the service's environment.
func (p *fleetPlan) start(name string) *composeProc {
	p.t.Helper()
	s := p.services[name]
	var args []string
	for _, a := range s.Command {
		args = append(args, p.rewrite(name, a, true))
	}
	bin := netfeatBin
	if s.kind() == kindNATS {
		bin = fleettest.NATSServer(p.t)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = p.t.TempDir()
	cmd.Env = os.Environ()
	for k, v := range s.Environment {
		if m := composeVar.FindStringSubmatch(v); m != nil {
			v = fleetComposeEnv[m[1]]
		}
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	pr := &composeProc{name: name, cmd: cmd, logs: &testkit.SyncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = pr.logs, pr.logs
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(pr.exited) }()
	p.t.Cleanup(func() {
		if p.t.Failed() {
			p.t.Logf("== %s %q (tail):\n%s", name, args, tail(pr.logs.String(), 25))
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-pr.exited:
		case <-time.After(25 * time.Second):
			_ = cmd.Process.Kill()
			<-pr.exited
		}
	})
	return pr
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkHealth runs service name's health check against its loopback run:
// `netfeat healthcheck` (its default URL, http://127.0.0.1:9464/readyz,
// rewritten like the rest) or wget's URL as an HTTP GET.
func (p *fleetPlan) checkHealth(name string) bool {
	test := p.services[name].Healthcheck.Test
	switch {
	case len(test) >= 3 && test[1] == "/usr/local/bin/netfeat" && test[2] == "healthcheck":
		args := []string{"healthcheck"}
		for _, a := range test[3:] {
			args = append(args, p.rewrite(name, a, true))
		}
		if argAfter(args, "--url") == "" {
			args = append(args, "--url", p.rewrite(name, "http://127.0.0.1:9464/readyz", true))
		}
		return exec.Command(netfeatBin, args...).Run() == nil
	case len(test) >= 3 && test[1] == "wget":
		resp, err := http.Get(p.rewrite(name, test[len(test)-1], true))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	p.t.Fatalf("service %s: health check %q: the test runs netfeat healthcheck and wget only", name, test)
	return false
}

// waitHealthy waits until service name's health check passes.
func (p *fleetPlan) waitHealthy(pr *composeProc, d time.Duration) {
	p.t.Helper()
	testkit.EventuallyWithin(p.t, d, pr.name+" healthy", func() bool {
		select {
		case <-pr.exited:
			p.t.Fatalf("%s exited: %v; logs:\n%s", pr.name, pr.cmd.ProcessState, tail(pr.logs.String(), 40))
		default:
		}
		return p.checkHealth(pr.name)
	})
}

// readmeFleetQueries returns the `netfeat query` command lines of README.md's
// "Fleet in containers" section, split into arguments as a shell would.
func readmeFleetQueries(t *testing.T) [][]string {
	t.Helper()
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	in, fence, cont := false, false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "```") {
			fence = !fence
			continue
		}
		if !fence && strings.HasPrefix(line, "#") {
			in = strings.TrimLeft(line, "# ") == "Fleet in containers"
			continue
		}
		if !in || !fence {
			continue
		}
		if cont != "" || strings.HasPrefix(line, "netfeat query ") {
			cont += line
			if strings.HasSuffix(cont, `\`) {
				cont = strings.TrimSuffix(cont, `\`)
				continue
			}
			out = append(out, shellWords(t, cont)[2:])
			cont = ""
		}
	}
	if len(out) < 2 {
		t.Fatalf("README.md, Fleet in containers: %d `netfeat query` lines, want 2", len(out))
	}
	return out
}

// shellWords splits a command line on blanks, honouring single and double
// quotes (no escapes or expansions: the README's lines need none).
func shellWords(t *testing.T, s string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// TestFleetComposeOnLoopback runs deploy/fleet/docker-compose.yml's
// services with the real binaries on loopback, from the very files the
// compose file mounts: the three nats-server nodes, the hub, the two edges
// and their simulators, in compose's start order (waiting for the health
// checks depends_on names), each listen address and service address
// rewritten to 127.0.0.1 and a free port, each mount to a temporary file or
// directory. Then it runs README.md's "Fleet in containers" queries, with
// the hub's published port, until each answers rows of both sites.
func TestFleetComposeOnLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs the whole fleet for about half a minute")
	}
	fleettest.NATSServer(t)
	start := time.Now()
	p := readFleetPlan(t)
	queries := readmeFleetQueries(t)

	procs := map[string]*composeProc{}
	healthy := map[string]bool{}
	for _, name := range p.startOrder() {
		for dep, d := range p.services[name].DependsOn {
			if d.Condition == "service_healthy" && !healthy[dep] {
				p.waitHealthy(procs[dep], 45*time.Second)
				healthy[dep] = true
			}
		}
		procs[name] = p.start(name)
	}
	for _, name := range p.names() {
		if p.services[name].healthy() && !healthy[name] {
			p.waitHealthy(procs[name], 45*time.Second)
		}
	}
	t.Logf("every service healthy after %v", time.Since(start).Round(100*time.Millisecond))
	if t.Failed() {
		t.FailNow()
	}

	var sites []string
	hubName := ""
	for _, name := range p.names() {
		if p.isServe(name) {
			switch _, c := p.serveConfig(name); c.Role {
			case "edge":
				sites = append(sites, c.Site)
			case "hub":
				hubName = name
			}
		}
	}
	sort.Strings(sites)
	// The README's --server is the host's published port: the hub's.
	hostURL := regexp.MustCompile(`^http://127\.0\.0\.1:(\d+)$`)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	for _, q := range queries {
		server := argAfter(q, "--server")
		m := hostURL.FindStringSubmatch(server)
		if m == nil {
			t.Fatalf("README query %q: --server %q, want http://127.0.0.1:PORT", q, server)
		}
		hubPort, _ := p.published(hubName, 9464)
		if m[1] != hubPort {
			t.Fatalf("README query %q: port %s is not the hub's published HTTP port %s", q, m[1], hubPort)
		}
		args := slices.Clone(q)
		args[slices.Index(args, "--server")+1] = fmt.Sprintf("http://127.0.0.1:%d", p.ports[hubName][9464])
		args = append([]string{"query", "--format", "csv"}, args...)
		var got []string
		var out string
		for {
			cmd := exec.CommandContext(ctx, netfeatBin, args...)
			cmd.Env = append(os.Environ(), "NETFEAT_TOKEN="+fleetComposeEnv["NETFEAT_TOKEN"])
			b, err := cmd.CombinedOutput()
			out = string(b)
			got = nil
			if err == nil {
				seen := map[string]bool{}
				for i, l := range strings.Split(strings.TrimSpace(out), "\n") {
					if i > 0 && l != "" && !seen[splitCSV(l)[0]] {
						seen[splitCSV(l)[0]] = true
						got = append(got, splitCSV(l)[0])
					}
				}
				sort.Strings(got)
				if slices.Equal(got, sites) {
					break
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("README query %q at the hub: sites %v, want %v; last output:\n%s", q[len(q)-1], got, sites, out)
			case <-time.After(time.Second):
			}
		}
		t.Logf("README query %q at the hub after %v:\n%s", q[len(q)-1], time.Since(start).Round(100*time.Millisecond), out)
	}
}
