package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	reportName = "BENCHMARKS.md"
	chartName  = "benchmarks/scale-out-shares.svg" // relative to the report
)

// writeReport writes BENCHMARKS.md and its chart into dir.
func writeReport(dir string, m machine, p plan, res *results, service string, vs []verdict) error {
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(chartName)), 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, chartName))
	if err != nil {
		return err
	}
	if err := skewChart(p, res, service).writeSVG(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, reportName), []byte(markdown(m, p, res, service, vs)), 0o644)
}

// balancerNames are the peers that spread load, in table order.
var balancerNames = []string{peerSwarm, peerDynamicA, peerVIP, peerHAProxy}

// skewChart draws each task's share of the requests per sampling interval
// during the last round's scale-out, one panel per balancer.
func skewChart(p plan, res *results, service string) chart {
	c := chart{
		Title:       fmt.Sprintf("Each task's share of requests, %d → %d tasks under keep-alive load (wrk -c%d)", skewFrom, skewTo, proxyConns),
		XLabel:      "seconds",
		XMax:        (p.eventAt + p.skewAfter).Seconds(),
		Marker:      p.eventAt.Seconds(),
		MarkerLabel: "scale-out",
	}
	for _, name := range balancerNames {
		samples := res.Timeline[name]
		series := make([]chartSeries, skewTo)
		for slot := range series {
			series[slot].Name = taskName(service, slot+1)
		}
		for i := 1; i < len(samples); i++ {
			sh := shares(samples[i-1].counts, samples[i].counts)
			if sh == nil {
				continue // nothing answered in this interval
			}
			for slot := range series {
				var y float64
				if slot < len(sh) {
					y = sh[slot]
				}
				series[slot].Points = append(series[slot].Points, point{samples[i].at.Seconds(), y})
			}
		}
		c.Panels = append(c.Panels, chartPanel{Title: name, Series: series})
	}
	return c
}

func taskName(service string, slot int) string { return service + "." + strconv.Itoa(slot) }

