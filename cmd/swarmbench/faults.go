package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/swarmedge/swarmedge/integration/swarmsim"
)

// The fault rows, each in an open-loop run of its own.
const (
	faultDNS     = "DNS outage"
	faultKill    = "a task killed"
	faultGap     = "single-replica stop-first gap"
	faultZero    = "0 tasks, then back"
	faultNoTasks = "no task, past wait_for_tasks"
)

var faults = []string{faultDNS, faultKill, faultGap, faultZero, faultNoTasks}

// The open-loop load: the rate of issue 13's single-replica deploy, and
// room for every request a proxy holds through the longest fault.
const (
	faultRate        = 200
	faultTimeout     = 15 * time.Second
	faultMaxInFlight = 4000
)

// pastWaitSlack is how long after the wait the row past wait_for_tasks
// starts sending: the edge counts the wait from when it sees the set empty,
// which takes two empty answers a refresh (1 s) apart, plus a second.
const pastWaitSlack = 3 * time.Second

// faultPeers are the balancers the fault table compares.
func (b *bench) faultPeers() []target {
	var ts []target
	for _, t := range b.balancers() {
		if t.name != peerVIP {
			ts = append(ts, t)
		}
	}
	return ts
}

// faultRuns reports whether the row runs for peer: the row past
// wait_for_tasks is about the edge's own bound.
func faultRuns(fault, peer string) bool {
	return fault != faultNoTasks || peer == peerSwarm
}

// faultReplicas is the service's size before the fault.
func faultReplicas(fault string) int {
	if fault == faultGap {
		return 1
	}
	return skewTo
}

// fault sends plan.faultRate requests/s through t while the named fault
// happens, and for plan.tail after it ends. The row past wait_for_tasks
// first empties the service for longer than the edge's bound, then sends
// for plan.tail.
func (b *bench) fault(ctx context.Context, t target, fault string) (rateSummary, error) {
	if err := b.restore(ctx, t, faultReplicas(fault)); err != nil {
		return rateSummary{}, err
	}
	p := b.plan
	var events []event
	end := p.eventAt
	switch fault {
	case faultDNS:
		end += p.dnsDown
		events = []event{
			{p.eventAt, func(context.Context) error { b.sim.SetDNSFault(swarmsim.FaultDrop); return nil }},
			{end, func(context.Context) error { b.sim.SetDNSFault(swarmsim.FaultNone); return nil }},
		}
	case faultKill:
		// Docker withdraws a dead task's record; the proxies learn it within a refresh.
		events = []event{{p.eventAt, func(context.Context) error { return b.sim.Kill(2, swarmsim.DropRecord) }}}
	case faultGap:
		// Stop-first: the one task stops (and leaves DNS), the new one starts after the gap.
		end += p.gap
		events = []event{
			{p.eventAt, func(context.Context) error { return b.sim.Kill(1, swarmsim.DropRecord) }},
			{end, func(context.Context) error { return b.sim.Scale(1) }},
		}
	case faultZero:
		end += p.zero
		events = []event{
			{p.eventAt, func(context.Context) error { return b.sim.Scale(0) }},
			{end, func(context.Context) error { return b.sim.Scale(skewTo) }},
		}
	case faultNoTasks:
		if err := b.sim.Scale(0); err != nil {
			return rateSummary{}, err
		}
		if err := sleep(ctx, p.waitForTasks+pastWaitSlack); err != nil {
			return rateSummary{}, err
		}
		end = 0
	}
	load := rateLoad{url: t.url, rate: faultRate, duration: end + p.tail, timeout: faultTimeout, maxInFlight: faultMaxInFlight}
	return b.openLoop(ctx, load, events...)
}

// openLoop sends load while the events happen.
func (b *bench) openLoop(ctx context.Context, load rateLoad, events ...event) (rateSummary, error) {
	eventErrs := make(chan error, 1)
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { eventErrs <- runEvents(runCtx, events) })
	res := sendAtRate(ctx, rateClient(load.maxInFlight), load)
	cancel()
	wg.Wait()
	if err := <-eventErrs; err != nil {
		return rateSummary{}, err
	}
	s := res.all()
	if s.Sent == 0 {
		return s, fmt.Errorf("%s: no request sent", load.url)
	}
	return s, ctx.Err()
}

// reportFault prints one open-loop run as progress.
func reportFault(fault, name string, s rateSummary) {
	fmt.Printf("  %-30s %-31s sent %5d  failed %5d  worst %-9s p99 %-9s statuses %v\n", fault, name, s.Sent, s.Failed,
		fmtDuration(float64(s.Worst)), fmtDuration(float64(s.P99)), s.Statuses)
}
