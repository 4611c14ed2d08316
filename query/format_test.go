package query

import (
	"encoding/json"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestJSONValueStrings: every string a label may hold comes out as a
// valid JSON string that decodes to what encoding/json makes of it.
func TestJSONValueStrings(t *testing.T) {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	cases := []string{"pe1", `quote " and \ backslash`, "tab\tnewline\n", "<html>&", "\x00\x1f", "bad utf-8 \xff\xfe", "line sep \u2028 para \u2029", "ünïcode"}
	for _, s := range cases {
		b.Append(s)
	}
	col := b.NewArray()
	defer col.Release()
	for i, s := range cases {
		got := appendJSONValue(nil, col, i)
		if !json.Valid(got) {
			t.Errorf("%q: invalid JSON %s", s, got)
			continue
		}
		want, _ := json.Marshal(s)
		if string(got) != string(want) {
			t.Errorf("%q: %s, want %s (json.Marshal)", s, got, want)
		}
	}
}
