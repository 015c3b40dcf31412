package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// swarmOptionProbe is the smallest Caddyfile that gives `dynamic swarm`
// one subdirective.
const swarmOptionProbe = `:0 {
	reverse_proxy {
		dynamic swarm app 80 {
			%s
		}
	}
}
`

// acceptsWaitForTasks reports whether the edge binary knows `wait_for_tasks`.
func acceptsWaitForTasks(bin string) (bool, error) {
	return acceptsSwarmOption(bin, "wait_for_tasks 1s")
}

// acceptsSwarmOption reports whether the edge binary takes the `dynamic
// swarm` subdirective line: `caddy adapt` refuses an unknown one.
func acceptsSwarmOption(bin, line string) (bool, error) {
	dir, err := os.MkdirTemp("", "swarmbench-probe-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, fmt.Appendf(nil, swarmOptionProbe, line), 0o644); err != nil {
		return false, err
	}
	return exec.Command(bin, "adapt", "--config", path, "--adapter", "caddyfile").Run() == nil, nil
}
