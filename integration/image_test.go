package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netfeat/netfeat/internal/testkit"
	"gopkg.in/yaml.v3"
)

// dockerImage is what the final stage of ../Dockerfile declares.
type dockerImage struct {
	workdir    string
	entrypoint []string
	cmd        []string
	// copies maps each path the image gets from the build context to the
	// repository path it comes from ("COPY SRC... DST").
	copies map[string]string
}

// readDockerfile parses the instructions of the Dockerfile's last stage
// that decide what `docker run IMAGE` does. Docker is not available in the
// test environment; running this command with these files is the test.
func readDockerfile(t *testing.T, path string) dockerImage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var img dockerImage
	jsonArgs := func(line, instr string) []string {
		var v []string
		if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(line, instr))), &v); err != nil {
			t.Fatalf("%s: %s is not in exec (JSON) form: %v", path, instr, err)
		}
		return v
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(line, "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM": // a new stage: only the last one counts
			img = dockerImage{copies: map[string]string{}}
		case "WORKDIR":
			img.workdir = fields[1]
		case "ENTRYPOINT":
			img.entrypoint = jsonArgs(line, fields[0])
		case "CMD":
			img.cmd = jsonArgs(line, fields[0])
		case "COPY":
			if strings.HasPrefix(fields[1], "--from") {
				continue
			}
			srcs, dst := fields[1:len(fields)-1], fields[len(fields)-1]
			for _, src := range srcs {
				d := dst
				if strings.HasSuffix(dst, "/") {
					d = dst + filepath.Base(src)
				}
				img.copies[d] = src
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return img
}

// hostPath maps a path inside the image to the repository file it was
// copied from, or "" when the image did not get it from the repository.
func (img dockerImage) hostPath(p string) string {
	for dst, src := range img.copies {
		if p == dst {
			return filepath.Join("..", src)
		}
		if strings.HasPrefix(p, strings.TrimSuffix(dst, "/")+"/") {
			return filepath.Join("..", src, strings.TrimPrefix(p, strings.TrimSuffix(dst, "/")+"/"))
		}
	}
	return ""
}

var listenArg = regexp.MustCompile(`^0\.0\.0\.0:(\d+)$`)

// TestImageDefaultCommand runs the image's ENTRYPOINT and CMD, with the
// configuration the Dockerfile copies, from an empty directory: the binary
// stands for /usr/local/bin/netfeat, the copied files for their image
// paths, a temporary directory for WORKDIR, and free loopback ports for the
// 0.0.0.0 listen addresses. The service must become ready and stop cleanly.
func TestImageDefaultCommand(t *testing.T) {
	img := readDockerfile(t, "../Dockerfile")
	if len(img.entrypoint) != 1 || img.entrypoint[0] != "/usr/local/bin/netfeat" {
		t.Fatalf("ENTRYPOINT %q, want the netfeat binary", img.entrypoint)
	}
	if len(img.cmd) == 0 || img.cmd[0] != "serve" {
		t.Fatalf("CMD %q, want serve", img.cmd)
	}
	workdir := t.TempDir() // empty, like the image's WORKDIR volume at first start
	var args []string
	httpAddr := ""
	for i, a := range img.cmd {
		switch {
		case listenArg.MatchString(a):
			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			if img.cmd[i-1] == "--http-listen" {
				httpAddr = addr
			}
			a = addr
		case a == img.workdir || strings.HasPrefix(a, img.workdir+"/"):
			a = filepath.Join(workdir, strings.TrimPrefix(a, img.workdir))
		case strings.HasPrefix(a, "/"):
			h := img.hostPath(a)
			if h == "" {
				t.Fatalf("CMD names %s, which the image does not copy from the repository", a)
			}
			abs, err := filepath.Abs(h)
			if err != nil {
				t.Fatal(err)
			}
			a = abs
		}
		args = append(args, a)
	}
	if httpAddr == "" {
		t.Fatalf("CMD %q has no --http-listen 0.0.0.0:PORT: the health check and the published port need it", img.cmd)
	}
	cmd := exec.Command(netfeatBin, args...)
	cmd.Dir = workdir
	// The secrets deploy/netfeat.yaml reads (docker run -e ...): the image
	// is locked by default.
	cmd.Env = append(os.Environ(), "NETFEAT_TOKEN=image-test-token", "NETFEAT_NATS_PASSWORD=image-test-password")
	logs := &testkit.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The image's HEALTHCHECK and compose run `netfeat healthcheck`.
		hc := exec.Command(netfeatBin, "healthcheck", "--url", "http://"+httpAddr+"/readyz")
		if out, err := hc.CombinedOutput(); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("not ready after 30s (%s: %v); netfeat %q logs:\n%s", out, err, args, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %v %v", resp, err)
	}
	resp.Body.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v; logs:\n%s", err, logs.String())
	}
	if _, err := os.Stat(filepath.Join(workdir, "store")); err != nil {
		t.Fatalf("no store in the data directory: %v", err)
	}
}

