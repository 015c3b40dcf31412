package main

import (
	"os"
	"os/exec"
	"path/filepath"
)

// waitForTasksProbe is the smallest Caddyfile that uses wait_for_tasks.
const waitForTasksProbe = `:0 {
	reverse_proxy {
		dynamic swarm app 80 {
			wait_for_tasks 1s
		}
	}
}
`

// acceptsWaitForTasks reports whether the edge binary knows
// `wait_for_tasks`: `caddy adapt` refuses an unknown subdirective.
func acceptsWaitForTasks(bin string) (bool, error) {
	dir, err := os.MkdirTemp("", "swarmbench-probe-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(waitForTasksProbe), 0o644); err != nil {
		return false, err
	}
	return exec.Command(bin, "adapt", "--config", path, "--adapter", "caddyfile").Run() == nil, nil
}
