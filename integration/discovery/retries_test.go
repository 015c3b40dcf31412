package discovery

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/integration/edge"
	"github.com/swarmedge/swarmedge/integration/testsupport"
)

// TestTryDurationHoldsEvery503 is why Caddyfile.example retries with
// lb_retries, whose 503 for a service with no task comes at once
// (TestNoTaskAnswers503AtOnce): with lb_try_duration instead, Caddy keeps
// retrying "no upstreams" every lb_try_interval until the duration is up,
// so every request to a service that is down waits that long for its 503.
func TestTryDurationHoldsEvery503(t *testing.T) {
	s := startService(t, 1)
	const tryDuration = 2 * time.Second
	withRetries := swarmCaddyfile(s, "")
	withTryDuration := strings.Replace(withRetries, "lb_retries 2", fmt.Sprintf("lb_try_duration %s", tryDuration), 1)
	if withTryDuration == withRetries {
		t.Fatal("the edge template has no lb_retries 2 to replace")
	}
	e := edge.MustStart(t, withTryDuration)

	if err := s.Scale(0); err != nil {
		t.Fatal(err)
	}
	// an empty set takes two NXDOMAIN answers in a row
	testsupport.WaitFor(t, "edge serves no task", 10*refresh, func() bool { return len(adminTasks(t, e)) == 0 })

	start := time.Now()
	resp, err := http.Get(e.URL("/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("no task, lb_try_duration %v: status %d, want 503", tryDuration, resp.StatusCode)
	}
	if took < tryDuration {
		t.Errorf("no task, lb_try_duration %v: the 503 came after %v; the README says it waits the whole duration", tryDuration, took)
	}
	t.Logf("no task, lb_try_duration %v: 503 after %v", tryDuration, took.Round(time.Millisecond))
}
