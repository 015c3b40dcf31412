package swarm

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/caddymodule/internal/metricstest"
)

// waitTestSource returns a source with wait_for_tasks bound on a test
// pool serving 10.0.0.1:80, then emptied by two empty answers: an outage
// began at the fake clock's now.
func waitTestSource(t *testing.T, name string, bound time.Duration) (*fakeLoopClock, *scriptedLookup, *dnsLoop, *Upstreams) {
	t.Helper()
	clk, script, loop, pool := newTestPool(t, poolKey{
		resolverKey: resolverKey{name: name, resolvers: "127.0.0.1:53", versions: "ipv4"}, port: 80,
	})
	t.Cleanup(pool.stop)
	registerTestPool(t, pool)
	script.set(resultOK, "10.0.0.1")
	loop.refresh()
	script.set(resultEmpty)
	loop.refresh()
	clk.Advance(time.Second) // two empty answers empty the set only a refresh interval apart
	loop.refresh()
	if len(served(pool)) != 0 || pool.waits.outage.Load() == nil {
		t.Fatalf("served %v, outage %v: want none served and an outage", served(pool), pool.waits.outage.Load())
	}
	return clk, script, loop, &Upstreams{Name: name, pool: pool, logger: swarmLog(), waitBound: bound}
}

// request is a GetUpstreams call running in the background.
type request struct {
	dials chan []string
}

// startRequest calls GetUpstreams in the background with ctx.
func startRequest(su *Upstreams, ctx context.Context) request {
	req := request{dials: make(chan []string, 1)}
	r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	go func() {
		upstreams, _ := su.GetUpstreams(r)
		dials := []string{}
		for _, u := range upstreams {
			dials = append(dials, u.Dial)
		}
		req.dials <- dials
	}()
	return req
}

// result returns the request's dial addresses once it has returned,
// failing t if it does not (a deadlock guard).
func (req request) result(t *testing.T) []string {
	t.Helper()
	select {
	case dials := <-req.dials:
		return dials
	case <-time.After(5 * time.Second):
		t.Fatal("GetUpstreams did not return")
		return nil
	}
}

// assertWaiting fails t if the request has returned.
func (req request) assertWaiting(t *testing.T) {
	t.Helper()
	select {
	case dials := <-req.dials:
		t.Fatalf("GetUpstreams returned %v, want it waiting", dials)
	case <-time.After(50 * time.Millisecond):
	}
}

// awaitParked waits until a request is parked on the clock and returns
// its timer; the first waiter also starts the watcher, whose timer
// (outageRecheck) is skipped.
func awaitParked(t *testing.T, clk *fakeLoopClock, first bool) time.Duration {
	t.Helper()
	timers := 1
	if first {
		timers = 2
	}
	var parked time.Duration
	for range timers {
		if d := clk.awaitWait(t); d != outageRecheck || timers == 1 {
			parked = d
		}
	}
	return parked
}

// waitOutcome returns a function reporting how much the count of an
// outcome of name has grown.
func waitOutcome(t *testing.T, name, outcome string) func() float64 {
	return metricstest.CounterDelta(t, swarmMetrics.waited.WithLabelValues(name, "80", outcome))
}

func TestSwarmWaitEndsWhenATaskAppears(t *testing.T) {
	clk, script, loop, su := waitTestSource(t, "tasks.wait-task", 10*time.Second)
	served := waitOutcome(t, "tasks.wait-task", waitTask)

	req := startRequest(su, context.Background())
	if d := awaitParked(t, clk, true); d != 10*time.Second {
		t.Fatalf("the request waits %v, want the bound, 10s", d)
	}
	if s := swarmServices(); s[0].Waiting != 1 || s[0].Waited != 1 || s[0].NoTaskSince == nil {
		t.Fatalf("admin view while waiting: %+v", s[0])
	}

	// while requests wait, the loop is asked to re-resolve every 250ms
	clk.Advance(outageRecheck)
	if d := clk.awaitWait(t); d != outageRecheck {
		t.Fatalf("watcher parked for %v, want %v", d, outageRecheck)
	}
	if !takeEarly(loop) {
		t.Fatal("no early re-resolve asked for while a request waits")
	}
	req.assertWaiting(t)

	script.set(resultOK, "10.0.0.2")
	loop.refresh()
	if got := req.result(t); !slices.Equal(got, []string{"10.0.0.2:80"}) {
		t.Fatalf("the waiting request got %v, want the new task", got)
	}
	if d := served(); d != 1 {
		t.Fatalf("waited_total{outcome=task} grew by %v, want 1", d)
	}
	if s := swarmServices(); s[0].Waiting != 0 || s[0].Waited != 1 || s[0].NoTaskSince != nil {
		t.Fatalf("admin view after: %+v", s[0])
	}
}

