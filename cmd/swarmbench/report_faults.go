package main

import (
	"fmt"
	"strings"
)

// faultPeerNames are the fault table's peers, in table order.
var faultPeerNames = []string{peerSwarm, peerDynamicA, peerHAProxy}

func sent(s rateSummary) float64    { return float64(s.Sent) }
func failed(s rateSummary) float64  { return float64(s.Failed) }
func worst(s rateSummary) float64   { return float64(s.Worst) }
func rateP99(s rateSummary) float64 { return float64(s.P99) }
func failedOfSent(s rateSummary) float64 {
	if s.Sent == 0 {
		return 0
	}
	return float64(s.Failed) / float64(s.Sent)
}

// faultGaps names the fault rows where a peer fails a clearly smaller share
// of the requests than the edge.
func faultGaps(res *results) []string {
	var gaps []string
	for _, f := range faults {
		ours := summarizeBy(res.Faults[f][peerSwarm], failedOfSent)
		for _, peer := range faultPeerNames[1:] {
			rounds := res.Faults[f][peer]
			if len(rounds) == 0 {
				continue
			}
			if theirs := summarizeBy(rounds, failedOfSent); clearlyBelow(theirs, ours) && ours.Median-theirs.Median > 0.001 {
				gaps = append(gaps, fmt.Sprintf("Fault \"%s\": %s failed %s of requests, we failed %s.", f, peer, fmtPercent(theirs.Median), fmtPercent(ours.Median)))
			}
		}
	}
	return gaps
}

func writeFaults(w writer, p plan, res *results, vs []verdict) {
	w("## 5. Faults, open loop\n\n")
	w("A fixed-rate client sends %d requests/s whatever the answers do, as users arrive (an open loop:\n", faultRate)
	w("each request on its own goroutine, at most %d in flight, each bounded by %v). Latency counts from\n", faultMaxInFlight, faultTimeout)
	w("when a request was due, so a proxy that holds requests shows it. %v into each run the fault starts;\n", p.eventAt)
	w("the schedule goes on for %v after it ends, and the run waits for every request. Failed = any\n", p.tail)
	w("status ≥ 400, a transport error or a timeout. Cells: median (range) over the rounds.\n")
	if res.WaitForTasks > 0 {
		w("The edge runs `dynamic swarm` with `wait_for_tasks %v`; Caddy's `dynamic a` and HAProxy as in section 2.\n\n", res.WaitForTasks)
	} else {
		w("**The edge binary has no `wait_for_tasks`**: it ran without; Caddy's `dynamic a` and HAProxy as in section 2.\n\n")
	}
	for _, f := range faults {
		w("%s\n\n", faultCaption(f, p))
		w("| proxy | sent | failed | worst latency | p99 |\n| --- | --- | --- | --- | --- |\n")
		for _, name := range faultPeerNames {
			rounds := res.Faults[f][name]
			if len(rounds) == 0 {
				continue
			}
			w("| %s | %s | %s | %s | %s |\n", name, cell(summarizeBy(rounds, sent), fmtRate), cell(summarizeBy(rounds, failed), fmtRate),
				cell(summarizeBy(rounds, worst), fmtDuration), cell(summarizeBy(rounds, rateP99), fmtDuration))
		}
		w("\n")
	}
	writeVerdicts(w, vs)
}

// faultCaption says what happens in a fault row.
func faultCaption(f string, p plan) string {
	switch f {
	case faultDNS:
		return fmt.Sprintf("**DNS outage**: 5 tasks; DNS drops every query for %v, then answers again.", p.dnsDown)
	case faultKill:
		return "**A task killed**: 5 tasks; one dies (its connections close) and Docker withdraws its record."
	case faultGap:
		return fmt.Sprintf("**Single-replica stop-first gap**: 1 task stops and leaves DNS; the new one starts %v later.", p.gap)
	case faultZero:
		return fmt.Sprintf("**0 tasks for %v, then back**: 5 tasks scale to 0 and back to 5. DNS answers NXDOMAIN at once.", p.zero)
	case faultNoTasks:
		return fmt.Sprintf("**No task, past `wait_for_tasks`** (the edge only): the service has had 0 tasks for %v\n"+
			"(the wait, plus %v: the edge sees the set empty after two empty answers a refresh apart) when the\n"+
			"load starts, for %v; every answer should be a fast 503.", p.waitForTasks+pastWaitSlack, pastWaitSlack, p.tail)
	}
	return f
}

// writeVerdicts lists the contract's promises with this run's figures.
func writeVerdicts(w writer, vs []verdict) {
	w("What the contract promises, checked on every run (the runner exits non-zero after writing the report\n")
	w("when one breaks; latency limits carry %v of margin for a loaded machine):\n\n| promise | this run (worst round) | |\n| --- | --- | --- |\n", fmtDuration(float64(loadedMargin)))
	for _, v := range vs {
		mark, figures := "kept", v.measured
		switch {
		case v.skipped != "":
			mark, figures = "not checked", v.skipped
		case v.broken:
			mark = "**broken**"
		}
		w("| %s | %s | %s |\n", v.claim, strings.ReplaceAll(figures, "|", "\\|"), mark)
	}
	w("\n")
}
