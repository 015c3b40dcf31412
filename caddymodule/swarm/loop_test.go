package swarm

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/caddymodule/internal/metricstest"
)

func TestSwarmFailureKeepsLastGoodSetUntilMaxStale(t *testing.T) {
	clk, script, loop, pool := newTestPool(t, poolKey{port: 8080, maxStale: 5 * time.Minute})

	script.set(resultOK, "10.0.0.2", "10.0.0.1")
	loop.refresh()
	want := []string{"10.0.0.1:8080", "10.0.0.2:8080"}
	if got := served(pool); !slices.Equal(got, want) {
		t.Fatalf("after a good answer: served %v, want %v", got, want)
	}

	for _, failure := range []refreshResult{resultTimeout, resultServFail, resultError} {
		clk.Advance(time.Minute)
		script.set(failure)
		loop.refresh()
		if got := served(pool); !slices.Equal(got, want) {
			t.Fatalf("%s within max_stale: served %v, want the last good %v", failure, got, want)
		}
		if st := loop.status.Load(); st.lastResult != failure || st.lastErr == nil {
			t.Fatalf("status after %s: result %q, error %v", failure, st.lastResult, st.lastErr)
		}
	}

	clk.Advance(2 * time.Minute) // exactly max_stale since the good answer
	loop.refresh()
	if got := served(pool); !slices.Equal(got, want) {
		t.Fatalf("at max_stale: served %v, want the last good %v", got, want)
	}
	clk.Advance(time.Nanosecond)
	loop.refresh()
	if got := served(pool); len(got) != 0 || !pool.snapshot.Load().stale {
		t.Fatalf("past max_stale: served %v (stale %v), want none", got, pool.snapshot.Load().stale)
	}

	script.set(resultOK, "10.0.0.3")
	loop.refresh()
	if got := served(pool); !slices.Equal(got, []string{"10.0.0.3:8080"}) || pool.snapshot.Load().stale {
		t.Fatalf("after recovery: served %v, want [10.0.0.3:8080]", got)
	}
}

func TestSwarmEmptyAnswersEmptyTheSetOnlyTwiceInARow(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sequence []refreshResult // after one good answer
		wantKept bool
	}{
		{"one empty", []refreshResult{resultEmpty}, true},
		{"one nxdomain", []refreshResult{resultNXDomain}, true},
		{"two empty", []refreshResult{resultEmpty, resultEmpty}, false},
		{"two nxdomain", []refreshResult{resultNXDomain, resultNXDomain}, false},
		{"empty then nxdomain", []refreshResult{resultEmpty, resultNXDomain}, false},
		{"ok between", []refreshResult{resultEmpty, resultOK, resultEmpty}, true},
		{"failure between", []refreshResult{resultNXDomain, resultTimeout, resultNXDomain}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk, script, loop, pool := newTestPool(t, poolKey{port: 80})
			script.set(resultOK, "10.0.0.1")
			loop.refresh()
			for _, r := range tc.sequence {
				if r == resultOK {
					script.set(resultOK, "10.0.0.1")
				} else {
					script.set(r)
				}
				clk.Advance(time.Second) // the refresh interval
				loop.refresh()
			}
			if kept := len(served(pool)) == 1; kept != tc.wantKept {
				t.Fatalf("served %v; want the task kept: %v", served(pool), tc.wantKept)
			}
		})
	}
}

func TestSwarmUnchangedSetIsNotRepublished(t *testing.T) {
	_, script, loop, pool := newTestPool(t, poolKey{port: 80})
	script.set(resultOK, "10.0.0.2", "10.0.0.1", "10.0.0.3")
	loop.refresh()
	before := pool.snapshot.Load()

	// Docker shuffles every answer; a stale record may come twice
	script.set(resultOK, "10.0.0.3", "10.0.0.1", "10.0.0.2", "10.0.0.1")
	loop.refresh()
	if after := pool.snapshot.Load(); after != before {
		t.Fatalf("a reordered answer replaced the snapshot: %v -> %v", before.dials, after.dials)
	}
	want := []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}
	if got := served(pool); !slices.Equal(got, want) {
		t.Fatalf("served %v, want %v", got, want)
	}
}

