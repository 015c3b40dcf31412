package discovery

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge"
	"github.com/swarmedge/swarmedge/integration/edge"
	"github.com/swarmedge/swarmedge/integration/load"
	"github.com/swarmedge/swarmedge/integration/swarmsim"
)

// refresh is the lookup interval of Caddyfile.example and of the configs
// written here.
const refresh = time.Second

// startService starts a stand-in service with replicas tasks for t.
func startService(t testing.TB, replicas int) *swarmsim.Service {
	t.Helper()
	s, err := swarmsim.Start(swarmsim.Config{Replicas: replicas})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// exampleTemplate returns Caddyfile.example as an edge harness template
// for the edge of s: the admin address and HTTP port become the harness's
// fields, and the other placeholders are set in the environment, so that
// the edge's Caddyfile adapter fills them in as it would in a stack.
func exampleTemplate(t *testing.T, s *swarmsim.Service) string {
	t.Helper()
	for name, value := range map[string]string{
		"SWARMEDGE_SERVICE":      s.Name(),
		"SWARMEDGE_SERVICE_PORT": strconv.Itoa(int(s.Port())),
		"SWARMEDGE_RESOLVERS":    s.DNS().String(),
		"SWARMEDGE_OVERLAY_CIDR": "127.0.0.0/16", // the edge's "overlay" address is 127.0.0.1
		"SWARMEDGE_BIND":         "127.0.0.1",
		"SWARMEDGE_METRICS_PORT": strconv.Itoa(edge.FreePort(t)),
	} {
		t.Setenv(name, value)
	}
	text := swarmedge.ExampleCaddyfile
	for placeholder, field := range map[string]string{
		"{$SWARMEDGE_ADMIN:localhost:2019}": "{{.AdminAddr}}",
		"{$SWARMEDGE_HTTP_PORT:80}":         "{{.HTTPPort}}",
	} {
		if !strings.Contains(text, placeholder) {
			t.Fatalf("Caddyfile.example has no %s", placeholder)
		}
		text = strings.ReplaceAll(text, placeholder, field)
	}
	return text
}

// swarmTemplate is an edge proxying to a stand-in with dynamic swarm,
// with the retry settings of Caddyfile.example; the service's port and
// DNS address and extra swarm subdirectives are filled in by
// swarmCaddyfile.
const swarmTemplate = `{
	admin {{.AdminAddr}}
	default_bind 127.0.0.1
}
http://127.0.0.1:{{.HTTPPort}} {
	reverse_proxy {
		dynamic swarm %s %d {
			resolvers %s
			refresh %s
			%s
		}
		lb_retries 2
		fail_duration 10s
	}
}
`

// swarmCaddyfile returns an edge template for s with the swarm
// subdirectives extra.
func swarmCaddyfile(s *swarmsim.Service, extra string) string {
	return fmt.Sprintf(swarmTemplate, s.Name(), s.Port(), s.DNS(), refresh, extra)
}

// startLoad starts a load run; it is stopped when t ends if still running.
// A request fails after 30 s unless cfg says otherwise: a bound for a
// loaded machine, where the load's 5 s default can pass.
func startLoad(t testing.TB, cfg load.Config) *load.Run {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	run, err := load.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run.Stop(); run.Wait() })
	return run
}

// vipURL is the URL of path at the service's VIP.
func vipURL(s *swarmsim.Service, path string) string {
	return "http://" + s.VIP().String() + path
}

// taskNames returns the names of the tasks in slots 1..n.
func taskNames(s *swarmsim.Service, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = s.Name() + "." + strconv.Itoa(i+1)
	}
	return names
}

// checkShares fails t unless each task has a share of sum within
// tolerance (relative) of an even split among tasks, and nothing else
// answered. Few requests (a loaded machine) widen the tolerance to 4
// standard deviations of a random pick, so that chance alone fails about
// 1 check in 15,000.
func checkShares(t *testing.T, what string, sum load.Summary, tasks []string, tolerance float64) {
	t.Helper()
	even := 1 / float64(len(tasks))
	if sum.Requests == 0 {
		t.Errorf("%s: no requests to judge the spread by", what)
		return
	}
	tolerance = max(tolerance, 4*math.Sqrt((1-even)/(even*float64(sum.Requests))))
	total := 0.0
	for _, task := range tasks {
		share := sum.Share(task)
		total += share
		if share < even*(1-tolerance) || share > even*(1+tolerance) {
			t.Errorf("%s: %s has %.1f%% of the requests, want %.1f%% ± %.0f%%", what, task, 100*share, 100*even, 100*tolerance)
		}
	}
	if total < 0.999 {
		t.Errorf("%s: %.1f%% of the requests went to other tasks: %v", what, 100*(1-total), sum.PerTask)
	}
}

// checkNoFailure fails t if any request of sum failed.
func checkNoFailure(t *testing.T, what string, sum load.Summary) {
	t.Helper()
	if sum.Failed() > 0 || sum.Requests == 0 {
		t.Errorf("%s: %d of %d requests failed: %v", what, sum.Failed(), sum.Requests, sum.Failures)
	}
}

// allTasksReached returns how long after from each of tasks had answered a
// request sent after from; it fails t if one never did.
func allTasksReached(t *testing.T, res *load.Result, from time.Duration, tasks []string) time.Duration {
	t.Helper()
	pending := make(map[string]bool, len(tasks))
	for _, task := range tasks {
		pending[task] = true
	}
	for _, rec := range res.Records {
		if rec.At < from || rec.Status == 0 || !pending[res.Tasks[rec.Task]] {
			continue
		}
		delete(pending, res.Tasks[rec.Task])
		if len(pending) == 0 {
			return rec.At - from
		}
	}
	t.Fatalf("tasks %v never answered after %v", slices.Sorted(maps.Keys(pending)), from)
	return 0
}

// adminTask is a task as GET /swarm/upstreams shows it.
type adminTask struct {
	Address string `json:"address"`
	Health  string `json:"health"`
	Served  bool   `json:"served"`
}

// adminTasks returns the tasks of the edge's one swarm upstream source,
// from its admin endpoint.
func adminTasks(t *testing.T, e *edge.Edge) []adminTask {
	t.Helper()
	resp, err := http.Get("http://" + e.AdminAddr + "/swarm/upstreams")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var services []struct {
		Tasks []adminTask `json:"tasks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&services); err != nil {
		t.Fatalf("GET /swarm/upstreams: %v", err)
	}
	if len(services) != 1 {
		t.Fatalf("GET /swarm/upstreams: %d services, want 1", len(services))
	}
	return services[0].Tasks
}

// servedCount returns how many tasks are served.
func servedCount(tasks []adminTask) int {
	n := 0
	for _, task := range tasks {
		if task.Served {
			n++
		}
	}
	return n
}
