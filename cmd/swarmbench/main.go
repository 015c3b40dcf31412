// Command swarmbench measures the edge next to its peers on one machine in
// one run, against the local Swarm stand-in, and writes BENCHMARKS.md with
// a chart:
//
//	go run ./cmd/swarmbench                      # full: 3 rounds, about 15 minutes
//	go run ./cmd/swarmbench --smoke              # 1 short round, report to a temp dir (CI)
//	go run ./cmd/swarmbench --sections faults,cost   # only those, report to a temp dir
//
// The scenarios: the ID endpoint's rate against the format's ceiling; the
// proxy path (direct to a task, the edge with `dynamic swarm`, Caddy's
// `dynamic a`, Caddy to the VIP, HAProxy with server-template); the cost of
// request_id and of Caddy's `metrics`; stamping while batch clients drain
// the ID endpoint; each task's share after a scale-out under keep-alive
// load; open-loop fault rows (DNS outage, task kill, a single replica's
// stop-first gap, 0 tasks, no task past wait_for_tasks); the idle cost of
// 400 services next to HAProxy's; and, not measured here, the node loss
// comparison that the multi-node harness wrote (benchmarks/node-loss.md),
// included as it is. Peers run in turn within a round, in
// alternating order across rounds; the tables show the median and range
// over the rounds.
//
// The contract's promises for the fault rows (0 failed in a DNS outage and
// when a task dies, no failure in a single replica's gap, a fast 503 when
// no task is left) are checked on every run: the runner writes the report,
// then exits non-zero naming each broken promise.
//
// It installs wrk, HAProxy and dnsmasq (Debian packages) when they are
// missing, builds the edge from ./cmd/caddy and runs it with the Go runtime
// settings the image ships. The stand-in runs inside this process.
// Everything it starts stops on exit and on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/swarmedge/swarmedge/integration/edge"
	"github.com/swarmedge/swarmedge/integration/swarmsim"
)

func main() {
	smoke := flag.Bool("smoke", false, "one short round (CI): checks that every peer starts and every scenario yields requests; writes the report to a temp dir")
	out := flag.String("out", ".", "`directory` for BENCHMARKS.md and its chart (full runs)")
	only := flag.String("sections", "", "run only these comma-separated `sections` ("+strings.Join(allSections, ", ")+"); the report goes to a temp dir")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "swarmbench: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	sections, err := parseSections(*only)
	if err != nil {
		fmt.Fprintf(os.Stderr, "swarmbench: --sections: %v\n", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	p, dir := fullPlan, *out
	command := "go run ./cmd/swarmbench"
	if *smoke {
		p = smokePlan
		command += " --smoke"
	}
	p.sections = sections
	if *only != "" {
		command += " --sections " + *only
	}
	if *smoke || *only != "" {
		if dir, err = os.MkdirTemp("", "swarmbench-"); err != nil {
			fail(err)
		}
	}
	if err := run(ctx, p, dir, command); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted; everything started is stopped (%w)", err)
		}
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "swarmbench: FAILED: %v\n", err)
	os.Exit(1)
}

