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
	// View is the feature view whose window closed.
	View string `json:"view"`
	// Model and ModelVersion identify what scored the window.
	Model        string `json:"model"`
	ModelVersion string `json:"model_version"`
	// Score is the model's output (probability, anomaly score, or 1/0 for
	// rules).
	Score float64 `json:"score"`
	// Action is what automation should do: "none", "alert", "reroute", ...
	// as configured for the model.
	Action string `json:"action"`
	// Reason explains the score in words.
	Reason string `json:"reason"`
	// Fallback is empty when the live version scored; otherwise it says what
	// scored instead and why ("previous version v3: v4 exceeded 200µs").
	Fallback string `json:"fallback,omitempty"`
	// Features are the inputs the model used.
	Features map[string]float64 `json:"features"`
	// Window is the closed window scored.
	Window Window `json:"window"`
	// IngestToDecisionUS is the time from the ingest of the window's last
	// sample to the decision, in microseconds.
	IngestToDecisionUS int64 `json:"ingest_to_decision_us"`
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
