package inference

// The runtime's Prometheus metrics. Counters are updated by whichever
// goroutine does the work (workers, publisher, decision log writer); the
// queue and outbox gauges are computed on the scraping goroutine from
// atomics.

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the runtime's Prometheus series; docs/inference.md lists them.
type metrics struct {
	rows            *prometheus.CounterVec   // view
	rowsDropped     *prometheus.CounterVec   // view
	badRows         *prometheus.CounterVec   // view, device
	decisions       *prometheus.CounterVec   // model, action
	shadow          *prometheus.CounterVec   // model
	scoreErrors     *prometheus.CounterVec   // model, version
	scorePanics     *prometheus.CounterVec   // model, version
	versionsFailed  *prometheus.CounterVec   // model, version, reason (panic|budget)
	fallbacks       *prometheus.CounterVec   // model, reason (error|budget)
	scoreSeconds    *prometheus.HistogramVec // model
	latency         prometheus.Histogram
	queueFill       prometheus.GaugeFunc
	published       prometheus.Counter
	publishErrors   *prometheus.CounterVec // reason
	streamRecreated prometheus.Counter
	outboxPending   prometheus.GaugeFunc
	outboxStored    prometheus.Counter
	outboxDrained   prometheus.Counter
	outboxDropped   prometheus.Counter
	swaps           *prometheus.CounterVec // model, op
	forgotten       *prometheus.CounterVec // model
	logWritten      prometheus.Counter
	logDropped      prometheus.Counter
	logErrors       prometheus.Counter

	events          prometheus.Counter
	eventsBaseline  prometheus.Counter
	eventsDropped   prometheus.Counter
	missing         *prometheus.CounterVec   // model, reason
	transitions     *prometheus.CounterVec   // model, state
	flapSuppressed  *prometheus.CounterVec   // model
	triggerLatency  *prometheus.HistogramVec // trigger
	lifeErrors      prometheus.Counter
	gateRefused     *prometheus.CounterVec // model
	gateForced      *prometheus.CounterVec // model
	psi             *prometheus.GaugeVec   // model, version, feature
	feedback        *prometheus.CounterVec // model, label
	feedbackRefused prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, queueFill, outboxPending func() float64) (*metrics, error) {
	const ns, sub = "netfeat", "inference"
	m := &metrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rows_total",
			Help: "Closed windows received, by feature view."}, []string{"view"}),
		rowsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rows_dropped_total",
			Help: "Closed windows dropped because the scoring queue was full, by feature view."}, []string{"view"}),
		badRows: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "bad_rows_total",
			Help: "Rows refused as malformed (names and values differ in length), by view and device."}, []string{"view", "device"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "decisions_total",
			Help: "Live decisions made, by model and action."}, []string{"model", "action"}),
		shadow: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "shadow_decisions_total",
			Help: "Decisions of shadow versions (recorded, not published), by model."}, []string{"model"}),
		scoreErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "score_errors_total",
			Help: "Scores that failed, by model and version."}, []string{"model", "version"}),
		scorePanics: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "score_panics_total",
			Help: "Scores that panicked (recovered; the version is disabled), by model and version."}, []string{"model", "version"}),
		versionsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "versions_failed_total",
			Help: "Model versions disabled while scoring, by model, version and reason (panic; budget: consecutive latency-budget overruns; hang: still scoring when the runtime stopped)."}, []string{"model", "version", "reason"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "fallbacks_total",
			Help: "Decisions made by a fallback (previous version or rule), by model and reason (error, budget, failed: the live version is disabled)."}, []string{"model", "reason"}),
		scoreSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "score_seconds",
			Help:    "Time to score one window with the live version, by model.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 2, 16)}, []string{"model"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "ingest_to_decision_seconds",
			Help:    "Time from the ingest of a window's last sample to its live decision.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16)}),
		queueFill: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "queue_rows",
			Help: "Rows waiting in the scoring queues."}, queueFill),
		published: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "published_total",
			Help: "Decisions handed to NATS (acknowledged by JetStream when a stream is configured)."}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "publish_errors_total",
			Help: "Publish attempts that failed and left the decision in the outbox, by reason."}, []string{"reason"}),
		streamRecreated: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "stream_recreated_total",
			Help: "Times the decisions stream was found missing (deleted) and created again."}),
		outboxPending: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "outbox_pending",
			Help: "Decisions waiting in the Badger outbox for NATS."}, outboxPending),
		outboxStored: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "outbox_stored_total",
			Help: "Decisions written to the outbox because NATS was unreachable or behind."}),
		outboxDrained: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "outbox_drained_total",
			Help: "Decisions delivered from the outbox."}),
		outboxDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "outbox_dropped_total",
			Help: "Decisions dropped because the outbox was full (outbox.max_pending) or an entry was corrupt."}),
		swaps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "registry_changes_total",
			Help: "Registry changes applied without restart, by model and operation."}, []string{"model", "op"}),
		forgotten: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "entity_states_forgotten_total",
			Help: "Per-entity rule and detector states dropped after state_ttl without windows, by model."}, []string{"model"}),
		logWritten: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "decision_log_written_total",
			Help: "Decisions written to the decision log files (history of the SQL decisions table)."}),
		logDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "decision_log_dropped_total",
			Help: "Decisions left out of the decision log because its pending buffer was full (the disk stuck) or the log was stopped."}),
		logErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "decision_log_errors_total",
			Help: "Decisions the decision log failed to write, failed deletes of files past the retention, and damaged blocks found when read."}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_total",
			Help: "State events received for event rules and event-bound models."}),
		eventsBaseline: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_first_seen_total",
			Help: "State events that were a series' first value: they set the entity's state without an action."}),
		eventsDropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "events_dropped_total",
			Help: "State events dropped because the scoring queue was full."}),
		missing: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "missing_features_total",
			Help: "Decisions not made (action none) for lack of a required feature, by model and reason (no_data, not_in_view, no_window)."}, []string{"model", "reason"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "transitions_total",
			Help: "Action lifecycle transitions, by model and the state entered."}, []string{"model", "state"}),
		flapSuppressed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "flap_suppressed_total",
			Help: "Transitions not published because the action was flapping (lifecycle.flap_limit), by model."}, []string{"model"}),
		triggerLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "trigger_to_decision_seconds",
			Help:    "Time from the ingest of the sample that triggered a decision (the state event's, or the one whose arrival closed the window) to the decision, by trigger.",
			Buckets: prometheus.ExponentialBuckets(20e-6, 2, 18)}, []string{"trigger"}),
		lifeErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "lifecycle_store_errors_total",
			Help: "Action lifecycle states that could not be saved to or loaded from Badger."}),
		gateRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "promote_refused_total",
			Help: "Promotions the promotion gate refused (backtest worse than the live version's), by model."}, []string{"model"}),
		gateForced: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "promote_forced_total",
			Help: "Promotions forced past the promotion gate, by model."}, []string{"model"}),
		psi: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "model_feature_psi",
			Help: "Population stability index of a live version's input feature over its last learning.drift.window scored windows, against the version's training profile."}, []string{"model", "version", "feature"}),
		feedback: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "feedback_total",
			Help: "Operator feedback stored on actions (POST /v1/actions/{fingerprint}/feedback), by model and label."}, []string{"model", "label"}),
		feedbackRefused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "feedback_refused_total",
			Help: "Feedback refused: an unknown action, a label other than true_positive or false_positive, a note too long."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.rows, m.rowsDropped, m.badRows, m.decisions, m.shadow, m.scoreErrors,
			m.scorePanics, m.versionsFailed, m.fallbacks, m.scoreSeconds, m.latency, m.queueFill, m.published, m.publishErrors, m.streamRecreated, m.outboxPending,
			m.outboxStored, m.outboxDrained, m.outboxDropped, m.swaps, m.forgotten, m.logWritten, m.logDropped, m.logErrors,
			m.events, m.eventsBaseline, m.eventsDropped, m.missing, m.transitions, m.flapSuppressed, m.triggerLatency, m.lifeErrors,
			m.gateRefused, m.gateForced, m.psi, m.feedback, m.feedbackRefused} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