// markdown renders the report.
func markdown(m machine, p plan, res *results, service string, vs []verdict) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("# Benchmarks\n\n")
	w("Every figure below but section 9's comes from one run of `%s` on one machine: the edge and its peers\n", m.Command)
	w("in turn, against the local Swarm stand-in (`integration/swarmsim`: tasks on 127.0.10.x, Docker-like\n")
	w("DNS, an IPVS-like VIP). Rounds: %d; within a round every peer runs once, and alternate rounds\n", p.rounds)
	w("reverse the order. Cells show the **median** over the rounds and the range (min–max) in brackets.\n")
	w("Loopback only: these are the proxies' own costs, not a network's.\n\n")
	w("Run it yourself: `go run ./cmd/swarmbench` (this report, about %d minutes here) or\n", int(math.Ceil(m.Elapsed.Minutes())))
	w("`go run ./cmd/swarmbench --smoke` (one short round, report to a temp dir; CI runs it).\n\n")

	w("## Machine\n\n| | |\n| --- | --- |\n")
	w("| CPUs (`nproc`) | %d |\n| CPU | %s |\n| kernel | %s |\n", m.CPUs, m.CPUModel, m.Kernel)
	w("| Go | %s |\n| Caddy (the edge binary) | %s |\n| HAProxy | %s |\n| wrk | %s |\n", m.Go, m.Caddy, m.HAProxy, m.Wrk)
	w("| date | %s |\n| duration of the run | %v |\n", m.Start.UTC().Format("2006-01-02 15:04 MST"), m.Elapsed.Round(time.Second))
	load := fmt.Sprintf("%.2f", m.LoadBefore)
	if m.LoadBefore > 1.5 {
		load += " — **busy**: other work shared the machine when the run started; expect lower, noisier figures"
	}
	w("| load average (1 min) before the run | %s |\n", load)
	w("| load average (1 min) at its end, the run's own load included | %.2f |\n| command | `%s` |\n\n", m.LoadAfter, m.Command)
	w("- wrk, the proxy under test and the stand-in share the %d CPUs. The stand-in runs inside the\n", m.CPUs)
	w("  runner's process (Go `net/http` tasks), so it costs CPU there, and \"direct\" is bounded by it.\n")
	w("- The edge is the real binary from `./cmd/caddy`, run with `%s`: the Go runtime\n", strings.Join(shippedEdgeEnv, " "))
	w("  settings the image ships (about +10 %% requests/s on the proxy path against the defaults).\n")
	w("- Load: keep-alive `wrk --latency`, `-t%d -c%d` on the ID endpoint and `-t%d -c%d` on every proxy;\n", idThreads, idConns, proxyThreads, proxyConns)
	if p.warmup > 0 {
		w("  throughput runs last %v after a discarded %v warm-up.\n", p.measure, p.warmup)
	} else {
		w("  throughput runs last %v.\n", p.measure)
	}
	w("- Every Caddy peer on the proxy path has the same `lb_retries 2` (the contract's recommendation) and\n")
	w("  `refresh 1s`; HAProxy has the documented Swarm setup (see section 2). \"CPU per request\" is the\n")
	w("  proxy process's user+system time over the run (from `/proc`), divided by the requests.\n\n")

	writeTrail(w, res)
	if p.runs(sectionIDs) {
		writeIDs(w, res)
	}
	if p.runs(sectionProxy) {
		writeProxy(w, res)
	}
	if p.runs(sectionRequestID) {
		writeRequestID(w, res)
	}
	if p.runs(sectionSkew) {
		writeSkew(w, p, res, service)
	}
	if p.runs(sectionFaults) {
		writeFaults(w, p, res, vs)
	}
	if p.runs(sectionMetrics) {
		writeMetrics(w, res)
	}
	if p.runs(sectionStamping) {
		writeStamping(w, res)
	}
	if res.Cost != nil {
		writeCost(w, res.Cost)
	}
	if p.runs(sectionNodeLoss) {
		writeNodeLoss(w, res.NodeLoss)
	}
	return b.String()
}

type writer func(format string, args ...any)

