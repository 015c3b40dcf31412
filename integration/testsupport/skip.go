package testsupport

import (
	"os"
	"testing"
)

// SkipUnlessOptOut skips t for reason, unless it runs under CI (CI=true)
// without the opt-out: there a skip would hide a test that CI's own setup
// should make runnable, so t fails instead. Setting the environment
// variable optOut to 1 skips on purpose, also under CI. Call it where t
// finds it cannot run.
func SkipUnlessOptOut(t testing.TB, optOut, reason string) {
	t.Helper()
	switch {
	case os.Getenv(optOut) == "1":
		t.Skipf("%s (skipped on purpose: %s=1)", reason, optOut)
	case os.Getenv("CI") == "true":
		t.Fatalf("%s; under CI=true this is a failure, not a skip (set %s=1 to skip on purpose)", reason, optOut)
	default:
		t.Skipf("%s (under CI=true this fails unless %s=1)", reason, optOut)
	}
}
