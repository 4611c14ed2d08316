package learning

import (
	"math"
	"testing"
	"time"
)

func TestFitBaseline(t *testing.T) {
	// Feature a: slot 0 (first half of the hour) values 1,3; slot 1
	// values 10,14. Feature b constant 5.
	ds := &Dataset{Names: []string{"a", "b"}}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var times []int64
	for i, v := range []float64{1, 3, 10, 14} {
		if err := ds.Add([]float64{v, 5}, 0); err != nil {
			t.Fatal(err)
		}
		times = append(times, base.Add(time.Duration(i/2)*30*time.Minute+time.Minute).UnixNano())
	}
	b, err := FitBaseline(ds, times, time.Hour, 2)
	if err != nil {
		t.Fatal(err)
	}
	a := b.Features[0]
	if a.Mean != 7 || math.Abs(a.Var-27.5) > 1e-12 {
		t.Errorf("a: mean %v var %v, want 7 and 27.5", a.Mean, a.Var)
	}
	if s := a.Slots; len(s) != 2 || s[0] != (SlotBaseline{N: 2, Mean: 2, Var: 1}) || s[1] != (SlotBaseline{N: 2, Mean: 12, Var: 4}) {
		t.Errorf("a slots %+v", s)
	}
	if f := b.Features[1]; f.Mean != 5 || f.Var != 0 {
		t.Errorf("b: %+v", f)
	}
	if err := b.Check([]string{"a", "b"}); err != nil {
		t.Error(err)
	}
	if err := b.Check([]string{"b", "a"}); err == nil {
		t.Error("names out of order accepted")
	}
	ds.X[0] = math.NaN()
	if _, err := FitBaseline(ds, nil, 0, 0); Reason(err) != ReasonNonFinite {
		t.Errorf("NaN: %v", err)
	}
}
