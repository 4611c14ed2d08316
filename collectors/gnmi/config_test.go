package gnmi

import (
	"reflect"
	"testing"
	"time"
)

// TestTargetDefaults: a zero Target gets exactly DefaultTarget, its poll
// interval following the sample interval, and set fields are kept.
func TestTargetDefaults(t *testing.T) {
	want := DefaultTarget()
	want.PollInterval = want.SampleInterval
	if got := (Target{}).withDefaults(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Target{}.withDefaults() = %+v, want %+v", got, want)
	}
	set := Target{Mode: ModePoll, StreamMode: StreamOnChange, SampleInterval: time.Second, PollInterval: 2 * time.Second, Encoding: EncodingProto}
	if got := set.withDefaults(); !reflect.DeepEqual(got, set) {
		t.Fatalf("withDefaults changed set fields: %+v", got)
	}
	c := (Config{Targets: []Target{{}}}).withDefaults()
	if d := DefaultConfig(); c.RedialMin != d.RedialMin || c.RedialMax != d.RedialMax || c.Timeout != d.Timeout || c.BatchSize != d.BatchSize || !reflect.DeepEqual(c.Targets[0], want) {
		t.Fatalf("Config{}.withDefaults() = %+v", c)
	}
}
