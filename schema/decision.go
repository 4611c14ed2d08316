package schema

import (
	"strings"
	"time"
)

// DecisionSchemaVersion is the version of the Decision JSON document. It
// changes only when a field changes meaning or is removed.
const DecisionSchemaVersion = 1

// Decision is what a model concluded about one entity for one closed window.
// It is published as JSON on netfeat.decisions.<model>.<device>, with ID as
// the Nats-Msg-Id header so that JetStream de-duplicates redelivery.
type Decision struct {
	// SchemaVersion is DecisionSchemaVersion.
	SchemaVersion int `json:"schema_version"`
	// ID is unique per decision (a UUID or ULID string).
	ID string `json:"id"`
	// Time is when the decision was made.
	Time time.Time `json:"time"`
	// Entity is what the decision is about.
	Entity Entity `json:"entity"`
	// View is the feature view whose window closed (for an event rule,
	// empty).
	View string `json:"view"`
	// Model and ModelVersion identify what scored the window.
	Model        string `json:"model"`
	ModelVersion string `json:"model_version"`
	// Score is the model's output (probability, anomaly score, or 1/0 for
	// rules).
	Score float64 `json:"score"`
	// Action is what the (model, entity) action asks of automation:
	// "reroute", "alert", ... as configured, while State is pending or
	// firing; the resolve action (default: the same) when resolved; "none"
	// when inactive or when the model could not decide. Act on firing,
	// undo on resolved.
	Action string `json:"action"`
	// State is where the (model, entity) action is in its lifecycle:
	// StateInactive, StatePending, StateFiring or StateResolved.
	State string `json:"state"`
	// Since is when State began (window end or event time).
	Since time.Time `json:"since"`
	// Transition is true when this decision moved State; a decision that
	// only repeats a firing action every repeat_interval has it false.
	Transition bool `json:"transition"`
	// Fingerprint identifies the (model, entity) pair: stable across
	// decisions, versions and restarts, for consumers to de-duplicate on.
	Fingerprint string `json:"fingerprint"`
	// Flapping is true while the (model, entity) action changes state more
	// often than inference.lifecycle.flap_limit allows: transitions are then
	// counted, not each published.
	Flapping bool `json:"flapping,omitempty"`
	// Reason explains the score in words.
	Reason string `json:"reason"`
	// Fallback is empty when the live version scored; otherwise it says what
	// scored instead and why ("previous version v3: v4 exceeded 200µs").
	Fallback string `json:"fallback,omitempty"`
	// Features are the inputs the model used.
	Features map[string]float64 `json:"features"`
	// MissingFeatures lists the inputs the model needs that the entity
	// did not have; the action is then "none".
	MissingFeatures []string `json:"missing_features,omitempty"`
	// Window is the closed window scored (for an event, the event's time).
	Window Window `json:"window"`
	// Trigger is TriggerWindow, TriggerEvent, TriggerTimer or TriggerDrift.
	Trigger string `json:"trigger"`
	// Event is the state change an event-triggered decision was made on.
	Event *DecisionEvent `json:"event,omitempty"`
	// IngestToDecisionUS is the time from the ingest of the window's last
	// sample (an event's sample) to the decision, in microseconds.
	IngestToDecisionUS int64 `json:"ingest_to_decision_us"`
	// TriggerToDecisionUS is the time from the ingest of the sample that
	// triggered the decision (the state event's sample, or the sample whose
	// arrival closed the window) to the decision, in microseconds.
	TriggerToDecisionUS int64 `json:"trigger_to_decision_us"`
}

// Decision triggers of Decision.Trigger.
const (
	// TriggerWindow: a closed feature window was scored.
	TriggerWindow = "window"
	// TriggerEvent: a state event was evaluated.
	TriggerEvent = "event"
	// TriggerTimer: a deadline of an event-driven action passed without a
	// new event (its `for` reached, keep_firing_for run out, a repeat).
	TriggerTimer = "timer"
	// TriggerDrift: a feature's population stability index against the
	// version's training profile crossed the drift threshold (action
	// "drift", state firing) or fell back below its clear level (state
	// resolved). Entity.Component names the feature; Entity.Device is
	// empty.
	TriggerDrift = "drift"
)

// Action lifecycle states of Decision.State (the states of a Prometheus
// alerting rule, plus inactive).
const (
	// StateInactive: the condition does not hold.
	StateInactive = "inactive"
	// StatePending: the condition holds, not yet for the rule's `for`.
	StatePending = "pending"
	// StateFiring: the condition has held for `for`; act on it.
	StateFiring = "firing"
	// StateResolved: a firing action ended (its condition stopped holding
	// for longer than keep_firing_for); undo what it did.
	StateResolved = "resolved"
)

// DecisionEvent is the state change an event-triggered decision was made
// on, as published.
type DecisionEvent struct {
	// Metric is the state metric ("interface.oper_status").
	Metric string `json:"metric"`
	// State and Prev are the new and previous states by name ("down",
	// "up"); Prev is empty when the series was seen for the first time.
	State string `json:"state"`
	Prev  string `json:"prev,omitempty"`
	// Time is the event time of the sample that carried the change.
	Time time.Time `json:"time"`
}

// Window is a half-open time interval [Start, End).
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// DecisionSubject returns the NATS subject a decision is published on:
// netfeat.decisions.<model>.<device>, with each token sanitised.
func DecisionSubject(model, device string) string {
	return "netfeat.decisions." + SubjectToken(model) + "." + SubjectToken(device)
}

// SubjectToken makes s safe as one NATS subject token: '.', '*', '>',
// whitespace and control characters become '_'; an empty string becomes
// "_".
func SubjectToken(s string) string {
	if s == "" {
		return "_"
	}
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == '.' || c == '*' || c == '>' || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '.' || c == '*' || c == '>' || c == 0x7f {
			c = '_'
		}
		b.WriteByte(c)
	}
	return b.String()
}