func TestSwarmWaitIsBoundedFromTheOutageStart(t *testing.T) {
	clk, _, _, su := waitTestSource(t, "tasks.wait-bound", 10*time.Second)
	expired := waitOutcome(t, "tasks.wait-bound", waitExpired)

	clk.Advance(6 * time.Second)
	req := startRequest(su, context.Background())
	if d := awaitParked(t, clk, true); d != 4*time.Second {
		t.Fatalf("a request 6s into the outage waits %v, want the 4s left of 10s", d)
	}
	clk.Advance(4 * time.Second)
	if got := req.result(t); len(got) != 0 {
		t.Fatalf("got %v after the bound, want no task", got)
	}
	if d := expired(); d != 1 {
		t.Fatalf("waited_total{outcome=expired} grew by %v, want 1", d)
	}

	// past the bound: no wait at all (the fake clock would block it)
	if got := startRequest(su, context.Background()).result(t); len(got) != 0 {
		t.Fatalf("got %v, want no task at once", got)
	}
}

func TestSwarmWaitEndsWithTheRequestContext(t *testing.T) {
	clk, _, _, su := waitTestSource(t, "tasks.wait-cancel", 10*time.Second)
	canceled := waitOutcome(t, "tasks.wait-cancel", waitCanceled)

	ctx, cancel := context.WithCancel(context.Background())
	req := startRequest(su, ctx)
	awaitParked(t, clk, true)
	cancel()
	if got := req.result(t); len(got) != 0 {
		t.Fatalf("got %v, want no task", got)
	}
	if d := canceled(); d != 1 {
		t.Fatalf("waited_total{outcome=canceled} grew by %v, want 1", d)
	}
	if waiting, _ := su.pool.waitCounts(); waiting != 0 {
		t.Fatalf("%d still waiting, want 0", waiting)
	}
}

func TestSwarmWaitingRequestsAreCapped(t *testing.T) {
	clk, script, loop, su := waitTestSource(t, "tasks.wait-cap", 10*time.Second)
	su.pool.waits.max = 2
	full := waitOutcome(t, "tasks.wait-cap", waitFull)

	first := startRequest(su, context.Background())
	awaitParked(t, clk, true)
	second := startRequest(su, context.Background())
	awaitParked(t, clk, false)
	if got := startRequest(su, context.Background()).result(t); len(got) != 0 {
		t.Fatalf("the request over the cap got %v, want no task at once", got)
	}
	if d := full(); d != 1 {
		t.Fatalf("waited_total{outcome=full} grew by %v, want 1", d)
	}
	script.set(resultOK, "10.0.0.1")
	loop.refresh()
	for _, req := range []request{first, second} {
		if got := req.result(t); len(got) != 1 {
			t.Fatalf("a waiting request got %v, want the task back", got)
		}
	}
}

