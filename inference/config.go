package inference

// The `inference:` configuration section, its defaults and validation.
// Plain values: no goroutine owns them; the Runtime keeps its own copy.

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netfeat/netfeat/schema"
)

// Kind names how a model scores a window.
type Kind string

// Model kinds. Rules are configured in their own list (Config.Rules).
const (
	// KindXGBoost is a gradient-boosted tree model in XGBoost's JSON format,
	// evaluated by package inference/xgboost.
	KindXGBoost Kind = "xgboost"
	// KindLightGBM is a LightGBM text model, evaluated by
	// github.com/dmitryikh/leaves.
	KindLightGBM Kind = "lightgbm"
	// KindONNX is an ONNX file: a tree ensemble, a linear model or a small
	// neural network over the view's features, evaluated in pure Go by
	// package inference/onnx.
	KindONNX Kind = "onnx"
	// KindLogistic is an L2-regularised logistic regression trained in Go
	// by package learning (`netfeat train`, the retraining loop); its file
	// carries the reference profile drift is measured against.
	KindLogistic Kind = "logistic"
	// KindEWMA scores each feature series by its EWMA z-score.
	KindEWMA Kind = "ewma"
	// KindMAD scores each feature series by its distance from the median of
	// a sliding window in scaled median absolute deviations.
	KindMAD Kind = "mad"
	// KindSeasonal scores each feature series against an EWMA baseline kept
	// per slot of a period (hour of day by default).
	KindSeasonal Kind = "seasonal"
	// KindRule is the kind of configured rules (Config.Rules).
	KindRule Kind = "rule"
	// KindEventRule is the kind of configured event rules
	// (Config.EventRules).
	KindEventRule Kind = "event_rule"
)

// Kinds lists the model kinds a ModelConfig may name.
var Kinds = []Kind{KindXGBoost, KindLightGBM, KindONNX, KindLogistic, KindEWMA, KindMAD, KindSeasonal}

// isTree reports whether the kind scores from a model file (tree
// ensembles, ONNX graphs, logistic models), as opposed to a detector.
func (k Kind) isTree() bool {
	return k == KindXGBoost || k == KindLightGBM || k == KindONNX || k == KindLogistic
}
func (k Kind) isDetector() bool { return k == KindEWMA || k == KindMAD || k == KindSeasonal }

// Publish modes of Config.Publish.
const (
	// PublishTransitions (the default) publishes a live decision when it
	// moves its action's lifecycle (pending, firing, resolved, inactive)
	// and, while the action keeps firing, again every repeat_interval;
	// every decision is still recorded for SQL.
	PublishTransitions = "transitions"
	// PublishAll publishes every live decision, including action "none".
	PublishAll = "all"
	// PublishActions is the former name of PublishTransitions, still
	// accepted.
	PublishActions = "actions"
)

// Triggers of ModelConfig.Trigger.
const (
	// TriggerWindow (the default) scores the model on each closed window
	// of its view.
	TriggerWindow = "window"
	// TriggerEvent scores the model on each state event of an entity of its
	// view, at once: on the entity's latest closed row with the new state.
	TriggerEvent = "event"
	// TriggerBoth does both.
	TriggerBoth = "both"
)

// ActionNone is the action of a decision whose score did not reach the
// model's threshold.
const ActionNone = "none"

