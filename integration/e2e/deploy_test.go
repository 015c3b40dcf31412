package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The deploy files are checked here without Docker; the e2e run deploys them.

func TestPrometheusConfig(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Skip("promtool not installed (Debian: prometheus); .ci/run installs it")
	}
	// check config also checks the rule files it names.
	out, err := exec.Command("promtool", "check", "config", repoPath(filepath.Join("deploy", "prometheus.yml"))).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
}

func TestDockerfileBuildsXcaddyLine(t *testing.T) {
	line := strings.TrimSpace(readFile(t, repoPath("xcaddy.txt")))
	dockerfile := readFile(t, repoPath(filepath.Join("deploy", "Dockerfile")))
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
	if err := json.Unmarshal([]byte(readFile(t, repoPath(filepath.Join("deploy", "grafana", "swarmedge.json")))), &dashboard); err != nil {
		t.Fatal(err)
	}
}

// repoPath is path from the repository root, seen from this package.
func repoPath(path string) string {
	return filepath.Join("..", "..", path)
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