// The requests held through an outage go to the new task firstRelease at
// a time; each that completes lets two more go, and none is held longer
// than maxReleaseHold.
func TestSwarmReleaseFollowsCompletedRequests(t *testing.T) {
	clk, script, loop, su := waitTestSource(t, "tasks.wait-release", 10*time.Second)
	held := make([]request, firstRelease+3)
	cancels := make([]context.CancelFunc, len(held))
	for i := range held {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		held[i], cancels[i] = startRequest(su, ctx), cancel
		awaitParked(t, clk, i == 0)
	}
	script.set(resultOK, "10.0.0.1")
	loop.refresh()

	// firstRelease go at once; the rest wait for their turn
	released := map[int]bool{}
	for range firstRelease {
		released[awaitReleased(t, held, released)] = true
	}
	for range 3 {
		if d := clk.awaitWait(t); d != maxReleaseHold {
			t.Fatalf("a request beyond the first %d is held %v, want at most %v", firstRelease, d, maxReleaseHold)
		}
	}
	for i, req := range held {
		if !released[i] {
			req.assertWaiting(t)
		}
	}

	// one released request completes: two more go
	for i := range held {
		if released[i] {
			cancels[i]()
			break
		}
	}
	for range 2 {
		released[awaitReleased(t, held, released)] = true
	}
	last := -1
	for i := range held {
		if !released[i] {
			last = i
			held[i].assertWaiting(t)
		}
	}

	// nothing completes any more: the last goes after maxReleaseHold
	clk.Advance(maxReleaseHold)
	if got := held[last].result(t); len(got) != 1 {
		t.Fatalf("the last held request got %v, want the task", got)
	}
}

// awaitReleased returns the index of a held request, not yet in released,
// that returns with the task, failing t if none does (a deadlock guard).
func awaitReleased(t *testing.T, held []request, released map[int]bool) int {
	t.Helper()
	var cases []reflect.SelectCase
	var index []int
	for i, req := range held {
		if !released[i] {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(req.dials)})
			index = append(index, i)
		}
	}
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(time.After(5 * time.Second))})
	chosen, got, _ := reflect.Select(cases)
	if chosen == len(index) {
		t.Fatalf("no held request was released; %d were", len(released))
	}
	if dials := got.Interface().([]string); len(dials) != 1 {
		t.Fatalf("a released request got %v, want the task", dials)
	}
	return index[chosen]
}

func TestSwarmNoWait(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		_, _, _, su := waitTestSource(t, "tasks.wait-off", 0)
		if got := startRequest(su, context.Background()).result(t); len(got) != 0 {
			t.Fatalf("got %v, want no task at once", got)
		}
	})
	t.Run("never had a task", func(t *testing.T) {
		_, script, loop, pool := newTestPool(t, poolKey{port: 80})
		script.set(resultEmpty)
		loop.refresh()
		loop.refresh()
		su := &Upstreams{Name: "tasks.app", pool: pool, logger: swarmLog(), waitBound: 10 * time.Second}
		if got := startRequest(su, context.Background()).result(t); len(got) != 0 {
			t.Fatalf("got %v, want no task at once", got)
		}
	})
}

// closedPort returns a port on 127.0.0.1 that refuses connections.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// loopbackTaskSource is a source with a 10s wait_for_tasks whose one task
// is 127.0.0.1:port.
func loopbackTaskSource(t *testing.T, port int) (*fakeLoopClock, *scriptedLookup, *dnsLoop, *taskPool, *Upstreams) {
	t.Helper()
	clk, script, loop, pool := newTestPool(t, poolKey{port: uint16(port)})
	t.Cleanup(pool.stop)
	script.set(resultOK, "127.0.0.1")
	loop.refresh()
	su := &Upstreams{Name: "tasks.app", pool: pool, logger: swarmLog(), waitBound: 10 * time.Second}
	return clk, script, loop, pool, su
}

func TestSwarmWaitWhileEveryTaskRefuses(t *testing.T) {
	port := closedPort(t)
	clk, _, _, pool, su := loopbackTaskSource(t, port)
	dial := "127.0.0.1:" + strconv.Itoa(port)

	// a retry: the check finds that no task accepts, and the retry waits
	_ = su.ResetCache(nil)
	req := startRequest(su, context.Background())
	awaitParked(t, clk, true)
	if pool.waits.outage.Load() == nil {
		t.Fatal("no outage after every task refused")
	}

	// the task listens again: the watcher's next check ends the wait
	ln, err := net.Listen("tcp", dial)
	if err != nil {
		t.Skipf("port %d taken meanwhile: %v", port, err)
	}
	defer ln.Close()
	clk.Advance(outageRecheck)
	if got := req.result(t); !slices.Equal(got, []string{dial}) {
		t.Fatalf("got %v, want %s", got, dial)
	}

	// a retry while a task accepts: no outage, no wait
	clk.Advance(outageRecheck)
	_ = su.ResetCache(nil)
	if got := startRequest(su, context.Background()).result(t); !slices.Equal(got, []string{dial}) {
		t.Fatalf("got %v, want %s at once", got, dial)
	}
	if pool.waits.outage.Load() != nil {
		t.Fatal("an outage while the task accepts connections")
	}
}