// Config is the `inference:` section of the configuration file.
type Config struct {
	// Workers is the number of scoring goroutines; rows are sharded onto
	// them by entity, so one entity's windows are scored in order.
	Workers int `yaml:"workers"`
	// QueueSize bounds each worker's queue of rows; a row that does not fit
	// is dropped and counted (netfeat_inference_rows_dropped_total).
	QueueSize int `yaml:"queue_size"`
	// PublishQueue bounds the queue between the workers and the publisher.
	PublishQueue int `yaml:"publish_queue"`
	// Publish is "transitions" (default) or "all".
	Publish string `yaml:"publish"`
	// History is how many recent decisions (live and shadow) are kept in
	// memory for the SQL `decisions` table.
	History int `yaml:"history"`
	// DecisionRetention is how long every decision (live and shadow) is
	// kept in the decision log (hourly files), for time-ranged queries of the SQL
	// `decisions` table; 0 keeps none (the table then holds the History
	// ring only).
	DecisionRetention time.Duration `yaml:"decision_retention"`
	// StateTTL is how long the per-entity state of rules and detectors
	// (for-duration clocks, learned baselines) is kept for an entity that
	// sends no windows; entities that went away then stop holding memory.
	StateTTL time.Duration `yaml:"state_ttl"`
	// Models are the models scored on each closed window of their view.
	Models []ModelConfig `yaml:"models"`
	// Rules are declarative threshold rules; each also publishes decisions
	// under its own name, and a model may name one as its fallback.
	Rules []RuleConfig `yaml:"rules"`
	// EventRules are evaluated on each state event (a link going down, an
	// interface disabled) the moment the store commits it.
	EventRules []EventRuleConfig `yaml:"event_rules"`
	// Lifecycle holds the action lifecycle's defaults.
	Lifecycle LifecycleConfig `yaml:"lifecycle"`
	// Outbox keeps decisions in Badger while NATS is unreachable.
	Outbox OutboxConfig `yaml:"outbox"`
	// JetStream optionally stores decisions in a JetStream stream.
	JetStream JetStreamConfig `yaml:"jetstream"`
	// Drift configures drift monitoring of versions with a training
	// profile; the service fills it from `learning.drift`.
	Drift DriftConfig `yaml:"-"`
}

// ModelConfig binds a model to a feature view.
type ModelConfig struct {
	// Name identifies the model in subjects, the registry and the API.
	Name string `yaml:"name"`
	// Kind is xgboost, lightgbm, onnx, logistic, ewma, mad or seasonal.
	Kind Kind `yaml:"kind"`
	// View is the feature view whose closed windows the model scores.
	View string `yaml:"view"`
	// File is the model file of a tree model. At start it is imported into
	// the registry as a new version, and made live, unless the registry
	// already holds a version with the same content.
	File string `yaml:"file"`
	// Features are the feature names the model reads. For tree models they
	// override the names stored in the model file, in the model's input
	// order; for detectors each named feature is one series per entity.
	Features []string `yaml:"features"`
	// Params configure detectors.
	Params DetectorParams `yaml:"params"`
	// Threshold: a score ≥ Threshold takes Action; below it the action is
	// "none". Default 0.5 for tree models, 3 for detectors.
	Threshold *float64 `yaml:"threshold"`
	// Action is what a score at or above the threshold asks for ("alert",
	// "reroute", ...). Default "alert".
	Action string `yaml:"action"`
	// LatencyBudget bounds one score; a version that overruns it or fails
	// is replaced, for that window, by the previous version or the fallback
	// rule, and the decision says so in Fallback. 0 means no budget.
	LatencyBudget time.Duration `yaml:"latency_budget"`
	// FallbackRule names a rule in Rules (on the same view) to decide when
	// the model and its previous version cannot.
	FallbackRule string `yaml:"fallback_rule"`
	// Optional names features the model may act without, with the value
	// used in their place when the window has no data for them. Every
	// other feature is required: a window without one gets action "none"
	// and lists it in missing_features.
	Optional map[string]float64 `yaml:"optional"`
	// Trigger is "window" (default), "event" or "both".
	Trigger string `yaml:"trigger"`
	// Lifecycle overrides inference.lifecycle for this model.
	ActionLifecycle `yaml:",inline"`
}

// ActionLifecycle is what a model or rule may override of the action
// lifecycle (the semantics of Prometheus alerting rules and Alertmanager).
type ActionLifecycle struct {
	// For is how long (in event time) the condition must hold before the
	// action fires; until then the decision is pending. 0 fires at once.
	For time.Duration `yaml:"for"`
	// KeepFiringFor keeps a firing action firing for this long after its
	// condition stopped holding, so that a brief dip does not resolve it.
	KeepFiringFor *time.Duration `yaml:"keep_firing_for"`
	// RepeatInterval is how often a firing action is published again while
	// it keeps firing.
	RepeatInterval *time.Duration `yaml:"repeat_interval"`
	// ResolveAction is the action of the resolved decision ("restore");
	// default: the firing action, with state resolved.
	ResolveAction string `yaml:"resolve_action"`
}

