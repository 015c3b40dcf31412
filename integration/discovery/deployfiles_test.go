package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/swarmedge/swarmedge/integration/edge"
	"github.com/swarmedge/swarmedge/integration/testsupport"
)

// The deploy/ files checked against the real binary without Docker: what
// the dashboard and alert rules query, and the images' healthcheck
// command. The e2e run deploys them on a swarm.

// prometheusMade are the series Prometheus adds itself; no target exports
// them.
var prometheusMade = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped",
	"scrape_samples_post_metric_relabeling", "scrape_series_added", "ALERTS", "ALERTS_FOR_STATE"}

// TestMonitoringQueriesExportedMetrics runs Caddyfile.example (Caddy's
// metrics, request_id, the ID endpoint and dynamic swarm) in front of the
// stand-in, sends traffic through it, and checks that every metric that
// deploy/grafana/*.json and deploy/prometheus.rules.yml query is on the
// metrics site's /metrics.
func TestMonitoringQueriesExportedMetrics(t *testing.T) {
	s := startService(t, 3)
	e := edge.MustStart(t, exampleTemplate(t, s))
	metricsURL := "http://127.0.0.1:" + os.Getenv("SWARMEDGE_METRICS_PORT") + "/metrics"

	records, ruleExprs := alertRules(t)
	queried := map[string][]string{} // metric name → the files that query it
	add := func(file string, exprs []string) {
		for _, expr := range exprs {
			for _, name := range promQLMetricNames(expr) {
				if !slices.Contains(records, name) && !slices.Contains(prometheusMade, name) && !slices.Contains(queried[name], file) {
					queried[name] = append(queried[name], file)
				}
			}
		}
	}
	add("deploy/prometheus.rules.yml", ruleExprs)
	for _, file := range dashboards(t) {
		rel, _ := filepath.Rel(testsupport.RepoRoot(t), file)
		add(rel, dashboardExprs(t, file))
	}
	if len(queried) < 5 {
		t.Fatalf("found only %d metric names in the dashboards and rules: %v; is the parsing broken?", len(queried), queried)
	}

	// Counters with labels show once counted: proxied requests (stamped,
	// balanced over the tasks) and the ID endpoint.
	for range 20 {
		if resp, body := testsupport.Get(t, nil, e.URL("/")); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /: %d %s", resp.StatusCode, body)
		}
	}
	if resp, body := testsupport.Get(t, nil, e.URL("/id")); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /id: %d %s", resp.StatusCode, body)
	}
	var missing []string
	err := testsupport.Poll("every queried metric exported", 30*time.Second, func() (bool, string) {
		resp, scrape := testsupport.Get(t, nil, metricsURL)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", metricsURL, resp.StatusCode)
		}
		exported := exportedNames(scrape)
		missing = missing[:0]
		for name := range queried {
			if !exported[name] {
				missing = append(missing, name)
			}
		}
		return len(missing) == 0, fmt.Sprintf("missing %v", missing)
	})
	if err != nil {
		for _, name := range missing {
			t.Errorf("%s query %s, which the edge does not export", strings.Join(queried[name], " and "), name)
		}
	}
}

// TestSwarmHealthCommand runs `caddy swarm health` as the images'
// HEALTHCHECK does: exit 0 on a 2xx answer, 1 otherwise, with the reason.
func TestSwarmHealthCommand(t *testing.T) {
	serve := func(status int) string {
		server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
		}))
		t.Cleanup(server.Close)
		return server.URL + "/healthz"
	}
	closed := fmt.Sprintf("http://127.0.0.1:%d/healthz", edge.FreePort(t))
	for _, tc := range []struct {
		name, url  string
		wantExit   int
		wantOutput string
	}{
		{"200", serve(http.StatusOK), 0, ""},
		{"204", serve(http.StatusNoContent), 0, ""},
		{"503", serve(http.StatusServiceUnavailable), 1, "503 Service Unavailable"},
		{"500", serve(http.StatusInternalServerError), 1, "500 Internal Server Error"},
		{"redirect", serve(http.StatusFound), 1, "302 Found"},
		{"closed port", closed, 1, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(edge.Binary(t), "swarm", "health", tc.url).CombinedOutput()
			exit := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				exit = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if exit != tc.wantExit || !strings.Contains(string(out), tc.wantOutput) {
				t.Errorf("caddy swarm health %s: exit %d, output %q; want exit %d and output containing %q", tc.url, exit, out, tc.wantExit, tc.wantOutput)
			}
			if tc.wantExit != 0 && !strings.Contains(string(out), tc.url) {
				t.Errorf("caddy swarm health %s: output %q does not name the URL", tc.url, out)
			}
		})
	}
}

