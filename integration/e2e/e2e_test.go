//go:build e2e

package e2e

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/integration/load"
	"github.com/swarmedge/swarmedge/integration/testsupport"
)

// The tests' own overlay network and services; the stack gets another
// subnet so both can exist side by side.
const (
	network     = prefix + "net"
	networkCIDR = "10.10.16.0/20"
	appService  = prefix + "app"
	edgeService = prefix + "edge"
	caddyConfig = prefix + "caddyfile"

	stackName        = prefix + "stack"
	stackCIDR        = "10.10.32.0/20"
	stackNetwork     = stackName + "_edge"
	stackAppService  = stackName + "_app"
	stackEdgeService = stackName + "_edge"
)

// Images built from this checkout; they stay after the run.
const (
	edgeImage       = "swarmedge-e2e/edge:test"
	appImage        = "swarmedge-e2e/whoami:test"
	clientImage     = "swarmedge-e2e/loadclient:test"
	prometheusImage = "swarmedge-e2e/prometheus:test"
)

// TestSwarm runs the edge in front of a 5-replica dnsrr app on a
// single-node swarm and drives it from a client container on the overlay:
// spread, scaling, a killed task and a rolling update under load, then
// deploy/stack.yml as written.
func TestSwarm(t *testing.T) {
	if _, err := tryDocker(nil, "info"); err != nil {
		t.Fatalf("the e2e tests need a Docker engine: %v", err)
	}
	root := testsupport.RepoRoot(t)
	buildImages(t, root)
	joinSwarm(t)

	t.Run("services", func(t *testing.T) { testServices(t, root) })
	t.Run("stack", func(t *testing.T) { testStack(t, root) })
	t.Run("single replica", func(t *testing.T) { testSingleReplica(t, root) })
}

// buildImages builds the edge and the app from their deploy/ Dockerfiles,
// and the load client and Prometheus (Debian's binary, for the stack) FROM
// scratch.
func buildImages(t *testing.T, root string) {
	bin := t.TempDir()
	for pkg, name := range map[string]string{"./cmd/caddy": "caddy", "./cmd/whoami": "whoami", "./integration/e2e/loadclient": "loadclient"} {
		start := time.Now()
		buildStatic(t, pkg, bin, name)
		t.Logf("built %s (%.1fs)", pkg, time.Since(start).Seconds())
	}

	edgeContext := t.TempDir()
	copyFile(t, filepath.Join(bin, "caddy"), filepath.Join(edgeContext, "caddy"))
	copyFile(t, filepath.Join(root, "Caddyfile.example"), filepath.Join(edgeContext, "Caddyfile.example"))
	buildImage(t, edgeImage, filepath.Join(root, "deploy", "Dockerfile.scratch"), edgeContext)

	appContext := t.TempDir()
	copyFile(t, filepath.Join(bin, "whoami"), filepath.Join(appContext, "whoami"))
	buildImage(t, appImage, filepath.Join(root, "deploy", "Dockerfile.whoami"), appContext)

	buildScratchImage(t, clientImage, map[string]string{filepath.Join(bin, "loadclient"): "/loadclient"},
		`ENTRYPOINT ["/loadclient"]`)

	// Debian's prometheus package (installed by .ci/run for promtool) has
	// the server too; with its libraries it runs FROM scratch, started the
	// way the official image starts it.
	const promBinary = "/usr/bin/prometheus"
	files := map[string]string{promBinary: "/bin/prometheus"}
	for _, lib := range sharedLibraries(t, promBinary) {
		files[lib] = lib
	}
	buildScratchImage(t, prometheusImage, files,
		`ENTRYPOINT ["/bin/prometheus"]`,
		`CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]`)
}

// joinSwarm makes this engine a single-node swarm unless it is in one
// already, and leaves again at the end only if it joined here.
func joinSwarm(t *testing.T) {
	state := docker(t, "info", "--format", "{{.Swarm.LocalNodeState}}")
	if state == "active" {
		t.Log("swarm already active; leaving it as it is")
		return
	}
	docker(t, "swarm", "init", "--advertise-addr", "127.0.0.1")
	t.Log("swarm initialised; the test leaves it at the end")
	cleanup(t, "swarm", func() error {
		_, err := tryDocker(nil, "swarm", "leave", "--force")
		return err
	})
}