// LifecycleConfig holds the action lifecycle's defaults and its flap
// guard.
type LifecycleConfig struct {
	// KeepFiringFor is the default of models and rules; default 0.
	KeepFiringFor time.Duration `yaml:"keep_firing_for"`
	// RepeatInterval is the default of models and rules; default 1h.
	RepeatInterval time.Duration `yaml:"repeat_interval"`
	// FlapLimit is how many transitions of one (model, entity) are
	// published within FlapWindow; beyond it the action is flapping: its
	// transitions are counted (netfeat_inference_flap_suppressed_total) and
	// only its state is published, at most once per repeat interval, until
	// it calms down. 0 turns the guard off. Default 6.
	FlapLimit int `yaml:"flap_limit"`
	// FlapWindow is the sliding window of FlapLimit; default 1m.
	FlapWindow time.Duration `yaml:"flap_window"`
}

// EventRuleConfig is a rule on a state metric, evaluated on each state
// event of an entity the moment it is committed: its condition is that the
// entity's state equals (op "==") or differs from (op "!=") State.
type EventRuleConfig struct {
	// Name identifies the rule; decisions are published under it.
	Name string `yaml:"name"`
	// Metric is a state metric of the catalog ("interface.oper_status").
	Metric string `yaml:"metric"`
	// Op is "==" (default) or "!=".
	Op string `yaml:"op"`
	// State is a name of the metric's enumeration ("down") or a number.
	State string `yaml:"state"`
	// Action is what a firing rule asks for; default "alert".
	Action string `yaml:"action"`
	// Lifecycle: for, keep_firing_for, repeat_interval, resolve_action.
	ActionLifecycle `yaml:",inline"`
}

// DetectorParams configure the online anomaly detectors.
type DetectorParams struct {
	// Alpha is the EWMA smoothing factor (ewma, seasonal); default 0.1.
	Alpha float64 `yaml:"alpha" json:"alpha"`
	// Warmup is how many values a series (or slot) must have seen before it
	// scores; default 10 (3 for seasonal).
	Warmup int `yaml:"warmup" json:"warmup"`
	// Window is the median/MAD sliding window in values; default 60.
	Window int `yaml:"window" json:"window"`
	// Period and Slots define the seasonal baseline; default 24h and 24.
	Period time.Duration `yaml:"period" json:"period"`
	Slots  int           `yaml:"slots" json:"slots"`
}

// RuleConfig is a declarative rule on one feature of a view.
type RuleConfig struct {
	// Name identifies the rule; decisions are published under it.
	Name string `yaml:"name"`
	// View is the feature view the rule watches.
	View string `yaml:"view"`
	// Feature is the feature name (schema.FeatureName form).
	Feature string `yaml:"feature"`
	// Op compares the feature with Threshold: >, >=, < or <=.
	Op string `yaml:"op"`
	// Threshold starts the condition.
	Threshold float64 `yaml:"threshold"`
	// Clear ends an active condition (hysteresis) once the value is back
	// past it: for > and >= it must be ≤ Threshold, for < and <= ≥
	// Threshold. Default: Threshold.
	Clear *float64 `yaml:"clear"`
	// For is how long (in window time) the condition must hold before the
	// rule fires; 0 fires on the first window.
	For time.Duration `yaml:"for"`
	// Action is what a firing rule asks for; default "alert".
	Action string `yaml:"action"`
	// KeepFiringFor, RepeatInterval and ResolveAction override
	// inference.lifecycle for this rule (For is the rule's own, above).
	KeepFiringFor  *time.Duration `yaml:"keep_firing_for"`
	RepeatInterval *time.Duration `yaml:"repeat_interval"`
	ResolveAction  string         `yaml:"resolve_action"`
}

// OutboxConfig configures the Badger outbox.
type OutboxConfig struct {
	// MaxPending bounds the decisions kept while NATS is down; newer ones
	// are dropped and counted beyond it.
	MaxPending int `yaml:"max_pending"`
	// DrainBatch is how many decisions are sent per drain step.
	DrainBatch int `yaml:"drain_batch"`
	// RetryInterval is how often a non-empty outbox retries NATS.
	RetryInterval time.Duration `yaml:"retry_interval"`
	// AckTimeout bounds the wait for a JetStream acknowledgement or a NATS
	// flush before a decision is kept in the outbox for a retry.
	AckTimeout time.Duration `yaml:"ack_timeout"`
}

