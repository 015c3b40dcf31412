package main

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want spread
	}{
		{nil, spread{}},
		{[]float64{5}, spread{5, 5, 5, 1}},
		{[]float64{3, 1, 2}, spread{2, 1, 3, 3}},
		{[]float64{4, 1, 3, 2}, spread{2.5, 1, 4, 4}},
	} {
		if got := summarize(tc.xs); got != tc.want {
			t.Errorf("summarize(%v) = %+v, want %+v", tc.xs, got, tc.want)
		}
	}
	xs := []float64{3, 1, 2}
	summarize(xs)
	if xs[0] != 3 {
		t.Error("summarize sorted its argument")
	}
}

func TestShares(t *testing.T) {
	// 3 tasks before, 5 after; slots 4 and 5 are new.
	got := shares([]uint64{100, 100, 100}, []uint64{130, 120, 110, 20, 20})
	want := []float64{0.3, 0.2, 0.1, 0.2, 0.2}
	if len(got) != len(want) {
		t.Fatalf("shares = %v, want %v", got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("shares = %v, want %v", got, want)
		}
	}
	if r := maxOverMin(got); math.Abs(r-3) > 1e-9 {
		t.Errorf("maxOverMin = %v, want 3", r)
	}
	if got := shares([]uint64{5, 5}, []uint64{5, 5}); got != nil {
		t.Errorf("nothing counted: shares = %v, want nil", got)
	}
	// A task replaced in its slot starts from zero: it counts nothing, not a wrapped delta.
	if got := shares([]uint64{50, 10}, []uint64{2, 20}); got[0] != 0 || got[1] != 1 {
		t.Errorf("reset counter: shares = %v, want [0 1]", got)
	}
	if r := maxOverMin([]float64{0.5, 0.5, 0}); !math.IsInf(r, 1) {
		t.Errorf("a task with nothing: maxOverMin = %v, want +Inf", r)
	}
}

func TestInOrderAlternates(t *testing.T) {
	ts := []string{"a", "b", "c"}
	if got := inOrder(0, ts); got[0] != "a" || got[2] != "c" {
		t.Errorf("round 0: %v", got)
	}
	if got := inOrder(1, ts); got[0] != "c" || got[2] != "a" {
		t.Errorf("round 1: %v", got)
	}
	if ts[0] != "a" {
		t.Error("inOrder changed its argument")
	}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{fmtRate(25600), "25,600"},
		{fmtRate(999.6), "1,000"},
		{fmtRate(12), "12"},
		{fmtRate(1234567), "1,234,567"},
		{fmtDuration(59e3), "59 µs"},
		{fmtDuration(2.5e6), "2.50 ms"},
		{fmtDuration(2.92e9), "2.92 s"},
		{fmtPercent(0), "0 %"},
		{fmtPercent(0.0012), "0.12 %"},
		{fmtPercent(0.4), "40.0 %"},
		{cell(spread{2, 1, 3, 3}, fmtRate), "2 (1–3)"},
		{cell(spread{2, 2, 2, 1}, fmtRate), "2"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestClearlyBelow(t *testing.T) {
	ours := spread{Median: 100, Min: 90, Max: 110, N: 3}
	for _, tc := range []struct {
		theirs spread
		want   bool
	}{
		{spread{Median: 50, Min: 40, Max: 60, N: 3}, true},  // lower in every round
		{spread{Median: 80, Min: 70, Max: 95, N: 3}, false}, // their worst round overlaps our best
		{spread{Median: 97, Min: 96, Max: 98, N: 3}, false}, // within 5 %
		{spread{Median: 50, Min: 50, Max: 50, N: 1}, true},  // one round: the median decides
	} {
		if got := clearlyBelow(tc.theirs, ours); got != tc.want {
			t.Errorf("clearlyBelow(%+v, %+v) = %v, want %v", tc.theirs, ours, got, tc.want)
		}
	}
	// Higher is better: negated, 2.5× our rate in every round is a gap; 1.03× is not.
	if !clearlyBelow(negate(spread{250, 240, 260, 3}), negate(ours)) {
		t.Error("a peer at 2.5× our rate is not a gap")
	}
	if clearlyBelow(negate(spread{103, 102, 104, 3}), negate(ours)) {
		t.Error("a peer at 1.03× our rate is a gap")
	}
}
