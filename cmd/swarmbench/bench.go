package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/swarmedge/swarmedge/integration/swarmsim"
)

// plan is how long and how often each scenario runs.
type plan struct {
	rounds    int
	warmup    time.Duration // a discarded run before each throughput run; 0: none
	measure   time.Duration // a throughput run
	settle    time.Duration // after restoring the service: two discovery refreshes
	eventAt   time.Duration // when the scale-out or the fault happens within a run
	skewAfter time.Duration // load after the scale-out
	dnsDown   time.Duration // DNS drops queries from eventAt for this long
	zero      time.Duration // the service has 0 tasks from eventAt for this long
	gap       time.Duration // a single replica's stop-first gap from eventAt
	tail      time.Duration // the open-loop load goes on this long after a fault ends
	// waitForTasks is the edge's wait_for_tasks: how long a request waits
	// for a task when the set has just emptied.
	waitForTasks time.Duration
	// The cost per service: this many services, idle for costSettle, then
	// measured over costWindow.
	costServices           int
	costSettle, costWindow time.Duration
	sections               map[string]bool // nil: all
}

var (
	fullPlan = plan{
		rounds: 3, warmup: time.Second, measure: 4 * time.Second, settle: 2 * time.Second,
		eventAt: time.Second, skewAfter: 6 * time.Second,
		dnsDown: 10 * time.Second, zero: 5 * time.Second, gap: 3 * time.Second, tail: 3 * time.Second,
		waitForTasks: 10 * time.Second, // the default
		costServices: 400, costSettle: 5 * time.Second, costWindow: 30 * time.Second,
	}
	smokePlan = plan{
		rounds: 1, measure: time.Second, settle: 1500 * time.Millisecond,
		eventAt: time.Second, skewAfter: 2 * time.Second,
		dnsDown: 3 * time.Second, zero: 2 * time.Second, gap: 3 * time.Second, tail: time.Second,
		waitForTasks: 5 * time.Second,
		costServices: 40, costSettle: 2 * time.Second, costWindow: 5 * time.Second,
	}
)

// The loads: the ID endpoint's is the one its ceiling was measured with;
// every proxy gets the same keep-alive load as the anchors (wrk -c30).
const (
	idThreads, idConns       = 2, 32
	proxyThreads, proxyConns = 2, 30
	// requestTimeout lets wrk time a request that a proxy holds for long.
	requestTimeout = 15 * time.Second
)

// maxFailedShare is how many of a throughput run's requests may fail.
const maxFailedShare = 0.01

// idBatch is the count of the batch figure: the endpoint's largest.
const idBatch = 1000

// idCeiling is the Sonyflake format's ceiling with the default layout:
// 256 IDs per 10 ms time unit per machine ID.
const idCeiling = 25600

// idFloor is the share of the ceiling the ID endpoint must reach (issue 11).
const idFloor = 0.97

// skewReplicas: the service runs 3 tasks, then scales out to 5.
const skewFrom, skewTo = 3, 5

// target is one thing wrk loads.
type target struct {
	name string
	url  string
	pid  int // the proxy process whose CPU the requests cost; 0: not measured
}

// succeededPerSec is the rate of 2xx and 3xx responses.
func (r wrkResult) succeededPerSec() float64 {
	if r.Requests == 0 {
		return 0
	}
	return r.RequestsSec * float64(r.Requests-r.Non2xx) / float64(r.Requests)
}

// sample is one run's figures.
type sample struct {
	wrkResult
	CPUPerRequest time.Duration // of target.pid; 0 when not measured
}

// bench is the running setup: the stand-in, the edge and HAProxy.
type bench struct {
	plan plan
	sim  *swarmsim.Service

	idRequests, idBatch target
	proxies             []target // direct first, then the balancers
	requestID           []target // off, on, uuid
	metrics             []target // without, with; none when the section does not run
}

// balancers are the targets that spread over tasks: all but direct.
func (b *bench) balancers() []target { return b.proxies[1:] }

// inOrder returns ts in the order round r runs them: alternate rounds
// reverse it, so no peer always runs first (or right after another).
func inOrder[T any](r int, ts []T) []T {
	ts = slices.Clone(ts)
	if r%2 == 1 {
		slices.Reverse(ts)
	}
	return ts
}

// event is something done to the service at a point of a run; ctx ends
// with the run.
type event struct {
	at time.Duration
	do func(ctx context.Context) error
}

// run loads t with wrk while the events happen, and measures the CPU that
// t's proxy spent.
func (b *bench) run(ctx context.Context, t target, load wrkLoad, events ...event) (sample, error) {
	cpuBefore, err := b.cpu(t)
	if err != nil {
		return sample{}, err
	}
	eventErrs := make(chan error, 1)
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { eventErrs <- runEvents(runCtx, events) })
	res, err := runWrk(ctx, load, t.url)
	cancel()
	wg.Wait()
	if err := errors.Join(err, <-eventErrs); err != nil {
		return sample{}, err
	}
	s := sample{wrkResult: res}
	if t.pid != 0 && res.Requests > 0 {
		cpuAfter, err := b.cpu(t)
		if err != nil {
			return sample{}, err
		}
		s.CPUPerRequest = (cpuAfter - cpuBefore) / time.Duration(res.Requests)
	}
	if res.Requests == 0 {
		return s, fmt.Errorf("%s: no requests completed in %v", t.name, load.duration)
	}
	return s, nil
}

