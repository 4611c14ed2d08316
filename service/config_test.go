package service

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // exact error lines, in order
	}{
		{
			name: "unknown top-level key",
			yaml: "data_dir: /d\nbogus: 1\n",
			want: []string{`f.yaml:2: bogus: unknown key "bogus"`},
		},
		{
			name: "unknown nested key",
			yaml: "log:\n  level: info\n  colour: red\n",
			want: []string{`f.yaml:3: log.colour: unknown key "colour"`},
		},
		{
			name: "bad duration",
			yaml: "shutdown_timeout: 10x\n",
			want: []string{`f.yaml:1: shutdown_timeout: "10x" is not a duration (use a number with a unit: 500ms, 10s, 5m, 1h)`},
		},
		{
			name: "wrong type",
			yaml: "nats:\n  jetstream: maybe\n",
			want: []string{`f.yaml:2: nats.jetstream: string "maybe" where true or false is expected`},
		},
		{
			name: "list where a duration is expected",
			yaml: "nats:\n  reconnect_wait: [1]\n",
			want: []string{`f.yaml:2: nats.reconnect_wait: a list where a duration is expected`},
		},
		{
			name: "invalid value",
			yaml: "log:\n  level: loud\n",
			want: []string{`f.yaml:2: log.level: must be debug, info, warn or error, got "loud"`},
		},
		{
			name: "missing required field reported at its section",
			yaml: "data_dir: \"\"\nhttp:\n  listen: \"\"\n",
			want: []string{`f.yaml:1: data_dir: is required`, `f.yaml:3: http.listen: is required`},
		},
		{
			name: "embedded-only key with external server",
			yaml: "nats:\n  url: http://x:4222\n",
			want: []string{`f.yaml:2: nats.url: "http://x:4222": must start with nats://, tls://, ws:// or wss://`},
		},
		{
			name: "several problems at once, sorted by line",
			yaml: "bogus: 1\nlog:\n  format: xml\nshutdown_timeout: -1s\n",
			want: []string{
				`f.yaml:1: bogus: unknown key "bogus"`,
				`f.yaml:3: log.format: must be text or json, got "xml"`,
				`f.yaml:4: shutdown_timeout: must be positive, got -1s`,
			},
		},
		{
			name: "rules, models and views that do not fit together",
			yaml: `views:
  - {name: v, entity: device, metrics: [system.cpu.utilization], aggregations: [mean], windows: [1m], hop: 1m}
  - {name: v, entity: device, metrics: [system.cpu.utilization], aggregations: [max], windows: [1m], hop: 1m, idle_timeout: -1s}
  - {name: w, entity: device, metrics: [system.cpu.utilization], aggregations: [mean], windows: [1m], hop: 1m}
inference:
  rules:
    - {name: r1, view: vv, feature: x, op: ">", threshold: 1}
    - {name: r2, view: w, feature: system_cpu_utilization__max_1m, op: ">", threshold: 1}
  models:
    - {name: m1, kind: ewma, view: nope, features: [a]}
`,
			want: []string{
				`f.yaml:3: views[1]: idle_timeout -1s: must not be negative (0 means 2 × the longest window)`,
				`f.yaml:3: views[1].name: "v": another view has this name`,
				`f.yaml:7: inference.rules[0].view: "vv": no such view (views: v, v, w)`,
				`f.yaml:8: inference.rules[1].feature: "system_cpu_utilization__max_1m": view w has no such feature (it has system_cpu_utilization__mean_1m)`,
				`f.yaml:10: inference.models[0].view: "nope": no such view (views: v, v, w)`,
			},
		},
		{
			name: "negative size located, other problems still reported",
			yaml: "log:\n  format: xml\nstore:\n  badger_block_cache: -1\n  memory_budget: \"-5MiB\"  # comment\nshutdown_timeout: -1s\n",
			want: []string{
				`f.yaml:2: log.format: must be text or json, got "xml"`,
				`f.yaml:4: store.badger_block_cache: invalid size "-1": want a non-negative integer with an optional unit (KiB, MiB, GiB, KB, MB, GB)`,
				`f.yaml:5: store.memory_budget: invalid size "-5": want a non-negative integer with an optional unit (KiB, MiB, GiB, KB, MB, GB)`,
				`f.yaml:6: shutdown_timeout: must be positive, got -1s`,
			},
		},
		{
			name: "http limits out of range",
			yaml: "http:\n  max_connections: 70000\n  read_timeout: 2h\n",
			want: []string{
				`f.yaml:2: http.max_connections: must be between 1 and 65536, got 70000`,
				`f.yaml:3: http.read_timeout: must be positive and at most 1h0m0s, got 2h0m0s`,
			},
		},
		{
			name: "negative memory limit",
			yaml: "memory_limit: -1\nbogus: 1\n",
			want: []string{
				`f.yaml:1: memory_limit: invalid size "-1": want a non-negative integer with an optional unit (KiB, MiB, GiB, KB, MB, GB)`,
				`f.yaml:2: bogus: unknown key "bogus"`,
			},
		},
		{
			name: "syntax error",
			yaml: "log:\n  level: [\n",
			want: []string{`f.yaml:2: syntax error: did not find expected node content`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("f.yaml", []byte(tt.yaml))
			var ce ConfigErrors
			if !errors.As(err, &ce) {
				t.Fatalf("want ConfigErrors, got %v", err)
			}
			got := strings.Split(ce.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseConfigDefaultsAndOverrides(t *testing.T) {
	cfg, err := ParseConfig("f.yaml", []byte("data_dir: /var/lib/netfeat\nshutdown_timeout: 5s\nnats:\n  listen: 127.0.0.1:14222\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != "/var/lib/netfeat" || cfg.ShutdownTimeout != 5*time.Second || cfg.NATS.Listen != "127.0.0.1:14222" {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
	if cfg.HTTP.Listen != "127.0.0.1:9464" || cfg.Log.Level != "info" || cfg.NATS.JetStream == nil || !*cfg.NATS.JetStream {
		t.Fatalf("defaults lost: %+v", cfg)
	}
	empty, err := ParseConfig("empty.yaml", nil)
	if err != nil || empty.DataDir != "./data" {
		t.Fatalf("empty file: %v %+v", err, empty)
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	path := filepath.Join("..", "examples", "netfeat.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Skip("examples/netfeat.yaml not present")
	}
	if _, err := LoadConfig(path); err != nil {
		t.Fatalf("examples/netfeat.yaml: %v", err)
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cr3t-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readSecret(pw, "")
	if err != nil || got != "s3cr3t-value" {
		t.Fatalf("readSecret(file) = %q, %v", got, err)
	}
	t.Setenv("NETFEAT_TEST_SECRET", "from-env")
	if got, err := readSecret("", "NETFEAT_TEST_SECRET"); err != nil || got != "from-env" {
		t.Fatalf("readSecret(env) = %q, %v", got, err)
	}
	_, err = readSecret("", "NETFEAT_TEST_UNSET_SECRET")
	if err == nil || !strings.Contains(err.Error(), "NETFEAT_TEST_UNSET_SECRET") {
		t.Fatalf("want error naming the variable, got %v", err)
	}
	if got := redactURL("nats://alice:s3cr3t-value@127.0.0.1:4222"); strings.Contains(got, "s3cr3t") {
		t.Fatalf("redactURL leaked: %s", got)
	}
}