// writeTrail names, up front, where a peer does better than the edge's
// `dynamic swarm`, the biggest gap, and what would close it.
func writeTrail(w writer, res *results) {
	w("## Where we trail\n\n")
	w("Every figure where a peer beats the edge's `dynamic swarm` by more than 5 %% and, over several\n")
	w("rounds, in every round (their worst round better than our best); the rest is within this run's noise.\n\n")
	var gaps []string
	biggest, biggestPeer := 1.0, ""
	ours := summarizeBy(res.Proxy[peerSwarm], rps)
	oursP99 := summarizeBy(res.Proxy[peerSwarm], p99)
	for _, peer := range balancerNames[1:] {
		if theirs := summarizeBy(res.Proxy[peer], rps); clearlyBelow(negate(theirs), negate(ours)) {
			ratio := theirs.Median / ours.Median
			gaps = append(gaps, fmt.Sprintf("**Throughput: %s serves %.1f× our requests/s** (%s vs %s).", peer, ratio, fmtRate(theirs.Median), fmtRate(ours.Median)))
			if ratio > biggest {
				biggest, biggestPeer = ratio, peer
			}
		}
		if theirs := summarizeBy(res.Proxy[peer], p99); clearlyBelow(theirs, oursP99) {
			gaps = append(gaps, fmt.Sprintf("Latency: %s's p99 is %s, ours %s.", peer, fmtDuration(theirs.Median), fmtDuration(oursP99.Median)))
		}
	}
	oursSkew := summarizeBy(res.Skew[peerSwarm], maxOverMin)
	for _, peer := range balancerNames[1:] {
		if theirs := summarizeBy(res.Skew[peer], maxOverMin); clearlyBelow(theirs, oursSkew) {
			gaps = append(gaps, fmt.Sprintf("Spread after the scale-out: %s's busiest/idlest task is %s, ours %s.", peer, fmtRatio(theirs.Median), fmtRatio(oursSkew.Median)))
		}
	}
	gaps = append(gaps, faultGaps(res)...)
	if c := res.Cost; c != nil && c.Edge.CPUShare > c.HAProxy.CPUShare {
		gaps = append(gaps, fmt.Sprintf("**Idle cost at %d services: the edge burns %s of a core, HAProxy %s** (section 8).",
			c.Services, fmtPercent(c.Edge.CPUShare), fmtPercent(c.HAProxy.CPUShare)))
	}
	if len(gaps) == 0 {
		w("Nowhere in this run.\n\n")
		return
	}
	for _, g := range gaps {
		w("- %s\n", g)
	}
	w("\n")
	if biggestPeer != "" {
		cpu := func(peer string) string { return fmtDuration(summarizeBy(res.Proxy[peer], cpuPerReq).Median) }
		w("**The biggest gap is throughput: %s at %.1f× ours.** CPU per request in this run: ours %s,\n", biggestPeer, biggest, cpu(peerSwarm))
		w("%s %s, and %s — no discovery at all — %s: the cost is Caddy's proxy path, not\n", biggestPeer, cpu(biggestPeer), peerVIP, cpu(peerVIP))
		w("`dynamic swarm`. Earlier profiles on this stand-in put most of it in Go's `net/http` and GC (Caddy\n")
		w("~59 µs, a bare Go `httputil.ReverseProxy` ~47 µs, HAProxy ~16 µs). Already applied: `GOGC=400` with\n")
		w("a `GOMEMLIMIT` (~+10 %%); measured within noise before: transport keep-alive sizes, buffers, h1-only,\n")
		w("PGO, GOAMD64. What would close it is fewer allocations per request in Caddy's `reverse_proxy` and\n")
		w("`net/http` — upstream work that no setting of this plugin reaches. Where raw requests per core\n")
		w("matter most, HAProxy in front is the honest answer; the edge's case is in-process IDs and\n")
		w("per-request balancing with Caddy's config, and the fault behaviour in section 5.\n\n")
	}
}

func rps(s sample) float64         { return s.RequestsSec }
func p50(s sample) float64         { return float64(s.P50) }
func p99(s sample) float64         { return float64(s.P99) }
func cpuPerReq(s sample) float64   { return float64(s.CPUPerRequest) }
func failedShare(s sample) float64 { return s.FailedShare() }

// clearlyBelow reports whether a is lower than b by more than 5 % at the
// median and, over several rounds, in every round: a's worst below b's best.
func clearlyBelow(a, b spread) bool {
	if a.Median >= b.Median-0.05*math.Abs(b.Median) {
		return false
	}
	return a.N <= 1 || b.N <= 1 || a.Max < b.Min
}

// negate turns "higher is better" into "lower is better" for clearlyBelow.
func negate(s spread) spread {
	return spread{Median: -s.Median, Min: -s.Max, Max: -s.Min, N: s.N}
}

