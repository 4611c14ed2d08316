package fleet

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// edgeMetrics are an Edge's Prometheus metrics (docs/fleet.md, "Metrics").
type edgeMetrics struct {
	published     *prometheus.CounterVec
	publishedB    *prometheus.CounterVec
	publishErrors *prometheus.CounterVec
	samplesSent   prometheus.Counter
	samplesKept   prometheus.Counter
	fill          *prometheus.GaugeVec
	nearLimit     *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	registered    prometheus.Gauge
	refused       prometheus.Counter
}

func newEdgeMetrics(reg prometheus.Registerer) (*edgeMetrics, error) {
	m := &edgeMetrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_edge_published_total", Help: "Messages the edge stored in its local stream (acknowledged by JetStream).",
		}, []string{"stream"}),
		publishedB: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_edge_published_bytes_total", Help: "Payload bytes of the messages the edge stored.",
		}, []string{"stream"}),
		publishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_edge_publish_errors_total", Help: "Publishes to a local stream that failed (the caller got the error).",
		}, []string{"stream"}),
		samplesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_fleet_edge_samples_forwarded_total", Help: "Raw samples stored for the hub.",
		}),
		samplesKept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_fleet_edge_samples_not_forwarded_total", Help: "Raw samples left out by the sample forwarding mode (off or sampled).",
		}),
		fill: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "netfeat_fleet_edge_stream_fill_ratio", Help: "How full a local stream is: the largest of bytes/max_bytes, messages/max_msgs and oldest age/max_age.",
		}, []string{"stream"}),
		nearLimit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_edge_stream_near_limit_total", Help: "Times a local stream's fill ratio rose above warn_ratio: it is about to drop data.",
		}, []string{"stream"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_edge_dropped_messages_total", Help: "Messages a local stream's limits dropped: removed as too old or too many (discard old), or refused (discard new).",
		}, []string{"stream", "reason"}),
		registered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "netfeat_fleet_edge_registered", Help: "1 once the hub's registry holds this edge's site for this instance.",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_fleet_edge_registration_refused_total", Help: "Registrations the hub refused: the site belongs to another edge instance.",
		}),
	}
	if err := registerAll(reg, m.published, m.publishedB, m.publishErrors, m.samplesSent, m.samplesKept,
		m.fill, m.nearLimit, m.dropped, m.registered, m.refused); err != nil {
		return nil, err
	}
	return m, nil
}

// hubMetrics are a Hub's Prometheus metrics.
type hubMetrics struct {
	items      *prometheus.CounterVec
	corrupt    *prometheus.CounterVec
	oversized  *prometheus.CounterVec
	refused    *prometheus.CounterVec
	sinkErrors *prometheus.CounterVec
	kicks      *prometheus.CounterVec
	sites      prometheus.Gauge
}

func newHubMetrics(reg prometheus.Registerer) (*hubMetrics, error) {
	m := &hubMetrics{
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_hub_items_total", Help: "Messages of a hub stream the sink accepted.",
		}, []string{"stream"}),
		corrupt: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_hub_corrupt_total", Help: "Messages of a hub stream that did not decode; skipped.",
		}, []string{"stream"}),
		oversized: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_hub_oversized_total", Help: "Messages of a hub stream larger than max_message_bytes; skipped.",
		}, []string{"stream"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_hub_refused_total", Help: "Messages from an edge instance that does not hold the site in the registry; skipped.",
		}, []string{"stream"}),
		sinkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_hub_sink_errors_total", Help: "Messages the sink failed on; redelivered after retry_delay.",
		}, []string{"stream"}),
		kicks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_fleet_hub_source_restarts_total", Help: "Times a hub stream's source was quiet while its edge answered, and the stream's leader stepped down to set it up again.",
		}, []string{"stream"}),
		sites: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "netfeat_fleet_hub_sites", Help: "Edge sites the hub sources.",
		}),
	}
	if err := registerAll(reg, m.items, m.corrupt, m.oversized, m.refused, m.sinkErrors, m.kicks, m.sites); err != nil {
		return nil, err
	}
	return m, nil
}

func registerAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("fleet: register metrics: %w", err)
		}
	}
	return nil
}
