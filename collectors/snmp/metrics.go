package snmp

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

var allStates = []string{StateUnknown, StateUp, StateDown, StateAuthFailure, StateError}

type metrics struct {
	polls        *prometheus.CounterVec
	skipped      *prometheus.CounterVec
	observations *prometheus.CounterVec
	lastDuration *prometheus.GaugeVec
	lastSuccess  *prometheus.GaugeVec
	backoff      *prometheus.GaugeVec
	state        *prometheus.GaugeVec
	duration     prometheus.Histogram
	inFlight     prometheus.Gauge
	traps        *prometheus.CounterVec
	trapErrors   *prometheus.CounterVec
	trapQueue    prometheus.Gauge
	trapDelay    prometheus.Histogram
	trapReadBuf  prometheus.Gauge
	valuesDrop   *prometheus.CounterVec
	bufsDropped  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netfeat_snmp_polls_total",
			Help: "SNMP polls by device and result (ok, timeout, unreachable, auth_failure, bad_response, table_too_large, values_too_large, overrun, sink_error)."},
			[]string{"device", "result"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netfeat_snmp_polls_skipped_total",
			Help: "Poll slots skipped because the previous poll of the device overran its interval."}, []string{"device"}),
		observations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netfeat_snmp_observations_total",
			Help: "Observations polled, by device."}, []string{"device"}),
		lastDuration: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "netfeat_snmp_last_poll_duration_seconds",
			Help: "Duration of the device's last successful poll."}, []string{"device"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "netfeat_snmp_last_success_timestamp_seconds",
			Help: "Unix time of the device's last successful poll."}, []string{"device"}),
		backoff: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "netfeat_snmp_backoff_seconds",
			Help: "Current delay before the next poll of a failing device (0 when healthy)."}, []string{"device"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "netfeat_snmp_device_state",
			Help: "1 for the device's current state (unknown, up, down, auth_failure, error), 0 for the others."},
			[]string{"device", "state"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "netfeat_snmp_poll_duration_seconds",
			Help: "Duration of successful polls, all devices.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "netfeat_snmp_polls_in_flight",
			Help: "Polls running now (bounded by max_concurrency)."}),
		traps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netfeat_snmp_traps_total",
			Help: "Traps and informs accepted, by source device (\"other\" for addresses that are not targets) and version."},
			[]string{"source", "version"}),
		trapErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netfeat_snmp_trap_errors_total",
			Help: "Trap messages refused, by source device (\"other\" for addresses that are not targets) and reason " +
				"(malformed, community, auth, unknown_source, shed, oversize, sink, ack)."},
			[]string{"source", "reason"}),
		trapQueue: prometheus.NewGauge(prometheus.GaugeOpts{Name: "netfeat_snmp_trap_queue_length",
			Help: "Notifications decoded and waiting for the sink (bounded by trap_queue_size)."}),
		trapDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "netfeat_snmp_trap_queue_delay_seconds",
			Help:    "Time from reading a notification off the socket to handing it to the sink.",
			Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10)}),
		valuesDrop: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "netfeat_snmp_values_dropped_total",
			Help: "Polled string values dropped because they were longer than max_value_size, by device."}, []string{"device"}),
		bufsDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "netfeat_snmp_poll_buffers_dropped_total",
			Help: "Poll buffers not kept for reuse because one poll had grown them past 8 MiB."}),
		trapReadBuf: prometheus.NewGauge(prometheus.GaugeOpts{Name: "netfeat_snmp_trap_read_buffer_bytes",
			Help: "The trap socket's receive buffer as the kernel reports it (Linux counts twice the size asked for)."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.polls, m.skipped, m.observations, m.lastDuration, m.lastSuccess,
		m.backoff, m.state, m.duration, m.inFlight, m.traps, m.trapErrors,
		m.trapQueue, m.trapDelay, m.trapReadBuf, m.valuesDrop, m.bufsDropped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) setState(device, state string) {
	for _, s := range allStates {
		v := 0.0
		if s == state {
			v = 1
		}
		m.state.WithLabelValues(device, s).Set(v)
	}
}