func TestSwarmRefreshesAreCountedByResult(t *testing.T) {
	_, script, loop, _ := newTestPool(t, poolKey{resolverKey: resolverKey{name: "tasks.counted", versions: "ipv4"}})
	servfails := metricstest.CounterDelta(t, swarmMetrics.refreshes.WithLabelValues("tasks.counted", "servfail"))
	script.set(resultServFail)
	loop.refresh()
	loop.refresh()
	if got := servfails(); got != 2 {
		t.Fatalf("servfail refreshes counted %v, want 2", got)
	}
}

func TestSwarmResetCacheTriggersEarlyRateLimitedRefresh(t *testing.T) {
	clk, script, loop, pool := newTestPool(t, poolKey{port: 80})
	su := &Upstreams{pool: pool}

	// not running: a second request merges with the pending one instead of
	// blocking the caller
	for range 3 {
		if err := su.ResetCache(nil); err != nil {
			t.Fatal(err)
		}
	}
	runLoop(t, loop)
	awaitLookup(t, script)
	if d := clk.awaitWait(t); d != time.Second {
		t.Fatalf("parked for %v, want the refresh interval 1s", d)
	}

	// right after a lookup: the early re-resolve waits out the gap
	_ = su.ResetCache(nil)
	if d := clk.awaitWait(t); d != minEarlyRefreshGap {
		t.Fatalf("early re-resolve waits %v, want %v", d, minEarlyRefreshGap)
	}
	assertNoLookup(t, script)
	clk.Advance(minEarlyRefreshGap)
	awaitLookup(t, script)
	// a refresh interval after the 100ms tick the early lookup fell in
	// (at 250ms: due at 1.2s), so that the interval never exceeds refresh
	if d := clk.awaitWait(t); d != 950*time.Millisecond {
		t.Fatalf("parked for %v after the early re-resolve, want 950ms", d)
	}

	// long enough after the last lookup: at once, before the interval
	clk.Advance(500 * time.Millisecond)
	_ = su.ResetCache(nil)
	awaitLookup(t, script)
	if d := clk.awaitWait(t); d != 950*time.Millisecond {
		t.Fatalf("parked for %v after the second early re-resolve, want 950ms", d)
	}
}

// Early re-resolves (ResetCache on retries) come within milliseconds; two
// empty answers that close together must not empty the set, as they may
// both stem from one passing glitch. The rule needs a refresh interval
// between the first and the confirming one.
func TestSwarmEmptyAnswersConfirmOnlyARefreshIntervalApart(t *testing.T) {
	clk, script, loop, pool := newTestPool(t, poolKey{port: 80})
	script.set(resultOK, "10.0.0.1")
	loop.refresh()

	script.set(resultEmpty)
	loop.refresh()
	for _, step := range []time.Duration{minEarlyRefreshGap, minEarlyRefreshGap, minEarlyRefreshGap} {
		clk.Advance(step)
		loop.refresh()
		if got := served(pool); len(got) != 1 {
			t.Fatalf("%d empty answers within %v: served %v, want the task kept",
				loop.status.Load().emptyStreak, clk.Now().Sub(loop.status.Load().emptySince), got)
		}
	}
	clk.Advance(minEarlyRefreshGap) // a refresh interval (1s) after the first empty answer
	loop.refresh()
	if got := served(pool); len(got) != 0 {
		t.Fatalf("empty answers a refresh interval apart: served %v, want none", got)
	}
}

// A reload that shortens refresh must take effect at once, not after the
// loop's current, longer wait.
func TestSwarmReloadShorteningRefreshWakesTheLoop(t *testing.T) {
	clk, script, loop, _ := newTestPool(t, poolKey{port: 80})
	old := &Upstreams{}
	loop.addUser(old, loopSettings{refresh: time.Hour, dialTimeout: time.Second})
	for u := range loop.users {
		if u != old {
			loop.removeUser(u) // newTestPool's user, with its 1s
		}
	}
	runLoop(t, loop)
	awaitLookup(t, script)
	if d := clk.awaitWait(t); d != time.Hour {
		t.Fatalf("parked for %v, want the refresh interval 1h", d)
	}

	clk.Advance(10 * time.Second)
	loop.addUser(&Upstreams{}, loopSettings{refresh: 30 * time.Second, dialTimeout: time.Second})
	if d := clk.awaitWait(t); d != 20*time.Second {
		t.Fatalf("after the reload parked for %v, want the rest of the new interval, 20s", d)
	}
	assertNoLookup(t, script)
	clk.Advance(20 * time.Second)
	awaitLookup(t, script)

	// shortened below the time already waited: a lookup at once
	if d := clk.awaitWait(t); d != 30*time.Second {
		t.Fatalf("parked for %v, want 30s", d)
	}
	clk.Advance(5 * time.Second)
	loop.addUser(&Upstreams{}, loopSettings{refresh: 2 * time.Second, dialTimeout: time.Second})
	awaitLookup(t, script)
}

