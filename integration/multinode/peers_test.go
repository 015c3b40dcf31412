//go:build multinode

package multinode

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The peers of the node loss comparison: one task each on the first node,
// published there in host mode.
var peers = []struct{ name, service, image, port string }{
	{"Caddy, `dynamic a` + `transport http`", "peer-dynamic-a", dynamicAImage, "18081"},
	{"HAProxy 2.6, `server-template` + `resolvers`", "peer-haproxy", haproxyImage, "18082"},
}

// nodeLossReport is where SWARMEDGE_NODE_LOSS_REPORT=1 writes the
// comparison, relative to the module root; cmd/swarmbench puts it into
// BENCHMARKS.md as it is.
const nodeLossReport = "benchmarks/node-loss.md"

// compareNodeLoss applies the partition of the edge's run to stock Caddy
// and to HAProxy in front of the same tasks, under the same load, and
// reports the three side by side. It asserts nothing about the peers.
func compareNodeLoss(t *testing.T, c *cluster, edgeRun partitionRun) {
	if !haveHAProxy() {
		t.Skipf("multinode: node loss comparison skipped: no %s or ldd", haproxyBinary)
	}
	manager := c.nodes[0]
	managerID := manager.docker(t, "info", "--format", "{{.Swarm.NodeID}}")
	for _, p := range peers {
		manager.docker(t, "service", "create", "--detach", "--name", p.service, "--network", overlayNet,
			"--constraint", "node.id=="+managerID, "--publish", "mode=host,target=80,published="+p.port,
			"--no-resolve-image", p.image)
	}
	t.Cleanup(func() {
		for _, p := range peers {
			_, _ = run("docker", "-H", manager.socket(), "service", "rm", p.service)
		}
	})
	runs := []partitionRun{edgeRun}
	for _, p := range peers {
		url := "http://" + manager.ip + ":" + p.port + "/"
		waitFor(t, p.name+" answering", 120*time.Second, func() (bool, string) {
			resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, resp.Status
		})
		runs = append(runs, partitionUnderLoad(t, c, p.name, url))
	}
	table := nodeLossTable(runs)
	t.Logf("node loss side by side:\n%s", table)
	if os.Getenv("SWARMEDGE_NODE_LOSS_REPORT") == "1" {
		path := filepath.Join(moduleRoot(t), nodeLossReport)
		write(t, path, nodeLossMarkdown(edgeRun, table))
		t.Logf("wrote %s", path)
	}
}

// nodeLossTable is the runs as a markdown table.
func nodeLossTable(runs []partitionRun) string {
	var b strings.Builder
	b.WriteString("| proxy | tasks cut off | failed / sent | worst | p99 |\n| --- | --- | --- | --- | --- |\n")
	for _, r := range runs {
		fmt.Fprintf(&b, "| %s | %d of 6 | %s / %s | %s | %s |\n", r.proxy, r.lostTasks, thousands(r.res.failed.Load()),
			thousands(r.res.sent()), latency(r.res.worst()), latency(r.res.p99()))
	}
	return b.String()
}

// nodeLossMarkdown is the report: how it was measured, the table, and
// the edge's own view of the cut.
func nodeLossMarkdown(edge partitionRun, table string) string {
	load, _ := os.ReadFile("/proc/loadavg")
	return fmt.Sprintf("Measured %s by `SWARMEDGE_NODE_LOSS_REPORT=1 .ci/multinode` on %d CPUs (load average %s at the end):\n"+
		"a real Swarm of 3 `dockerd` in network namespaces on one bridge (`integration/multinode`), 6 `whoami`\n"+
		"tasks, the proxy on the manager. Each proxy in turn, under the same load: 8 keep-alive connections\n"+
		"in a closed loop plus 100 GETs/s open loop, each GET allowed 10 s; 2 s in, the worker with the\n"+
		"most tasks has its link cut (no RST, like a machine losing power) for %.0f s, then it is healed, and\n"+
		"the load goes on until 2 s after every task is served again. Failed = an error status or no answer\n"+
		"within 10 s; worst and p99 are over all GETs.\n\n%s\n"+
		"The edge's set (admin API `/swarm/upstreams`, read every %d ms): the cut node's tasks were out %s\n"+
		"after the cut; after the heal, Docker's DNS listed all 6 again after %s and the edge served\n"+
		"them after %s.\n\n"+
		"The edge: the harness's Caddyfile (`dynamic swarm` with `health_uri`, `health_interval 1s`,\n"+
		"`transport swarm { tcp_user_timeout 2s; dial_timeout 1s }`). Caddy: `dynamic a tasks.app 80\n"+
		"{ resolvers 127.0.0.11; refresh 1s }`, `transport http { dial_timeout 1s }`. HAProxy:\n"+
		"`server-template t 6 tasks.app:80 check inter 1s resolvers docker init-addr none`, `option httpchk\n"+
		"GET /health`, `resolvers docker { nameserver dns 127.0.0.11:53; hold valid 1s }`, `timeout connect 1s`.\n"+
		"All three have two retries (`lb_retries 2` with `fail_duration 10s`; `retries 2` with `option redispatch 1`).\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), strings.Fields(string(load) + " ?")[0],
		partitionHold.Seconds(), table, pollEvery.Milliseconds(), within(edge.left), within(edge.inDNS), within(edge.back))
}

// thousands writes n with thousands separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// latency writes d in milliseconds below a second, else in seconds.
func latency(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}
