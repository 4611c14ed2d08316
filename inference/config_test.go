package inference

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/netfeat/netfeat/schema"
)

func TestConfigValidate(t *testing.T) {
	clear := 0.95
	cases := []struct {
		name   string
		edit   func(*Config)
		fields []string // every FieldError expected, in order
	}{
		{"valid", func(*Config) {}, nil},
		{"workers", func(c *Config) { c.Workers = 0 }, []string{"workers"}},
		{"publish", func(c *Config) { c.Publish = "some" }, []string{"publish"}},
		{"history too large", func(c *Config) { c.History = 100_000_000 }, []string{"history"}},
		{"queues too large", func(c *Config) { c.Workers, c.QueueSize = 256, 100_000_000 }, []string{"queue_size"}},
		{"workers × queue too large", func(c *Config) { c.Workers, c.QueueSize = 256, 100_000 }, []string{"queue_size"}},
		{"outbox too large", func(c *Config) { c.Outbox.MaxPending, c.Outbox.DrainBatch = 1<<40, 1<<20 }, []string{"outbox.max_pending", "outbox.drain_batch"}},
		{"model kind", func(c *Config) { c.Models[0].Kind = "tensorflow" }, []string{"models[0].kind"}},
		{"tree without file", func(c *Config) { c.Models[0].File = "" }, []string{"models[0].file"}},
		{"duplicate name", func(c *Config) { c.Models[0].Name = "out_util_high" }, []string{"models[0].name"}},
		{"bad name", func(c *Config) { c.Models[0].Name = "a.b" }, []string{"models[0].name"}},
		{"fallback rule unknown", func(c *Config) { c.Models[0].FallbackRule = "nope" }, []string{"models[0].fallback_rule"}},
		{"fallback rule other view", func(c *Config) { c.Rules[0].View = "cpu_1m" }, []string{"models[0].fallback_rule"}},
		{"rule op and clear", func(c *Config) { c.Rules[0].Op = "=="; c.Rules[0].Feature = "" }, []string{"rules[0].feature", "rules[0].op"}},
		{"hysteresis direction", func(c *Config) { c.Rules[0].Clear = &clear }, []string{"rules[0].clear"}},
		{"detector", func(c *Config) {
			c.Models = append(c.Models, ModelConfig{Name: "z", Kind: KindMAD, View: "v", File: "x", Params: DetectorParams{Alpha: 2, Window: 1}})
		}, []string{"models[1].file", "models[1].features", "models[1].params.alpha", "models[1].params.window"}},
		{"budget", func(c *Config) { c.Models[0].LatencyBudget = -time.Second }, []string{"models[0].latency_budget"}},
		{"outbox", func(c *Config) { c.Outbox.MaxPending = 0; c.Outbox.AckTimeout = 0 }, []string{"outbox.max_pending", "outbox.ack_timeout"}},
		{"jetstream", func(c *Config) { c.JetStream.Stream = "a.b"; c.JetStream.DuplicateWindow = 48 * time.Hour },
			[]string{"jetstream.stream", "jetstream.duplicate_window"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			c.edit(&cfg)
			err := cfg.Validate()
			var got []string
			for _, e := range flatten(err) {
				var fe *schema.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("error %v is not a *schema.FieldError", e)
				}
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, c.fields) {
				t.Fatalf("fields %v, want %v (%v)", got, c.fields, err)
			}
		})
	}
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestConfigYAML(t *testing.T) {
	const doc = `
workers: 2
models:
  - name: congestion
    kind: xgboost
    view: interface_1m
    file: models/congestion.json
    threshold: 0.7
    action: reroute
    latency_budget: 200us
    fallback_rule: out_util_high
  - name: drops
    kind: seasonal
    view: interface_1m
    features: [interface_out_discards_ps__mean_1m]
    params: {period: 24h, slots: 48, alpha: 0.05}
rules:
  - name: out_util_high
    view: interface_1m
    feature: interface_out_utilization__mean_1m
    op: ">"
    threshold: 0.9
    clear: 0.8
    for: 2m
outbox: {max_pending: 5000}
jetstream: {stream: NETFEAT_DECISIONS}
`
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := cfg.Models[0]
	if m.LatencyBudget != 200*time.Microsecond || m.threshold() != 0.7 || cfg.Models[1].Params.Slots != 48 ||
		*cfg.Rules[0].Clear != 0.8 || cfg.Rules[0].For != 2*time.Minute || cfg.Outbox.DrainBatch != 256 {
		t.Fatalf("decoded %+v", cfg)
	}
}

// TestDocumentedConfig decodes and validates the example in
// docs/inference.md, so the documentation stays true.
func TestDocumentedConfig(t *testing.T) {
	b, err := os.ReadFile("../docs/inference.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "```yaml\ninference:\n")
	if start < 0 {
		t.Fatal("no inference: example in docs/inference.md")
	}
	body := doc[start+len("```yaml\n"):]
	body = body[:strings.Index(body, "```")]
	var file struct {
		Inference Config `yaml:"inference"`
	}
	file.Inference = DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(body))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("documented example: %v", err)
	}
	if err := file.Inference.Validate(); err != nil {
		t.Fatalf("documented example: %v", err)
	}
	if len(file.Inference.Models) != 2 || file.Inference.JetStream.Stream == "" {
		t.Fatalf("documented example decoded to %+v", file.Inference)
	}
}
