package edge

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/swarmedge/swarmedge/integration/testsupport"
)

// BinaryEnv names an environment variable holding the path of a prebuilt
// edge binary; when set, tests use it instead of building ./cmd/caddy.
const BinaryEnv = "SWARMEDGE_CADDY"

var (
	buildOnce  sync.Once
	binaryPath string
	buildErr   error
)

// Binary returns the path of the edge binary, failing the test when it
// cannot be built; see BuildBinary.
func Binary(t testing.TB) string {
	t.Helper()
	path, err := BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// BuildBinary returns the path of the edge binary: $SWARMEDGE_CADDY, or
// ./cmd/caddy of the module in the working directory, built once per process.
func BuildBinary() (string, error) {
	buildOnce.Do(func() { binaryPath, buildErr = findOrBuild() })
	return binaryPath, buildErr
}

func findOrBuild() (string, error) {
	if path := os.Getenv(BinaryEnv); path != "" {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("%s: %w", BinaryEnv, err)
		}
		return path, nil
	}
	root, err := testsupport.FindRepoRoot()
	if err != nil {
		return "", err
	}
	if err := readSourceTree(root); err != nil {
		return "", err
	}

	// One fixed place per checkout rather than a fresh temp dir per process:
	// nothing would remove a per-process copy of an 80 MB binary. Building to
	// a unique name and renaming keeps concurrent test processes (go test
	// ./... runs packages in parallel) from running a half-written file.
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(os.TempDir(), "swarmedge-edge-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "caddy-*.partial")
	if err != nil {
		return "", err
	}
	tmp.Close()
	build := exec.Command("go", "build", "-o", tmp.Name(), "./cmd/caddy")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("go build ./cmd/caddy: %w\n%s", err, out)
	}
	path := filepath.Join(dir, "caddy")
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return path, nil
}

// readSourceTree lists every directory of the module. go test caches a
// passing result until the test binary or a file, directory or env var the
// test read changes; it cannot see the sources of the binary built here, but
// a directory the test read counts as changed when any entry's size or mtime
// does, so reading them all makes an edited source rerun the tests.
func readSourceTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		return nil
	})
}
