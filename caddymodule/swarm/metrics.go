package swarm

import (
	"strconv"

	"github.com/swarmedge/swarmedge/caddymodule/internal/metrics"

	"github.com/prometheus/client_golang/prometheus"
)

// swarmMetrics are process-wide, like the loops they count: created once
// and registered into each config's registry by Provision.
var swarmMetrics = struct {
	refreshes   *prometheus.CounterVec
	probes      *prometheus.CounterVec
	waited      *prometheus.CounterVec
	waitSeconds *prometheus.HistogramVec
	state       swarmStateCollector
}{
	refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace,
		Subsystem: "swarm",
		Name:      "refreshes_total",
		Help:      "DNS lookups of swarm task names, by result: ok, empty, nxdomain, servfail, timeout, error.",
	}, []string{"name", "result"}),
	probes: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace,
		Subsystem: "swarm",
		Name:      "probes_total",
		Help:      "Health probes of swarm tasks, by result: ok, status (not 2xx), timeout, error.",
	}, []string{"name", "port", "result"}),
	waited: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace,
		Subsystem: "swarm",
		Name:      "waited_total",
		Help:      "Requests that found no task and waited for one (wait_for_tasks), by outcome: task (one came), expired, canceled, full (too many waiting: not waited).",
	}, []string{"name", "port", "outcome"}),
	waitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metrics.Namespace,
		Subsystem: "swarm",
		Name:      "wait_seconds",
		Help:      "How long requests waited for a task (wait_for_tasks).",
		Buckets:   []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30},
	}, []string{"name", "port"}),
	state: swarmStateCollector{
		tasks: prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "swarm", "tasks"),
			"Swarm tasks being served, per name and port.", []string{"name", "port"}, nil),
		sinceGood: prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "swarm", "seconds_since_last_good"),
			"Seconds since DNS last confirmed the set of tasks (since the lookup started, if never).", []string{"name"}, nil),
	},
}

// swarmCollectors returns the collectors Provision registers.
func swarmCollectors() []prometheus.Collector {
	return []prometheus.Collector{
		swarmMetrics.refreshes, swarmMetrics.probes, swarmMetrics.waited, swarmMetrics.waitSeconds, swarmMetrics.state,
	}
}

// swarmStateCollector reports the process-wide state when scraped, so a
// stopped lookup leaves no series behind. Where several pools share a name
// and port (different resolvers or health settings), the largest count is
// reported; where several lookups share a name, the freshest.
type swarmStateCollector struct {
	tasks     *prometheus.Desc
	sinceGood *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c swarmStateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tasks
	ch <- c.sinceGood
}

// Collect implements prometheus.Collector.
func (c swarmStateCollector) Collect(ch chan<- prometheus.Metric) {
	type namePort struct{ name, port string }
	tasks := make(map[namePort]int)
	sinceGood := make(map[string]float64)

	swarmRegistry.Lock()
	for key, pool := range swarmRegistry.pools {
		np := namePort{key.name, strconv.Itoa(int(key.port))}
		tasks[np] = max(tasks[np], len(pool.snapshot.Load().dials))
	}
	for key, loop := range swarmRegistry.loops {
		seconds := loop.secondsSinceGood()
		if prev, seen := sinceGood[key.name]; !seen || seconds < prev {
			sinceGood[key.name] = seconds
		}
	}
	swarmRegistry.Unlock()

	for np, n := range tasks {
		ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(n), np.name, np.port)
	}
	for name, seconds := range sinceGood {
		ch <- prometheus.MustNewConstMetric(c.sinceGood, prometheus.GaugeValue, seconds, name)
	}
}
