package gnmi

import "github.com/prometheus/client_golang/prometheus"

// metrics are the collector's Prometheus series, labelled by target.
type metrics struct {
	connected     *prometheus.GaugeVec
	updates       *prometheus.CounterVec
	notifications *prometheus.CounterVec
	errors        *prometheus.CounterVec
	reconnects    *prometheus.CounterVec
	syncs         *prometheus.CounterVec
	syncSeconds   *prometheus.GaugeVec
	duplicates    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "netfeat_gnmi_connected",
			Help: "1 while the Subscribe stream to the target is established, else 0.",
		}, []string{"target"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_gnmi_updates_total",
			Help: "Leaf values decoded from the target and handed to the normalizer.",
		}, []string{"target"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_gnmi_notifications_total",
			Help: "Notifications received from the target.",
		}, []string{"target"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_gnmi_errors_total",
			Help: "Problems with the target, by reason (dial, capabilities, stream, malformed_message, malformed_path, malformed_value, unknown_origin, type_mismatch, rate_limited, sink, auth).",
		}, []string{"target", "reason"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_gnmi_reconnects_total",
			Help: "Subscribe sessions started after the first one.",
		}, []string{"target"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_gnmi_sync_responses_total",
			Help: "sync_response messages received (one per session in stream mode, one per poll).",
		}, []string{"target"}),
		syncSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "netfeat_gnmi_initial_sync_seconds",
			Help: "Time from sending the subscription to the first sync_response in the latest session.",
		}, []string{"target"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_gnmi_duplicates_dropped_total",
			Help: "Updates dropped because their timestamp was not newer than the last one delivered for their path (a re-subscribe repeating samples already delivered).",
		}, []string{"target"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.connected, m.updates, m.notifications, m.errors, m.reconnects, m.syncs, m.syncSeconds, m.duplicates} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