// A stop-first update: DNS drops the only task a second before it stops,
// the set keeps it until a second empty answer, and a request fails on it
// (Caddy has marked it down) while it still accepts connections. The retry
// waits for the new task instead of getting a 503.
func TestSwarmWaitWhenDNSWithdrewTheTasks(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	clk, script, loop, pool, su := loopbackTaskSource(t, port)

	// one empty answer: the task is kept and still accepts, so a retry
	// after a failure on it waits
	script.set(resultEmpty)
	loop.refresh()
	if got := served(pool); len(got) != 1 {
		t.Fatalf("served %v after one empty answer, want the task kept", got)
	}
	_ = su.ResetCache(nil)
	req := startRequest(su, context.Background())
	awaitParked(t, clk, true)
	if pool.waits.outage.Load() == nil {
		t.Fatal("no outage after a failure on a task DNS no longer lists")
	}

	// the new task appears: the waiting request goes there
	script.set(resultOK, "127.0.0.2")
	loop.refresh()
	want := "127.0.0.2:" + strconv.Itoa(port)
	if got := req.result(t); !slices.Equal(got, []string{want}) {
		t.Fatalf("got %v, want the new task %s", got, want)
	}
}

func TestSwarmExpiredRefusalOutageEndsWhenTheTaskAcceptsAgain(t *testing.T) {
	port := closedPort(t)
	clk, _, _, pool, su := loopbackTaskSource(t, port)
	dial := "127.0.0.1:" + strconv.Itoa(port)

	_ = su.ResetCache(nil)
	awaitReachCheck(pool)
	if pool.waits.outage.Load() == nil {
		t.Fatal("no outage after every task refused")
	}
	clk.Advance(11 * time.Second) // past the bound, nobody waiting

	// the task accepts again and requests succeed, so no retry comes: the
	// requests themselves have the outage checked, so that the next loss
	// of the tasks starts a new one
	ln, err := net.Listen("tcp", dial)
	if err != nil {
		t.Skipf("port %d taken meanwhile: %v", port, err)
	}
	defer ln.Close()
	if got := startRequest(su, context.Background()).result(t); !slices.Equal(got, []string{dial}) {
		t.Fatalf("got %v, want %s at once", got, dial)
	}
	if check := pool.waits.check.Load(); check != nil {
		<-check.done
	}
	if since := pool.waits.outage.Load(); since != nil {
		t.Fatalf("the outage since %v goes on while the task accepts connections", since.since)
	}
}

// A reach check whose dials time out (a fresh task busy with the requests
// just released onto it, say) starts no outage: only refusals do.
func TestSwarmReachCheckCountsOnlyRefusals(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantOutage bool
	}{
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"no route to the task", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, true},
		{"timed out", &net.OpError{Op: "dial", Err: context.DeadlineExceeded}, false},
		{"accepted", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, pool, su := loopbackTaskSource(t, 8080)
			pool.dialReach = func(context.Context, string) error { return tt.err }
			_ = su.ResetCache(nil)
			awaitReachCheck(pool)
			if got := pool.waits.outage.Load() != nil; got != tt.wantOutage {
				t.Fatalf("outage %v after a reach check whose dial returned %v, want %v", got, tt.err, tt.wantOutage)
			}
		})
	}
}

// awaitReachCheck returns once the pool's reach check in flight, if any,
// has ended and its result is applied.
func awaitReachCheck(pool *taskPool) {
	if check := pool.waits.check.Load(); check != nil {
		<-check.done
	}
}
