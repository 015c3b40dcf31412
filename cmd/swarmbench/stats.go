package main

import (
	"slices"
)

// spread is one figure over the rounds: the median and the range.
type spread struct {
	Median, Min, Max float64
	N                int
}

// summarize returns the median and range of xs; the median of an even count
// is the mean of the middle two.
func summarize(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	mid := len(s) / 2
	median := s[mid]
	if len(s)%2 == 0 {
		median = (s[mid-1] + s[mid]) / 2
	}
	return spread{Median: median, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// summarizeBy collects one figure from every round's result and summarizes it.
func summarizeBy[T any](rounds []T, figure func(T) float64) spread {
	xs := make([]float64, len(rounds))
	for i, r := range rounds {
		xs[i] = figure(r)
	}
	return summarize(xs)
}

// shares returns each task's fraction of the requests counted between two
// snapshots of the per-slot counters (index = slot-1). Slots present only
// in after (tasks started in between) count from zero; nil when nothing
// was counted.
func shares(before, after []uint64) []float64 {
	deltas := make([]float64, len(after))
	var total float64
	for i, n := range after {
		var prev uint64
		if i < len(before) {
			prev = before[i]
		}
		if n > prev { // a counter below its earlier value was reset or replaced: count nothing
			deltas[i] = float64(n - prev)
		}
		total += deltas[i]
	}
	if total == 0 {
		return nil
	}
	for i := range deltas {
		deltas[i] /= total
	}
	return deltas
}

// maxOverMin is the busiest task's share over the idlest one's: 1 is even;
// +Inf when a task got nothing.
func maxOverMin(shares []float64) float64 {
	if len(shares) == 0 {
		return 0
	}
	return slices.Max(shares) / slices.Min(shares)
}
