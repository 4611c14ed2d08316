package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gopkg.in/yaml.v3"

	"github.com/netfeat/netfeat/collectors/gnmi"
	"github.com/netfeat/netfeat/collectors/snmp"
	"github.com/netfeat/netfeat/internal/sim/snmpagent"
	"github.com/netfeat/netfeat/internal/testkit"
)

// TestTargetsFileProblems checks that config check (LoadConfig) reports a
// targets file's problems as it reports the configuration's: file, line,
// key and reason.
func TestTargetsFileProblems(t *testing.T) {
	const main = "snmp:\n  targets:\n    - name: core1\n      address: 127.0.0.1:1161\ntargets_file: targets.yaml\n"
	tests := []struct {
		name    string
		targets string // "" : no targets file (the API creates it)
		want    []string
	}{
		{name: "no file yet"},
		{name: "valid", targets: "snmp:\n  targets:\n    - name: r2\n      address: 127.0.0.1:1162\n" +
			"gnmi:\n  targets:\n    - name: xr1\n      address: 127.0.0.1:57400\n      platform: iosxr\n      insecure: true\n"},
		{name: "bad address", targets: "snmp:\n  targets:\n    - name: r2\n      address: 127.0.0.1:99999\n",
			want: []string{`targets.yaml:4: snmp.targets[0].address: bad port in "127.0.0.1:99999"`}},
		{name: "unknown platform", targets: "gnmi:\n  targets:\n    - name: xr1\n      address: 127.0.0.1:57400\n      platform: junos\n      insecure: true\n",
			want: []string{`targets.yaml:5: gnmi.targets[0].platform: must be one of iosxe, iosxr, nxos, got "junos"`}},
		{name: "unknown key", targets: "snmp:\n  targets:\n    - name: r2\n      adress: 127.0.0.1:1162\n",
			want: []string{`targets.yaml:3: snmp.targets[0].address: is required`,
				`targets.yaml:4: snmp.targets[0].adress: unknown key "adress"`}},
		{name: "name of a configuration target", targets: "snmp:\n  targets:\n    - name: core1\n      address: 127.0.0.1:1162\n",
			want: []string{`targets.yaml:3: snmp.targets[0].name: "core1" is already a target of the configuration file (snmp.targets[0]); change it there`}},
		{name: "one name for two protocols", targets: "snmp:\n  targets:\n    - name: r2\n      address: 127.0.0.1:1162\n" +
			"gnmi:\n  targets:\n    - name: r2\n      address: 127.0.0.1:57400\n      platform: iosxr\n      insecure: true\n",
			want: []string{`targets.yaml:7: gnmi.targets[0].name: "r2" is also snmp.targets[0]`}},
		{name: "bad duration", targets: "snmp:\n  targets:\n    - name: r2\n      address: 127.0.0.1:1162\n      interval: often\n",
			want: []string{`targets.yaml:5: snmp.targets[0].interval: "often" is not a duration (use a number with a unit: 500ms, 10s, 5m, 1h)`}},
		{name: "with a profile", targets: "snmp:\n  targets:\n    - name: r2\n      address: 127.0.0.1:1162\n      profile: nokia-sros\n"},
		{name: "unknown profile", targets: "snmp:\n  targets:\n    - name: r2\n      address: 127.0.0.1:1162\n      profile: nokia-sr0s\n",
			want: []string{`targets.yaml:5: snmp.targets[0].profile: unknown profile "nokia-sr0s" (profiles: cisco-iosxe, cisco-iosxr, cisco-nxos, ericsson-ipos, ericsson-minilink, generic, nokia-isam, nokia-sros, openconfig)`}},
		{name: "syntax error", targets: "snmp:\n  targets:\n    - name: [r2\n",
			want: []string{`targets.yaml:3: syntax error: did not find expected ',' or ']'`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "netfeat.yaml")
			if err := os.WriteFile(path, []byte(main), 0o600); err != nil {
				t.Fatal(err)
			}
			if tt.targets != "" {
				if err := os.WriteFile(filepath.Join(dir, "targets.yaml"), []byte(tt.targets), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadConfig(path)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("valid targets file refused: %v", err)
				}
				return
			}
			var ce ConfigErrors
			if !errors.As(err, &ce) {
				t.Fatalf("want ConfigErrors, got %v", err)
			}
			want := strings.Join(tt.want, "\n")
			if got := strings.ReplaceAll(ce.Error(), dir+string(filepath.Separator), ""); got != want {
				t.Fatalf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// targetsRig is a running service with simulated SNMP devices pe0..pe3:
// pe0 in the configuration, the others for the targets file and the API.
type targetsRig struct {
	svc   *Service
	url   string
	file  string
	addrs map[string]string
	devs  map[string]*snmpagent.Device
	logs  *testkit.SyncBuffer
}

func newTargetsRig(t *testing.T, poll time.Duration, fileTargets ...string) *targetsRig {
	t.Helper()
	mib, err := snmpagent.LoadMIB(filepath.Join("..", "testdata", "snmp", "timos.snmprec"))
	if err != nil {
		t.Fatal(err)
	}
	sim := snmpagent.NewSimulator(nil)
	r := &targetsRig{addrs: map[string]string{}, devs: map[string]*snmpagent.Device{}, logs: &testkit.SyncBuffer{}}
	for i := range 4 {
		d, err := snmpagent.NewDevice(mib, snmpagent.DeviceOptions{Name: fmt.Sprint("pe", i), Community: "public"})
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.Add(d, "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		r.devs[d.Name()] = d
	}
	if err := sim.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Stop(context.Background()) })
	for _, ep := range sim.Endpoints() {
		r.addrs[ep.Device.Name()] = ep.Addr
	}
	dir := t.TempDir()
	r.file = filepath.Join(dir, "targets.yaml")
	r.writeFile(t, r.fileFor(nil, fileTargets...))
	cfg := DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.NATS.Listen = "127.0.0.1:0"
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.SNMP.Defaults.Interval = 200 * time.Millisecond
	cfg.SNMP.Defaults.Timeout = 100 * time.Millisecond
	cfg.SNMP.Targets = []snmp.Target{{Name: "pe0", Address: r.addrs["pe0"]}}
	cfg.TargetsFile = r.file
	svc, err := New(&cfg, NewRegistry(), slog.New(slog.NewTextHandler(r.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	svc.targets.poll = poll
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	r.svc, r.url = svc, "http://"+svc.HTTP().Addr()
	return r
}

// fileFor renders a targets file with the named devices; community
// overrides a device's community.
func (r *targetsRig) fileFor(community map[string]string, names ...string) string {
	var b strings.Builder
	b.WriteString("snmp:\n  targets:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "    - name: %s\n      address: %s\n", n, r.addrs[n])
		if c := community[n]; c != "" {
			fmt.Fprintf(&b, "      community: %s\n", c)
		}
	}
	return b.String()
}

func (r *targetsRig) writeFile(t *testing.T, content string) {
	t.Helper()
	tmp := r.file + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, r.file); err != nil {
		t.Fatal(err)
	}
}

func (r *targetsRig) do(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, r.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: answer %q is not JSON: %v", method, path, b, err)
	}
	return resp.StatusCode, out
}

func (r *targetsRig) changes(op, source string) float64 {
	return testutil.ToFloat64(r.svc.targets.changes.WithLabelValues(op, source))
}

func (r *targetsRig) rejected(source string) float64 {
	return testutil.ToFloat64(r.svc.targets.rejected.WithLabelValues(source))
}

// samples sums the store's samples of device.
func (r *targetsRig) samples(device string) int64 {
	var n int64
	for _, rec := range r.svc.Store().SnapshotSeries() {
		devs, counts := rec.Column(0).(*array.String), rec.Column(6).(*array.Int64)
		for i := range devs.Len() {
			if devs.Value(i) == device {
				n += counts.Value(i)
			}
		}
		rec.Release()
	}
	return n
}

// TestTargetsAtRunTime adds, changes and removes targets of a running
// service through the targets file and the API: each step touches only
// the targets it names, a removed target is polled no more, and bad
// targets are refused with config check's file:line messages while the
// running targets stay.
func TestTargetsAtRunTime(t *testing.T) {
	r := newTargetsRig(t, 20*time.Millisecond, "pe1")
	all := []string{"pe0", "pe1", "pe2", "pe3"}
	steps := []struct {
		name string
		do   func(t *testing.T)
		// changes are the cumulative netfeat_targets_changes_total
		// ("op/source") the step must reach; rejected the cumulative
		// netfeat_targets_rejected_total by source.
		changes  map[string]float64
		rejected map[string]float64
		polled   []string // each polled again after the step
	}{
		{name: "configuration and file targets polled at start", polled: []string{"pe0", "pe1"}},
		{
			name: "API add", polled: []string{"pe0", "pe1", "pe2"},
			changes: map[string]float64{"add/api": 1},
			do: func(t *testing.T) {
				code, ans := r.do(t, http.MethodPost, "/v1/targets", fmt.Sprintf(`{"snmp": {"name": "pe2", "address": %q}}`, r.addrs["pe2"]))
				if code != http.StatusCreated || ans["op"] != "add" || ans["persisted"] != true {
					t.Fatalf("POST: %d %v", code, ans)
				}
				testkit.Eventually(t, "pe2's samples in the store", func() bool { return r.samples("pe2") > 0 })
				b, err := os.ReadFile(r.file)
				if err != nil || !strings.Contains(string(b), r.addrs["pe2"]) {
					t.Fatalf("targets file does not keep pe2 (%v):\n%s", err, b)
				}
			},
		},
		{
			name: "file edit changes only pe1", polled: []string{"pe0", "pe2"},
			changes: map[string]float64{"add/api": 1, "change/file": 1},
			do: func(t *testing.T) {
				bad := r.devs["pe1"].Stats().BadCommunity
				r.writeFile(t, r.fileFor(map[string]string{"pe1": "private"}, "pe1", "pe2"))
				testkit.Eventually(t, "pe1 polled with its new community", func() bool { return r.devs["pe1"].Stats().BadCommunity > bad })
			},
		},
		{
			name: "file edit adds pe3 and restores pe1", polled: all,
			changes: map[string]float64{"add/api": 1, "change/file": 2, "add/file": 1},
			do:      func(t *testing.T) { r.writeFile(t, r.fileFor(nil, "pe1", "pe2", "pe3")) },
		},
		{
			name: "API refuses a bad address and an unknown key", polled: all,
			changes:  map[string]float64{"add/api": 1, "change/file": 2, "add/file": 1},
			rejected: map[string]float64{"api": 1},
			do: func(t *testing.T) {
				code, ans := r.do(t, http.MethodPost, "/v1/targets", "{\n  \"snmp\": {\n    \"name\": \"pe9\",\n    \"address\": \"127.0.0.1:99999\",\n    \"intervall\": \"10s\"\n  }\n}\n")
				want := "request:4: snmp.address: bad port in \"127.0.0.1:99999\"\nrequest:5: snmp.intervall: unknown key \"intervall\""
				if code != http.StatusBadRequest || ans["error"] != want {
					t.Fatalf("POST: %d %v, want 400 %q", code, ans, want)
				}
			},
		},
		{
			name: "API refuses a configuration target's name", polled: all,
			changes:  map[string]float64{"add/api": 1, "change/file": 2, "add/file": 1},
			rejected: map[string]float64{"api": 2},
			do: func(t *testing.T) {
				code, ans := r.do(t, http.MethodPost, "/v1/targets", `{"snmp": {"name": "pe0", "address": "127.0.0.1:1161"}}`)
				want := `request:1: snmp.name: "pe0" is already a target of the configuration file (snmp.targets[0]); change it there`
				if code != http.StatusBadRequest || ans["error"] != want {
					t.Fatalf("POST: %d %v, want 400 %q", code, ans, want)
				}
			},
		},
		{
			name: "bad file refused, running targets kept", polled: all,
			changes:  map[string]float64{"add/api": 1, "change/file": 2, "add/file": 1},
			rejected: map[string]float64{"api": 2, "file": 1},
			do: func(t *testing.T) {
				r.writeFile(t, strings.Replace(r.fileFor(nil, "pe1", "pe2"), "address:", "adress:", 1))
				testkit.Eventually(t, "the refusal logged at its line", func() bool {
					return strings.Contains(r.logs.String(), `targets.yaml:4: snmp.targets[0].adress: unknown key \"adress\"`)
				})
			},
		},
		{
			name: "API remove", polled: []string{"pe0", "pe1", "pe2"},
			changes:  map[string]float64{"add/api": 1, "change/file": 2, "add/file": 1, "remove/api": 1},
			rejected: map[string]float64{"api": 2, "file": 1},
			do: func(t *testing.T) {
				code, ans := r.do(t, http.MethodDelete, "/v1/targets/pe3", "")
				if code != http.StatusOK || ans["op"] != "remove" {
					t.Fatalf("DELETE: %d %v", code, ans)
				}
				// Stopped before the answer: no request reaches pe3 while
				// the others are polled twice more. A request the poller
				// sent just before may still be on its way to the
				// simulator: count from pe0's next poll.
				others := r.devs["pe0"].Stats().Requests
				testkit.Eventually(t, "pe0 polled once more", func() bool { return r.devs["pe0"].Stats().Requests > others })
				before := r.devs["pe3"].Stats().Requests
				others = r.devs["pe0"].Stats().Requests
				testkit.Eventually(t, "pe0 polled twice more", func() bool { return r.devs["pe0"].Stats().Requests >= others+2 })
				if n := r.devs["pe3"].Stats().Requests; n != before {
					t.Fatalf("pe3 received %d requests after its removal", n-before)
				}
				if code, ans := r.do(t, http.MethodDelete, "/v1/targets/pe0", ""); code != http.StatusConflict {
					t.Fatalf("DELETE of a configuration target: %d %v, want 409", code, ans)
				}
				if code, ans := r.do(t, http.MethodDelete, "/v1/targets/pe3", ""); code != http.StatusNotFound {
					t.Fatalf("DELETE of a removed target: %d %v, want 404", code, ans)
				}
			},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.do != nil {
				st.do(t)
			}
			for key, want := range st.changes {
				op, source, _ := strings.Cut(key, "/")
				testkit.Eventually(t, fmt.Sprintf("%v %s changes", want, key), func() bool { return r.changes(op, source) >= want })
			}
			// Every change is counted, and only those.
			for _, op := range []string{"add", "change", "remove"} {
				for _, source := range []string{"api", "file", "sighup"} {
					if got, want := r.changes(op, source), st.changes[op+"/"+source]; got != want {
						t.Errorf("%s/%s changes: %v, want %v", op, source, got, want)
					}
				}
			}
			for _, source := range []string{"api", "file", "sighup"} {
				if got, want := r.rejected(source), st.rejected[source]; got != want {
					t.Errorf("%s rejections: %v, want %v", source, got, want)
				}
			}
			for _, name := range st.polled {
				n := r.devs[name].Stats().Responses
				testkit.Eventually(t, name+" answering polls", func() bool { return r.devs[name].Stats().Responses > n })
			}
		})
	}
}

// TestTargetsSIGHUP reloads the targets file on demand (what SIGHUP
// does in serve), the watch being too slow to notice first.
func TestTargetsSIGHUP(t *testing.T) {
	r := newTargetsRig(t, time.Hour)
	tests := []struct {
		name    string
		file    string
		wantErr string
		add     float64
		reject  float64
	}{
		{name: "adds the file's targets", file: r.fileFor(nil, "pe1"), add: 1},
		{name: "refuses a bad file", file: "snmp:\n  targets:\n    - name: pe2\n      address: \"\"\n",
			wantErr: "targets.yaml:4: snmp.targets[0].address: is required", add: 1, reject: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.writeFile(t, tt.file)
			err := r.svc.ReloadTargets()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.HasSuffix(err.Error(), tt.wantErr)) {
				t.Fatalf("reload: %v, want %q", err, tt.wantErr)
			}
			if got := r.changes("add", "sighup"); got != tt.add {
				t.Errorf("add/sighup changes: %v, want %v", got, tt.add)
			}
			if got := r.rejected("sighup"); got != tt.reject {
				t.Errorf("sighup rejections: %v, want %v", got, tt.reject)
			}
			n := r.devs["pe1"].Stats().Responses
			testkit.Eventually(t, "pe1 polled", func() bool { return r.devs["pe1"].Stats().Responses > n })
		})
	}
}

// TestMarshalTargetsRoundTrip: the targets file the API writes reads back
// as the same targets, keys left at their defaults left out, an explicit
// retries: 0 kept.
func TestMarshalTargetsRoundTrip(t *testing.T) {
	zero, two := 0, 2
	tests := []struct {
		name    string
		doc     func(*TargetsDoc)
		want    []string // in the file
		wantNot []string // not in the file
	}{
		{name: "empty", doc: func(*TargetsDoc) {}, want: []string{"targets: []"}},
		{name: "snmp defaults left out", doc: func(d *TargetsDoc) {
			d.SNMP.Targets = []snmp.Target{{Name: "r1", Address: "192.0.2.1"}}
		}, want: []string{"name: r1", "address: 192.0.2.1"}, wantNot: []string{"interval", "community", "retries", "v3"}},
		{name: "snmp settings kept", doc: func(d *TargetsDoc) {
			d.SNMP.Targets = []snmp.Target{{Name: "r1", Address: "192.0.2.1", Params: snmp.Params{Interval: 10 * time.Second, Retries: &zero,
				Version: "3", V3: &snmp.V3{User: "u", AuthProtocol: "SHA", AuthPasswordEnv: "X"}}},
				{Name: "r2", Address: "192.0.2.2", Params: snmp.Params{Retries: &two, Community: "c"}}}
		}, want: []string{"interval: 10s", "retries: 0", "retries: 2", "auth_protocol: SHA", "community: c"}},
		{name: "gnmi", doc: func(d *TargetsDoc) {
			d.GNMI.Targets = []gnmi.Target{{Name: "xr1", Address: "192.0.2.3:57400", Platform: "iosxr", Insecure: true}}
		}, want: []string{"platform: iosxr", "insecure: true"}, wantNot: []string{"subscriptions", "tls"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc TargetsDoc
			tt.doc(&doc)
			b, err := marshalTargets(doc)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("file lacks %q:\n%s", w, b)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(string(b), w) {
					t.Errorf("file has %q:\n%s", w, b)
				}
			}
			var back TargetsDoc
			if err := yaml.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(normalizeDoc(back), normalizeDoc(doc)) {
				t.Fatalf("read back %+v, want %+v", back, doc)
			}
		})
	}
}

