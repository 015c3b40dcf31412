package swarm

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

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

// BenchmarkRefreshUnchanged is one refresh of a 20-task service whose
// answer has not changed, over a real local UDP server: the idle cost per
// service and refresh interval (the server's share included).
func BenchmarkRefreshUnchanged(b *testing.B) {
	var tasks []string
	for i := range 20 {
		tasks = append(tasks, fmt.Sprintf("10.0.0.%d", i+2))
	}
	srv := startTestDNSServer(b, func(q dns.Question) *dns.Msg { return aRecords(q.Name, tasks...) })
	loop := newDNSLoop(resolverKey{name: "tasks.bench", resolvers: srv.addr, versions: "ipv4"}, realClock{})
	loop.addUser(&Upstreams{}, loopSettings{refresh: time.Second, dialTimeout: time.Second})
	pool := newTaskPool(poolKey{resolverKey: loop.key, port: 80, maxStale: time.Minute}, loop, realClock{})
	loop.attach(pool)
	b.Cleanup(loop.stop)
	loop.refresh()
	if got := len(served(pool)); got != 20 {
		b.Fatalf("served %d tasks, want 20", got)
	}
	before := pool.snapshot.Load()
	b.ReportAllocs()
	for b.Loop() {
		loop.refresh()
	}
	if pool.snapshot.Load() != before {
		b.Fatal("an unchanged answer replaced the snapshot")
	}
}