// JetStreamConfig optionally captures decisions in a JetStream stream.
type JetStreamConfig struct {
	// Stream is the stream name; empty means publish on core NATS only.
	Stream string `yaml:"stream"`
	// MaxAge bounds how long the stream keeps decisions; default 24h.
	MaxAge time.Duration `yaml:"max_age"`
	// Replicas of the stream in a cluster; default 1.
	Replicas int `yaml:"replicas"`
	// DuplicateWindow is how long JetStream remembers Nats-Msg-Id values to
	// drop redelivered decisions; default 10m. It must exceed the longest
	// NATS outage the outbox should bridge without duplicates.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
}

// DefaultConfig returns the defaults for keys the file leaves out.
func DefaultConfig() Config {
	return Config{
		Workers:           1,
		QueueSize:         8192,
		PublishQueue:      8192,
		Publish:           PublishTransitions,
		History:           10000,
		StateTTL:          24 * time.Hour,
		DecisionRetention: 7 * 24 * time.Hour,
		Outbox: OutboxConfig{
			MaxPending: 1_000_000, DrainBatch: 256,
			RetryInterval: 500 * time.Millisecond, AckTimeout: 5 * time.Second,
		},
		JetStream: JetStreamConfig{MaxAge: 24 * time.Hour, Replicas: 1, DuplicateWindow: 10 * time.Minute},
		Lifecycle: LifecycleConfig{RepeatInterval: time.Hour, FlapLimit: 6, FlapWindow: time.Minute},
		Drift:     DriftConfig{Window: 1000},
	}
}

// Maxima of the sizes Validate checks.
const (
	maxQueue        = 1_000_000  // queue_size, publish_queue
	maxQueuedTotal  = 4_000_000  // workers × queue_size
	maxDecisionRing = 1_000_000  // history
	maxOutbox       = 10_000_000 // outbox.max_pending
	maxDrainBatch   = 10_000     // outbox.drain_batch
)

