package e2e

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/swarmedge/swarmedge/integration/testsupport"
)

// What the README promises of the deploy files, checked without Docker.

// TestImagesHaveTheHealthcheckBinary checks that both edge images put
// Caddy where stack.yml's healthcheck runs it: a missing binary fails every
// healthcheck, and Swarm restarts the edge again and again.
func TestImagesHaveTheHealthcheckBinary(t *testing.T) {
	stack := readFile(t, testsupport.RepoPath(t, filepath.Join("deploy", "stack.yml")))
	m := regexp.MustCompile(`test: \["CMD", "([^"]+)", "swarm", "health"`).FindStringSubmatch(stack)
	if m == nil {
		t.Fatal(`deploy/stack.yml: no edge healthcheck ["CMD", "<caddy>", "swarm", "health", …]`)
	}
	binary := m[1]
	for _, dockerfile := range []string{"Dockerfile", "Dockerfile.scratch"} {
		t.Run(dockerfile, func(t *testing.T) {
			copied := finalStageCopies(readFile(t, testsupport.RepoPath(t, filepath.Join("deploy", dockerfile))))
			if !copied[binary] {
				t.Errorf("deploy/%s copies nothing to %s, which deploy/stack.yml's healthcheck runs (it copies to %v)", dockerfile, binary, copied)
			}
		})
	}
}

// finalStageCopies is the set of destinations of the COPY instructions in
// a Dockerfile's last stage: the paths the image gets from its build.
func finalStageCopies(dockerfile string) map[string]bool {
	copied := map[string]bool{}
	for _, line := range strings.Split(dockerfile, "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
		case strings.EqualFold(fields[0], "FROM"):
			copied = map[string]bool{}
		case strings.EqualFold(fields[0], "COPY") && len(fields) >= 3:
			copied[fields[len(fields)-1]] = true
		}
	}
	return copied
}

// TestDashboardShowsHTTPPerEdge checks the README's promise that the
// dashboard shows requests, status codes and latency per edge: every
// query over Caddy's HTTP metrics keeps the instance label.
func TestDashboardShowsHTTPPerEdge(t *testing.T) {
	var dashboard struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal([]byte(readFile(t, testsupport.RepoPath(t, filepath.Join("deploy", "grafana", "swarmedge.json")))), &dashboard); err != nil {
		t.Fatal(err)
	}
	grouping := regexp.MustCompile(`\bby \(([^)]*)\)`)
	httpQueries := 0
	for _, panel := range dashboard.Panels {
		for _, target := range panel.Targets {
			if !strings.Contains(target.Expr, "caddy_http_") {
				continue
			}
			httpQueries++
			for _, by := range grouping.FindAllStringSubmatch(target.Expr, -1) {
				if !hasLabel(by[1], "instance") {
					t.Errorf("panel %q: %s sums over every edge (by (%s)): want instance among the labels", panel.Title, target.Expr, by[1])
				}
			}
		}
	}
	if httpQueries == 0 {
		t.Fatal("no panel queries caddy_http_* metrics")
	}
}

func hasLabel(labels, want string) bool {
	for _, l := range strings.Split(labels, ",") {
		if strings.TrimSpace(l) == want {
			return true
		}
	}
	return false
}
