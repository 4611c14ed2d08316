// Package jsonenc appends netfeat's JSON documents and their parts into a
// caller's buffer without reflection, byte for byte as encoding/json writes
// them: field order and omitempty of the struct tags, encoding/json's float
// format, its string escaping (HTML characters escaped by json.Marshal, not
// by a json.Encoder with SetEscapeHTML(false)), sorted map keys, null for
// nil slices and maps, time.Time as RFC 3339 with nanoseconds. Inference
// publishes decisions with it and the fleet forwards decisions, windows and
// action transitions with it; their tests compare it with encoding/json.
package jsonenc

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/netfeat/netfeat/schema"
)

// ErrTimeRange is what time.Time's MarshalJSON refuses: a year outside
// [0,9999] or a zone offset of 24 hours or more, which RFC 3339 cannot
// write.
var ErrTimeRange = errors.New("time not representable in RFC 3339 (year outside [0,9999] or zone offset of 24h or more)")

// Decision appends the decision document of d (schema.Decision as
// a json.Encoder with SetEscapeHTML(false) writes it, without the
// newline): non-finite features left out, a non-finite score written as 0.
// It fails, having appended part of the document, on a time that
// time.Time's MarshalJSON refuses.
func Decision(b []byte, d *schema.Decision) ([]byte, error) {
	ok := true
	b = append(b, `{"schema_version":`...)
	b = strconv.AppendInt(b, int64(d.SchemaVersion), 10)
	b = append(b, `,"id":`...)
	b = String(b, d.ID, false)
	b = append(b, `,"time":`...)
	b = Time(b, d.Time, &ok)
	b = append(b, `,"entity":`...)
	b = Entity(b, d.Entity, false)
	b = append(b, `,"view":`...)
	b = String(b, d.View, false)
	b = append(b, `,"model":`...)
	b = String(b, d.Model, false)
	b = append(b, `,"model_version":`...)
	b = String(b, d.ModelVersion, false)
	b = append(b, `,"score":`...)
	b = Float(b, FiniteOrZero(d.Score))
	b = append(b, `,"action":`...)
	b = String(b, d.Action, false)
	b = append(b, `,"state":`...)
	b = String(b, d.State, false)
	b = append(b, `,"since":`...)
	b = Time(b, d.Since, &ok)
	b = append(b, `,"transition":`...)
	b = strconv.AppendBool(b, d.Transition)
	b = append(b, `,"fingerprint":`...)
	b = String(b, d.Fingerprint, false)
	if d.Flapping {
		b = append(b, `,"flapping":true`...)
	}
	b = append(b, `,"reason":`...)
	b = String(b, d.Reason, false)
	if d.Fallback != "" {
		b = append(b, `,"fallback":`...)
		b = String(b, d.Fallback, false)
	}
	b = append(b, `,"features":`...)
	b = Features(b, d.Features)
	if len(d.MissingFeatures) > 0 {
		b = append(b, `,"missing_features":[`...)
		for i, f := range d.MissingFeatures {
			if i > 0 {
				b = append(b, ',')
			}
			b = String(b, f, false)
		}
		b = append(b, ']')
	}
	b = append(b, `,"window":{"start":`...)
	b = Time(b, d.Window.Start, &ok)
	b = append(b, `,"end":`...)
	b = Time(b, d.Window.End, &ok)
	b = append(b, `},"trigger":`...)
	b = String(b, d.Trigger, false)
	if e := d.Event; e != nil {
		b = append(b, `,"event":{"metric":`...)
		b = String(b, e.Metric, false)
		b = append(b, `,"state":`...)
		b = String(b, e.State, false)
		if e.Prev != "" {
			b = append(b, `,"prev":`...)
			b = String(b, e.Prev, false)
		}
		b = append(b, `,"time":`...)
		b = Time(b, e.Time, &ok)
		b = append(b, '}')
	}
	b = append(b, `,"ingest_to_decision_us":`...)
	b = strconv.AppendInt(b, d.IngestToDecisionUS, 10)
	b = append(b, `,"trigger_to_decision_us":`...)
	b = strconv.AppendInt(b, d.TriggerToDecisionUS, 10)
	b = append(b, '}')
	if !ok {
		return b, ErrTimeRange
	}
	return b, nil
}

// Entity appends schema.Entity's object.
func Entity(b []byte, e schema.Entity, html bool) []byte {
	b = append(b, `{"device":`...)
	b = String(b, e.Device, html)
	if e.Component != "" {
		b = append(b, `,"component":`...)
		b = String(b, e.Component, html)
	}
	return append(b, '}')
}

// FiniteOrZero returns v, or 0 when v is NaN or infinite: JSON has no
// such numbers.
func FiniteOrZero(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// Features appends the finite features as an object with sorted
// keys; nil is null.
func Features(b []byte, f map[string]float64) []byte {
	if f == nil {
		return append(b, "null"...)
	}
	var buf [32]string
	keys := buf[:0]
	for k, v := range f {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = String(b, k, false)
		b = append(b, ':')
		b = Float(b, f[k])
	}
	return append(b, '}')
}

// Float formats a finite f as encoding/json's float64 encoder does:
// 'f' format, 'e' below 1e-6 and from 1e21 on, with a two-digit negative
// exponent cut to one (1e-07 as 1e-7).
func Float(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// Time appends t as time.Time's MarshalJSON does (a quoted RFC 3339
// time with nanoseconds); it clears *ok where MarshalJSON fails.
func Time(b []byte, t time.Time, ok *bool) []byte {
	b = append(b, '"')
	n0 := len(b)
	b = t.AppendFormat(b, time.RFC3339Nano)
	// MarshalJSON's checks: a four-digit year, a zone hour below 24.
	switch {
	case b[n0+4] != '-':
		*ok = false
	case b[len(b)-1] != 'Z':
		c := b[len(b)-len("Z07:00")]
		h := 10*(b[len(b)-5]-'0') + (b[len(b)-4] - '0')
		if ('0' <= c && c <= '9') || h >= 24 {
			*ok = false
		}
	}
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// jsonSafe marks the ASCII bytes a JSON string holds as they are;
// htmlSafe also leaves out '<', '>' and '&', which json.Marshal escapes.
var jsonSafe, htmlSafe = func() (s, h [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		s[c] = c != '"' && c != '\\'
		h[c] = s[c] && c != '<' && c != '>' && c != '&'
	}
	return s, h
}()

// String quotes s as encoding/json does: '"', '\\' and control
// characters escaped, U+2028 and U+2029 escaped, invalid UTF-8 written as
// \ufffd, and with html '<', '>' and '&' escaped (json.Marshal; a
// json.Encoder with SetEscapeHTML(false) leaves them).
func String(b []byte, s string, html bool) []byte {
	safe := &jsonSafe
	if html {
		safe = &htmlSafe
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
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
