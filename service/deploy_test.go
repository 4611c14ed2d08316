package service

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"gopkg.in/yaml.v3"
)

// The monitoring that docker-compose.yml ships (#18): a Prometheus that
// scrapes /metrics and /metrics/devices, a Grafana provisioned with it and
// deploy/grafana/netfeat.json. Docker is not on the test machines: these
// tests read the files and hold them to the code.

var repoRoot = filepath.Join("..")

// composeService is the part of a docker-compose.yml service these tests
// read.
type composeService struct {
	Image       string            `yaml:"image"`
	Restart     string            `yaml:"restart"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Ports   []string `yaml:"ports"`
	Volumes []string `yaml:"volumes"`
	Secrets []string `yaml:"secrets"`
}

type composeDoc struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	Secrets  map[string]struct {
		Environment string `yaml:"environment"`
		File        string `yaml:"file"`
	} `yaml:"secrets"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// mounts maps each container path a service mounts from the repository to
// the repository path; named volumes map to "".
func mounts(t *testing.T, name string, s composeService) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			t.Errorf("service %s: volume %q has no container path", name, v)
			continue
		}
		host := ""
		if strings.HasPrefix(parts[0], "./") {
			host = filepath.Join(repoRoot, parts[0])
			if _, err := os.Stat(host); err != nil {
				t.Errorf("service %s: %s: %v", name, v, err)
			}
		}
		out[parts[1]] = host
	}
	return out
}

