package main

func writeMetrics(w writer, res *results) {
	w("## 6. Caddy's `metrics`\n\n")
	w("Two edges that differ only in the global `metrics` option (Caddy's per-request `caddy_http_*`\n")
	w("metrics, which `Caddyfile.example` turns on for the dashboard), both proxying with `dynamic swarm`\n")
	w("to the 5 tasks, `wrk -t%d -c%d` keep-alive, one after the other in each round, alternating which goes first.\n\n", proxyThreads, proxyConns)
	w("| variant | requests/s | × without | p50 | p99 | edge CPU per request | CPU vs without |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	off := res.Metrics[metricsOff]
	for _, name := range []string{metricsOff, metricsOn} {
		rounds := res.Metrics[name]
		w("| %s | %s | %s | %s | %s | %s | %s |\n", name, cell(summarizeBy(rounds, rps), fmtRate),
			fmtRatio(summarizeBy(rounds, rps).Median/summarizeBy(off, rps).Median),
			cell(summarizeBy(rounds, p50), fmtDuration), cell(summarizeBy(rounds, p99), fmtDuration),
			cell(summarizeBy(rounds, cpuPerReq), fmtDuration),
			fmtSignedDuration(summarizeBy(rounds, cpuPerReq).Median-summarizeBy(off, cpuPerReq).Median))
	}
	if cost := metricsCost(res); cost >= 0 {
		w("\n**The figure: `metrics` costs %s of the proxied requests/s in this run**", fmtPercent(cost))
	} else {
		w("\n**The figure: no cost measurable in this run**: the edge with `metrics` served %s more (noise)", fmtPercent(-cost))
	}
	w(" (median of the rounds'\nown ratios; each round runs both back to back, so a busy moment hits both).\n\n")
}

// metricsCost is the share of requests/s that `metrics` costs: 1 − the
// median over the rounds of (with / without) from the same round.
func metricsCost(res *results) float64 {
	off, on := res.Metrics[metricsOff], res.Metrics[metricsOn]
	ratios := make([]float64, min(len(off), len(on)))
	for i := range ratios {
		ratios[i] = on[i].RequestsSec / off[i].RequestsSec
	}
	return 1 - summarize(ratios).Median
}
