package inference

// The decision's JSON document, appended into a buffer the caller owns
// (the worker's scratch): no allocation, no shared state.

import (
	"math"
	"strconv"

	"github.com/netfeat/netfeat/internal/jsonenc"
	"github.com/netfeat/netfeat/schema"
)

// appendDecisionJSON appends d as the JSON document of schema.Decision to
// dst: jsonenc.Decision, byte for byte what encoding/json produces with
// HTML escaping off (the tests compare them), at a fraction of the cost;
// non-finite features are left out and a non-finite score is written as 0,
// since JSON has no NaN. A time RFC 3339 cannot write (a year outside
// [0,9999]) is written as time.Format writes it; decisions carry the
// clock's times.
func appendDecisionJSON(dst []byte, d *schema.Decision) []byte {
	b, _ := jsonenc.Decision(dst, d)
	return b
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
