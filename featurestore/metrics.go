// The store's Prometheus metrics. Counters are updated by whichever
// goroutine does the work; the gauges computed at scrape time read the hot
// tier and the series table under their own locks, on the scraping
// goroutine.

package featurestore

import (
	"github.com/prometheus/client_golang/prometheus"
)

// storeMetrics are the store's Prometheus metrics, registered on the
// caller's registerer.
type storeMetrics struct {
	appended       prometheus.Counter
	rejected       *prometheus.CounterVec // device, reason
	walCommits     prometheus.Counter
	walBatches     prometheus.Counter
	walBytes       prometheus.Counter
	walCommitTime  prometheus.Histogram
	walErrors      prometheus.Counter
	chunksSealed   *prometheus.CounterVec // reason
	chunksDropped  *prometheus.CounterVec // reason
	chunkPersist   *prometheus.CounterVec // result
	late           *prometheus.CounterVec // view, outcome
	ahead          *prometheus.CounterVec // view
	replaced       *prometheus.CounterVec // device
	duplicates     prometheus.Counter
	windowsClosed  *prometheus.CounterVec // view, reason
	closeLatency   prometheus.Histogram
	rowsUnpersist  *prometheus.CounterVec // view
	damaged        *prometheus.CounterVec // kind
	recoverSeconds prometheus.Gauge
	stateEvents    prometheus.Counter

	// Per view (index in Store.views), resolved once: the window path does
	// not look labels up per row.
	closed      [][3]prometheus.Counter // by closeIndex
	unpersisted []prometheus.Counter
}

func newStoreMetrics(reg prometheus.Registerer, s *Store) (*storeMetrics, error) {
	m := &storeMetrics{
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_store_samples_appended_total", Help: "Samples accepted into the WAL and the hot tier."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_store_samples_rejected_total", Help: "Samples refused as bad input, by device (the first 10000 devices, then \"(other)\") and reason (missing_label, name_too_long, series_limit)."},
			[]string{"device", "reason"}),
		walCommits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_store_wal_commits_total", Help: "WAL group commits (one Badger transaction each)."}),
		walBatches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_store_wal_batches_total", Help: "Append batches written to the WAL."}),
		walBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_store_wal_bytes_total", Help: "Encoded bytes written to the WAL."}),
		walCommitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "netfeat_store_wal_commit_seconds", Help: "Duration of one WAL group commit, fsync included.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 14)}),
		walErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_store_wal_errors_total", Help: "WAL commits that failed (their batches were not accepted)."}),
		chunksSealed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_store_chunks_sealed_total", Help: "Hot-tier chunks sealed, by reason (rows, age)."},
			[]string{"reason"}),
		chunksDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_store_chunks_dropped_total", Help: "Sealed chunks dropped from memory (they stay in Badger until chunk_ttl), by reason (age, memory, memory_limit)."},
			[]string{"reason"}),
		chunkPersist: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_store_chunk_writes_total", Help: "Sealed chunks written to Badger, by result (ok, error)."},
			[]string{"result"}),
		late: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_store_late_samples_total", Help: "Samples that arrived behind their view's newest pane, by view and outcome (applied within allowed lateness, dropped beyond it)."},
			[]string{"view", "outcome"}),
		ahead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_store_future_samples_total", Help: "Samples more than store.max_clock_skew ahead of their ingest time and of the store's clock, by view: windowed for their own entity but not moving the view's watermark."},
			[]string{"view"}),
		replaced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_store_invalid_utf8_samples_total", Help: "Samples stored with invalid UTF-8 in a label replaced by U+FFFD, by device (the first 10000 devices, then \"(other)\")."},
			[]string{"device"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_store_duplicate_samples_total", Help: "Samples dropped because they repeat their series' newest sample (same event time and value), e.g. after a gNMI re-subscribe."}),
		windowsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_store_windows_closed_total", Help: "Feature rows delivered, by view and what closed the window (complete, watermark, idle)."},
			[]string{"view", "reason"}),
		closeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "netfeat_store_window_close_latency_seconds", Help: "From the WAL commit of the batch that closed the window (completed it or moved the watermark past it) to the subscriber call.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 2, 18)}),
		rowsUnpersist: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_store_feature_rows_unpersisted_total", Help: "Closed feature rows not written to Badger because the row writer was full, by view."},
			[]string{"view"}),
		damaged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "netfeat_store_damaged_entries_total", Help: "Damaged entries found by recovery and quarantined, by kind."},
			[]string{"kind"}),
		stateEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "netfeat_store_state_events_total", Help: "State events detected: committed samples of a state metric that are the first of their series or change its value."}),
		recoverSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "netfeat_store_recovery_seconds", Help: "Time the last Start spent recovering the hot tier."}),
	}
	cs := []prometheus.Collector{
		m.appended, m.rejected, m.walCommits, m.walBatches, m.walBytes, m.walCommitTime, m.walErrors,
		m.chunksSealed, m.chunksDropped, m.chunkPersist, m.late, m.ahead, m.replaced, m.duplicates, m.windowsClosed, m.closeLatency,
		m.rowsUnpersist, m.damaged, m.recoverSeconds, m.stateEvents,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "netfeat_store_hot_samples", Help: "Samples held in the hot tier."},
			func() float64 { r, _ := s.hot.usage(); return float64(r) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "netfeat_store_hot_bytes", Help: "Bytes of sample data held in the hot tier."},
			func() float64 { _, b := s.hot.usage(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "netfeat_store_hot_budget_bytes", Help: "The hot tier's effective budget: memory_budget, or less while the process is over memory_limit."},
			func() float64 { return float64(s.HotBudget()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "netfeat_store_series", Help: "Series (device, component, metric) known."},
			func() float64 { return float64(s.series.len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "netfeat_store_commit_queue_length", Help: "Append batches waiting for the WAL commit."},
			func() float64 { return float64(len(s.commitCh)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "netfeat_store_window_queue_length", Help: "Committed batches waiting for the window engine."},
			func() float64 { return float64(len(s.winCh)) }),
	}
	for _, v := range s.views {
		m.closed = append(m.closed, [3]prometheus.Counter{
			m.windowsClosed.WithLabelValues(v.Name, string(closeComplete)),
			m.windowsClosed.WithLabelValues(v.Name, string(closeWatermark)),
			m.windowsClosed.WithLabelValues(v.Name, string(closeIdle)),
		})
		m.unpersisted = append(m.unpersisted, m.rowsUnpersist.WithLabelValues(v.Name))
	}
	if reg != nil {
		for _, c := range cs {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// closeIndex is the index of reason in storeMetrics.closed.
func closeIndex(reason closeReason) int {
	switch reason {
	case closeComplete:
		return 0
	case closeWatermark:
		return 1
	}
	return 2
}
