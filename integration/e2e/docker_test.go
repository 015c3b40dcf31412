//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/integration/testsupport"
)

// Everything the tests create is named with this prefix.
const prefix = "swarmedge-e2e-"

// commandTimeout bounds every docker command.
const commandTimeout = 3 * time.Minute

// docker runs a docker command and returns its trimmed stdout; a failure
// fails the test with the command's stderr.
func docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := tryDocker(nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tryDocker runs a docker command with extra environment variables and
// returns its trimmed stdout, or an error carrying its stderr.
func tryDocker(env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("docker %s: %v\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// dockerJSON runs a docker command whose output is JSON and decodes it.
func dockerJSON(t testing.TB, v any, args ...string) {
	t.Helper()
	if err := json.Unmarshal([]byte(docker(t, args...)), v); err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
}

// waitFor polls check every half second until it reports done, logging
// its status when it changes, and fails the test after timeout.
func waitFor(t testing.TB, what string, timeout time.Duration, check func() (done bool, status string)) {
	t.Helper()
	if err := poll(t, what, timeout, check); err != nil {
		t.Fatal(err)
	}
}

// poll is waitFor returning the timeout as an error, for teardown.
func poll(t testing.TB, what string, timeout time.Duration, check func() (done bool, status string)) error {
	start := time.Now()
	last := ""
	return testsupport.Poll(what, timeout, func() (bool, string) {
		done, status := check()
		if status != last {
			t.Logf("%5.1fs %s: %s", time.Since(start).Seconds(), what, status)
			last = status
		}
		return done, status
	})
}

// execCombined runs a command and returns its stdout and stderr together.
func execCombined(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// buildStatic builds a package of this module with CGO_ENABLED=0 into dir.
func buildStatic(t testing.TB, pkg, dir, name string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, name), pkg)
	cmd.Dir = testsupport.RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
}

// buildImage builds tag from dockerfile with dir as the context, and
// removes the image the tag named before, so reruns leave no dangling ones.
func buildImage(t testing.TB, tag, dockerfile, dir string) {
	t.Helper()
	start := time.Now()
	previous, _ := tryDocker(nil, "image", "inspect", "--format", "{{.ID}}", tag)
	id := docker(t, "build", "--quiet", "--tag", tag, "--file", dockerfile, dir)
	if previous != "" && previous != id {
		tryDocker(nil, "image", "rm", previous) // still in use elsewhere: keep it
	}
	t.Logf("built image %s (%.1fs)", tag, time.Since(start).Seconds())
}

// buildScratchImage builds tag FROM scratch holding files (context path →
// image path) and the given Dockerfile instructions.
func buildScratchImage(t testing.TB, tag string, files map[string]string, instructions ...string) {
	t.Helper()
	dir := t.TempDir()
	dockerfile := []string{"FROM scratch"}
	for src, dst := range files {
		ctxName := strings.ReplaceAll(strings.TrimPrefix(src, "/"), "/", "_")
		copyFile(t, src, filepath.Join(dir, ctxName))
		dockerfile = append(dockerfile, fmt.Sprintf("COPY %s %s", ctxName, dst))
	}
	dockerfile = append(dockerfile, instructions...)
	path := filepath.Join(dir, "Dockerfile")
	if err := os.WriteFile(path, []byte(strings.Join(dockerfile, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	buildImage(t, tag, path, dir)
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, info.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

// sharedLibraries lists the libraries a dynamically linked binary loads,
// as ldd prints them.
func sharedLibraries(t testing.TB, binary string) []string {
	t.Helper()
	out, err := exec.Command("ldd", binary).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", binary, err)
	}
	var libs []string
	for _, m := range regexp.MustCompile(`(/\S+) \(0x`).FindAllStringSubmatch(string(out), -1) {
		libs = append(libs, m[1])
	}
	return libs
}

// cleanup registers f to run when the test ends, pass or fail; errors are
// logged, not fatal, so that the rest of the teardown still runs.
func cleanup(t testing.TB, what string, f func() error) {
	t.Cleanup(func() {
		if err := f(); err != nil {
			t.Logf("teardown %s: %v", what, err)
		}
	})
}

// teardownTimeout bounds waiting for Swarm to remove what a test created.
const teardownTimeout = time.Minute

// removeService removes a service and waits until its containers are gone,
// so that its network can go too.
func removeService(t testing.TB, service string) error {
	if _, err := tryDocker(nil, "service", "rm", service); err != nil {
		return err
	}
	return waitGone(t, "containers of "+service, "ps", "--all", "--quiet", "--filter", "label=com.docker.swarm.service.name="+service)
}

// removeStack removes a stack, then its volumes once its containers are gone.
func removeStack(t testing.TB) error {
	if _, err := tryDocker(nil, "stack", "rm", stackName); err != nil {
		return err
	}
	label := "label=com.docker.stack.namespace=" + stackName
	if err := waitGone(t, "containers of "+stackName, "ps", "--all", "--quiet", "--filter", label); err != nil {
		return err
	}
	if err := waitGone(t, "networks of "+stackName, "network", "ls", "--quiet", "--filter", label); err != nil {
		return err
	}
	volumes := strings.Fields(docker(t, "volume", "ls", "--quiet", "--filter", label))
	if len(volumes) == 0 {
		return nil
	}
	_, err := tryDocker(nil, append([]string{"volume", "rm"}, volumes...)...)
	return err
}

// removeNetwork removes a network, retrying while Swarm still detaches
// the last endpoints.
func removeNetwork(t testing.TB, name string) error {
	var lastErr error
	err := poll(t, "remove network "+name, teardownTimeout, func() (bool, string) {
		_, lastErr = tryDocker(nil, "network", "rm", name)
		if lastErr != nil {
			return false, "in use"
		}
		return true, "removed"
	})
	if err != nil {
		return fmt.Errorf("%v: %v", err, lastErr)
	}
	return nil
}

// waitGone waits until a docker listing command lists nothing.
func waitGone(t testing.TB, what string, list ...string) error {
	return poll(t, what+" gone", teardownTimeout, func() (bool, string) {
		out, err := tryDocker(nil, list...)
		if err != nil {
			return false, err.Error()
		}
		n := len(strings.Fields(out))
		return n == 0, fmt.Sprintf("%d left", n)
	})
}
