package snmpagent

import (
	"testing"
	"time"
)

func TestPollTimesLongestGap(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(s ...float64) []time.Time {
		var out []time.Time
		for _, x := range s {
			out = append(out, t0.Add(time.Duration(x*float64(time.Second))))
		}
		return out
	}
	tests := []struct {
		name   string
		times  map[string][]time.Time
		names  []string
		to     float64
		gap    float64
		device string
	}{
		{"regular polls", map[string][]time.Time{"x": at(1, 3, 5, 7, 9)}, []string{"x"}, 10, 2, "x"},
		{"window start bounds the first gap", map[string][]time.Time{"x": at(4, 5, 6)}, []string{"x"}, 7, 4, "x"},
		{"window end bounds the last gap", map[string][]time.Time{"x": at(1, 2)}, []string{"x"}, 7, 5, "x"},
		{"times outside the window ignored", map[string][]time.Time{"x": at(-5, 1, 2, 3, 12)}, []string{"x"}, 4, 1, "x"},
		{"worst device named", map[string][]time.Time{"x": at(1, 2, 3), "y": at(1, 3.5)}, []string{"x", "y"}, 4, 2.5, "y"},
		{"device never polled counts the window", map[string][]time.Time{"x": at(1, 2, 3)}, []string{"x", "z"}, 4, 4, "z"},
		{"tie goes to the first name", map[string][]time.Time{"b": at(2, 4), "a": at(2, 4)}, []string{"b", "a"}, 4, 2, "a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gap, dev := PollTimes(tc.times).LongestGap(tc.names, t0, t0.Add(time.Duration(tc.to*float64(time.Second))))
			if gap.Seconds() != tc.gap || dev != tc.device {
				t.Errorf("got %v (%s), want %gs (%s)", gap, dev, tc.gap, tc.device)
			}
		})
	}
}

func TestPollTimesCounts(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	ms := func(v ...int) []time.Time {
		var out []time.Time
		for _, x := range v {
			out = append(out, t0.Add(time.Duration(x)*time.Millisecond))
		}
		return out
	}
	m := PollTimes{
		// Three polls, each spanning several 20 ms reads.
		"x": ms(1000, 1020, 1040, 3000, 3020, 5000),
		// Two polls, one before the window.
		"y": ms(-2000, 2000, 2020, 4000),
	}
	tests := []struct {
		name   string
		names  []string
		lo, hi int
	}{
		{"both", []string{"x", "y"}, 2, 3},
		{"one", []string{"x"}, 3, 3},
		{"never polled", []string{"x", "z"}, 0, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := m.PollCounts(tc.names, t0, t0.Add(6*time.Second), 500*time.Millisecond)
			if lo != tc.lo || hi != tc.hi {
				t.Errorf("got %d to %d polls, want %d to %d", lo, hi, tc.lo, tc.hi)
			}
		})
	}
	if got := m.PolledBetween([]string{"x", "y"}, t0.Add(1500*time.Millisecond), t0.Add(2500*time.Millisecond)); len(got) != 1 || got[0] != "y" {
		t.Errorf("polled between 1.5 s and 2.5 s: %v, want [y]", got)
	}
	if got := m.NextPoll([]string{"x", "y"}, 2*time.Second); !got.Equal(t0.Add(6 * time.Second)) {
		t.Errorf("next poll at %v, want 6 s", got.Sub(t0))
	}
}
