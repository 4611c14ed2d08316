package inference

import (
	"strings"
	"testing"
)

func TestCheckModelFile(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		kind       Kind
		want       string // "" = no error
	}{
		{"builtin congestion", "builtin:congestion", KindXGBoost, ""},
		{"unknown builtin", "builtin:nope", KindXGBoost, "no such builtin model (builtin models: congestion)"},
		{"missing file", "/nonexistent/m.json", KindXGBoost, "no such file"},
		{"not the kind", "builtin:congestion", KindLightGBM, "lightgbm"},
		{"detector has no file", "", KindEWMA, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckModelFile(tc.kind, tc.path, nil, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckModelFile: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.want) {
				t.Fatalf("CheckModelFile = %v, want %q", err, tc.want)
			}
		})
	}
}