// normalizeDoc makes nil and empty lists alike.
func normalizeDoc(d TargetsDoc) TargetsDoc {
	if len(d.SNMP.Targets) == 0 {
		d.SNMP.Targets = nil
	}
	if len(d.GNMI.Targets) == 0 {
		d.GNMI.Targets = nil
	}
	return d
}

// TestConfigTargetsSIGHUP reloads the configuration file's own targets
// (what SIGHUP does in serve): each step adds, removes or refuses only
// what it names, keys other than targets are reported as needing a
// restart, and a configuration that takes a targets-file name or does not
// load changes nothing.
func TestConfigTargetsSIGHUP(t *testing.T) {
	r := newTargetsRig(t, time.Hour, "pe1")
	base := r.svc.loaded
	target := func(names ...string) []snmp.Target {
		var out []snmp.Target
		for _, n := range names {
			out = append(out, snmp.Target{Name: n, Address: r.addrs[n]})
		}
		return out
	}
	polled := func() []string {
		var names []string
		for _, d := range r.svc.pipe.snmp.DeviceStates() {
			names = append(names, d.Device)
		}
		slices.Sort(names)
		return names
	}
	steps := []struct {
		name        string
		targets     []string // the configuration's snmp.targets
		logLevel    string
		wantErr     string
		wantRestart []string
		wantPolled  []string
		add, remove float64
		reject      float64
	}{
		{name: "adds a target", targets: []string{"pe0", "pe2"}, wantPolled: []string{"pe0", "pe1", "pe2"}, add: 1},
		{name: "other keys need a restart", targets: []string{"pe0", "pe2"}, logLevel: "debug", wantRestart: []string{"log"},
			wantPolled: []string{"pe0", "pe1", "pe2"}, add: 1},
		{name: "removes a target", targets: []string{"pe2"}, wantPolled: []string{"pe1", "pe2"}, add: 1, remove: 1},
		{name: "refuses a name of the targets file", targets: []string{"pe1", "pe2"},
			wantErr: `snmp.targets[0]: "pe1" is already a target of ` + r.file, wantPolled: []string{"pe1", "pe2"}, add: 1, remove: 1, reject: 1},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			cfg := base
			cfg.SNMP.Targets = target(st.targets...)
			if st.logLevel != "" {
				cfg.Log.Level = st.logLevel
			}
			restart, err := r.svc.ReloadConfig(&cfg)
			if st.wantErr == "" && err != nil || st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)) {
				t.Fatalf("reload: %v, want %q", err, st.wantErr)
			}
			if !slices.Equal(restart, st.wantRestart) {
				t.Errorf("restart keys %q, want %q", restart, st.wantRestart)
			}
			if got := polled(); !slices.Equal(got, st.wantPolled) {
				t.Errorf("polled %q, want %q", got, st.wantPolled)
			}
			for _, c := range []struct {
				op   string
				want float64
			}{{"add", st.add}, {"remove", st.remove}} {
				if got := r.changes(c.op, "sighup"); got != c.want {
					t.Errorf("%s/sighup changes: %v, want %v", c.op, got, c.want)
				}
			}
			if got := r.rejected("sighup"); got != st.reject {
				t.Errorf("sighup rejections: %v, want %v", got, st.reject)
			}
		})
	}
	n := r.devs["pe2"].Stats().Responses
	testkit.Eventually(t, "pe2 polled", func() bool { return r.devs["pe2"].Stats().Responses > n })

	// A configuration file that does not load: nothing changes.
	bad := filepath.Join(t.TempDir(), "netfeat.yaml")
	if err := os.WriteFile(bad, []byte("snmp:\n  targets:\n    - name: pe3\n      adress: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.ReloadConfigFile(bad, nil); err == nil || !strings.Contains(err.Error(), "netfeat.yaml:4") {
		t.Fatalf("reload of a bad file: %v, want its problem at netfeat.yaml:4", err)
	}
	if got := r.rejected("sighup"); got != 2 {
		t.Errorf("sighup rejections after a bad file: %v, want 2", got)
	}
	if got := polled(); !slices.Equal(got, []string{"pe1", "pe2"}) {
		t.Errorf("polled after a bad file %q, want pe1 and pe2", got)
	}
}