// run sets everything up, runs the rounds, tears everything down and writes
// the report into dir.
func run(ctx context.Context, p plan, dir, command string) (err error) {
	if err := installMissingTools(); err != nil {
		return err
	}
	fmt.Println("building the edge (./cmd/caddy)")
	bin, err := edge.BuildBinary()
	if err != nil {
		return err
	}
	m := describeMachine(bin, command)
	fmt.Printf("load average before the run: %.2f\n", m.LoadBefore)

	sim, err := swarmsim.Start(swarmsim.Config{Replicas: skewTo})
	if err != nil {
		return fmt.Errorf("swarm stand-in: %w", err)
	}
	defer sim.Close()
	waitForTasks, err := acceptsWaitForTasks(bin)
	if err != nil {
		return err
	}
	var waitSetting time.Duration
	if waitForTasks {
		waitSetting = p.waitForTasks
	} else {
		fmt.Println("the edge binary has no wait_for_tasks: the single-replica gap promise is not checked")
	}
	e, sites, err := launchEdge(sim, waitSetting)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := e.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("edge: %w\nedge output (tail):\n%s", stopErr, tail(e.Output(), 40)))
		}
	}()
	h, err := startHAProxy(sim)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := h.stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
	}()

	var me *metricsEdges
	if p.runs(sectionMetrics) {
		if me, err = launchMetricsEdges(sim); err != nil {
			return err
		}
		defer func() { err = errors.Join(err, me.stop()) }()
	}

	siteURL := func(port int) string { return fmt.Sprintf("http://127.0.0.1:%d/", port) }
	b := &bench{
		plan:       p,
		sim:        sim,
		idRequests: target{"ID endpoint", e.URL("/"), e.PID()},
		idBatch:    target{"ID endpoint, count=1000", e.URL(fmt.Sprintf("/?count=%d", idBatch)), e.PID()},
		proxies: []target{
			{peerDirect, "http://" + sim.TaskAddr(1).String() + "/", 0},
			{peerSwarm, siteURL(sites.Swarm), e.PID()},
			{peerDynamicA, siteURL(sites.DynamicA), e.PID()},
			{peerVIP, siteURL(sites.VIP), e.PID()},
			{peerHAProxy, h.url(), h.cmd.Process.Pid},
		},
		requestID: []target{
			{ridOff, siteURL(sites.RequestIDOff), e.PID()},
			{ridOn, siteURL(sites.RequestIDOn), e.PID()},
			{ridUUID, siteURL(sites.RequestIDUUID), e.PID()},
		},
	}
	if me != nil {
		b.metrics = me.targets()
	}
	for _, t := range append(append(b.balancers(), b.requestID...), b.metrics...) {
		if err := waitServing(t.url, 10*time.Second, ctx.Done()); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}

	res, err := b.rounds(ctx)
	if err != nil {
		return err
	}
	res.WaitForTasks = waitSetting
	if p.runs(sectionCost) {
		fmt.Printf("cost per service: %d services × %d tasks, idle for %v\n", p.costServices, costTasksEach, p.costWindow)
		cost, err := measureIdleCost(ctx, p.costServices, p.costSettle, p.costWindow)
		if err != nil {
			return fmt.Errorf("cost per service: %w", err)
		}
		res.Cost = &cost
		reportCost(cost)
	}
	if p.runs(sectionNodeLoss) {
		if res.NodeLoss, err = readNodeLoss(); err != nil {
			return err
		}
	}
	m.Elapsed = time.Since(m.Start)
	m.LoadAfter = loadAverage()
	verdicts := checkPromises(p, res)
	printVerdicts(verdicts)
	if err := writeReport(dir, m, p, res, sim.Name(), verdicts); err != nil {
		return err
	}
	fmt.Printf("done in %v: %s\n", m.Elapsed.Round(time.Second), filepath.Join(dir, reportName))
	return brokenPromises(verdicts)
}

// Peer names, as the tables show them.
const (
	peerDirect   = "direct to one task"
	peerSwarm    = "edge, dynamic swarm"
	peerDynamicA = "Caddy, dynamic a"
	peerVIP      = "Caddy to the VIP"
	peerHAProxy  = "HAProxy, server-template"

	ridOff  = "request_id off"
	ridOn   = "request_id on"
	ridUUID = "header_up X-Request-ID {http.request.uuid}"
)

// results holds every figure of every round.
type results struct {
	IDRequests, IDBatch []sample
	Proxy, RequestID    map[string][]sample                 // target → rounds
	Skew                map[string][][]float64              // balancer → rounds → share by slot
	Timeline            map[string][]countSample            // balancer → the last round's samples
	Faults              map[string]map[string][]rateSummary // fault → balancer → rounds
	Metrics             map[string][]sample                 // with and without → rounds
	Stamping            []stampingSample
	Cost                *idleCost     // nil when not run
	WaitForTasks        time.Duration // the edge's wait_for_tasks; 0: the binary has none
	NodeLoss            string        // the committed node loss comparison (nodeLossName); "" when there is none
}

