// LatestRecord: one entity's latest row as an Arrow record. It reads the
// online view under its read lock, on the caller's goroutine.

package featurestore

import (
	"github.com/apache/arrow-go/v18/arrow"

	"github.com/netfeat/netfeat/schema"
)

// LatestRecord returns the entity's latest closed feature row in the view
// as a one-row record batch of schema.FeatureViewSchema(view), for SQL
// point lookups on latest_<view>. It is false when the entity has no closed
// window (or the view is unknown). The caller releases the batch.
func (s *Store) LatestRecord(view string, e schema.Entity) (arrow.RecordBatch, bool) {
	i, ok := s.viewIx[view]
	if !ok {
		return nil, false
	}
	o := s.online[i]
	o.mu.RLock()
	r, ok := o.rows[e]
	if !ok {
		o.mu.RUnlock()
		return nil, false
	}
	rec := rowsRecord(s.tables[i].schema, []*schema.FeatureRow{r})
	o.mu.RUnlock()
	return rec, true
}
