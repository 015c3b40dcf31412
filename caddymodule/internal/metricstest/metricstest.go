// Package metricstest reads Prometheus counters in the module families'
// tests.
package metricstest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// CounterValue returns c's current value.
func CounterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// CounterDelta returns a function that reports how much c grew since.
func CounterDelta(t testing.TB, c prometheus.Counter) func() float64 {
	before := CounterValue(t, c)
	return func() float64 { return CounterValue(t, c) - before }
}
