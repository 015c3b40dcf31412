package main

import (
	"fmt"
	"time"
)

// loadedMargin is added to every latency the contract promises before a run
// counts it as broken: the runner, the proxies and the stand-in share a
// small, often busy machine (CI), so a late scheduler is not a broken
// promise; a fault handled the wrong way is far beyond it.
const loadedMargin = 700 * time.Millisecond

// promise is a figure of the edge's that the contract promises for a fault
// row, checked against every round.
type promise struct {
	fault string
	claim string // as the contract words it
	// limit is the worst latency allowed (margin included); 0: none.
	limit func(p plan) time.Duration
	// zeroFailed: no request may fail; all503: every answer must be a 503.
	zeroFailed, all503 bool
	// needsWait: only an edge with wait_for_tasks keeps it.
	needsWait bool
}

var promises = []promise{
	{fault: faultDNS, claim: "DNS outage: 0 failed", zeroFailed: true},
	{fault: faultKill, claim: "a task killed: 0 failed", zeroFailed: true},
	{fault: faultGap, claim: "single-replica stop-first gap: 0 failed, worst latency ≤ gap + 1 s", zeroFailed: true, needsWait: true,
		limit: func(p plan) time.Duration { return p.gap + time.Second + loadedMargin }},
	{fault: faultNoTasks, claim: "no task, past wait_for_tasks: 503 in < 300 ms", all503: true,
		limit: func(plan) time.Duration { return 300*time.Millisecond + loadedMargin }},
}

// verdict is a promise checked against a run.
type verdict struct {
	promise
	measured string // the worst round's figures
	broken   bool
	skipped  string // why it was not checked
}

// checkPromises checks every promise against every round of the edge's
// fault rows.
func checkPromises(p plan, res *results) []verdict {
	var vs []verdict
	for _, pr := range promises {
		v := verdict{promise: pr}
		rounds := res.Faults[pr.fault][peerSwarm]
		switch {
		case pr.needsWait && res.WaitForTasks == 0:
			v.skipped = "the edge binary has no wait_for_tasks"
		case len(rounds) == 0:
			v.skipped = "not run"
		default:
			v.measured, v.broken = judge(pr, p, rounds)
		}
		vs = append(vs, v)
	}
	return vs
}

// judge returns the worst round's figures and whether any round breaks pr.
func judge(pr promise, p plan, rounds []rateSummary) (string, bool) {
	var measured string
	var broken bool
	var worst time.Duration
	for _, s := range rounds {
		worst = max(worst, s.Worst)
		switch {
		case pr.zeroFailed && (s.Failed > 0 || measured == ""):
			measured = fmt.Sprintf("failed %d of %d", s.Failed, s.Sent)
			broken = broken || s.Failed > 0
		case pr.all503 && (s.Statuses[503] < s.Sent || measured == ""):
			measured = fmt.Sprintf("503 to %d of %d", s.Statuses[503], s.Sent)
			broken = broken || s.Statuses[503] < s.Sent
		}
	}
	measured += ", worst " + fmtDuration(float64(worst))
	if pr.limit != nil {
		limit := pr.limit(p)
		broken = broken || worst > limit
		measured += fmt.Sprintf(" (allowed %s on a loaded machine)", fmtDuration(float64(limit)))
	}
	return measured, broken
}

// brokenPromises is an error naming every broken promise, or nil.
func brokenPromises(vs []verdict) error {
	var msg string
	for _, v := range vs {
		if v.broken {
			msg += fmt.Sprintf("\n  PROMISE BROKEN: %s — measured %s", v.claim, v.measured)
		}
	}
	if msg == "" {
		return nil
	}
	return fmt.Errorf("the edge broke what the contract promises:%s", msg)
}

// printVerdicts prints every promise's verdict as progress.
func printVerdicts(vs []verdict) {
	fmt.Println("promises:")
	for _, v := range vs {
		switch {
		case v.skipped != "":
			fmt.Printf("  skipped  %s (%s)\n", v.claim, v.skipped)
		case v.broken:
			fmt.Printf("  BROKEN   %s: %s\n", v.claim, v.measured)
		default:
			fmt.Printf("  kept     %s: %s\n", v.claim, v.measured)
		}
	}
}