func writeIDs(w writer, res *results) {
	w("## 1. ID endpoint\n\n")
	w("The format's ceiling with the default layout is %s IDs/s per machine ID (256 per 10 ms);\n", fmtRate(idCeiling))
	w("`titpetric/sonyflake` reached 25,607/s in an earlier measurement (not part of this run).\n")
	w("A batch (`count=%d`) spends the same budget.\n\n", idBatch)
	w("| figure | median (range) | of the ceiling | p50 | p99 | edge CPU per request |\n| --- | --- | --- | --- | --- | --- |\n")
	reqs := summarizeBy(res.IDRequests, rps)
	w("| requests/s (`wrk -t%d -c%d`), one ID each | %s | %s | %s | %s | %s |\n", idThreads, idConns, cell(reqs, fmtRate),
		fmtPercent(reqs.Median/idCeiling), cell(summarizeBy(res.IDRequests, p50), fmtDuration), cell(summarizeBy(res.IDRequests, p99), fmtDuration),
		cell(summarizeBy(res.IDRequests, cpuPerReq), fmtDuration))
	ids := summarizeBy(res.IDBatch, func(s sample) float64 { return s.succeededPerSec() * idBatch })
	w("| IDs/s with `count=%d` (200s only) | %s | %s | %s | %s | %s |\n\n", idBatch, cell(ids, fmtRate), fmtPercent(ids.Median/idCeiling),
		cell(summarizeBy(res.IDBatch, p50), fmtDuration), cell(summarizeBy(res.IDBatch, p99), fmtDuration),
		cell(summarizeBy(res.IDBatch, cpuPerReq), fmtDuration))
	verdict := "at least"
	if reqs.Median < idFloor*idCeiling {
		verdict = "**below**"
	}
	w("One ID per request reaches %.3f of the ceiling: %s the %.2f that issue 11 asks for.\n\n", reqs.Median/idCeiling, verdict, idFloor)
	w("With %d connections asking for %d IDs each, a batch would queue for longer than the endpoint's\n", idConns, idBatch)
	w("1 s bound, so the endpoint sheds most of them at once with `503` and `Retry-After` (%s of the\n",
		cell(summarizeBy(res.IDBatch, failedShare), fmtPercent))
	w("batch requests here; the rest are served at the ceiling). Latencies and CPU in that row are over\n")
	w("all responses, 503s included.\n\n")
}