// TestTargetProfile: a target added with a profile is normalized with it
// (the simulated Nokia would otherwise match nokia-sros), and one with an
// unknown profile is refused with the profiles there are.
func TestTargetProfile(t *testing.T) {
	r := newTargetsRig(t, time.Hour)
	code, ans := r.do(t, http.MethodPost, "/v1/targets", fmt.Sprintf(`{"snmp": {"name": "pe2", "address": %q, "profile": "generic"}}`, r.addrs["pe2"]))
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, ans)
	}
	testkit.Eventually(t, "pe2 normalized with the generic profile", func() bool {
		p, _ := r.svc.Normalizer().DeviceProfile("pe2")
		return p == "generic"
	})
	testkit.Eventually(t, "pe0 (no profile key) normalized with nokia-sros, as matched", func() bool {
		p, _ := r.svc.Normalizer().DeviceProfile("pe0")
		return p == "nokia-sros"
	})
	code, ans = r.do(t, http.MethodPost, "/v1/targets", fmt.Sprintf(`{"snmp": {"name": "pe3", "address": %q, "profile": "nokia-sr0s"}}`, r.addrs["pe3"]))
	want := `request:1: snmp.profile: unknown profile "nokia-sr0s" (profiles: cisco-iosxe, cisco-iosxr, cisco-nxos, ericsson-ipos, ericsson-minilink, generic, nokia-isam, nokia-sros, openconfig)`
	if code != http.StatusBadRequest || ans["error"] != want {
		t.Fatalf("POST: %d %v, want 400 %q", code, ans, want)
	}
}