// exportedNames returns the names of the samples in a Prometheus text
// scrape.
func exportedNames(scrape string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.Lines(scrape) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			names[line[:strings.IndexAny(line, "{ ")]] = true
		}
	}
	return names
}

// dashboards lists deploy/grafana/*.json.
func dashboards(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testsupport.RepoPath(t, "deploy/grafana"), "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in deploy/grafana: %v", err)
	}
	return files
}

// dashboardExprs returns the queries of every panel of a Grafana
// dashboard file, rows' nested panels included.
func dashboardExprs(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string
		Targets []struct{ Expr string }
		Panels  []panel
	}
	var d struct{ Panels []panel }
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var exprs []string
	var walk func([]panel)
	walk = func(panels []panel) {
		for _, p := range panels {
			for _, target := range p.Targets {
				exprs = append(exprs, target.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if len(exprs) == 0 {
		t.Fatalf("%s has no queries", file)
	}
	return exprs
}

// alertRules reads deploy/prometheus.rules.yml: the names its recording
// rules define, and every rule's expression.
func alertRules(t *testing.T) (records, exprs []string) {
	t.Helper()
	data, err := os.ReadFile(testsupport.RepoPath(t, "deploy/prometheus.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct{ Record, Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		t.Fatalf("deploy/prometheus.rules.yml: %v", err)
	}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				records = append(records, r.Record)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	if len(exprs) == 0 {
		t.Fatal("deploy/prometheus.rules.yml has no rules")
	}
	return records, exprs
}

var (
	// promQLStrings are string literals: label values, label_replace's
	// arguments.
	promQLStrings = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	// promQLSkipped are label matchers and ranges, and the label lists of
	// by, without, on, ignoring, group_left and group_right.
	promQLSkipped = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	// promQLIdentifier is a name, and a "(" after it when it is a
	// function or aggregation. A name inside a number (1e3) or a duration
	// (1h) has a digit before it.
	promQLIdentifier = regexp.MustCompile(`[a-zA-Z0-9_:.]*[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	promQLKeywords   = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
		"group_left", "group_right", "inf", "nan", "Inf", "NaN", "atan2", "start", "end"}
)

// promQLMetricNames returns the metric names a PromQL expression selects:
// its identifiers that are not functions, keywords, labels or strings.
func promQLMetricNames(expr string) []string {
	expr = promQLStrings.ReplaceAllString(expr, `""`)
	expr = promQLSkipped.ReplaceAllString(expr, " ")
	var names []string
	for _, token := range promQLIdentifier.FindAllString(expr, -1) {
		name := strings.TrimSpace(token)
		isNumber := name[0] >= '0' && name[0] <= '9' || name[0] == '.'
		if !isNumber && !strings.HasSuffix(name, "(") && !slices.Contains(promQLKeywords, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func TestPromQLMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job="swarmedge"} == 0`, []string{"up"}},
		{`sum by (instance) (rate(caddy_http_requests_total{handler="request_id"}[1m]))`, []string{"caddy_http_requests_total"}},
		{`histogram_quantile(0.99, sum by (le, instance) (rate(caddy_http_request_duration_seconds_bucket[5m])))`, []string{"caddy_http_request_duration_seconds_bucket"}},
		{"sum without (code) (rate(a_total[1m])) / on (instance) group_left (name) b > bool 0.01", []string{"a_total", "b"}},
		{`label_replace(x, "dst", "$1", "src", "(.*)") or vector(0)`, []string{"x"}},
		{`increase(swarmedge_sonyflake_mint_refused_total[5m] offset 1h) > 0`, []string{"swarmedge_sonyflake_mint_refused_total"}},
		{`job:requests:rate5m > 1e3 and sum(rate(c[1m:10s])) > Inf`, []string{"c", "job:requests:rate5m"}},
		{`max by(instance, name)(swarmedge_swarm_seconds_since_last_good)`, []string{"swarmedge_swarm_seconds_since_last_good"}},
	} {
		if got := promQLMetricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.expr, got, tc.want)
		}
	}
}