var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	streamRE  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// Validate checks the section and returns every problem as
// *schema.FieldError values joined, with fields relative to `inference`.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) { errs = append(errs, schema.Errorf(field, format, args...)) }
	if c.Workers < 1 || c.Workers > 256 {
		bad("workers", "must be 1–256, got %d", c.Workers)
	}
	// Queues and the history ring are allocated at start: their maxima
	// keep a typo from exhausting memory (#20).
	if c.QueueSize < 1 || c.QueueSize > maxQueue {
		bad("queue_size", "must be 1–%d, got %d", maxQueue, c.QueueSize)
	} else if c.Workers >= 1 && c.Workers*c.QueueSize > maxQueuedTotal {
		bad("queue_size", "workers × queue_size must be at most %d, got %d × %d", maxQueuedTotal, c.Workers, c.QueueSize)
	}
	if c.PublishQueue < 1 || c.PublishQueue > maxQueue {
		bad("publish_queue", "must be 1–%d, got %d", maxQueue, c.PublishQueue)
	}
	if c.Publish != PublishAll && c.Publish != PublishTransitions && c.Publish != PublishActions {
		bad("publish", "must be %q or %q, got %q", PublishTransitions, PublishAll, c.Publish)
	}
	if l := c.Lifecycle; l.KeepFiringFor < 0 {
		bad("lifecycle.keep_firing_for", "must not be negative, got %v", l.KeepFiringFor)
	}
	if l := c.Lifecycle; l.RepeatInterval < time.Second {
		bad("lifecycle.repeat_interval", "must be at least 1s, got %v", l.RepeatInterval)
	}
	if l := c.Lifecycle; l.FlapLimit < 0 || l.FlapLimit > 1000 {
		bad("lifecycle.flap_limit", "must be 0–1000, got %d", l.FlapLimit)
	}
	if l := c.Lifecycle; l.FlapLimit > 0 && l.FlapWindow <= 0 {
		bad("lifecycle.flap_window", "must be positive, got %v", l.FlapWindow)
	}
	if c.History < 0 || c.History > maxDecisionRing {
		bad("history", "must be 0–%d, got %d", maxDecisionRing, c.History)
	}
	if c.DecisionRetention < 0 {
		bad("decision_retention", "must not be negative, got %v", c.DecisionRetention)
	}
	if c.StateTTL < time.Minute {
		bad("state_ttl", "must be at least 1m, got %v", c.StateTTL)
	}
	names := map[string]string{}
	// name checks a rule's or model's name at field f and reports whether
	// it is good and new.
	name := func(f, n string) bool {
		if !nameRE.MatchString(n) {
			bad(f+".name", "%q must match %s", n, nameRE)
		} else if prev, dup := names[n]; dup {
			bad(f+".name", "%q is already used by %s", n, prev)
		} else {
			names[n] = f
			return true
		}
		return false
	}
	rules := map[string]RuleConfig{}
	for i, r := range c.Rules {
		f := fmt.Sprintf("rules[%d]", i)
		if name(f, r.Name) {
			rules[r.Name] = r
		}
		if r.View == "" {
			bad(f+".view", "is required")
		}
		if r.Feature == "" {
			bad(f+".feature", "is required")
		}
		switch r.Op {
		case ">", ">=":
			if r.Clear != nil && *r.Clear > r.Threshold {
				bad(f+".clear", "%v must be ≤ threshold %v for op %s", *r.Clear, r.Threshold, r.Op)
			}
		case "<", "<=":
			if r.Clear != nil && *r.Clear < r.Threshold {
				bad(f+".clear", "%v must be ≥ threshold %v for op %s", *r.Clear, r.Threshold, r.Op)
			}
		default:
			bad(f+".op", "must be >, >=, < or <=, got %q", r.Op)
		}
		if r.For < 0 {
			bad(f+".for", "must not be negative, got %v", r.For)
		}
		errs = append(errs, ActionLifecycle{KeepFiringFor: r.KeepFiringFor, RepeatInterval: r.RepeatInterval}.validate(f)...)
	}
	for i, r := range c.EventRules {
		f := fmt.Sprintf("event_rules[%d]", i)
		name(f, r.Name)
		if m, ok := schema.LookupMetric(r.Metric); !ok || m.Kind != schema.KindStateMetric {
			bad(f+".metric", "%q is not a state metric of the catalog (docs/metrics.md, States)", r.Metric)
		} else if _, err := stateValue(r.Metric, r.State); err != nil {
			bad(f+".state", "%v", err)
		}
		if r.Op != "" && r.Op != "==" && r.Op != "!=" {
			bad(f+".op", "must be == or !=, got %q", r.Op)
		}
		errs = append(errs, r.ActionLifecycle.validate(f)...)
	}
	for i, m := range c.Models {
		f := fmt.Sprintf("models[%d]", i)
		name(f, m.Name)
		if m.View == "" {
			bad(f+".view", "is required")
		}
		switch {
		case m.Kind.isTree():
			if m.File == "" {
				bad(f+".file", "is required for kind %s", m.Kind)
			}
		case m.Kind.isDetector():
			if m.File != "" {
				bad(f+".file", "does not apply to kind %s", m.Kind)
			}
			if len(m.Features) == 0 {
				bad(f+".features", "name at least one feature for kind %s", m.Kind)
			}
			errs = append(errs, m.Params.validate(f+".params", m.Kind)...)
		default:
			bad(f+".kind", "must be one of %v, got %q", Kinds, m.Kind)
		}
		if m.LatencyBudget < 0 {
			bad(f+".latency_budget", "must not be negative, got %v", m.LatencyBudget)
		}
		switch m.Trigger {
		case "", TriggerWindow, TriggerEvent, TriggerBoth:
		default:
			bad(f+".trigger", "must be %s, %s or %s, got %q", TriggerWindow, TriggerEvent, TriggerBoth, m.Trigger)
		}
		for name, v := range m.Optional {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				bad(f+".optional."+name, "default must be a finite number, got %v", v)
			}
		}
		errs = append(errs, m.ActionLifecycle.validate(f)...)
		if m.FallbackRule != "" {
			r, ok := rules[m.FallbackRule]
			switch {
			case !ok:
				bad(f+".fallback_rule", "%q is not a rule in rules", m.FallbackRule)
			case r.View != m.View:
				bad(f+".fallback_rule", "rule %q watches view %q, the model %q", m.FallbackRule, r.View, m.View)
			}
		}
	}
	errs = append(errs, c.Drift.validate()...)
	o := c.Outbox
	if o.MaxPending < 1 || o.MaxPending > maxOutbox {
		bad("outbox.max_pending", "must be 1–%d, got %d", maxOutbox, o.MaxPending)
	}
	if o.DrainBatch < 1 || o.DrainBatch > maxDrainBatch {
		bad("outbox.drain_batch", "must be 1–%d, got %d", maxDrainBatch, o.DrainBatch)
	}
	if o.RetryInterval <= 0 {
		bad("outbox.retry_interval", "must be positive, got %v", o.RetryInterval)
	}
	if o.AckTimeout <= 0 {
		bad("outbox.ack_timeout", "must be positive, got %v", o.AckTimeout)
	}
	if js := c.JetStream; js.Stream != "" {
		if !streamRE.MatchString(js.Stream) {
			bad("jetstream.stream", "%q must match %s", js.Stream, streamRE)
		}
		if js.MaxAge <= 0 {
			bad("jetstream.max_age", "must be positive, got %v", js.MaxAge)
		}
		if js.Replicas < 1 || js.Replicas > 5 {
			bad("jetstream.replicas", "must be 1–5, got %d", js.Replicas)
		}
		if js.DuplicateWindow <= 0 || js.DuplicateWindow > js.MaxAge {
			bad("jetstream.duplicate_window", "must be positive and ≤ max_age, got %v", js.DuplicateWindow)
		}
	}
	return errors.Join(errs...)
}