func (b *bench) cpu(t target) (time.Duration, error) {
	if t.pid == 0 {
		return 0, nil
	}
	return processCPU(t.pid)
}

// runEvents does each event at its time from now, until ctx ends.
func runEvents(ctx context.Context, events []event) error {
	start := time.Now()
	for _, ev := range events {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(start.Add(ev.at))):
		}
		if err := ev.do(ctx); err != nil {
			return err
		}
	}
	return nil
}

// throughput is a warm-up run, then the measured one; it fails when more
// than maxFailed of the requests fail (a failing peer's speed means
// nothing) or none succeeds.
func (b *bench) throughput(ctx context.Context, t target, threads, conns int, maxFailed float64) (sample, error) {
	if b.plan.warmup > 0 {
		if _, err := runWrk(ctx, wrkLoad{threads, conns, b.plan.warmup, requestTimeout}, t.url); err != nil {
			return sample{}, err
		}
	}
	s, err := b.run(ctx, t, wrkLoad{threads, conns, b.plan.measure, requestTimeout})
	if err != nil {
		return s, err
	}
	if s.FailedShare() > maxFailed || s.Failed() >= s.Requests {
		return s, fmt.Errorf("%s: %d of %d requests failed", t.name, s.Failed(), s.Requests)
	}
	return s, nil
}

// restore brings the service back to replicas healthy tasks with working
// DNS, gives discovery time to catch up, and waits until t serves.
func (b *bench) restore(ctx context.Context, t target, replicas int) error {
	b.sim.SetDNSFault(swarmsim.FaultNone)
	if err := b.sim.Scale(replicas); err != nil {
		return err
	}
	if err := sleep(ctx, b.plan.settle); err != nil {
		return err
	}
	if err := waitServing(t.url, 30*time.Second, ctx.Done()); err != nil {
		return fmt.Errorf("%s after restoring %d tasks: %w", t.name, replicas, err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// probeClient opens a connection per request: a kept-alive one through the
// VIP would only ever ask one task.
var probeClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// waitServing polls url until it answers 200 from a task (with an X-Task
// header), giving up after timeout or when stop closes.
func waitServing(url string, timeout time.Duration, stop <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		resp, err := probeClient.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Task") != "" {
				return nil
			}
			last = fmt.Sprintf("status %d, X-Task %q", resp.StatusCode, resp.Header.Get("X-Task"))
		} else {
			last = err.Error()
		}
		select {
		case <-stop:
			return errors.New("stopped while waiting")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not serving after %v: %s", url, timeout, last)
}

// countSample is every slot's request count at a point of a run.
type countSample struct {
	at     time.Duration
	counts []uint64 // index slot-1
}

// taskCounts returns the request count of every slot's task.
func (b *bench) taskCounts() []uint64 {
	tasks := b.sim.Tasks()
	counts := make([]uint64, 0, len(tasks))
	for _, t := range tasks {
		for len(counts) < t.Slot {
			counts = append(counts, 0)
		}
		counts[t.Slot-1] = t.Requests
	}
	return counts
}

// sampleEvery is the skew chart's resolution.
const sampleEvery = 250 * time.Millisecond

// skew loads t with keep-alive clients while the service scales out from
// 3 to 5 tasks, and returns each task's share of the requests from one
// discovery refresh after the scale-out on, with the counts sampled along
// the way.
func (b *bench) skew(ctx context.Context, t target) ([]float64, []countSample, error) {
	if err := b.restore(ctx, t, skewFrom); err != nil {
		return nil, nil, err
	}
	b.sim.ResetCounts()
	samplerCtx, stopSampler := context.WithCancel(ctx)
	var samples []countSample
	var wg sync.WaitGroup
	start := time.Now()
	wg.Go(func() {
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		samples = append(samples, countSample{0, b.taskCounts()})
		for {
			select {
			case <-samplerCtx.Done():
				return
			case now := <-tick.C:
				samples = append(samples, countSample{now.Sub(start), b.taskCounts()})
			}
		}
	})
	load := wrkLoad{proxyThreads, proxyConns, b.plan.eventAt + b.plan.skewAfter, requestTimeout}
	_, err := b.run(ctx, t, load, event{b.plan.eventAt, func(context.Context) error { return b.sim.Scale(skewTo) }})
	stopSampler()
	wg.Wait()
	if err != nil {
		return nil, nil, err
	}
	from := b.plan.eventAt + time.Second // refresh 1s: discovery has seen the new tasks
	i := slices.IndexFunc(samples, func(s countSample) bool { return s.at >= from })
	if i < 0 || i == len(samples)-1 {
		return nil, nil, fmt.Errorf("%s: no samples after the scale-out", t.name)
	}
	window := shares(samples[i].counts, samples[len(samples)-1].counts)
	if window == nil {
		return nil, nil, fmt.Errorf("%s: no requests reached a task after the scale-out", t.name)
	}
	return window, samples, nil
}
