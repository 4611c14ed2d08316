package federated

import (
	"errors"
	"math"
	"strings"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// Config configures federated learning of one model, on the hub (the
// Coordinator) and on the edges (the Participant). The zero value of each
// field takes its default (WithDefaults).
type Config struct {
	// Model names the federated model; it is a token of every subject.
	Model string `yaml:"model"`
	// Dim is the number of weights of the model (16 features and a bias:
	// 17); every update and global model has exactly Dim values.
	Dim int `yaml:"dim"`
	// Interval is the time from the start of one round to the start of the
	// next (rounds never overlap: a round that lasts longer delays the
	// next). Default 1h.
	Interval time.Duration `yaml:"interval"`
	// MinEdges is the fewest edges whose updates make a round (at least 2:
	// the sum of one edge's update is that update). An edge refuses to send
	// its masked update to a round announcing fewer peers, and to reveal
	// seeds to a round with fewer survivors. Default 3.
	MinEdges int `yaml:"min_edges"`
	// MaxEdges bounds the edges of one round (the keys taken). Default 1000.
	MaxEdges int `yaml:"max_edges"`
	// Expect ends the key phase as soon as that many edges sent their keys
	// (0: the key phase lasts its whole deadline).
	Expect int `yaml:"expect"`
	// Deadline bounds each phase of a round (keys, masked updates,
	// reveals) and an edge's local training. Default 30s.
	Deadline time.Duration `yaml:"deadline"`
	// ClipNorm is the L2 norm an edge clips its update to before
	// quantising it. Default 1.
	ClipNorm float64 `yaml:"clip_norm"`
	// MaxNorm rejects, on the edge, an update whose norm exceeds it before
	// clipping (a diverged or poisoned training). Default 10·ClipNorm.
	MaxNorm float64 `yaml:"max_norm"`
	// Scale is the fixed-point scale: a weight x travels as round(x·Scale).
	// Default 2^20 (a resolution of about 1e-6).
	Scale float64 `yaml:"scale"`
	// MaxSamples bounds an edge's sample count per round. Default 1,000,000.
	MaxSamples int `yaml:"max_samples"`
	// SubjectPrefix is the first token of the subjects. It must not be
	// "netfeat": an edge's leaf connection denies netfeat.> both ways
	// (docs/fleet.md). Default "netfeat-fl".
	SubjectPrefix string `yaml:"subject_prefix"`
	// History is the number of rounds the hub keeps for status. Default 100.
	History int `yaml:"history"`
}

// Defaults of Config.
const (
	DefaultInterval      = time.Hour
	DefaultMinEdges      = 3
	DefaultMaxEdges      = 1000
	DefaultDeadline      = 30 * time.Second
	DefaultClipNorm      = 1.0
	DefaultScale         = 1 << 20
	DefaultMaxSamples    = 1_000_000
	DefaultSubjectPrefix = "netfeat-fl"
	DefaultHistory       = 100
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.MinEdges == 0 {
		c.MinEdges = DefaultMinEdges
	}
	if c.MaxEdges == 0 {
		c.MaxEdges = DefaultMaxEdges
	}
	if c.Deadline == 0 {
		c.Deadline = DefaultDeadline
	}
	if c.ClipNorm == 0 {
		c.ClipNorm = DefaultClipNorm
	}
	if c.MaxNorm == 0 {
		c.MaxNorm = 10 * c.ClipNorm
	}
	if c.Scale == 0 {
		c.Scale = DefaultScale
	}
	if c.MaxSamples == 0 {
		c.MaxSamples = DefaultMaxSamples
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.History == 0 {
		c.History = DefaultHistory
	}
	return c
}

// Validate checks c (after WithDefaults) and returns every problem as
// *schema.FieldError values joined, each naming its field under key (e.g.
// "federated").
func (c Config) Validate(key string) error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, schema.Errorf(key+"."+field, format, a...))
	}
	if !validToken(c.Model) {
		bad("model", "must be a non-empty subject token (no '.', '*', '>' or space), got %q", c.Model)
	}
	if c.Dim < 1 || c.Dim > 1<<20 {
		bad("dim", "must be in [1, 1048576], got %d", c.Dim)
	}
	if c.Interval < time.Second {
		bad("interval", "must be at least 1s, got %s", c.Interval)
	}
	if c.MinEdges < 2 {
		bad("min_edges", "must be at least 2 (the sum of one edge's update is that update), got %d", c.MinEdges)
	}
	if c.MaxEdges < c.MinEdges {
		bad("max_edges", "must be at least min_edges (%d), got %d", c.MinEdges, c.MaxEdges)
	}
	if c.Expect < 0 || c.Expect > c.MaxEdges {
		bad("expect", "must be in [0, max_edges], got %d", c.Expect)
	}
	if c.Deadline < 10*time.Millisecond {
		bad("deadline", "must be at least 10ms, got %s", c.Deadline)
	}
	if !(c.ClipNorm > 0) || math.IsInf(c.ClipNorm, 0) {
		bad("clip_norm", "must be positive and finite, got %v", c.ClipNorm)
	}
	if !(c.MaxNorm >= c.ClipNorm) || math.IsInf(c.MaxNorm, 0) {
		bad("max_norm", "must be finite and at least clip_norm, got %v", c.MaxNorm)
	}
	if !(c.Scale >= 1) || math.IsInf(c.Scale, 0) {
		bad("scale", "must be at least 1 and finite, got %v", c.Scale)
	}
	if c.MaxSamples < 1 {
		bad("max_samples", "must be at least 1, got %d", c.MaxSamples)
	}
	// Every coordinate of Σ n·q stays within int64: |q| ≤ clip·scale + 1.
	if bound := float64(c.MaxEdges) * float64(c.MaxSamples) * (c.ClipNorm*c.Scale + 1); !(bound < math.MaxInt64/2) {
		bad("scale", "max_edges·max_samples·(clip_norm·scale+1) = %.3g overflows the 2^62 bound of the fixed-point sum", bound)
	}
	if !validToken(c.SubjectPrefix) || c.SubjectPrefix == "netfeat" {
		bad("subject_prefix", "must be a subject token other than \"netfeat\" (leaf connections deny netfeat.>), got %q", c.SubjectPrefix)
	}
	if c.History < 1 {
		bad("history", "must be at least 1, got %d", c.History)
	}
	return errors.Join(errs...)
}

// validToken reports whether s is a usable NATS subject token.
func validToken(s string) bool {
	return s != "" && len(s) <= 128 && !strings.ContainsAny(s, ". *>\t\r\n")
}
