package anomaly

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestEWMA(t *testing.T) {
	d := NewEWMA(0.1, 20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		s := d.Observe(100 + rng.NormFloat64())
		if i < 20 && !math.IsNaN(s) {
			t.Fatalf("value %d scored %v during warmup", i, s)
		}
		if i >= 50 && s > 6 {
			t.Fatalf("value %d of a normal series scored %v", i, s)
		}
	}
	if s := d.Observe(110); s < 5 {
		t.Fatalf("a 10σ spike scored %v, want ≥ 5", s)
	}
	if s := d.Observe(math.NaN()); !math.IsNaN(s) {
		t.Fatalf("NaN input scored %v", s)
	}
	if m := d.Mean(); m < 99 || m > 102 {
		t.Fatalf("mean %v, want ≈100", m)
	}
}

func TestConstantSeries(t *testing.T) {
	d := NewEWMA(0.3, 3)
	for range 10 {
		if s := d.Observe(5); s != 0 && !math.IsNaN(s) {
			t.Fatalf("constant series scored %v", s)
		}
	}
	if s := d.Observe(6); s != MaxScore {
		t.Fatalf("step off a constant series scored %v, want MaxScore", s)
	}
}

func TestMADResistsOutliers(t *testing.T) {
	d := NewMAD(31, 10)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		v := 10 + rng.NormFloat64()
		if i%10 == 0 {
			v = 1000 // recurring outliers must not inflate the scale
		}
		d.Observe(v)
	}
	if s := d.Observe(16); s < 4 {
		t.Fatalf("6σ value scored %v after outliers, want ≥ 4", s)
	}
	if s := d.Observe(10.5); s > 2 {
		t.Fatalf("typical value scored %v, want < 2", s)
	}
}

func TestMADWarmup(t *testing.T) {
	d := NewMAD(5, 3)
	for i, v := range []float64{1, 2, 3} {
		if s := d.Observe(v); !math.IsNaN(s) {
			t.Fatalf("value %d scored %v during warmup", i, s)
		}
	}
	// median of {1,2,3} is 2, MAD 1 → scaled 1.4826
	if s, want := d.Observe(5), 3/1.4826; math.Abs(s-want) > 1e-9 {
		t.Fatalf("score %v, want %v", s, want)
	}
}

func TestSeasonal(t *testing.T) {
	d := NewSeasonal(24*time.Hour, 24, 0.2, 5)
	rng := rand.New(rand.NewPCG(5, 6))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	load := func(h int) float64 { // busy hours 9–17
		if h >= 9 && h < 17 {
			return 0.8
		}
		return 0.1
	}
	for day := range 10 {
		for h := range 24 {
			ts := start.Add(time.Duration(day*24+h) * time.Hour)
			d.Observe(ts, load(h)+0.01*rng.NormFloat64())
		}
	}
	day11 := start.Add(10 * 24 * time.Hour)
	if s := d.Observe(day11.Add(12*time.Hour), 0.8); s > 3 {
		t.Fatalf("usual midday load scored %v", s)
	}
	if s := d.Observe(day11.Add(3*time.Hour), 0.8); s < 10 {
		t.Fatalf("midday load at 03:00 scored %v, want ≥ 10", s)
	}
}

var sink float64

func BenchmarkDetectors(b *testing.B) {
	b.Run("ewma", func(b *testing.B) {
		d := NewEWMA(0.1, 10)
		b.ReportAllocs()
		i := 0.0
		for b.Loop() {
			i++
			sink += d.Observe(math.Sin(i))
		}
	})
	b.Run("mad/window=60", func(b *testing.B) {
		d := NewMAD(60, 10)
		b.ReportAllocs()
		i := 0.0
		for b.Loop() {
			i++
			sink += d.Observe(math.Sin(i))
		}
	})
	b.Run("seasonal", func(b *testing.B) {
		d := NewSeasonal(24*time.Hour, 24, 0.1, 5)
		ts := time.Unix(0, 0)
		b.ReportAllocs()
		for b.Loop() {
			ts = ts.Add(time.Minute)
			sink += d.Observe(ts, 1)
		}
	})
}
