package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/swarmedge/swarmedge/integration/testsupport"
)

// nodeLossName is the node loss comparison on a real multi-node Swarm,
// relative to the repository root. The multi-node harness writes it
// (SWARMEDGE_NODE_LOSS_REPORT=1 .ci/multinode); this runner only includes
// it, as it is: it needs root and three dockerd, which this runner does not.
const nodeLossName = "benchmarks/node-loss.md"

// nodeLossCommand is the command that writes nodeLossName.
const nodeLossCommand = "SWARMEDGE_NODE_LOSS_REPORT=1 .ci/multinode"

// readNodeLoss returns the committed node loss comparison, or "" when the
// repository has none yet.
func readNodeLoss() (string, error) {
	root, err := testsupport.FindRepoRoot()
	if err != nil {
		return "", fmt.Errorf("node loss section: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(root, nodeLossName))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("node loss section: %w", err)
	}
	return string(data), nil
}

func writeNodeLoss(w writer, text string) {
	w("## 9. Node loss on a real multi-node Swarm\n\n")
	w("Not from this run: `%s` measures it on three `dockerd` in network namespaces and\n", nodeLossCommand)
	w("writes [`%s`](%s), included here as it is.\n\n", nodeLossName, nodeLossName)
	if strings.TrimSpace(text) == "" {
		w("Not measured yet: run `%s` (root and `dockerd` needed) and commit `%s`.\n\n", nodeLossCommand, nodeLossName)
		return
	}
	w("%s\n", strings.TrimRight(text, "\n"))
	w("\n")
}
