package testsupport

import (
	"fmt"
	"testing"
	"time"
)

// Poll calls check until it reports done, and returns nil then; once
// timeout has passed it returns an error naming what and check's last
// status. It checks often at first and backs off to twice a second, so a
// slow check (a docker command) is not run in a tight loop. Timeouts are
// bounds for a loaded machine, not expectations: make them generous.
func Poll(what string, timeout time.Duration, check func() (done bool, status string)) error {
	deadline := time.Now().Add(timeout)
	interval := 10 * time.Millisecond
	for {
		done, status := check()
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v; last: %s", what, timeout, status)
		}
		time.Sleep(interval)
		interval = min(2*interval, 500*time.Millisecond)
	}
}

// Eventually reports whether cond holds within timeout, polling as Poll
// does.
func Eventually(timeout time.Duration, cond func() bool) bool {
	return Poll("", timeout, func() (bool, string) { return cond(), "" }) == nil
}

// WaitFor polls cond until it holds, failing t if it does not within
// timeout: for state that changes asynchronously.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !Eventually(timeout, cond) {
		t.Fatalf("%s: not within %v", what, timeout)
	}
}
