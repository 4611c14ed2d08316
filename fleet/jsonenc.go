package fleet

// The window and action documents, appended into a caller's buffer without
// reflection with internal/jsonenc's parts (the decision document is
// jsonenc.Decision, which inference publishes with too). Each appender
// writes byte for byte what encoding/json wrote for the same value before:
// fleet's jsonenc_test.go keeps that implementation and compares them, on
// tables and under fuzzing.

import (
	"math"
	"strconv"

	"github.com/netfeat/netfeat/internal/jsonenc"
	"github.com/netfeat/netfeat/schema"
)

// appendWindow appends the window document of row (windowDoc as json.Marshal
// writes it). The caller checks that Names and Values have the same length.
func appendWindow(b []byte, row *schema.FeatureRow) []byte {
	b = append(b, `{"schema_version":`...)
	b = strconv.AppendInt(b, WindowSchemaVersion, 10)
	b = append(b, `,"view":`...)
	b = jsonenc.String(b, row.View, true)
	b = append(b, `,"device":`...)
	b = jsonenc.String(b, row.Device, true)
	if row.Component != "" {
		b = append(b, `,"component":`...)
		b = jsonenc.String(b, row.Component, true)
	}
	b = append(b, `,"window_start":`...)
	b = strconv.AppendInt(b, row.WindowStart, 10)
	b = append(b, `,"window_end":`...)
	b = strconv.AppendInt(b, row.WindowEnd, 10)
	b = append(b, `,"names":`...)
	if row.Names == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, n := range row.Names {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.String(b, n, true)
		}
		b = append(b, ']')
	}
	// The values slice was always made, never nil: [] when empty.
	b = append(b, `,"values":[`...)
	for i, v := range row.Values {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			b = append(b, "null"...)
		} else {
			// jsonFloat's format, not encoding/json's.
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		}
	}
	b = append(b, `],"last_ingest_ts":`...)
	b = strconv.AppendInt(b, row.LastIngestTS, 10)
	b = append(b, `,"closed_at":`...)
	b = strconv.AppendInt(b, row.ClosedAt, 10)
	if row.CloseReason != "" {
		b = append(b, `,"close_reason":`...)
		b = jsonenc.String(b, row.CloseReason, true)
	}
	if row.TriggerIngestTS != 0 {
		b = append(b, `,"trigger_ingest_ts":`...)
		b = strconv.AppendInt(b, row.TriggerIngestTS, 10)
	}
	return append(b, '}')
}

// appendAction appends the action document of a (Action as json.Marshal
// writes it) with schema_version ActionSchemaVersion whatever a holds and
// a non-finite score written as 0. It fails, having appended part of the
// document, on a time that time.Time's MarshalJSON refuses.
func appendAction(b []byte, a *Action) ([]byte, error) {
	ok := true
	b = append(b, `{"schema_version":`...)
	b = strconv.AppendInt(b, ActionSchemaVersion, 10)
	b = append(b, `,"model":`...)
	b = jsonenc.String(b, a.Model, true)
	b = append(b, `,"model_version":`...)
	b = jsonenc.String(b, a.ModelVersion, true)
	b = append(b, `,"fingerprint":`...)
	b = jsonenc.String(b, a.Fingerprint, true)
	b = append(b, `,"entity":`...)
	b = jsonenc.Entity(b, a.Entity, true)
	if a.View != "" {
		b = append(b, `,"view":`...)
		b = jsonenc.String(b, a.View, true)
	}
	b = append(b, `,"trigger":`...)
	b = jsonenc.String(b, a.Trigger, true)
	b = append(b, `,"state":`...)
	b = jsonenc.String(b, a.State, true)
	b = append(b, `,"since":`...)
	b = jsonenc.Time(b, a.Since, &ok)
	b = append(b, `,"action":`...)
	b = jsonenc.String(b, a.Action, true)
	b = append(b, `,"score":`...)
	b = jsonenc.Float(b, jsonenc.FiniteOrZero(a.Score))
	b = append(b, `,"reason":`...)
	b = jsonenc.String(b, a.Reason, true)
	b = append(b, `,"last_decision":`...)
	b = jsonenc.Time(b, a.LastDecision, &ok)
	b = append(b, `,"last_published":`...)
	b = jsonenc.Time(b, a.LastPublished, &ok)
	if a.Flapping {
		b = append(b, `,"flapping":true`...)
	}
	if a.Suppressed != 0 {
		b = append(b, `,"suppressed":`...)
		b = strconv.AppendInt(b, a.Suppressed, 10)
	}
	b = append(b, '}')
	if !ok {
		return b, jsonenc.ErrTimeRange
	}
	return b, nil
}
