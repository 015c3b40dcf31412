package swarm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/caddymodule/internal/metricstest"

	"github.com/miekg/dns"
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
			_, script, loop, pool := newTestPool(t, poolKey{port: 80})
			script.set(resultOK, "10.0.0.1")
			loop.refresh()
			for _, r := range tc.sequence {
				if r == resultOK {
					script.set(resultOK, "10.0.0.1")
				} else {
					script.set(r)
				}
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
	<-loop.early // drain, so the loop below starts with no request pending

	go loop.run()
	t.Cleanup(func() { loop.stop(); <-loop.done })
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
	if d := clk.awaitWait(t); d != time.Second {
		t.Fatalf("parked for %v after the early re-resolve, want 1s", d)
	}

	// long enough after the last lookup: at once, before the interval
	clk.Advance(500 * time.Millisecond)
	_ = su.ResetCache(nil)
	awaitLookup(t, script)
	clk.awaitWait(t)
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
	loop.lookup = func(ctx context.Context) ([]netip.Addr, refreshResult, error) {
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
	}
	go loop.run()
	t.Cleanup(func() { loop.stop(); <-loop.done })

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
	loop := newDNSLoop(resolverKey{name: "tasks.app", resolvers: "127.0.0.1:53", versions: "ipv4"}, newFakeLoopClock())
	a, b := &Upstreams{}, &Upstreams{}
	loop.addUser(a, loopSettings{refresh: 5 * time.Second, dialTimeout: time.Second, dialFallbackDelay: -1})
	loop.addUser(b, loopSettings{refresh: time.Second, dialTimeout: 3 * time.Second})
	if got, want := loop.currentSettings(), (loopSettings{time.Second, time.Second, -1}); got != want {
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

func TestSwarmReadAnswer(t *testing.T) {
	const qname = "tasks.app."
	a := func(name, ip string) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.ParseIP(ip)}
	}
	cname := func(name, target string) dns.RR {
		return &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: target}
	}
	aaaa := &dns.AAAA{Hdr: dns.RR_Header{Name: qname, Rrtype: dns.TypeAAAA, Class: dns.ClassINET}, AAAA: net.ParseIP("fd00::1")}
	txt := &dns.TXT{Hdr: dns.RR_Header{Name: qname, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"x"}}

	for _, tc := range []struct {
		name       string
		question   string
		rcode      int
		answer     []dns.RR
		wantAddrs  []string
		wantResult refreshResult
		wantErr    string
	}{
		{name: "a records", answer: []dns.RR{a(qname, "10.0.0.1"), a("TASKS.APP.", "10.0.0.2")},
			wantAddrs: []string{"10.0.0.1", "10.0.0.2"}, wantResult: resultOK},
		{name: "cname chain", answer: []dns.RR{cname(qname, "b.example."), cname("b.example.", "c.example."), a("c.example.", "10.0.0.9")},
			wantAddrs: []string{"10.0.0.9"}, wantResult: resultOK},
		{name: "unrelated records ignored", answer: []dns.RR{a(qname, "10.0.0.1"), a("other.example.", "10.9.9.9"), txt, aaaa},
			wantAddrs: []string{"10.0.0.1"}, wantResult: resultOK},
		{name: "unspecified address skipped", answer: []dns.RR{a(qname, "0.0.0.0"), a(qname, "10.0.0.1")},
			wantAddrs: []string{"10.0.0.1"}, wantResult: resultOK},
		{name: "empty", wantResult: resultEmpty, wantErr: "no A record"},
		{name: "dangling cname", answer: []dns.RR{cname(qname, "gone.example.")},
			wantResult: resultError, wantErr: "no usable A record"},
		{name: "only other types", answer: []dns.RR{txt, aaaa},
			wantResult: resultError, wantErr: "among 2 records"},
		{name: "other name", answer: []dns.RR{a("evil.example.", "10.0.0.1")},
			wantResult: resultError, wantErr: "no usable A record"},
		{name: "wrong question", question: "tasks.other.", answer: []dns.RR{a("tasks.other.", "10.0.0.1")},
			wantResult: resultError, wantErr: "does not match the question"},
		{name: "nxdomain", rcode: dns.RcodeNameError, wantResult: resultNXDomain, wantErr: "NXDOMAIN"},
		{name: "servfail", rcode: dns.RcodeServerFailure, wantResult: resultServFail, wantErr: "SERVFAIL"},
		{name: "refused", rcode: dns.RcodeRefused, wantResult: resultError, wantErr: "REFUSED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := new(dns.Msg)
			resp.SetQuestion(qname, dns.TypeA)
			if tc.question != "" {
				resp.SetQuestion(tc.question, dns.TypeA)
			}
			resp.Rcode = tc.rcode
			resp.Answer = tc.answer
			addrs, result, err := readAnswer(resp, qname, dns.TypeA)
			if result != tc.wantResult {
				t.Errorf("result %q, want %q", result, tc.wantResult)
			}
			if got := addrStrings(addrs); !slices.Equal(got, tc.wantAddrs) {
				t.Errorf("addresses %v, want %v", got, tc.wantAddrs)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func addrStrings(addrs []netip.Addr) []string {
	var s []string
	for _, a := range addrs {
		s = append(s, a.String())
	}
	return s
}

// TestSwarmQueryFindsAllTasksOfATruncatedAnswer asks a real server over UDP
// that truncates at 512 bytes, as Docker does: the TCP retry finds all.
func TestSwarmQueryFindsAllTasksOfATruncatedAnswer(t *testing.T) {
	var all []string
	for i := range 100 {
		all = append(all, fmt.Sprintf("10.0.%d.%d", i/50, i%50+2))
	}
	srv := startTestDNSServer(t, func(q dns.Question) *dns.Msg {
		answer := aRecords(q.Name, all...)
		rand := slices.Clone(answer.Answer)
		slices.Reverse(rand) // an order other than sorted
		answer.Answer = rand
		return answer
	})
	loop := newDNSLoop(resolverKey{name: "tasks.big", resolvers: srv.addr, versions: "ipv4"}, realClock{})
	loop.addUser(&Upstreams{}, loopSettings{refresh: time.Second, dialTimeout: time.Second})

	addrs, result, err := loop.lookup(context.Background())
	if result != resultOK || err != nil {
		t.Fatalf("result %q, error %v", result, err)
	}
	got := addrStrings(addrs)
	slices.Sort(got)
	want := slices.Sorted(slices.Values(all))
	if !slices.Equal(got, want) {
		t.Fatalf("found %d of %d tasks", len(got), len(all))
	}
	if srv.udpQueries.Load() != 1 || srv.tcpQueries.Load() != 1 {
		t.Fatalf("queries: %d over UDP, %d over TCP; want 1 and 1", srv.udpQueries.Load(), srv.tcpQueries.Load())
	}
}

func TestSwarmQueryOutcomesFromARealServer(t *testing.T) {
	srv := startTestDNSServer(t, func(q dns.Question) *dns.Msg {
		switch q.Name {
		case "tasks.small.":
			if q.Qtype == dns.TypeAAAA {
				return new(dns.Msg) // no IPv6 task
			}
			return aRecords(q.Name, "10.0.0.1", "10.0.0.2")
		case "tasks.nx.":
			return &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeNameError}}
		case "tasks.fail.":
			return &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeServerFailure}}
		case "tasks.empty.":
			return new(dns.Msg)
		default: // tasks.silent.
			return nil
		}
	})
	for _, tc := range []struct {
		name, versions string
		wantResult     refreshResult
		wantTasks      int
	}{
		{"tasks.small", "ipv4", resultOK, 2},
		{"tasks.small", "ipv4 ipv6", resultOK, 2},
		{"tasks.nx", "ipv4", resultNXDomain, 0},
		{"tasks.fail", "ipv4", resultServFail, 0},
		{"tasks.empty", "ipv4", resultEmpty, 0},
		{"tasks.garbage", "ipv4", resultError, 0},
		{"tasks.silent", "ipv4", resultTimeout, 0},
	} {
		t.Run(tc.name+" "+tc.versions, func(t *testing.T) {
			loop := newDNSLoop(resolverKey{name: tc.name, resolvers: srv.addr, versions: tc.versions}, realClock{})
			loop.addUser(&Upstreams{}, loopSettings{refresh: time.Second, dialTimeout: time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			addrs, result, err := loop.lookup(ctx)
			if result != tc.wantResult || len(addrs) != tc.wantTasks {
				t.Fatalf("result %q with %d tasks (error %v); want %q with %d", result, len(addrs), err, tc.wantResult, tc.wantTasks)
			}
			if (err == nil) != (result == resultOK) {
				t.Fatalf("result %q with error %v: want an error exactly when not ok", result, err)
			}
		})
	}
}

func TestSwarmQueryTriesTheNextResolver(t *testing.T) {
	failing := startTestDNSServer(t, func(dns.Question) *dns.Msg {
		return &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeServerFailure}}
	})
	working := startTestDNSServer(t, func(q dns.Question) *dns.Msg { return aRecords(q.Name, "10.0.0.7") })
	loop := newDNSLoop(resolverKey{name: "tasks.app", resolvers: failing.addr + "," + working.addr, versions: "ipv4"}, realClock{})
	loop.addUser(&Upstreams{}, loopSettings{refresh: time.Second, dialTimeout: time.Second})
	addrs, result, err := loop.lookup(context.Background())
	if result != resultOK || !slices.Equal(addrStrings(addrs), []string{"10.0.0.7"}) {
		t.Fatalf("result %q, addresses %v, error %v", result, addrs, err)
	}
}

func TestSwarmStoppedLoopStopsWaitingForAnAnswer(t *testing.T) {
	asked := make(chan struct{}, 1)
	srv := startTestDNSServer(t, func(dns.Question) *dns.Msg {
		select {
		case asked <- struct{}{}:
		default:
		}
		return nil // never answers
	})
	loop := newDNSLoop(resolverKey{name: "tasks.silent", resolvers: srv.addr, versions: "ipv4"}, realClock{})
	loop.addUser(&Upstreams{}, loopSettings{refresh: time.Second, dialTimeout: time.Second})
	go loop.run()
	<-asked
	loop.stop()
	select {
	case <-loop.done:
	case <-time.After(5 * time.Second): // the query timeout is 15 s
		t.Fatal("the loop kept waiting for an answer after it was stopped")
	}
	if st := loop.status.Load(); st.lastResult != "" {
		t.Fatalf("a stopped loop applied a result: %q", st.lastResult)
	}
}