// rounds runs every scenario plan.rounds times.
func (b *bench) rounds(ctx context.Context) (*results, error) {
	res := &results{
		Proxy: map[string][]sample{}, RequestID: map[string][]sample{},
		Skew: map[string][][]float64{}, Timeline: map[string][]countSample{},
		Faults: map[string]map[string][]rateSummary{}, Metrics: map[string][]sample{},
	}
	for _, f := range faults {
		res.Faults[f] = map[string][]rateSummary{}
	}
	for r := range b.plan.rounds {
		fmt.Printf("round %d of %d\n", r+1, b.plan.rounds)
		if err := b.restore(ctx, b.proxies[1], skewTo); err != nil {
			return nil, err
		}
		for _, t := range inSection(b.plan, r, sectionIDs, []target{b.idRequests, b.idBatch}) {
			maxFailed := maxFailedShare
			if t == b.idBatch {
				// 32 concurrent batches of 1000 queue for longer than the
				// endpoint waits (1 s): most are shed with a fast 503.
				maxFailed = 1
			}
			s, err := b.throughput(ctx, t, idThreads, idConns, maxFailed)
			if err != nil {
				return nil, err
			}
			if t == b.idRequests {
				res.IDRequests = append(res.IDRequests, s)
			} else {
				res.IDBatch = append(res.IDBatch, s)
			}
			report("ids", t.name, s)
		}
		for _, t := range inSection(b.plan, r, sectionProxy, b.proxies) {
			s, err := b.throughput(ctx, t, proxyThreads, proxyConns, maxFailedShare)
			if err != nil {
				return nil, err
			}
			res.Proxy[t.name] = append(res.Proxy[t.name], s)
			report("proxy", t.name, s)
		}
		for _, t := range inSection(b.plan, r, sectionRequestID, b.requestID) {
			s, err := b.throughput(ctx, t, proxyThreads, proxyConns, maxFailedShare)
			if err != nil {
				return nil, err
			}
			res.RequestID[t.name] = append(res.RequestID[t.name], s)
			report("request_id", t.name, s)
		}
		for _, t := range inSection(b.plan, r, sectionMetrics, b.metrics) {
			s, err := b.throughput(ctx, t, proxyThreads, proxyConns, maxFailedShare)
			if err != nil {
				return nil, err
			}
			res.Metrics[t.name] = append(res.Metrics[t.name], s)
			report("metrics", t.name, s)
		}
		if b.plan.runs(sectionStamping) {
			s, err := stamping(ctx, b.requestID[1].url, b.idBatch.url, b.plan.measure)
			if err != nil {
				return nil, fmt.Errorf("stamping beside batch clients: %w", err)
			}
			res.Stamping = append(res.Stamping, s)
			reportStamping(s)
		}
		for _, t := range inSection(b.plan, r, sectionSkew, b.balancers()) {
			window, timeline, err := b.skew(ctx, t)
			if err != nil {
				return nil, err
			}
			res.Skew[t.name] = append(res.Skew[t.name], window)
			res.Timeline[t.name] = timeline
			fmt.Printf("  %-17s %-44s shares %s\n", "skew", t.name, formatShares(window))
		}
		for _, f := range inSection(b.plan, r, sectionFaults, faults) {
			for _, t := range inOrder(r, b.faultPeers()) {
				if !faultRuns(f, t.name) {
					continue
				}
				s, err := b.fault(ctx, t, f)
				if err != nil {
					return nil, fmt.Errorf("%s, %s: %w", f, t.name, err)
				}
				res.Faults[f][t.name] = append(res.Faults[f][t.name], s)
				reportFault(f, t.name, s)
			}
		}
	}
	return res, nil
}

// report prints one run's figures as progress.
func report(scenario, name string, s sample) {
	fmt.Printf("  %-17s %-44s %7.0f req/s  p50 %-9s p99 %-9s failed %d/%d", scenario, name, s.RequestsSec,
		fmtDuration(float64(s.P50)), fmtDuration(float64(s.P99)), s.Failed(), s.Requests)
	if s.CPUPerRequest > 0 {
		fmt.Printf("  cpu %s/req", fmtDuration(float64(s.CPUPerRequest)))
	}
	fmt.Println()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