// At most maxLookupsInFlight lookups overlap: with that many hanging, the
// loop starts no further one, however much time passes, until one ends.
func TestSwarmLookupCapHoldsBackFurtherLookups(t *testing.T) {
	clk, _, loop, _ := newTestPool(t, poolKey{port: 80})
	release := make(chan struct{})
	started := make(chan struct{}, 2*maxLookupsInFlight)
	loop.begin = inGoroutine(loop, func(ctx context.Context) ([]netip.Addr, refreshResult, error) {
		started <- struct{}{}
		select {
		case <-release:
			return nil, resultTimeout, errors.New("released")
		case <-ctx.Done():
			return nil, resultTimeout, ctx.Err()
		}
	})
	runLoop(t, loop)

	for i := range maxLookupsInFlight {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatalf("lookup %d never started", i+1)
		}
		if i < maxLookupsInFlight-1 {
			clk.awaitWait(t)
			clk.Advance(time.Second)
		}
	}
	// the loop now waits for a free slot, not on the clock
	clk.Advance(time.Minute)
	select {
	case <-started:
		t.Fatalf("a lookup started beyond the cap of %d", maxLookupsInFlight)
	case <-clk.waits:
		t.Fatal("the loop waited on the clock with every slot taken")
	case <-time.After(50 * time.Millisecond): // the loop had time to misbehave; it must not
	}
	release <- struct{}{}
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("no lookup started after one ended")
	}
}

func awaitLookup(t *testing.T, script *scriptedLookup) {
	t.Helper()
	select {
	case <-script.calls:
	case <-time.After(5 * time.Second):
		t.Fatal("no lookup happened")
	}
}

func assertNoLookup(t *testing.T, script *scriptedLookup) {
	t.Helper()
	select {
	case <-script.calls:
		t.Fatal("a lookup happened before its time")
	default:
	}
}

// A slow lookup (Docker's NXDOMAIN for a service with no task takes up to
// 12 s) must not hold back the next one: tasks started meanwhile are found
// one interval later, and the slow answer, older, does not undo that.
func TestSwarmSlowLookupDoesNotHoldBackTheNext(t *testing.T) {
	clk, _, loop, pool := newTestPool(t, poolKey{resolverKey: resolverKey{name: "tasks.slow", versions: "ipv4"}, port: 80})
	nxdomains := metricstest.CounterDelta(t, swarmMetrics.refreshes.WithLabelValues("tasks.slow", "nxdomain"))
	slowAnswer := make(chan struct{})
	var calls atomic.Int32
	started := make(chan struct{}, 10)
	loop.begin = inGoroutine(loop, func(ctx context.Context) ([]netip.Addr, refreshResult, error) {
		started <- struct{}{}
		if calls.Add(1) == 1 {
			select {
			case <-slowAnswer:
				return nil, resultNXDomain, errors.New("NXDOMAIN")
			case <-ctx.Done():
				return nil, resultTimeout, ctx.Err()
			}
		}
		return []netip.Addr{netip.MustParseAddr("10.0.0.1")}, resultOK, nil
	})
	runLoop(t, loop)

	awaitStart := func(what string) {
		t.Helper()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s never started", what)
		}
	}
	awaitStart("the first lookup")
	if d := clk.awaitWait(t); d != time.Second {
		t.Fatalf("parked for %v, want the refresh interval 1s", d)
	}
	clk.Advance(time.Second)
	awaitStart("a lookup while the first still runs")
	select {
	case <-loop.firstAnswer:
	case <-time.After(5 * time.Second):
		t.Fatal("the second lookup's answer was not applied")
	}
	if got := served(pool); !slices.Equal(got, []string{"10.0.0.1:80"}) {
		t.Fatalf("served %v while the first lookup runs, want [10.0.0.1:80]", got)
	}

	close(slowAnswer)
	deadline := time.Now().Add(5 * time.Second)
	for nxdomains() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slow answer never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	if got, st := served(pool), loop.status.Load(); !slices.Equal(got, []string{"10.0.0.1:80"}) || st.lastResult != resultOK || st.emptyStreak != 0 {
		t.Fatalf("after the older, slow NXDOMAIN: served %v, last result %q, empty streak %d; want it ignored", got, st.lastResult, st.emptyStreak)
	}
}

