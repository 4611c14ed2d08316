package featurestore

import (
	"fmt"

	"github.com/netfeat/netfeat/schema"
)

// Record is one sample the store accepted, as a tap sees it: Series, the
// store's id of its (device, component, metric), replaces the labels, which
// SeriesLabels gives.
type Record struct {
	TS       int64
	IngestTS int64
	Value    float64
	Series   int32
}

// Tap receives every batch of samples the store accepted, once it is
// committed (durable under the fsync policy), on the goroutine of the
// Append that brought it. Batches of concurrent appenders arrive
// concurrently and in no particular order. A tap must not block and must
// not keep recs after it returns. Samples replayed at Start reach no tap.
type Tap func(recs []Record)

// SetTap makes fn the store's tap (nil removes it). Set it before Start.
func (s *Store) SetTap(fn Tap) { s.tap = fn }

// SeriesLabels returns the labels of series id as the store keeps them
// (after its label checks: an invalid label is replaced, never forwarded
// as it came) and the source of its first sample. A series' labels never
// change and ids are never reused, so a caller may remember them.
func (s *Store) SeriesLabels(id int32) (e schema.Entity, metric, source string, err error) {
	if id < 0 || int(id) >= s.series.len() {
		return schema.Entity{}, "", "", fmt.Errorf("featurestore: no series %d (the store has %d)", id, s.series.len())
	}
	d := s.series.def(id)
	return schema.Entity{Device: d.device, Component: d.component}, d.metric, d.source, nil
}

// tapped hands the recs of a committed batch to the tap, through scratch.
func (s *Store) tapped(p *pending) {
	p.tap = p.tap[:0]
	for _, r := range p.recs {
		p.tap = append(p.tap, Record{TS: r.ts, IngestTS: r.ingest, Value: r.value, Series: r.sid})
	}
	s.tap(p.tap)
}
