package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/integration/edge"
)

// Figures of the real binary under wrk on loopback. They time things, so
// they assert nothing about speed and run only when asked:
//
//	SWARMEDGE_FIGURES=1 go test ./integration -run Figures -v -count=1 -timeout 10m
//
// Client (wrk), edge and backend share the machine's CPUs: compare figures
// of one run with each other, and mind the load average each one logs. The
// edge's CPU time per request (from its process_cpu_seconds_total) is
// steadier than requests/s on a busy machine.

const figuresEnv = "SWARMEDGE_FIGURES"

func skipUnlessFigures(t *testing.T) {
	t.Helper()
	if os.Getenv(figuresEnv) == "" {
		t.Skipf("timing figures: set %s=1 to run", figuresEnv)
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Fatal("wrk is not installed (Debian package wrk)")
	}
	loadavg, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("load average before: %s", strings.Join(strings.Fields(string(loadavg))[:3], " "))
}

// TestFiguresIDEndpoint: requests/s of the ID endpoint (the format's
// ceiling is 25,600 IDs/s per machine ID), and IDs/s with count=1000.
func TestFiguresIDEndpoint(t *testing.T) {
	skipUnlessFigures(t)
	e := startEdge(t, idEndpointCaddyfile)
	for _, c := range []struct {
		path      string
		idsPerReq int
	}{
		{"/id", 1},
		{"/id?count=1000", 1000},
	} {
		res := runWrk(t, e, "-t2", "-c32", "-d10s", e.URL(c.path))
		// Only 2xx responses carry IDs; the rest are 503s (no IDs within
		// the endpoint's 1 s bound) or worse.
		okRPS := res.rps * float64(res.requests-res.non2xx) / float64(res.requests)
		ids := okRPS * float64(c.idsPerReq)
		t.Logf("wrk -t2 -c32 -d10s %s: %.0f requests/s, of them %.0f/s 2xx: %.0f IDs/s (%.1f %% of 25,600/s); %d requests, %d not 2xx/3xx, socket errors: %s; edge CPU %.1f µs/request",
			c.path, res.rps, okRPS, ids, 100*ids/25600, res.requests, res.non2xx, res.socketErrors, res.cpuPerRequest.Seconds()*1e6)
	}
}

// TestFiguresRequestIDCost: reverse_proxy to a loopback backend plain, with
// request_id, and with header_up X-Request-ID {http.request.uuid}, in
// alternating rounds; median requests/s of each and the ratio to plain.
func TestFiguresRequestIDCost(t *testing.T) {
	skipUnlessFigures(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	e := startEdge(t, globalOptions+fmt.Sprintf(`	sonyflake {
		machine_id 1
	}
}
http://127.0.0.1:{{.HTTPPort}} {
	handle /plain {
		reverse_proxy %[1]s
	}
	handle /request_id {
		request_id
		reverse_proxy %[1]s
	}
	handle /uuid {
		reverse_proxy %[1]s {
			header_up X-Request-ID {http.request.uuid}
		}
	}
}
`, backend.URL))

	variants := []string{"/plain", "/request_id", "/uuid"}
	const rounds = 3
	rps := make(map[string][]float64)
	cpu := make(map[string][]float64) // edge CPU µs per request
	for round := range rounds {
		// Each round starts with another variant: no variant always
		// follows the same one.
		for i := range variants {
			v := variants[(round+i)%len(variants)]
			res := runWrk(t, e, "-t2", "-c30", "-d5s", e.URL(v))
			if res.non2xx > 0 || res.socketErrors != "none" {
				t.Errorf("%s: %d responses not 2xx/3xx, socket errors: %s", v, res.non2xx, res.socketErrors)
			}
			rps[v] = append(rps[v], res.rps)
			cpu[v] = append(cpu[v], res.cpuPerRequest.Seconds()*1e6)
		}
	}
	plainRPS, plainCPU := median(rps["/plain"]), median(cpu["/plain"])
	for _, v := range variants {
		m, c := median(rps[v]), median(cpu[v])
		t.Logf("wrk -t2 -c30 -d5s %-12s median %.0f requests/s (rounds %.0f), %.3f × plain; edge CPU median %.1f µs/request (rounds %.1f), %.3f × plain",
			v, m, rps[v], m/plainRPS, c, cpu[v], c/plainCPU)
	}
}

// wrkResult is what runWrk reads from wrk's report.
type wrkResult struct {
	rps          float64
	requests     int64
	non2xx       int64
	socketErrors string // "none", or wrk's line
	// cpuPerRequest is the edge process's CPU time over the run per
	// request.
	cpuPerRequest time.Duration
}

var (
	wrkRPS      = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket   = regexp.MustCompile(`Socket errors: (.*)`)
)

// runWrk runs wrk against e with args and reads its report.
func runWrk(t *testing.T, e *edge.Edge, args ...string) wrkResult {
	t.Helper()
	cpuBefore := edgeCPUTime(t, e)
	out, err := exec.Command("wrk", args...).CombinedOutput()
	cpu := edgeCPUTime(t, e) - cpuBefore
	if err != nil {
		t.Fatalf("wrk %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	report := string(out)
	rpsMatch, requestsMatch := wrkRPS.FindStringSubmatch(report), wrkRequests.FindStringSubmatch(report)
	if rpsMatch == nil || requestsMatch == nil {
		t.Fatalf("wrk %s: no Requests/sec in its report:\n%s", strings.Join(args, " "), report)
	}
	res := wrkResult{socketErrors: "none"}
	res.rps, _ = strconv.ParseFloat(rpsMatch[1], 64)
	res.requests, _ = strconv.ParseInt(requestsMatch[1], 10, 64)
	if m := wrkNon2xx.FindStringSubmatch(report); m != nil {
		res.non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkSocket.FindStringSubmatch(report); m != nil {
		res.socketErrors = m[1]
	}
	res.cpuPerRequest = cpu / time.Duration(max(res.requests, 1))
	return res
}

var processCPU = regexp.MustCompile(`(?m)^process_cpu_seconds_total ([0-9.e+]+)$`)

// edgeCPUTime is the CPU time the edge process has used, from the metrics
// of its admin endpoint.
func edgeCPUTime(t *testing.T, e *edge.Edge) time.Duration {
	t.Helper()
	resp, body := get(t, http.MethodGet, "http://"+e.AdminAddr+"/metrics", nil)
	m := processCPU.FindStringSubmatch(body)
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("edge metrics: %d, no process_cpu_seconds_total", resp.StatusCode)
	}
	seconds, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(seconds * float64(time.Second))
}

func median(xs []float64) float64 {
	sorted := slices.Sorted(slices.Values(xs))
	return sorted[len(sorted)/2]
}
