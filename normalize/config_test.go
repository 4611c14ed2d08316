package normalize

import (
	"reflect"
	"testing"
)

// TestConfigDefaults: a zero Config gets exactly DefaultConfig, and a
// field that is set keeps its value.
func TestConfigDefaults(t *testing.T) {
	if got, want := (Config{}).withDefaults(), DefaultConfig(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Config{}.withDefaults() = %+v, want DefaultConfig() %+v", got, want)
	}
	set := Config{ReloadInterval: 1, MaxClockSkew: 2, MaxSampleAge: 3, ClockSkewAction: ClockDrop, MaxSeriesPerDevice: 4, MaxNameLength: 5}
	if got := set.withDefaults(); !reflect.DeepEqual(got, set) {
		t.Fatalf("withDefaults changed set fields: %+v", got)
	}
}
