package testsupport

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var repoRoot = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module root (go env GOMOD): %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" {
		return "", fmt.Errorf("finding the module root: not inside a module")
	}
	return filepath.Dir(gomod), nil
})

// FindRepoRoot returns the root of this module's checkout, from the
// working directory (go test runs a package's tests in its directory).
func FindRepoRoot() (string, error) {
	return repoRoot()
}

// RepoRoot is FindRepoRoot failing t on error.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// RepoPath is path (slash-separated, from the repository root) on disk.
func RepoPath(t testing.TB, path string) string {
	t.Helper()
	return filepath.Join(RepoRoot(t), filepath.FromSlash(path))
}
