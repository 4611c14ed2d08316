package schema

// StateEvent is a change of an entity's state metric (a metric of kind
// KindStateMetric, such as interface.oper_status), seen the moment the
// sample that carries it is committed: from an SNMP trap or inform, a gNMI
// ON_CHANGE update, or a poll or SAMPLE update whose value differs from
// the previous one. It is the event path's unit: inference evaluates event
// rules and event-bound models on it at once, without waiting for a window.
type StateEvent struct {
	// Entity is the device and component whose state changed.
	Entity
	// Metric is the canonical state metric ("interface.oper_status").
	Metric string `json:"metric"`
	// Value is the new state, as the enumeration's number (up = 1, down = 2).
	Value float64 `json:"value"`
	// Prev is the state before; NaN when the series is seen for the first
	// time (the first value of a series is an event too, so that an
	// interface first seen down is acted on).
	Prev float64 `json:"prev"`
	// TS is the event time of the sample, Unix ns.
	TS int64 `json:"ts"`
	// IngestTS is when the collector received the bytes, Unix ns: the
	// event-to-decision latency is measured from it.
	IngestTS int64 `json:"ingest_ts"`
}

// StateEventHandler receives state events. It is called on the feature
// store's committing goroutine, in WAL order, and must not block: hand the
// event to a bounded queue and count what does not fit. The event is owned
// by the handler after the call.
type StateEventHandler func(ev *StateEvent)