func testServices(t *testing.T, root string) {
	docker(t, "network", "create", "--driver", "overlay", "--attachable", "--subnet", networkCIDR, network)
	cleanup(t, "network", func() error { return removeNetwork(t, network) })
	docker(t, "config", "create", caddyConfig, filepath.Join(root, "Caddyfile.example"))
	cleanup(t, "config", func() error { _, err := tryDocker(nil, "config", "rm", caddyConfig); return err })

	docker(t, "service", "create", "--detach", "--name", appService, "--network", network,
		"--replicas", "5", "--endpoint-mode", "dnsrr", "--hostname", "{{.Task.Name}}",
		"--update-parallelism", "1", "--update-order", "start-first", appImage)
	cleanup(t, "app", func() error { return removeService(t, appService) })
	docker(t, "service", "create", "--detach", "--name", edgeService, "--network", network,
		// No VIP: IPVS is missing on some engines ("no route to host"), and
		// clients spread over the edges by DNS as they would over nodes.
		"--replicas", "2", "--endpoint-mode", "dnsrr",
		"--config", "source="+caddyConfig+",target=/etc/caddy/Caddyfile",
		"--env", "SWARMEDGE_OVERLAY_CIDR="+networkCIDR,
		"--env", "SWARMEDGE_SERVICE="+appService,
		// Wider margins than the image's for the test machine, loaded by
		// the test itself and more (a load average of 35 on 2 cores was
		// seen): a healthy edge must not be replaced.
		"--health-interval", "10s", "--health-timeout", "10s", "--health-retries", "6", "--health-start-period", "30s",
		edgeImage)
	cleanup(t, "edge", func() error { return removeService(t, edgeService) })

	apps := waitTasks(t, appService, 5)
	edges := waitTasks(t, edgeService, 2)
	waitHealthy(t, edges) // the image's HEALTHCHECK: the admin API
	var wantMachineIDs []string
	for _, e := range edges {
		wantMachineIDs = append(wantMachineIDs, machineID(t, e, network, networkCIDR))
	}
	t.Logf("edge machine IDs (their addresses in %s): %v", networkCIDR, wantMachineIDs)
	edgeURL := "http://" + edgeService + "/"
	res := loadUntilServed(t, "all 5 tasks get traffic through the edge", edgeURL, 2000, apps)
	checkLoad(t, res, wantMachineIDs)
	checkSpread(t, res, apps)
	// Clients pick an edge by DNS, so a load may reach one edge only:
	// ask each directly, and it mints with its own machine ID.
	for i, e := range edges {
		addr := netip.MustParsePrefix(e.Addresses[network]).Addr()
		checkLoad(t, runLoad(t, network, "http://"+addr.String()+"/", 500), wantMachineIDs[i:i+1])
	}

	t.Run("doctor", func(t *testing.T) { checkDoctor(t, edges[0], apps) })

	t.Run("scale", func(t *testing.T) {
		docker(t, "service", "scale", "--detach", appService+"=8")
		apps = waitTasks(t, appService, 8)
		res := loadUntilServed(t, "all 8 tasks get traffic", edgeURL, 3000, apps)
		checkLoad(t, res, wantMachineIDs)
		checkSpread(t, res, apps)
	})

	t.Run("kill", func(t *testing.T) {
		load := startLoad(t, network, edgeURL)
		load.waitProgress(t, 1000)
		victim := apps[0]
		docker(t, "kill", victim.ContainerID)
		t.Logf("killed %s (container %.12s)", victim.Hostname, victim.ContainerID)
		apps = waitReplaced(t, appService, 8, victim)
		load.waitProgress(t, 3000)
		res := load.stop(t)
		checkLoad(t, res, wantMachineIDs)
		if res.Hostnames[victim.Hostname] == 0 {
			t.Errorf("the killed task %s got no traffic before it died: the test proved nothing", victim.Hostname)
		}
		loadUntilServed(t, "the replacement gets traffic", edgeURL, 3000, apps)
	})

	t.Run("update", func(t *testing.T) {
		load := startLoad(t, network, edgeURL)
		load.waitProgress(t, 1000)
		before := apps
		docker(t, "service", "update", "--detach", "--force", appService)
		// 8 tasks one at a time, each waiting for its first healthcheck:
		// about 2 minutes idle, far longer on a loaded machine.
		waitFor(t, "rolling update (start-first, one at a time)", 10*time.Minute, func() (bool, string) {
			state := docker(t, "service", "inspect", "--format", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}", appService)
			if strings.HasPrefix(state, "rollback") || state == "paused" {
				t.Fatalf("update %s", state)
			}
			return state == "completed", "update " + state
		})
		apps = waitTasks(t, appService, 8)
		for _, tk := range apps {
			if slices.ContainsFunc(before, func(old task) bool { return old.ID == tk.ID }) {
				t.Fatalf("task %s was not replaced by the update", tk.Hostname)
			}
		}
		load.waitProgress(t, 3000)
		res := load.stop(t)
		checkLoad(t, res, wantMachineIDs)
		loadUntilServed(t, "the new tasks get traffic", edgeURL, 3000, apps)
	})

	// The test changed the app only: Swarm replacing an edge would mean
	// its healthcheck failed under the load (too tight for a busy node).
	for _, e := range edges {
		if !slices.ContainsFunc(runningTasks(t, edgeService), func(now task) bool { return now.ID == e.ID }) {
			t.Errorf("edge task %s was replaced during the test: healthcheck failures?", e.Hostname)
		}
	}
}

