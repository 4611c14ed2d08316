package inference

// The decision's JSON document, appended into a buffer the caller owns
// (the worker's scratch): no allocation, no shared state.

import (
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/netfeat/netfeat/schema"
)

// appendDecisionJSON appends d as the JSON document of schema.Decision to
// dst. The output is byte for byte what encoding/json produces for a
// decision with finite numbers and HTML escaping off (json.Encoder with
// SetEscapeHTML(false); the tests compare them), at a fraction of
// the cost; non-finite features are left out and a non-finite score is
// written as 0, since JSON has no NaN.
func appendDecisionJSON(dst []byte, d *schema.Decision) []byte {
	b := append(dst, `{"schema_version":`...)
	b = strconv.AppendInt(b, int64(d.SchemaVersion), 10)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, d.ID)
	b = append(b, `,"time":`...)
	b = appendJSONTime(b, d.Time)
	b = append(b, `,"entity":{"device":`...)
	b = appendJSONString(b, d.Entity.Device)
	if d.Entity.Component != "" {
		b = append(b, `,"component":`...)
		b = appendJSONString(b, d.Entity.Component)
	}
	b = append(b, `},"view":`...)
	b = appendJSONString(b, d.View)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, d.Model)
	b = append(b, `,"model_version":`...)
	b = appendJSONString(b, d.ModelVersion)
	b = append(b, `,"score":`...)
	score := d.Score
	if isNaNOrInf(score) {
		score = 0
	}
	b = appendJSONFloat(b, score)
	b = append(b, `,"action":`...)
	b = appendJSONString(b, d.Action)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, d.State)
	b = append(b, `,"since":`...)
	b = appendJSONTime(b, d.Since)
	b = append(b, `,"transition":`...)
	b = strconv.AppendBool(b, d.Transition)
	b = append(b, `,"fingerprint":`...)
	b = appendJSONString(b, d.Fingerprint)
	if d.Flapping {
		b = append(b, `,"flapping":true`...)
	}
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, d.Reason)
	if d.Fallback != "" {
		b = append(b, `,"fallback":`...)
		b = appendJSONString(b, d.Fallback)
	}
	b = append(b, `,"features":`...)
	b = appendFeaturesJSON(b, d.Features)
	if len(d.MissingFeatures) > 0 {
		b = append(b, `,"missing_features":[`...)
		for i, f := range d.MissingFeatures {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, f)
		}
		b = append(b, ']')
	}
	b = append(b, `,"window":{"start":`...)
	b = appendJSONTime(b, d.Window.Start)
	b = append(b, `,"end":`...)
	b = appendJSONTime(b, d.Window.End)
	b = append(b, `},"trigger":`...)
	b = appendJSONString(b, d.Trigger)
	if e := d.Event; e != nil {
		b = append(b, `,"event":{"metric":`...)
		b = appendJSONString(b, e.Metric)
		b = append(b, `,"state":`...)
		b = appendJSONString(b, e.State)
		if e.Prev != "" {
			b = append(b, `,"prev":`...)
			b = appendJSONString(b, e.Prev)
		}
		b = append(b, `,"time":`...)
		b = appendJSONTime(b, e.Time)
		b = append(b, '}')
	}
	b = append(b, `,"ingest_to_decision_us":`...)
	b = strconv.AppendInt(b, d.IngestToDecisionUS, 10)
	b = append(b, `,"trigger_to_decision_us":`...)
	b = strconv.AppendInt(b, d.TriggerToDecisionUS, 10)
	return append(b, '}')
}

// appendFeaturesJSON appends the finite features as a JSON object with
// sorted keys; nil is null, as encoding/json writes it.
func appendFeaturesJSON(b []byte, f map[string]float64) []byte {
	if f == nil {
		return append(b, "null"...)
	}
	var buf [32]string
	keys := buf[:0]
	for k, v := range f {
		if !isNaNOrInf(v) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONFloat(b, f[k])
	}
	return append(b, '}')
}

// appendJSONFloat formats like encoding/json's float64 encoder.
func appendJSONFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendG4 appends v as fmt's %.4g does (strconv 'g' with 4 significant
// digits; NaN, +Inf, -Inf spelled the same). Reasons use it instead of
// fmt.Sprintf on the scoring path.
func appendG4(b []byte, v float64) []byte {
	if math.IsInf(v, 1) {
		return append(b, "+Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', 4, 64)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does without HTML escaping:
// control characters, '"' and '\\' escaped, U+2028 and U+2029 escaped,
// invalid UTF-8 replaced by U+FFFD. Reasons such as "x > 0.9" stay
// readable.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
