package main

import "fmt"

// reportCost prints the cost per service as progress.
func reportCost(c idleCost) {
	fmt.Printf("  %-17s %-44s cpu %s of a core  rss %s\n", "cost", peerSwarm, fmtPercent(c.Edge.CPUShare), fmtBytes(c.Edge.RSS))
	fmt.Printf("  %-17s %-44s cpu %s of a core  rss %s\n", "cost", peerHAProxy, fmtPercent(c.HAProxy.CPUShare), fmtBytes(c.HAProxy.RSS))
	fmt.Printf("  %-17s %-44s cpu %s of a core  rss %s\n", "cost", "dnsmasq (serving both)", fmtPercent(c.DNSmasq.CPUShare), fmtBytes(c.DNSmasq.RSS))
}

func writeCost(w writer, c *idleCost) {
	w("## 8. Cost per service\n\n")
	w("One edge often fronts many services. dnsmasq serves `tasks.svc1` … `tasks.svc%d`, %d addresses each\n", c.Services, costTasksEach)
	w("(nothing listens there: no request is sent). The edge has one site with %d routes, each\n", c.Services)
	w("`handle_path /svc<N>/* { reverse_proxy { dynamic swarm svc<N> %d { resolvers <dnsmasq>; refresh 1s } } }`;\n", costTaskPort)
	w("HAProxy 2.6 has %d backends, each `server-template t %d tasks.svc<N>:%d resolvers dns init-addr none\n", c.Services, costTasksEach, costTaskPort)
	w("resolve-prefer ipv4` with `resolvers dns { nameserver <dnsmasq>; hold valid 1s }` (re-resolved every\n")
	w("`timeout resolve`, 1 s). Both run side by side against the same dnsmasq and are measured over the\n")
	w("same %v window, idle: CPU is user+system time over wall time from `/proc/<pid>/stat` (100 %% = one\n", c.Window)
	w("core; ticks of 10 ms, so ±%s over this window), RSS is `VmRSS` at the window's end.\n\n", fmtPercent(0.01/c.Window.Seconds()))
	w("| process | CPU, idle, %% of a core | RSS |\n| --- | --- | --- |\n")
	w("| edge, %d × `dynamic swarm` | %s | %s |\n", c.Services, fmtPercent(c.Edge.CPUShare), fmtBytes(c.Edge.RSS))
	w("| HAProxy, %d × `server-template` | %s | %s |\n", c.Services, fmtPercent(c.HAProxy.CPUShare), fmtBytes(c.HAProxy.RSS))
	w("| dnsmasq, answering both | %s | %s |\n\n", fmtPercent(c.DNSmasq.CPUShare), fmtBytes(c.DNSmasq.RSS))
	verdict := "at or below HAProxy's"
	if c.Edge.CPUShare > c.HAProxy.CPUShare {
		verdict = fmt.Sprintf("%s HAProxy's", fmtRatio(c.Edge.CPUShare/c.HAProxy.CPUShare))
	}
	w("The edge's idle CPU at %d services is %s in this run.\n\n", c.Services, verdict)
}

// fmtBytes writes a size in MiB.
func fmtBytes(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
