package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/swarmedge/swarmedge/integration/testsupport"
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
