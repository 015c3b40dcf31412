package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/swarmedge/swarmedge/integration/testsupport"
)

// The committed comparison goes into the report as it is, after a line
// naming the command that wrote it; without one the section says how to
// make it; a selection without the section leaves it out.
func TestMarkdownNodeLoss(t *testing.T) {
	committed := "Measured by the harness.\n\n| proxy | failed / sent |\n| --- | --- |\n| edge | 0 / 22,237 |\n"
	res := &results{NodeLoss: committed}
	p := fullPlan
	p.sections = map[string]bool{sectionNodeLoss: true}
	md := markdown(machine{}, p, res, "app", nil)
	for _, want := range []string{"## 9. Node loss on a real multi-node Swarm", "`SWARMEDGE_NODE_LOSS_REPORT=1 .ci/multinode`", committed} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	res.NodeLoss = ""
	if md := markdown(machine{}, p, res, "app", nil); !strings.Contains(md, "Not measured yet: run `SWARMEDGE_NODE_LOSS_REPORT=1 .ci/multinode`") {
		t.Errorf("without a committed comparison the section does not say how to make it:\n%s", md)
	}
	p.sections = map[string]bool{sectionFaults: true}
	res = newSectionsFixture()
	res.NodeLoss = committed
	if md := markdown(machine{}, p, res, "app", checkPromises(p, res)); strings.Contains(md, "## 9. Node loss") {
		t.Error("a selection without node_loss has the node loss section")
	}
}

// readNodeLoss reads the file the multi-node harness writes, from the
// repository root; a checkout without one gives "".
func TestReadNodeLoss(t *testing.T) {
	root, err := testsupport.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(root, nodeLossName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	got, err := readNodeLoss()
	if err != nil || got != string(want) {
		t.Errorf("readNodeLoss() = %q, %v; want the file's %d bytes", got, err, len(want))
	}
}