// testStack deploys deploy/stack.yml as written, with this run's images,
// subnet and published ports.
func testStack(t *testing.T, root string) {
	httpPort, httpsPort := freePort(t), freePort(t)
	env := []string{
		"SWARMEDGE_IMAGE=" + edgeImage,
		"SWARMEDGE_APP_IMAGE=" + appImage,
		"SWARMEDGE_PROMETHEUS_IMAGE=" + prometheusImage,
		"SWARMEDGE_OVERLAY_CIDR=" + stackCIDR,
		"SWARMEDGE_PUBLISHED_HTTP=" + httpPort,
		"SWARMEDGE_PUBLISHED_HTTPS=" + httpsPort,
	}
	if _, err := tryDocker(env, "stack", "deploy", "--compose-file", filepath.Join(root, "deploy", "stack.yml"), stackName); err != nil {
		t.Fatal(err)
	}
	cleanup(t, "stack", func() error { return removeStack(t) })

	apps := waitTasks(t, stackAppService, 5)
	edges := waitTasks(t, stackEdgeService, 1)
	waitHealthy(t, edges) // stack.yml's healthcheck: the metrics site
	wantMachineIDs := []string{machineID(t, edges[0], stackNetwork, stackCIDR)}

	// From the host, through the port the edge publishes in host mode.
	edgeURL := "http://127.0.0.1:" + httpPort
	var res LoadResult
	waitFor(t, "the stack's edge serves all 5 tasks on :"+httpPort, time.Minute, func() (bool, string) {
		run, err := StartCheckedLoad(load.Config{URL: edgeURL + "/", Clients: 8, Requests: 2000, Duration: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		res = run.Result()
		return servedAll(res, apps), res.String()
	})
	checkLoad(t, res, wantMachineIDs)
	checkSpread(t, res, apps)
	checkIDEndpoint(t, edgeURL+"/id", wantMachineIDs[0])

	// The edge's own metrics, on the overlay (the stack's alias "edge").
	exported := metricNames(clientGet(t, stackNetwork, "http://tasks.edge:9180/metrics"))
	dashboard := readFile(t, filepath.Join(root, "deploy", "grafana", "swarmedge.json"))
	exprs := dashboardExprs(t, dashboard)
	for _, ref := range []struct{ file, text string }{
		{"grafana/swarmedge.json", strings.Join(exprs, "\n")},
		{"prometheus.rules.yml", readFile(t, filepath.Join(root, "deploy", "prometheus.rules.yml"))},
	} {
		for _, name := range referencedMetrics(ref.text) {
			if !exported[name] {
				t.Errorf("deploy/%s uses %s, which the edge does not export", ref.file, name)
			}
		}
	}

	// Prometheus, configured by deploy/prometheus.yml, finds the edge through
	// tasks.edge, and every dashboard query returns data.
	waitFor(t, "Prometheus scrapes the edge", 2*time.Minute, func() (bool, string) {
		return promSeries(t, `up{job="swarmedge"} == 1`)
	})
	for _, expr := range exprs {
		waitFor(t, "dashboard query "+expr, time.Minute, func() (bool, string) {
			return promSeries(t, expr)
		})
	}
}

// task is one running task of a service.
type task struct {
	ID          string
	Hostname    string // {{.Task.Name}}: <service>.<slot>.<task ID>
	ContainerID string
	Addresses   map[string]string // network name → CIDR address
}

// runningTasks lists the tasks of service that Swarm reports running.
func runningTasks(t testing.TB, service string) []task {
	t.Helper()
	ids := strings.Fields(docker(t, "service", "ps", "--no-trunc", "--quiet", "--filter", "desired-state=running", service))
	if len(ids) == 0 {
		return nil
	}
	var inspected []struct {
		ID     string
		Slot   int
		NodeID string
		Status struct {
			State           string
			ContainerStatus struct{ ContainerID string }
		}
		NetworksAttachments []struct {
			Network   struct{ Spec struct{ Name string } }
			Addresses []string
		}
	}
	dockerJSON(t, &inspected, append([]string{"inspect", "--type", "task"}, ids...)...)
	var tasks []task
	for _, ti := range inspected {
		if ti.Status.State != "running" {
			continue
		}
		slot := strconv.Itoa(ti.Slot)
		if ti.Slot == 0 { // global services: the node ID stands in for the slot
			slot = ti.NodeID
		}
		tk := task{ID: ti.ID, Hostname: service + "." + slot + "." + ti.ID, ContainerID: ti.Status.ContainerStatus.ContainerID, Addresses: map[string]string{}}
		for _, na := range ti.NetworksAttachments {
			if len(na.Addresses) > 0 {
				tk.Addresses[na.Network.Spec.Name] = na.Addresses[0]
			}
		}
		tasks = append(tasks, tk)
	}
	return tasks
}

// waitTasks waits until service has n running tasks and returns them.
func waitTasks(t testing.TB, service string, n int) []task {
	t.Helper()
	var tasks []task
	waitFor(t, fmt.Sprintf("%s: %d tasks running", service, n), 2*time.Minute, func() (bool, string) {
		tasks = runningTasks(t, service)
		return len(tasks) == n, fmt.Sprintf("%d running", len(tasks))
	})
	return tasks
}

// waitReplaced waits until Swarm runs n tasks of service again, none of
// them gone.
func waitReplaced(t testing.TB, service string, n int, gone task) []task {
	t.Helper()
	var tasks []task
	waitFor(t, service+": "+gone.Hostname+" replaced", 2*time.Minute, func() (bool, string) {
		tasks = runningTasks(t, service)
		replaced := !slices.ContainsFunc(tasks, func(tk task) bool { return tk.ID == gone.ID })
		return replaced && len(tasks) == n, fmt.Sprintf("%d running, replaced %v", len(tasks), replaced)
	})
	return tasks
}

// waitHealthy waits until the tasks' containers pass their healthchecks.
func waitHealthy(t testing.TB, tasks []task) {
	t.Helper()
	for _, tk := range tasks {
		waitFor(t, tk.Hostname+" healthy", 2*time.Minute, func() (bool, string) {
			status := docker(t, "inspect", "--format", "{{.State.Health.Status}}", tk.ContainerID)
			return status == "healthy", status
		})
	}
}

// machineID returns the machine ID an edge should mint with: the low bits
// of its address inside cidr (machine_id cidr in the Caddyfile).
func machineID(t testing.TB, edge task, network, cidr string) string {
	t.Helper()
	addr, err := netip.ParsePrefix(edge.Addresses[network])
	if err != nil {
		t.Fatalf("edge task %s: no address on %s: %v", edge.ID, network, err)
	}
	a, base := addr.Addr().As4(), netip.MustParsePrefix(cidr).Masked().Addr().As4()
	offset := binary.BigEndian.Uint32(a[:]) - binary.BigEndian.Uint32(base[:])
	return strconv.FormatUint(uint64(offset&(1<<machineIDBits-1)), 10)
}

// runLoad sends n requests from a client container on network.
func runLoad(t testing.TB, network, url string, n int) LoadResult {
	t.Helper()
	out := docker(t, "run", "--rm", "--network", network, clientImage,
		"-url", url, "-requests", strconv.Itoa(n), "-connections", "8", "-max-duration", "1m")
	return decodeResult(t, out)
}

// loadRun is load running in a client container until stopped.
type loadRun struct {
	name string
}

var loadRuns int

func startLoad(t testing.TB, network, url string) *loadRun {
	t.Helper()
	loadRuns++
	l := &loadRun{name: fmt.Sprintf("%sclient-%d", prefix, loadRuns)}
	docker(t, "run", "--detach", "--name", l.name, "--network", network, clientImage,
		"-url", url, "-connections", "8", "-max-duration", "4m")
	cleanup(t, l.name, func() error { _, err := tryDocker(nil, "rm", "--force", l.name); return err })
	return l
}

var progressLine = regexp.MustCompile(`progress requests=(\d+) failed=(\d+)`)

// waitProgress waits until the client has sent n more requests than when
// called.
func (l *loadRun) waitProgress(t testing.TB, n int) {
	t.Helper()
	start := l.requests(t)
	waitFor(t, fmt.Sprintf("%d more requests", n), time.Minute, func() (bool, string) {
		now := l.requests(t)
		return now >= start+n, fmt.Sprintf("%d sent", now)
	})
}

func (l *loadRun) requests(t testing.TB) int {
	t.Helper()
	out, err := execCombined("docker", "logs", "--tail", "3", l.name)
	if err != nil {
		t.Fatal(err)
	}
	m := progressLine.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// stop ends the load (SIGTERM) and returns its result.
func (l *loadRun) stop(t testing.TB) LoadResult {
	t.Helper()
	docker(t, "stop", "--time", "20", l.name)
	return decodeResult(t, docker(t, "logs", l.name))
}

func decodeResult(t testing.TB, out string) LoadResult {
	t.Helper()
	var res LoadResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("load client output: %v\n%s", err, out)
	}
	return res
}

// clientGet fetches url from a client container on network.
func clientGet(t testing.TB, network, url string) string {
	t.Helper()
	return docker(t, "run", "--rm", "--network", network, clientImage, "get", url)
}

// loadUntilServed repeats a load of n requests from a client container on
// the tests' network until every one of tasks has answered some of them,
// and returns the last load's result.
func loadUntilServed(t testing.TB, what, url string, n int, tasks []task) LoadResult {
	t.Helper()
	var res LoadResult
	waitFor(t, what, time.Minute, func() (bool, string) {
		res = runLoad(t, network, url, n)
		return servedAll(res, tasks), res.String()
	})
	return res
}

// servedAll reports whether every task answered some of the requests.
func servedAll(res LoadResult, tasks []task) bool {
	for _, tk := range tasks {
		if res.Hostnames[tk.Hostname] == 0 {
			return false
		}
	}
	return true
}

// checkLoad checks what every load must show: no failed request, fresh
// unique IDs from the edges' machine IDs, each passed on to the app.
func checkLoad(t testing.TB, res LoadResult, wantMachineIDs []string) {
	t.Helper()
	t.Logf("load: %v", res)
	if res.Requests == 0 {
		t.Fatal("no requests sent")
	}
	if res.Failed > 0 {
		t.Errorf("%d of %d requests failed: %v", res.Failed, res.Requests, res.Failures)
	}
	if res.DuplicateIDs > 0 {
		t.Errorf("%d duplicate X-Request-IDs", res.DuplicateIDs)
	}
	if res.IDNotEchoed > 0 {
		t.Errorf("%d answers whose X-Request-ID the app did not receive", res.IDNotEchoed)
	}
	for id := range res.MachineIDs {
		if !slices.Contains(wantMachineIDs, id) {
			t.Errorf("X-Request-IDs carry machine ID %s, not one of the edges' %v", id, wantMachineIDs)
		}
	}
}

// checkSpread checks that the tasks shared the requests evenly: per-request
// balancing over keep-alive connections, where a VIP would pin them.
func checkSpread(t testing.TB, res LoadResult, tasks []task) {
	t.Helper()
	least, most := res.Requests, 0
	for _, tk := range tasks {
		least, most = min(least, res.Hostnames[tk.Hostname]), max(most, res.Hostnames[tk.Hostname])
	}
	for name := range res.Hostnames {
		if !slices.ContainsFunc(tasks, func(tk task) bool { return tk.Hostname == name }) {
			t.Errorf("answer from %q, not a running task", name)
		}
	}
	even := float64(res.Requests) / float64(len(tasks))
	t.Logf("spread over %d tasks: least %d, most %d, even share %.0f", len(tasks), least, most, even)
	if float64(least) < even/2 {
		t.Errorf("uneven spread: a task got %d requests, under half the even share %.0f", least, even)
	}
}

// checkIDEndpoint checks the edge's ID endpoint answers in the
// titpetric/sonyflake shape with the edge's machine ID.
func checkIDEndpoint(t testing.TB, url, wantMachineID string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		ID        uint64 `json:"id"`
		MachineID uint64 `json:"machine-id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	if got := strconv.FormatUint(body.MachineID, 10); got != wantMachineID || body.ID == 0 {
		t.Errorf("GET %s: id %d machine-id %s, want machine-id %s", url, body.ID, got, wantMachineID)
	}
}

// metricNames returns the names of the samples in a Prometheus text scrape.
func metricNames(scrape string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.Lines(scrape) {
		if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names[line[:strings.IndexAny(line, "{ ")]] = true
	}
	return names
}

// referencedMetrics finds the names of the edge's metrics (Caddy's, the
// plugin's, Go's and the process's) in query text.
func referencedMetrics(text string) []string {
	names := regexp.MustCompile(`\b(?:caddy|swarmedge|go|process)_[a-zA-Z0-9_]+`).FindAllString(text, -1)
	slices.Sort(names)
	return slices.Compact(names)
}

// dashboardExprs returns the queries of every panel of a Grafana dashboard.
func dashboardExprs(t testing.TB, dashboard string) []string {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal([]byte(dashboard), &d); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		for _, target := range p.Targets {
			exprs = append(exprs, target.Expr)
		}
	}
	if len(exprs) == 0 {
		t.Fatal("dashboard has no queries")
	}
	return exprs
}

// promSeries is a waitFor check: the instant query expr, sent through a
// client container on the stack's network, returns at least one series.
func promSeries(t testing.TB, expr string) (bool, string) {
	t.Helper()
	out, err := tryDocker(nil, "run", "--rm", "--network", stackNetwork, clientImage,
		"get", "http://prometheus:9090/api/v1/query?query="+url.QueryEscape(expr))
	if err != nil {
		return false, err.Error() // not up yet
	}
	var answer struct {
		Status string
		Data   struct{ Result []json.RawMessage }
	}
	if err := json.Unmarshal([]byte(out), &answer); err != nil || answer.Status != "success" {
		t.Fatalf("query %s: %v\n%s", expr, err, out)
	}
	return len(answer.Data.Result) > 0, fmt.Sprintf("%d series", len(answer.Data.Result))
}

// freePort returns a port free on the host for TCP and UDP, for the
// stack's published ports.
func freePort(t testing.TB) string {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		udp, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
		ln.Close()
		if err == nil {
			udp.Close()
			return strconv.Itoa(port)
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return ""
}

// checkDoctor runs `caddy swarm doctor` inside an edge container (no
// shell: the scratch image's /usr/bin/caddy) and checks that it reports the
// overlay network's real tasks, as DNS and the edge see them.
func checkDoctor(t *testing.T, edge task, apps []task) {
	out, err := tryDocker(nil, "exec", edge.ContainerID, "/usr/bin/caddy", "swarm", "doctor", "--json", appService)
	t.Logf("caddy swarm doctor (%v):\n%s", err, out)
	var findings = map[string]string{} // check (up to its " @") → verdict and detail
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var f struct{ Check, Verdict, Detail string }
		if json.Unmarshal([]byte(line), &f) != nil {
			continue // the summary line on stderr
		}
		check, _, _ := strings.Cut(f.Check, " @")
		findings[check] = f.Verdict + ": " + f.Detail
	}
	var want []string
	for _, a := range apps {
		want = append(want, netip.MustParsePrefix(a.Addresses[network]).Addr().String())
	}
	for _, check := range []string{"resolv.conf", "dns tasks." + appService + " udp", "dns tasks." + appService + " tcp", "edge tasks." + appService + ":80"} {
		got, ok := findings[check]
		if !ok || !strings.HasPrefix(got, "ok: ") {
			t.Errorf("doctor: %s = %q, want ok", check, got)
		}
	}
	tcp := findings["dns tasks."+appService+" tcp"]
	for _, addr := range want {
		if !strings.Contains(tcp+" ", " "+addr+" ") {
			t.Errorf("doctor's tasks.%s %q does not list task %s", appService, tcp, addr)
		}
	}
	if got := findings["resolv.conf"]; !strings.Contains(got, "127.0.0.11") {
		t.Errorf("doctor's resolv.conf: %q, want Docker's 127.0.0.11", got)
	}
}
