package sonyflake

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/swarmedge/swarmedge/caddymodule/internal/metrics"
)

// requestIDCounters counts what request_id did with each request, by result:
// minted (a fresh ID), kept (a trusted incoming ID) or unavailable (served
// without an ID). One set serves every handler in the process; Provision
// registers it in each config's registry.
type requestIDCounters struct {
	results                   *prometheus.CounterVec
	minted, kept, unavailable prometheus.Counter
}

var requestIDMetrics = newRequestIDCounters()

func newRequestIDCounters() requestIDCounters {
	results := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Subsystem: "request_id", Name: "requests_total",
		Help: "Requests seen by request_id, by result: minted (a fresh ID), kept (a trusted incoming ID), unavailable (served without an ID).",
	}, []string{"result"})
	// Resolved once: no label lookup per request.
	return requestIDCounters{
		results:     results,
		minted:      results.WithLabelValues("minted"),
		kept:        results.WithLabelValues("kept"),
		unavailable: results.WithLabelValues("unavailable"),
	}
}
