package federated

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// hubMetrics are the Coordinator's metrics (docs/learning.md, "Federated
// learning").
type hubMetrics struct {
	rejected *prometheus.CounterVec
	rounds   *prometheus.CounterVec
	round    prometheus.Gauge
	edges    *prometheus.GaugeVec
	bytes    *prometheus.CounterVec
}

func newHubMetrics(reg prometheus.Registerer) (*hubMetrics, error) {
	m := &hubMetrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fl_updates_rejected_total",
			Help: "Edge messages the hub refused in a federated round (shape, malformed, wrong_round, wrong_phase, unknown_edge, duplicate, reveal, overflow); the round goes on without them.",
		}, []string{"reason"}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fl_rounds_total",
			Help: "Federated rounds ended, by result (completed, too_few_edges, too_few_survivors, unmask_failed, rejected, error, canceled).",
		}, []string{"result"}),
		round: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "netfeat_fl_round", Help: "The current (or last) federated round.",
		}),
		edges: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "netfeat_fl_round_edges", Help: "Edges of the current federated round: keys received, masked updates accepted, dropped.",
		}, []string{"phase"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fl_bytes_total", Help: "Payload bytes of federated messages the hub received (in) and published (out).",
		}, []string{"direction"}),
	}
	return m, register(reg, m.rejected, m.rounds, m.round, m.edges, m.bytes)
}

// edgeMetrics are the Participant's metrics.
type edgeMetrics struct {
	rejected *prometheus.CounterVec
	rounds   *prometheus.CounterVec
	version  prometheus.Gauge
}

func newEdgeMetrics(reg prometheus.Registerer) (*edgeMetrics, error) {
	m := &edgeMetrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fl_edge_updates_rejected_total",
			Help: "Local updates the edge refused to send (nan, norm, shape, samples, train_error): it drops out of the round.",
		}, []string{"reason"}),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fl_edge_rounds_total",
			Help: "Federated rounds the edge took part in, by outcome (sent, revealed, rejected, refused, timeout), or sat out (skipped: too little data).",
		}, []string{"result"}),
		version: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "netfeat_fl_edge_global_version", Help: "The version (round) of the global model the edge holds.",
		}),
	}
	return m, register(reg, m.rejected, m.rounds, m.version)
}

// register registers cs with reg (nil: none).
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("federated: register metrics: %w", err)
	}
	return nil
}
