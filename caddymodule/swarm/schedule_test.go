package swarm

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// Many loops share one goroutine and one timer: when their refreshes
// fall due together, the schedule starts them all and then waits once,
// for the next, not once per loop.
func TestSwarmScheduleWaitsOnceForLoopsDueTogether(t *testing.T) {
	const loops = 50
	clk := newFakeLoopClock()
	schedule := newRefreshSchedule(clk)
	lookups := make(chan struct{}, loops)
	for i := range loops {
		loop := newDNSLoop(resolverKey{name: fmt.Sprintf("tasks.s%d", i), resolvers: "127.0.0.1:53", versions: "ipv4"}, schedule)
		loop.begin = func(tag uint64, done lookupDone) {
			lookups <- struct{}{}
			done(tag, []netip.Addr{netip.MustParseAddr("10.0.0.1")}, resultOK, nil)
		}
		loop.addUser(&Upstreams{}, loopSettings{refresh: time.Second, dialTimeout: time.Second})
		runLoop(t, loop)
	}
	awaitLookups := func(round int) {
		t.Helper()
		for i := range loops {
			select {
			case <-lookups:
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: %d of %d lookups started", round, i, loops)
			}
		}
	}
	awaitLookups(0)
	// the first lookups start as the loops are added, one wait each at most
	for quiet := false; !quiet; {
		select {
		case <-clk.waits:
		case <-time.After(100 * time.Millisecond):
			quiet = true
		}
	}
	for round := 1; round <= 3; round++ {
		clk.Advance(time.Second)
		awaitLookups(round)
		if d := clk.awaitWait(t); d != time.Second {
			t.Fatalf("round %d: waits %v, want the refresh interval 1s", round, d)
		}
		select {
		case d := <-clk.waits:
			t.Fatalf("round %d: a second wait (%v) for loops due together", round, d)
		case <-time.After(50 * time.Millisecond): // time to misbehave; it must not
		}
	}
}

// The schedule's goroutine ends with its last loop, and a loop added
// later starts it again.
func TestSwarmScheduleRunsOnlyWhileItHasLoops(t *testing.T) {
	clk := newFakeLoopClock()
	schedule := newRefreshSchedule(clk)
	running := func() bool {
		schedule.mu.Lock()
		defer schedule.mu.Unlock()
		return schedule.running
	}
	for round := range 2 {
		loop := newDNSLoop(resolverKey{name: "tasks.app", resolvers: "127.0.0.1:53", versions: "ipv4"}, schedule)
		looked := make(chan struct{}, 1)
		loop.begin = func(tag uint64, done lookupDone) {
			looked <- struct{}{}
			done(tag, nil, resultEmpty, nil)
		}
		loop.addUser(&Upstreams{}, loopSettings{refresh: time.Second, dialTimeout: time.Second})
		schedule.add(loop)
		select {
		case <-looked:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: the loop's first lookup never started", round)
		}
		loop.stop()
		<-loop.done
		deadline := time.Now().Add(5 * time.Second)
		for running() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the schedule still runs with no loop", round)
			}
			time.Sleep(time.Millisecond)
		}
	}
}