// composeFile is the part of docker-compose.yml the deployment relies on.
type composeFile struct {
	Services map[string]struct {
		Build       any      `yaml:"build"`
		Image       string   `yaml:"image"`
		Restart     string   `yaml:"restart"`
		Command     []string `yaml:"command"`
		Healthcheck struct {
			Test    []string `yaml:"test"`
			Disable bool     `yaml:"disable"`
		} `yaml:"healthcheck"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Ports   []string `yaml:"ports"`
		Volumes []string `yaml:"volumes"`
	} `yaml:"services"`
}

// TestComposeFile checks docker-compose.yml without Docker: restart
// policies, health checks, start order, that the mounted configuration is
// valid (its image paths mapped to the repository) and polls the simulated
// devices on the ports they serve, and that every published port is one the
// configuration opens.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(raw, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	img := readDockerfile(t, "../Dockerfile")
	for _, name := range []string{"nats", "netfeat", "sim-nokia", "sim-ericsson", "sim-xr1", "watch"} {
		if _, ok := cf.Services[name]; !ok {
			t.Fatalf("no service %q", name)
		}
	}
	for name, s := range cf.Services {
		if s.Restart != "unless-stopped" {
			t.Errorf("service %s: restart %q, want unless-stopped", name, s.Restart)
		}
		for _, a := range s.Command {
			if strings.HasPrefix(a, "/usr/share/netfeat/") {
				if h := img.hostPath(a); h == "" {
					t.Errorf("service %s: %s is not copied into the image", name, a)
				} else if _, err := os.Stat(h); err != nil {
					t.Errorf("service %s: %s: %v", name, a, err)
				}
			}
		}
	}
	for _, name := range []string{"nats", "netfeat"} {
		if hc := cf.Services[name].Healthcheck; len(hc.Test) < 2 || hc.Disable {
			t.Errorf("service %s: no health check", name)
		}
	}
	if hc := cf.Services["netfeat"].Healthcheck.Test; len(hc) < 3 || hc[1] != "/usr/local/bin/netfeat" || hc[2] != "healthcheck" {
		t.Errorf("netfeat health check %q, want netfeat healthcheck", hc)
	}
	if c := cf.Services["netfeat"].DependsOn["nats"].Condition; c != "service_healthy" {
		t.Errorf("netfeat depends_on nats condition %q, want service_healthy", c)
	}
	if c := cf.Services["watch"].DependsOn["netfeat"].Condition; c != "service_healthy" {
		t.Errorf("watch depends_on netfeat condition %q, want service_healthy", c)
	}

	// The configuration mounted into the netfeat service.
	var cfgPath string
	for _, v := range cf.Services["netfeat"].Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == "/etc/netfeat/netfeat.yaml" {
			cfgPath = filepath.Join("..", parts[0])
		}
	}
	if cfgPath == "" {
		t.Fatal("netfeat service mounts no /etc/netfeat/netfeat.yaml")
	}
	cfgRaw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		NATS struct {
			URL string `yaml:"url"`
		} `yaml:"nats"`
		Query struct {
			FlightListen string `yaml:"flight_listen"`
		} `yaml:"query"`
		SNMP struct {
			Targets []struct{ Name, Address string } `yaml:"targets"`
		} `yaml:"snmp"`
		GNMI struct {
			Targets []struct{ Name, Address string } `yaml:"targets"`
		} `yaml:"gnmi"`
		Views     []struct{ Name string } `yaml:"views"`
		Inference struct {
			Models []struct{ Name, File string } `yaml:"models"`
		} `yaml:"inference"`
	}
	if err := yaml.Unmarshal(cfgRaw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.URL != "nats://nats:4222" {
		t.Errorf("%s: nats.url %q, want the nats service", cfgPath, cfg.NATS.URL)
	}
	if len(cfg.Views) == 0 || len(cfg.Inference.Models) == 0 || len(cfg.SNMP.Targets)+len(cfg.GNMI.Targets) == 0 {
		t.Errorf("%s: needs targets, views and a model to decide anything", cfgPath)
	}
	// Every target is a simulator service listening on that port.
	for _, tg := range append(cfg.SNMP.Targets, cfg.GNMI.Targets...) {
		host, port, _ := strings.Cut(tg.Address, ":")
		s, ok := cf.Services[host]
		if !ok || !strings.Contains(strings.Join(s.Command, " "), "--listen 0.0.0.0:"+port) {
			t.Errorf("target %s at %s: no compose service %s listening on %s", tg.Name, tg.Address, host, port)
		}
	}
	// Every published port of netfeat is opened by the configuration.
	opened := map[string]bool{"9464": true} // --http-listen in the command
	if _, p, ok := strings.Cut(cfg.Query.FlightListen, ":"); ok {
		opened[p] = true
	}
	for _, p := range cf.Services["netfeat"].Ports {
		parts := strings.Split(p, ":")
		if !opened[parts[len(parts)-1]] {
			t.Errorf("netfeat publishes %s, which its configuration does not open", p)
		}
	}
	// config check with the image's paths mapped to the repository.
	mapped := string(cfgRaw)
	for _, m := range cfg.Inference.Models {
		if strings.HasPrefix(m.File, "builtin:") {
			continue // built into the binary
		}
		h := img.hostPath(m.File)
		if h == "" {
			t.Fatalf("model %s: %s is not copied into the image", m.Name, m.File)
		}
		abs, _ := filepath.Abs(h)
		mapped = strings.ReplaceAll(mapped, m.File, abs)
	}
	tmp := filepath.Join(t.TempDir(), "netfeat.yaml")
	if err := os.WriteFile(tmp, []byte(mapped), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(netfeatBin, "config", "check", tmp).CombinedOutput(); err != nil {
		t.Fatalf("config check %s: %v\n%s", cfgPath, err, out)
	}
}