func TestSwarmSharedLoopUsesShortestSettings(t *testing.T) {
	loop := newDNSLoop(resolverKey{name: "tasks.app", resolvers: "127.0.0.1:53", versions: "ipv4"}, newRefreshSchedule(newFakeLoopClock()))
	a, b := &Upstreams{}, &Upstreams{}
	loop.addUser(a, loopSettings{refresh: 5 * time.Second, dialTimeout: time.Second, dialFallbackDelay: 100 * time.Millisecond})
	loop.addUser(b, loopSettings{refresh: time.Second, dialTimeout: 3 * time.Second})
	if got, want := loop.currentSettings(), (loopSettings{time.Second, time.Second, 100 * time.Millisecond}); got != want {
		t.Fatalf("settings %+v, want %+v", got, want)
	}
	if left, was := loop.removeUser(b); left != 1 || !was {
		t.Fatalf("%d users left (was a user: %v), want 1", left, was)
	}
	if _, was := loop.removeUser(b); was {
		t.Fatal("removed a user twice")
	}
	if got := loop.currentSettings().refresh; got != 5*time.Second {
		t.Fatalf("refresh %v after the shorter user left, want 5s", got)
	}
}

// dial_fallback_delay 0 means Go's default, 300ms, and a negative one no
// Fast Fallback: neither is the shortest.
func TestSwarmSharedDialFallbackDelay(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b time.Duration
		want time.Duration
	}{
		{"set next to unset", 100 * time.Millisecond, 0, 100 * time.Millisecond},
		{"unset next to set", 0, 100 * time.Millisecond, 100 * time.Millisecond},
		{"longer than the default next to unset", time.Second, 0, 0},
		{"off next to unset", -1, 0, 0},
		{"off next to set", 500 * time.Millisecond, -1, 500 * time.Millisecond},
		{"both off", -1, -1, -1},
		{"both set", 200 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loop := newDNSLoop(resolverKey{name: "tasks.app", resolvers: "127.0.0.1:53", versions: "ipv4"}, newRefreshSchedule(newFakeLoopClock()))
			loop.addUser(&Upstreams{}, loopSettings{refresh: time.Second, dialFallbackDelay: tc.a})
			loop.addUser(&Upstreams{}, loopSettings{refresh: time.Second, dialFallbackDelay: tc.b})
			if got := loop.currentSettings().dialFallbackDelay; got != tc.want {
				t.Fatalf("dial_fallback_delay %v and %v share %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

// A lookup starts a little after the tick it was due at; the next is due
// refresh after that tick, so that refreshes come every refresh, not every
// refresh plus a tick (1.1 s for refresh 1s measured before).
func TestSwarmNextRefreshKeepsTheInterval(t *testing.T) {
	tick := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		last    time.Time
		refresh time.Duration
		want    time.Time
	}{
		{tick, time.Second, tick.Add(time.Second)},
		{tick.Add(3 * time.Millisecond), time.Second, tick.Add(time.Second)},
		{tick.Add(99 * time.Millisecond), time.Second, tick.Add(time.Second)},
		{tick.Add(3 * time.Millisecond), 250 * time.Millisecond, tick.Add(250 * time.Millisecond)},
		{tick.Add(3 * time.Millisecond), 5 * time.Second, tick.Add(5 * time.Second)},
		{tick.Add(3 * time.Millisecond), 1050 * time.Millisecond, tick.Add(1100 * time.Millisecond)}, // not on the 100ms grid: rounded up to it
	}
	for _, tt := range tests {
		if got := nextRefresh(tt.last, tt.refresh); !got.Equal(tt.want) {
			t.Errorf("nextRefresh(%v after a tick, %v) = %v after it, want %v", tt.last.Sub(tick), tt.refresh, got.Sub(tick), tt.want.Sub(tick))
		}
	}
}
