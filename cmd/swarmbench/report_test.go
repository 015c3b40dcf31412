package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

// newSectionsFixture is a run of the new sections: two rounds.
func newSectionsFixture() *results {
	ms := time.Millisecond
	res := &results{
		Faults:       map[string]map[string][]rateSummary{},
		Metrics:      map[string][]sample{},
		WaitForTasks: 10 * time.Second,
	}
	for _, f := range faults {
		res.Faults[f] = map[string][]rateSummary{}
	}
	res.Faults[faultGap][peerSwarm] = []rateSummary{{Sent: 1400, Worst: 3100 * ms, P99: 2900 * ms}, {Sent: 1400, Worst: 3300 * ms, P99: 3000 * ms}}
	res.Faults[faultGap][peerHAProxy] = []rateSummary{{Sent: 1400, Failed: 600, Worst: 30 * ms, P99: 12 * ms}, {Sent: 1400, Failed: 602, Worst: 40 * ms, P99: 14 * ms}}
	res.Metrics[metricsOff] = []sample{{wrkResult: wrkResult{RequestsSec: 10000}}, {wrkResult: wrkResult{RequestsSec: 8000}}}
	res.Metrics[metricsOn] = []sample{{wrkResult: wrkResult{RequestsSec: 9000}}, {wrkResult: wrkResult{RequestsSec: 7600}}}
	res.Stamping = []stampingSample{{ProxiedPerSec: 12000, StampedShare: 1, BatchIDsPerSec: 5000}, {ProxiedPerSec: 11000, StampedShare: 0.99, BatchIDsPerSec: 6000}}
	res.Cost = &idleCost{Services: 400, Window: 30 * time.Second,
		Edge: processCost{CPUShare: 0.05, RSS: 80 << 20}, HAProxy: processCost{CPUShare: 0.008, RSS: 30 << 20}}
	return res
}

func TestMarkdownNewSections(t *testing.T) {
	res := newSectionsFixture()
	p := fullPlan
	p.sections = map[string]bool{sectionFaults: true, sectionMetrics: true, sectionStamping: true, sectionCost: true}
	vs := checkPromises(p, res)
	md := markdown(machine{Command: "go run ./cmd/swarmbench"}, p, res, "app", vs)
	for _, want := range []string{
		"## 5. Faults, open loop",
		"`wait_for_tasks 10s`",
		"| edge, dynamic swarm | 1,400 | 0 | 3.20 s (3.10 s–3.30 s) | 2.95 s (2.90 s–3.00 s) |",
		"| HAProxy, server-template | 1,400 | 601 (600–602) | 35.00 ms (30.00 ms–40.00 ms) | 13.00 ms (12.00 ms–14.00 ms) |",
		"| single-replica stop-first gap: 0 failed, worst latency ≤ gap + 1 s | failed 0 of 1400, worst 3.30 s (allowed 4.70 s on a loaded machine) | kept |",
		"| DNS outage: 0 failed | not run | not checked |",
		"**The figure: `metrics` costs 7.5 % of the proxied requests/s",
		"| 11,500 (11,000–12,000) | 99.5 % (99.0 %–100.0 %) | 5,500 (5,000–6,000) |",
		"| edge, 400 × `dynamic swarm` | 5.0 % | 80.0 MiB |",
		"| HAProxy, 400 × `server-template` | 0.80 % | 30.0 MiB |",
		"The edge's idle CPU at 400 services is 6.25× HAProxy's",
		"**Idle cost at 400 services: the edge burns 5.0 % of a core, HAProxy 0.80 %**",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, unwanted := range []string{"## 1. ID endpoint", "## 2. Proxy path", "| Caddy, dynamic a | ", "NaN"} {
		if strings.Contains(md, unwanted) {
			t.Errorf("report has %q: a section or row that did not run", unwanted)
		}
	}
}

func TestMarkdownWithoutWaitForTasks(t *testing.T) {
	res := newSectionsFixture()
	res.WaitForTasks = 0
	p := fullPlan
	p.sections = map[string]bool{sectionFaults: true}
	md := markdown(machine{}, p, res, "app", checkPromises(p, res))
	for _, want := range []string{"**The edge binary has no `wait_for_tasks`**", "| the edge binary has no wait_for_tasks | not checked |"} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestMetricsCostPairsRounds(t *testing.T) {
	// Round 2 is slower for both: per-round ratios see 10 % each time,
	// where medians taken apart would mix rounds.
	res := &results{Metrics: map[string][]sample{
		metricsOff: {{wrkResult: wrkResult{RequestsSec: 10000}}, {wrkResult: wrkResult{RequestsSec: 5000}}, {wrkResult: wrkResult{RequestsSec: 9000}}},
		metricsOn:  {{wrkResult: wrkResult{RequestsSec: 9000}}, {wrkResult: wrkResult{RequestsSec: 4500}}, {wrkResult: wrkResult{RequestsSec: 8100}}},
	}}
	if got := metricsCost(res); math.Abs(got-0.1) > 1e-9 {
		t.Fatalf("metricsCost = %v, want 0.1", got)
	}
}

// A noisy run where the edge with metrics was faster says so instead of
// printing a negative cost.
func TestMarkdownMetricsNoise(t *testing.T) {
	res := newSectionsFixture()
	res.Metrics[metricsOn], res.Metrics[metricsOff] = res.Metrics[metricsOff], res.Metrics[metricsOn]
	p := fullPlan
	p.sections = map[string]bool{sectionMetrics: true}
	md := markdown(machine{}, p, res, "app", nil)
	if !strings.Contains(md, "no cost measurable in this run**: the edge with `metrics` served") || strings.Contains(md, "costs -") {
		t.Errorf("a negative cost is not reported as noise:\n%s", md)
	}
}
