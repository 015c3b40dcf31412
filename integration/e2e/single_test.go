//go:build e2e

package e2e

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/integration/openload"
)

// The single-replica test's own network and services.
const (
	singleNetwork     = prefix + "single-net"
	singleNetworkCIDR = "10.10.48.0/20"
	singleApp         = prefix + "single-app"
	singleEdge        = prefix + "single-edge"
	singleConfig      = prefix + "single-caddyfile"
)

// singleRate is the open-loop request rate through the update.
const singleRate = 200

// testSingleReplica updates a one-replica app with `docker service update
// --force` and Swarm's default order, stop-first, so that for a while it
// has no task, under open-loop load through the edge of
// Caddyfile.example: wait_for_tasks holds the requests of the gap until
// the new task is there, so that none fails, and the edge serves the new
// task afterwards.
func testSingleReplica(t *testing.T, root string) {
	docker(t, "network", "create", "--driver", "overlay", "--attachable", "--subnet", singleNetworkCIDR, singleNetwork)
	cleanup(t, "network", func() error { return removeNetwork(t, singleNetwork) })
	docker(t, "config", "create", singleConfig, filepath.Join(root, "Caddyfile.example"))
	cleanup(t, "config", func() error { _, err := tryDocker(nil, "config", "rm", singleConfig); return err })

	docker(t, "service", "create", "--detach", "--name", singleApp, "--network", singleNetwork,
		"--replicas", "1", "--endpoint-mode", "dnsrr", "--hostname", "{{.Task.Name}}", appImage)
	cleanup(t, "app", func() error { return removeService(t, singleApp) })
	docker(t, "service", "create", "--detach", "--name", singleEdge, "--network", singleNetwork,
		"--replicas", "1", "--endpoint-mode", "dnsrr",
		"--config", "source="+singleConfig+",target=/etc/caddy/Caddyfile",
		"--env", "SWARMEDGE_OVERLAY_CIDR="+singleNetworkCIDR,
		"--env", "SWARMEDGE_SERVICE="+singleApp,
		// Swarm's gap here (stop, start, first healthcheck) took up to 16 s
		// on a loaded 2-core machine: longer than the default 10s
		"--env", "SWARMEDGE_WAIT_FOR_TASKS=30s",
		"--health-interval", "2s",
		edgeImage)
	cleanup(t, "edge", func() error { return removeService(t, singleEdge) })

	before := waitTasks(t, singleApp, 1)
	waitHealthy(t, before)
	waitHealthy(t, waitTasks(t, singleEdge, 1))
	edgeURL := "http://" + singleEdge + "/"
	waitFor(t, "the edge serves the app", time.Minute, func() (bool, string) {
		res := runLoad(t, singleNetwork, edgeURL, 200)
		return servedAll(res, before), res.String()
	})

	client := prefix + "single-client"
	docker(t, "run", "--detach", "--name", client, "--network", singleNetwork, clientImage,
		"-url", edgeURL, "-rate", strconv.Itoa(singleRate), "-timeout", "15s", "-max-duration", "3m")
	cleanup(t, client, func() error { _, err := tryDocker(nil, "rm", "--force", client); return err })
	time.Sleep(2 * time.Second) // steady load before the update

	// no update config, or no order in it, is Swarm's default too
	order := docker(t, "service", "inspect", "--format", "{{with .Spec.UpdateConfig}}{{.Order}}{{end}}", singleApp)
	if order != "stop-first" && order != "" {
		t.Fatalf("update order %q, want Swarm's default, stop-first", order)
	}
	started := time.Now()
	docker(t, "service", "update", "--detach", "--force", singleApp)
	waitFor(t, "stop-first update of the single replica", 3*time.Minute, func() (bool, string) {
		state := docker(t, "service", "inspect", "--format", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}", singleApp)
		if strings.HasPrefix(state, "rollback") || state == "paused" {
			t.Fatalf("update %s", state)
		}
		return state == "completed", "update " + state
	})
	after := waitTasks(t, singleApp, 1)
	if after[0].ID == before[0].ID {
		t.Fatal("the task was not replaced by the update")
	}
	t.Logf("update completed after %v; task address %s, then %s", time.Since(started).Round(100*time.Millisecond),
		before[0].Addresses[singleNetwork], after[0].Addresses[singleNetwork])
	time.Sleep(3 * time.Second) // steady load after the update

	docker(t, "stop", "--time", "30", client)
	var sum openload.Summary
	if out := docker(t, "logs", client); json.Unmarshal([]byte(out), &sum) != nil {
		t.Fatalf("load client output: %s", out)
	}
	t.Logf("single replica through a stop-first update, %d req/s open-loop: %v", singleRate, sum)
	if sum.Sent < singleRate*5 {
		t.Errorf("sent %d requests, want at least %d: the load client stalled", sum.Sent, singleRate*5)
	}
	if sum.Failed > 0 {
		t.Errorf("%d of %d requests failed around the gap (%v), want none", sum.Failed, sum.Sent, sum.Failures)
	}
	// the edge's own account of the gap: when it lost the task, when it
	// found the new one and after how long
	logs, _ := execCombined("docker", "service", "logs", "--raw", singleEdge) // Caddy logs on stderr
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"logger":"swarm"`) {
			t.Log(line)
		}
	}
	if res := runLoad(t, singleNetwork, edgeURL, 200); !servedAll(res, after) || res.Failed > 0 {
		t.Errorf("after the update the edge does not serve the new task: %v", res)
	}
}
