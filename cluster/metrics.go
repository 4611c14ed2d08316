package cluster

import "github.com/prometheus/client_golang/prometheus"

// metrics are a node's Prometheus metrics.
type metrics struct {
	owned         prometheus.Gauge
	liveNodes     prometheus.Gauge
	handovers     *prometheus.CounterVec
	renewFailures prometheus.Counter
	casConflicts  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "netfeat_cluster_owned_targets", Help: "Targets this node owns.",
		}),
		liveNodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "netfeat_cluster_nodes", Help: "Nodes of the site holding a lease and not draining, as this node sees them.",
		}),
		handovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_cluster_handovers_total",
			Help: "Targets this node took (acquired), gave away (released) or dropped because its lease could not be renewed (lost).",
		}, []string{"direction"}),
		renewFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_cluster_lease_renew_failures_total", Help: "Lease renewals that failed (KV unreachable or the lease gone).",
		}),
		casConflicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_cluster_cas_conflicts_total", Help: "Owner updates refused because another node changed the record first.",
		}),
	}
	for _, d := range []string{"acquired", "released", "lost"} {
		m.handovers.WithLabelValues(d)
	}
	if reg != nil {
		reg.MustRegister(m.owned, m.liveNodes, m.handovers, m.renewFailures, m.casConflicts)
	}
	return m
}