// TestComposeMonitoring checks the prometheus and grafana services of
// docker-compose.yml: pinned images (Prometheus the version whose scrape
// parser the page tests use), restart policy, health checks and start
// order, loopback-only ports, the mounted files, the scrape configuration
// (both netfeat paths on the port netfeat listens on, the devices' with the
// token compose passes as a secret from NETFEAT_TOKEN), Grafana's data
// source and the dashboard provider's directory holding netfeat.json.
func TestComposeMonitoring(t *testing.T) {
	var doc composeDoc
	readYAML(t, filepath.Join(repoRoot, "docker-compose.yml"), &doc)
	prom, okP := doc.Services["prometheus"]
	graf, okG := doc.Services["grafana"]
	nf, okN := doc.Services["netfeat"]
	if !okP || !okG || !okN {
		t.Fatalf("services prometheus %v, grafana %v, netfeat %v: want all three", okP, okG, okN)
	}

	// go.mod's github.com/prometheus/prometheus v0.X0Y.Z is Prometheus v3.X.Y... as
	// v0.307.3 is v3.7.3.
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`github.com/prometheus/prometheus v0\.(\d)(\d\d)\.(\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod does not require github.com/prometheus/prometheus v0.3xx.y")
	}
	var minor int
	fmt.Sscan(string(m[2]), &minor)
	if want := fmt.Sprintf("prom/prometheus:v%s.%d.%s", m[1], minor, m[3]); prom.Image != want {
		t.Errorf("prometheus image %q, want %q (the version of go.mod's scrape parser)", prom.Image, want)
	}
	if !regexp.MustCompile(`^grafana/grafana:\d+\.\d+\.\d+$`).MatchString(graf.Image) {
		t.Errorf("grafana image %q: want a pinned grafana/grafana:X.Y.Z", graf.Image)
	}
	for name, s := range map[string]composeService{"prometheus": prom, "grafana": graf} {
		if s.Restart != "unless-stopped" {
			t.Errorf("service %s: restart %q, want unless-stopped", name, s.Restart)
		}
		if len(s.Healthcheck.Test) < 2 || s.Healthcheck.Test[0] != "CMD" {
			t.Errorf("service %s: health check %q, want CMD ...", name, s.Healthcheck.Test)
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("service %s: port %s is not on loopback only", name, p)
			}
		}
	}
	if c := prom.DependsOn["netfeat"].Condition; c != "service_healthy" {
		t.Errorf("prometheus depends_on netfeat %q, want service_healthy", c)
	}
	if c := graf.DependsOn["prometheus"].Condition; c != "service_healthy" {
		t.Errorf("grafana depends_on prometheus %q, want service_healthy", c)
	}

	// The scrape configuration.
	pm := mounts(t, "prometheus", prom)
	confPath := ""
	for i, a := range prom.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			confPath = v
		} else if a == "--config.file" && i+1 < len(prom.Command) {
			confPath = prom.Command[i+1]
		}
	}
	host := pm[confPath]
	if host == "" {
		t.Fatalf("prometheus --config.file %q is not mounted from the repository", confPath)
	}
	var pcfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			Authorization struct {
				Type            string `yaml:"type"`
				CredentialsFile string `yaml:"credentials_file"`
			} `yaml:"authorization"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, host, &pcfg)
	port := ""
	for i, a := range nf.Command {
		if a == "--http-listen" && i+1 < len(nf.Command) {
			_, port, _ = strings.Cut(nf.Command[i+1], ":")
		}
	}
	paths := map[string]bool{}
	for _, sc := range pcfg.ScrapeConfigs {
		path := sc.MetricsPath
		if path == "" {
			path = "/metrics"
		}
		paths[path] = true
		if len(sc.StaticConfigs) != 1 || !slices.Equal(sc.StaticConfigs[0].Targets, []string{"netfeat:" + port}) {
			t.Errorf("job %s: targets %v, want [netfeat:%s]", sc.JobName, sc.StaticConfigs, port)
		}
		if path != DeviceMetricsPath {
			continue
		}
		f := sc.Authorization.CredentialsFile
		secret, ok := strings.CutPrefix(f, "/run/secrets/")
		if sc.Authorization.Type != "Bearer" || !ok || !slices.Contains(prom.Secrets, secret) {
			t.Errorf("job %s: authorization %+v, want Bearer with a secret of the prometheus service (%v)", sc.JobName, sc.Authorization, prom.Secrets)
		} else if doc.Secrets[secret].Environment != "NETFEAT_TOKEN" {
			t.Errorf("secret %s comes from %+v, want the environment's NETFEAT_TOKEN (netfeat's token)", secret, doc.Secrets[secret])
		}
	}
	if !paths["/metrics"] || !paths[DeviceMetricsPath] || len(paths) != 2 {
		t.Errorf("scrape paths %v, want /metrics and %s", paths, DeviceMetricsPath)
	}

	// Grafana: the data source, the dashboard provider and the dashboard.
	gm := mounts(t, "grafana", graf)
	dsDir, dbDir := gm["/etc/grafana/provisioning/datasources"], gm["/etc/grafana/provisioning/dashboards"]
	if dsDir == "" || dbDir == "" {
		t.Fatalf("grafana mounts %v: want provisioning/datasources and provisioning/dashboards from the repository", gm)
	}
	var ds struct {
		Datasources []struct{ Name, UID, Type, URL string } `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(dsDir, "prometheus.yml"), &ds)
	promPort := ""
	for _, p := range prom.Ports {
		promPort = p[strings.LastIndex(p, ":")+1:]
	}
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:"+promPort {
		t.Errorf("data sources %+v, want one of type prometheus at http://prometheus:%s", ds.Datasources, promPort)
	}
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(dbDir, "netfeat.yml"), &prov)
	if len(prov.Providers) != 1 {
		t.Fatalf("dashboard providers %+v, want one", prov.Providers)
	}
	want, _ := filepath.Abs(filepath.Join(repoRoot, "deploy", "grafana", "netfeat.json"))
	got, _ := filepath.Abs(gm[prov.Providers[0].Options.Path+"/netfeat.json"])
	if got != want {
		t.Errorf("the provider's directory %s does not hold deploy/grafana/netfeat.json (mounts %v)", prov.Providers[0].Options.Path, gm)
	}
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID        string           `json:"uid"`
	Title      string           `json:"title"`
	Panels     []dashboardPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type dashboardPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// serviceMetricNames tells whether the service built from the compose
// configuration registers a metric family: a descriptor registered under
// the name (probed with Register, whose error says so whether or not the
// metric has a sample yet) or a family Gather returns.
func serviceMetricNames(t *testing.T) func(string) bool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "netfeat-compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("netfeat-compose.yaml", raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	reg := NewRegistry()
	if _, err := New(cfg, reg, nil); err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gathered := map[string]bool{}
	for _, f := range fams {
		gathered[f.GetName()] = true
	}
	return func(name string) bool {
		if gathered[name] {
			return true
		}
		probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe " + t.Name()})
		if err := reg.Register(probe); err != nil {
			return strings.Contains(err.Error(), "same fully-qualified name")
		}
		reg.Unregister(probe)
		return false
	}
}

// deviceMetricNames returns the sample names /metrics/devices can write
// with the compose configuration's views, and the labels of each.
func deviceMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "netfeat-compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig("netfeat-compose.yaml", raw)
	if err != nil {
		t.Fatal(err)
	}
	d, err := newDeviceMetrics(nil, cfg.Views, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range d.families {
		if f.typ == "counter" {
			names[f.name+"_total"] = true
		} else {
			names[f.name] = true
		}
	}
	for _, g := range d.features {
		names[g.family.name] = true
	}
	for _, f := range []expoFamily{deviceUpFamily, deviceLastSuccessFamily, actionFiringFamily} {
		names[f.name] = true
	}
	return names
}

// deviceLabelNames are the labels /metrics/devices writes.
var deviceLabelNames = []string{"device", "component", "site", "role", "view", "window", "protocol", "model"}

// grafanaVars replaces the dashboard's variables so that PromQL parses.
var grafanaVars = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "${datasource}", "prometheus",
	"$device", ".*", "$site", ".*", "$interface", ".*")

// TestGrafanaDashboard checks deploy/grafana/netfeat.json: its sections,
// distinct panel ids, panels that do not overlap, every panel on the
// provisioned data source, and every expression (and variable query)
// valid PromQL whose every metric is one the service registers or
// /metrics/devices writes (with the compose configuration), matched on
// labels that page has.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "grafana", "netfeat.json"))
	if err != nil {
		t.Fatal(err)
	}
	var db dashboard
	if err := json.Unmarshal(raw, &db); err != nil {
		t.Fatalf("netfeat.json: %v", err)
	}
	if db.UID == "" || db.Title == "" {
		t.Errorf("uid %q, title %q: want both", db.UID, db.Title)
	}
	service, devices := serviceMetricNames(t), deviceMetricNames(t)
	used := map[string]bool{}
	checkExpr := func(where, expr string) {
		t.Helper()
		e, err := parser.ParseExpr(grafanaVars.Replace(expr))
		if err != nil {
			t.Errorf("%s: %q: %v", where, expr, err)
			return
		}
		n := 0
		parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			n++
			name := vs.Name
			used[name] = true
			switch {
			case devices[name]:
				for _, lm := range vs.LabelMatchers {
					if lm.Name != labels.MetricName && !slices.Contains(deviceLabelNames, lm.Name) {
						t.Errorf("%s: %s{%s}: /metrics/devices has no label %s", where, name, lm.Name, lm.Name)
					}
				}
			case service(name), strings.HasSuffix(name, "_bucket") && service(strings.TrimSuffix(name, "_bucket")):
			default:
				t.Errorf("%s: %q: metric %s is neither in the service's registry nor on /metrics/devices", where, expr, name)
			}
			return nil
		})
		if n == 0 {
			t.Errorf("%s: %q selects no metric", where, expr)
		}
	}
	rows, ids := map[string]bool{}, map[int]bool{}
	var boxes []dashboardPanel
	for _, p := range db.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		for _, q := range boxes {
			if p.GridPos.X < q.GridPos.X+q.GridPos.W && q.GridPos.X < p.GridPos.X+p.GridPos.W &&
				p.GridPos.Y < q.GridPos.Y+q.GridPos.H && q.GridPos.Y < p.GridPos.Y+p.GridPos.H {
				t.Errorf("panels %q and %q overlap", p.Title, q.Title)
			}
		}
		boxes = append(boxes, p)
		if p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q is wider than the grid", p.Title)
		}
		if p.Type == "row" {
			rows[p.Title] = true
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source %+v, want the dashboard's ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for i, tg := range p.Targets {
			checkExpr(fmt.Sprintf("panel %q target %d", p.Title, i), tg.Expr)
		}
	}
	for _, r := range []string{"Interfaces", "Devices", "Actions", "netfeat health"} {
		if !rows[r] {
			t.Errorf("no row %q", r)
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
	for _, v := range db.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		m := labelValues.FindStringSubmatch(s)
		if m == nil {
			t.Errorf("variable %s: query %q, want label_values(SELECTOR, LABEL)", v.Name, s)
			continue
		}
		checkExpr("variable "+v.Name, m[1])
		if !slices.Contains(deviceLabelNames, m[2]) {
			t.Errorf("variable %s: label %s is not on /metrics/devices", v.Name, m[2])
		}
	}
	// The dashboard shows each part of the page and of netfeat's health.
	for _, name := range []string{"interface_in_bps_bits_per_second", "interface_out_utilization_ratio", "interface_in_errors_ps_packets_per_second",
		"device_up", "action_firing", "netfeat_store_samples_appended_total", "netfeat_inference_ingest_to_decision_seconds_bucket"} {
		if !used[name] {
			t.Errorf("no panel shows %s", name)
		}
	}
}
