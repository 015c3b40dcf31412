package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmedge/swarmedge/integration/testsupport"
	"go.yaml.in/yaml/v3"
)

// The deploy files are checked here without Docker; the e2e run deploys them.

func TestPrometheusConfig(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		testsupport.SkipUnlessOptOut(t, "SWARMEDGE_SKIP_PROMTOOL", "promtool not installed (Debian: prometheus; .ci/run installs it)")
	}
	// check config also checks the rule files it names.
	out, err := exec.Command("promtool", "check", "config", testsupport.RepoPath(t, "deploy/prometheus.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}

func TestDockerfileBuildsXcaddyLine(t *testing.T) {
	line := strings.TrimSpace(readFile(t, testsupport.RepoPath(t, "xcaddy.txt")))
	dockerfile := readFile(t, testsupport.RepoPath(t, "deploy/Dockerfile"))
	if !strings.Contains(dockerfile, "\nRUN "+line+"\n") {
		t.Errorf("deploy/Dockerfile does not RUN the xcaddy.txt line %q", line)
	}
	version := strings.Fields(line)[2] // xcaddy build <version> …
	for _, image := range []string{"caddy:" + strings.TrimPrefix(version, "v") + "-builder", "caddy:" + strings.TrimPrefix(version, "v") + "\n"} {
		if !strings.Contains(dockerfile, "FROM "+image) {
			t.Errorf("deploy/Dockerfile: want FROM %s for Caddy %s", strings.TrimSpace(image), version)
		}
	}
}

func TestDashboardIsJSON(t *testing.T) {
	var dashboard map[string]any
	if err := json.Unmarshal([]byte(readFile(t, testsupport.RepoPath(t, "deploy/grafana/swarmedge.json"))), &dashboard); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestGrafanaProvisioning checks what `docker stack deploy` hands Grafana:
// every config file the stack names exists, the data source points at the
// stack's Prometheus, and the dashboard provider reads the directory the
// dashboard is shipped to. (No Grafana image can be pulled on the test
// machines; the metric names the dashboard queries are checked against a
// running edge elsewhere.)
func TestGrafanaProvisioning(t *testing.T) {
	var stack struct {
		Services map[string]struct {
			Configs []struct{ Source, Target string }
		}
		Configs map[string]struct{ File string }
	}
	unmarshalYAML(t, filepath.Join("deploy", "stack.yml"), &stack)
	targets := map[string]string{} // config name → where Grafana finds it
	for _, c := range stack.Services["grafana"].Configs {
		targets[c.Source] = c.Target
	}
	for name := range stack.Configs {
		if _, err := os.Stat(testsupport.RepoPath(t, filepath.Join("deploy", stack.Configs[name].File))); err != nil {
			t.Errorf("stack config %s: %v", name, err)
		}
	}

	var datasources struct {
		Datasources []struct {
			Type, URL string
			IsDefault bool `yaml:"isDefault"`
		}
	}
	unmarshalYAML(t, filepath.Join("deploy", stack.Configs["grafana-datasource"].File), &datasources)
	if len(datasources.Datasources) != 1 || datasources.Datasources[0].Type != "prometheus" ||
		datasources.Datasources[0].URL != "http://prometheus:9090" || !datasources.Datasources[0].IsDefault {
		t.Errorf("data sources %+v, want the stack's prometheus service as the default", datasources.Datasources)
	}
	if _, ok := stack.Services["prometheus"]; !ok {
		t.Error("the data source names a prometheus service the stack does not have")
	}
	if !strings.HasPrefix(targets["grafana-datasource"], "/etc/grafana/provisioning/datasources/") {
		t.Errorf("data source shipped to %q, not Grafana's provisioning/datasources", targets["grafana-datasource"])
	}

	var dashboards struct {
		Providers []struct {
			Type    string
			Options struct{ Path string }
		}
	}
	unmarshalYAML(t, filepath.Join("deploy", stack.Configs["grafana-dashboards"].File), &dashboards)
	if !strings.HasPrefix(targets["grafana-dashboards"], "/etc/grafana/provisioning/dashboards/") {
		t.Errorf("dashboard provider shipped to %q, not Grafana's provisioning/dashboards", targets["grafana-dashboards"])
	}
	if len(dashboards.Providers) != 1 || dashboards.Providers[0].Type != "file" ||
		filepath.Dir(targets["grafana-dashboard"]) != dashboards.Providers[0].Options.Path {
		t.Errorf("providers %+v do not read %s, where the dashboard is shipped", dashboards.Providers, targets["grafana-dashboard"])
	}
	if stack.Configs["grafana-dashboard"].File != "./grafana/swarmedge.json" {
		t.Errorf("the stack ships %q as the dashboard, not grafana/swarmedge.json", stack.Configs["grafana-dashboard"].File)
	}
}

func unmarshalYAML(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal([]byte(readFile(t, testsupport.RepoPath(t, path))), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
