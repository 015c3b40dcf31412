package sonyflake

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/swarmedge/swarmedge/caddymodule/internal/metrics"
)

// generatorMetrics counts what the generators do. One set serves every
// generator in the process; Provision registers it in each config's registry.
type generatorMetrics struct {
	minted      prometheus.Counter
	waitSeconds prometheus.Counter
	refused     prometheus.Counter

	reservationErrors prometheus.Counter
}

func (m *generatorMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.minted, m.waitSeconds, m.refused, m.reservationErrors}
}

var mintMetrics = generatorMetrics{
	minted: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "sonyflake", Name: "ids_minted_total",
		Help: "Sonyflake IDs minted (endpoint and request IDs).",
	}),
	waitSeconds: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "sonyflake", Name: "wait_seconds_total",
		Help: "Time callers spent waiting for the next time unit because the current one ran out of sequence numbers.",
	}),
	refused: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "sonyflake", Name: "mint_refused_total",
		Help: "Mint requests refused because the IDs would not be available within the caller's wait bound.",
	}),
	reservationErrors: prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "sonyflake", Name: "reservation_errors_total",
		Help: "Failed renewals of the ID reservation in storage; minting stops where the last written one ends.",
	}),
}