func writeProxy(w writer, res *results) {
	w("## 2. Proxy path\n\n")
	w("5 tasks; each proxy in its own run. Ratios are to going direct to one task (no proxy).\n\n")
	w("| path | requests/s | × direct | p50 | p99 | p99 × direct | proxy CPU per request |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	direct := res.Proxy[peerDirect]
	for _, name := range append([]string{peerDirect}, balancerNames...) {
		rounds := res.Proxy[name]
		cpu := "—"
		if name != peerDirect {
			cpu = cell(summarizeBy(rounds, cpuPerReq), fmtDuration)
		}
		w("| %s | %s | %s | %s | %s | %s | %s |\n", name, cell(summarizeBy(rounds, rps), fmtRate),
			fmtRatio(summarizeBy(rounds, rps).Median/summarizeBy(direct, rps).Median),
			cell(summarizeBy(rounds, p50), fmtDuration), cell(summarizeBy(rounds, p99), fmtDuration),
			fmtRatio(summarizeBy(rounds, p99).Median/summarizeBy(direct, p99).Median), cpu)
	}
	w("\nThe configurations: the edge `reverse_proxy { dynamic swarm app <port> { resolvers <stand-in DNS>;\n")
	w("refresh 1s }; lb_retries 2 }`; Caddy's built-in `dynamic a tasks.app <port>` with the same `resolvers`,\n")
	w("`refresh 1s` and `lb_retries 2`; Caddy to the VIP: `reverse_proxy <VIP>:<port> { lb_retries 2 }`.\n")
	w("HAProxy 2.6, the documented Swarm setup: `server-template task %d tasks.app:<port> check resolvers swarm\n", haproxySlots)
	w("init-addr none resolve-prefer ipv4`, `resolvers swarm { nameserver <stand-in DNS>; accepted_payload_size 8192;\n")
	w("hold valid 1s }`, `balance roundrobin`, its default threads (one per CPU). In 2.6, `hold valid` only\n")
	w("applies to `do-resolve` actions; servers are re-resolved every `timeout resolve` (default 1 s).\n\n")
}

func writeRequestID(w writer, res *results) {
	w("## 3. `request_id`\n\n")
	w("Caddy proxying to one fixed task, so that only the header work differs.\n\n")
	w("| variant | requests/s | × off | p50 | p99 | edge CPU per request | CPU vs off |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	off := res.RequestID[ridOff]
	for _, name := range []string{ridOff, ridOn, ridUUID} {
		rounds := res.RequestID[name]
		cpuDelta := summarizeBy(rounds, cpuPerReq).Median - summarizeBy(off, cpuPerReq).Median
		w("| `%s` | %s | %s | %s | %s | %s | %s |\n", name, cell(summarizeBy(rounds, rps), fmtRate),
			fmtRatio(summarizeBy(rounds, rps).Median/summarizeBy(off, rps).Median),
			cell(summarizeBy(rounds, p50), fmtDuration), cell(summarizeBy(rounds, p99), fmtDuration),
			cell(summarizeBy(rounds, cpuPerReq), fmtDuration), fmtSignedDuration(cpuDelta))
	}
	w("\nCPU per request is measured in 10 ms ticks over the run; differences of a few µs are within noise.\n\n")
}

func writeSkew(w writer, p plan, res *results, service string) {
	w("## 4. Skew after a scale-out\n\n")
	w("%d tasks, then `wrk -c%d` keep-alive load; after %v the service scales to %d. Each task's share is\n", skewFrom, proxyConns, p.eventAt, skewTo)
	w("counted by the stand-in's per-task counters from 1 s after the scale-out (one discovery refresh)\n")
	w("to the end of the run (%v). Even is %s each; the new tasks (%s, %s) together should get %s.\n\n",
		p.skewAfter-time.Second, fmtPercent(1.0/skewTo), taskName(service, 4), taskName(service, 5), fmtPercent(2.0/skewTo))
	w("| proxy |")
	for slot := 1; slot <= skewTo; slot++ {
		w(" %s |", taskName(service, slot))
	}
	w(" new tasks | busiest / idlest |\n| --- |%s --- | --- |\n", strings.Repeat(" --- |", skewTo))
	for _, name := range balancerNames {
		rounds := res.Skew[name]
		w("| %s |", name)
		for slot := range skewTo {
			w(" %s |", fmtPercent(summarizeBy(rounds, func(sh []float64) float64 { return at(sh, slot) }).Median))
		}
		newShare := summarizeBy(rounds, func(sh []float64) float64 { return at(sh, 3) + at(sh, 4) })
		w(" %s | %s |\n", cell(newShare, fmtPercent), fmtRatio(summarizeBy(rounds, maxOverMin).Median))
	}
	w("\n![Each task's share of requests over time during the scale-out, one panel per proxy](%s)\n\n", chartName)
	w("The chart is the last round, sampled every %v.\n\n", sampleEvery)
}

// at is sh[i], or 0 for a slot sh does not have.
func at(sh []float64, i int) float64 {
	if i < len(sh) {
		return sh[i]
	}
	return 0
}

// cell is a spread as "median (min–max)", or the median alone for one round.
func cell(s spread, format func(float64) string) string {
	if s.N <= 1 || s.Min == s.Max {
		return format(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", format(s.Median), format(s.Min), format(s.Max))
}

// fmtRate writes a rate with thousands separators.
func fmtRate(x float64) string {
	digits := strconv.FormatInt(int64(math.Round(x)), 10)
	var b strings.Builder
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return b.String()
}

// fmtDuration writes nanoseconds in the unit that suits them.
func fmtDuration(ns float64) string {
	d := time.Duration(ns)
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", ns/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	default:
		return fmt.Sprintf("%.2f s", ns/1e9)
	}
}

func fmtSignedDuration(ns float64) string {
	if ns < 0 {
		return "−" + fmtDuration(-ns)
	}
	return "+" + fmtDuration(ns)
}

// fmtPercent writes a fraction as a percentage, with more digits when small.
func fmtPercent(x float64) string {
	switch pct := x * 100; {
	case pct == 0:
		return "0 %"
	case pct < 1:
		return fmt.Sprintf("%.2f %%", pct)
	default:
		return fmt.Sprintf("%.1f %%", pct)
	}
}

func fmtRatio(x float64) string {
	if math.IsInf(x, 1) {
		return "∞"
	}
	return fmt.Sprintf("%.2f×", x)
}

// formatShares writes shares as percentages, for progress lines.
func formatShares(sh []float64) string {
	parts := make([]string, len(sh))
	for i, s := range sh {
		parts[i] = fmt.Sprintf("%.0f%%", s*100)
	}
	return strings.Join(parts, " ")
}