func (l ActionLifecycle) validate(f string) []error {
	var errs []error
	if l.For < 0 {
		errs = append(errs, schema.Errorf(f+".for", "must not be negative, got %v", l.For))
	}
	if l.KeepFiringFor != nil && *l.KeepFiringFor < 0 {
		errs = append(errs, schema.Errorf(f+".keep_firing_for", "must not be negative, got %v", *l.KeepFiringFor))
	}
	if l.RepeatInterval != nil && *l.RepeatInterval < time.Second {
		errs = append(errs, schema.Errorf(f+".repeat_interval", "must be at least 1s, got %v", *l.RepeatInterval))
	}
	return errs
}

// stateValue parses an event rule's state: a name of the metric's
// enumeration or a number.
func stateValue(metric, state string) (float64, error) {
	if state == "" {
		return 0, errors.New("is required: a state name or number")
	}
	if n, ok := schema.StateEnum(metric)[state]; ok {
		return float64(n), nil
	}
	v, err := strconv.ParseFloat(state, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		names := slices.Sorted(maps.Keys(schema.StateEnum(metric)))
		return 0, fmt.Errorf("%q is not a state of %s (%s) nor a number", state, metric, strings.Join(names, ", "))
	}
	return v, nil
}

func (p DetectorParams) validate(f string, k Kind) []error {
	var errs []error
	if p.Alpha < 0 || p.Alpha > 1 {
		errs = append(errs, schema.Errorf(f+".alpha", "must be in (0, 1], got %v", p.Alpha))
	}
	if p.Warmup < 0 {
		errs = append(errs, schema.Errorf(f+".warmup", "must not be negative, got %d", p.Warmup))
	}
	if p.Window < 0 || (k == KindMAD && p.Window == 1) {
		errs = append(errs, schema.Errorf(f+".window", "must be ≥ 2, got %d", p.Window))
	}
	if p.Period < 0 {
		errs = append(errs, schema.Errorf(f+".period", "must not be negative, got %v", p.Period))
	}
	if p.Slots < 0 {
		errs = append(errs, schema.Errorf(f+".slots", "must not be negative, got %d", p.Slots))
	}
	if k == KindSeasonal && p.Period > 0 && p.Slots > 0 && p.Period/time.Duration(p.Slots) <= 0 {
		errs = append(errs, schema.Errorf(f+".slots", "%d slots do not fit in period %v", p.Slots, p.Period))
	}
	return errs
}

// withDefaults fills a detector's zero parameters.
func (p DetectorParams) withDefaults(k Kind) DetectorParams {
	if p.Alpha == 0 {
		p.Alpha = 0.1
	}
	if p.Warmup == 0 {
		p.Warmup = 10
		if k == KindSeasonal {
			p.Warmup = 3
		}
	}
	if p.Window == 0 {
		p.Window = 60
	}
	if p.Period == 0 {
		p.Period = 24 * time.Hour
	}
	if p.Slots == 0 {
		p.Slots = 24
	}
	return p
}

func (m ModelConfig) threshold() float64 {
	switch {
	case m.Threshold != nil:
		return *m.Threshold
	case m.Kind.isTree():
		return 0.5
	}
	return 3
}

func (m ModelConfig) action() string {
	if m.Action == "" {
		return "alert"
	}
	return m.Action
}
