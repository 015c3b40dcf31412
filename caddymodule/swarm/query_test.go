package swarm

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
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
	loop := newQueryLoop(t, "tasks.big", "ipv4", srv.addr)

	addrs, result, err := lookupNow(loop, context.Background())
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

// newQueryLoop returns a loop for name asking resolvers, not running;
// its sockets are given back when the test ends.
func newQueryLoop(t testing.TB, name, versions string, resolvers ...string) *dnsLoop {
	loop := newDNSLoop(resolverKey{name: name, resolvers: strings.Join(resolvers, ","), versions: versions}, newRefreshSchedule(realClock{}))
	loop.addUser(&Upstreams{}, loopSettings{refresh: time.Second, dialTimeout: time.Second})
	t.Cleanup(loop.stop)
	return loop
}

// lookupWithin runs one lookup of loop with a deadline.
func lookupWithin(loop *dnsLoop, d time.Duration) ([]netip.Addr, refreshResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return lookupNow(loop, ctx)
}

func TestSwarmQueryOutcomesFromARealServer(t *testing.T) {
	srv := startTestDNSServer(t, func(q dns.Question) *dns.Msg {
		switch q.Name {
		case "tasks.small.", wrongIDName:
			if q.Qtype == dns.TypeAAAA {
				return new(dns.Msg) // no IPv6 task
			}
			return aRecords(q.Name, "10.0.0.2", "10.0.0.1")
		case "tasks.nx.":
			return &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeNameError}}
		case "tasks.fail.":
			return &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeServerFailure}}
		case "tasks.refused.":
			return &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeRefused}}
		case "tasks.empty.":
			return new(dns.Msg)
		case "tasks.twice.": // one task listed twice, in order
			return aRecords(q.Name, "10.0.0.1", "10.0.0.1", "10.0.0.2")
		case "tasks.other.": // records, none of them an address
			txt := &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"x"}}
			aaaa := &dns.AAAA{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET}, AAAA: net.ParseIP("fd00::1")}
			return &dns.Msg{Answer: []dns.RR{txt, aaaa, txt, aaaa}}
		default: // tasks.silent.
			return nil
		}
	})
	for _, tc := range []struct {
		name, versions string
		deadline       time.Duration // generous, but for the silent server
		wantResult     refreshResult
		wantAddrs      []string
		wantErr        string
	}{
		{"tasks.small", "ipv4", 10 * time.Second, resultOK, []string{"10.0.0.1", "10.0.0.2"}, ""},
		{"tasks.small", "ipv4 ipv6", 10 * time.Second, resultOK, []string{"10.0.0.1", "10.0.0.2"}, ""},
		{"tasks.twice", "ipv4", 10 * time.Second, resultOK, []string{"10.0.0.1", "10.0.0.2"}, ""},
		{"tasks.wrongid", "ipv4", 10 * time.Second, resultOK, []string{"10.0.0.1", "10.0.0.2"}, ""},
		{"tasks.nx", "ipv4", 10 * time.Second, resultNXDomain, nil, "answered: NXDOMAIN: no such name tasks.nx."},
		{"tasks.fail", "ipv4", 10 * time.Second, resultServFail, nil, "answered: SERVFAIL"},
		{"tasks.refused", "ipv4", 10 * time.Second, resultError, nil, "answered: rcode REFUSED"},
		{"tasks.empty", "ipv4", 10 * time.Second, resultEmpty, nil, "answered: no A record for tasks.empty."},
		{"tasks.garbage", "ipv4", 10 * time.Second, resultError, nil, "answered: unreadable answer"},
		{"tasks.short", "ipv4", 10 * time.Second, resultError, nil, "answered: unreadable answer"}, // no flags byte to test for TC
		{"tasks.other", "ipv4", 10 * time.Second, resultError, nil, // the first three records named
			`answered: no usable A record for tasks.other. among 4 records: tasks.other. 0 IN TXT "x"; tasks.other. 0 IN AAAA fd00::1; tasks.other. 0 IN TXT "x"; …`},
		{"tasks.silent", "ipv4", 500 * time.Millisecond, resultTimeout, nil, "context deadline exceeded"},
	} {
		t.Run(tc.name+" "+tc.versions, func(t *testing.T) {
			loop := newQueryLoop(t, tc.name, tc.versions, srv.addr)
			addrs, result, err := lookupWithin(loop, tc.deadline)
			if result != tc.wantResult || !slices.Equal(addrStrings(addrs), tc.wantAddrs) {
				t.Fatalf("result %q with %v (error %v); want %q with %v", result, addrs, err, tc.wantResult, tc.wantAddrs)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// A truncated UDP answer is asked again over TCP before its records are
// read: here the UDP answer is cut mid-record and does not even unpack.
func TestSwarmTruncatedAnswerThatDoesNotUnpackIsAskedOverTCP(t *testing.T) {
	var tasks []string
	for i := range 20 {
		tasks = append(tasks, fmt.Sprintf("10.0.0.%d", i+2))
	}
	srv := startTestDNSServer(t, func(q dns.Question) *dns.Msg { return aRecords(q.Name, tasks...) })
	loop := newQueryLoop(t, "tasks.cut", "ipv4", srv.addr)
	addrs, result, err := lookupWithin(loop, 10*time.Second)
	if result != resultOK || len(addrs) != len(tasks) {
		t.Fatalf("result %q with %d tasks (error %v), want all %d", result, len(addrs), err, len(tasks))
	}
	if srv.tcpQueries.Load() != 1 {
		t.Fatalf("%d queries over TCP, want 1", srv.tcpQueries.Load())
	}
}

// A truncated answer whose full answer over TCP has no address fails
// with an error that says the server answered that over TCP.
func TestSwarmUnusableAnswerOverTCPSaysSo(t *testing.T) {
	srv := startTestDNSServer(t, func(q dns.Question) *dns.Msg {
		txt := &dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"x"}}
		return &dns.Msg{Answer: []dns.RR{txt, txt, txt, txt}} // long enough to be cut over UDP
	})
	loop := newQueryLoop(t, "tasks.cut", "ipv4", srv.addr)
	_, result, err := lookupWithin(loop, 10*time.Second)
	want := srv.addr + " answered over TCP: no usable A record for tasks.cut."
	if result != resultError || err == nil || !strings.Contains(err.Error(), want) || srv.tcpQueries.Load() != 1 {
		t.Fatalf("result %q, error %v, %d queries over TCP; want one, and an error containing %q", result, err, srv.tcpQueries.Load(), want)
	}
}

// A truncated answer asked again over TCP, where no answer comes, is a
// timeout, like a UDP query with no answer: not an error.
func TestSwarmSilentTCPRetryIsATimeout(t *testing.T) {
	var asked atomic.Int32
	srv := startTestDNSServer(t, func(q dns.Question) *dns.Msg {
		if asked.Add(1) > 1 { // the TCP retry after the first, UDP, answer
			return nil
		}
		return aRecords(q.Name, "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4") // cut over UDP
	})
	loop := newQueryLoop(t, "tasks.cut", "ipv4", srv.addr)
	_, result, err := lookupWithin(loop, 2*time.Second)
	if result != resultTimeout || err == nil || !strings.Contains(err.Error(), "over TCP: ") || srv.tcpQueries.Load() != 1 {
		t.Fatalf("result %q, error %v, %d queries over TCP; want one, timed out", result, err, srv.tcpQueries.Load())
	}
}

// With several resolvers, a failure moves on to the next; an answer that
// settles the question (addresses, empty, NXDOMAIN) does not.
func TestSwarmQueryTriesTheNextResolverOnFailureOnly(t *testing.T) {
	answering := func(msg *dns.Msg) *testDNSServer {
		return startTestDNSServer(t, func(q dns.Question) *dns.Msg {
			if msg == nil {
				return nil
			}
			m := msg.Copy()
			for _, rr := range m.Answer {
				rr.Header().Name = q.Name
			}
			return m
		})
	}
	closed := closedUDPPort(t)
	for _, tc := range []struct {
		name       string
		first      string // address of the first resolver
		wantResult refreshResult
		wantNext   bool // the second resolver was asked
		wantErr    string
	}{
		{"servfail", answering(&dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeServerFailure}}).addr, resultOK, true, ""},
		{"refused", answering(&dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeRefused}}).addr, resultOK, true, ""},
		{"port closed", closed, resultOK, true, ""},
		{"nxdomain", answering(&dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeNameError}}).addr, resultNXDomain, false, "NXDOMAIN"},
		{"empty", answering(new(dns.Msg)).addr, resultEmpty, false, "no A record"},
		{"addresses", answering(aRecords("x.", "10.0.0.8")).addr, resultOK, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			second := answering(aRecords("x.", "10.0.0.7"))
			loop := newQueryLoop(t, "tasks.app", "ipv4", tc.first, second.addr)
			addrs, result, err := lookupWithin(loop, 10*time.Second)
			asked := second.udpQueries.Load() > 0
			if result != tc.wantResult || asked != tc.wantNext {
				t.Fatalf("result %q, addresses %v, error %v, second resolver asked: %v; want %q, asked: %v",
					result, addrs, err, asked, tc.wantResult, tc.wantNext)
			}
			if tc.wantNext && !slices.Equal(addrStrings(addrs), []string{"10.0.0.7"}) {
				t.Fatalf("addresses %v, want the second resolver's", addrs)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	t.Run("garbage", func(t *testing.T) {
		first := answering(nil)
		second := answering(aRecords("x.", "10.0.0.7"))
		loop := newQueryLoop(t, "tasks.garbage", "ipv4", first.addr, second.addr)
		if _, result, err := lookupWithin(loop, 10*time.Second); result != resultError || second.udpQueries.Load() == 0 {
			t.Fatalf("result %q, error %v; want both resolvers asked (both send garbage for this name)", result, err)
		}
	})
}

// closedUDPPort returns a loopback address where nothing listens for UDP.
func closedUDPPort(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// Resolvers that do not answer share one lookup's deadline: each is
// waited for its equal share of the time left, so every one is asked
// before it ends, and the lookup gives up at the deadline, not before.
// The times are lower bounds, which a loaded box cannot break: timers
// fire late, never early.
func TestSwarmSilentResolversShareOneDeadline(t *testing.T) {
	const n = 3
	var asked [n]atomic.Pointer[time.Time] // when each resolver got its query
	var silent []*testDNSServer
	var addrs []string
	for i := range n {
		s := startTestDNSServer(t, func(dns.Question) *dns.Msg {
			now := time.Now()
			asked[i].Store(&now)
			return nil
		})
		silent = append(silent, s)
		addrs = append(addrs, s.addr)
	}
	loop := newQueryLoop(t, "tasks.app", "ipv4", addrs...)
	const deadline = 3 * time.Second
	start := time.Now()
	_, result, err := lookupWithin(loop, deadline)
	took := time.Since(start)
	if result != resultTimeout || err == nil || strings.Count(err.Error(), "asking 127.0.0.1:") != n {
		t.Fatalf("result %q, error %v; want a timeout naming all %d resolvers", result, err, n)
	}
	for i, s := range silent {
		if s.udpQueries.Load() != 1 {
			t.Fatalf("resolver %d asked %d times, want once", i+1, s.udpQueries.Load())
		}
		at := asked[i].Load()
		// resolver i is asked once those before it had their shares: i/n of the deadline
		if earliest := deadline * time.Duration(i) / n; at.Sub(start) < earliest {
			t.Errorf("resolver %d asked %v after the start, before the earlier ones' shares (%v) ran out", i+1, at.Sub(start), earliest)
		}
	}
	if took < deadline {
		t.Errorf("the lookup gave up after %v, before its deadline of %v", took, deadline)
	}
	if took > 2*deadline { // a bound on a loaded box, not a timing claim: 3 × 5 s would fail it
		t.Fatalf("the lookup took %v past its deadline of %v", took, deadline)
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
	loop := newDNSLoop(resolverKey{name: "tasks.silent", resolvers: srv.addr, versions: "ipv4"}, newRefreshSchedule(realClock{}))
	loop.addUser(&Upstreams{}, loopSettings{refresh: time.Second, dialTimeout: time.Second})
	loop.schedule.add(loop)
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
	loop := newDNSLoop(resolverKey{name: "tasks.bench", resolvers: srv.addr, versions: "ipv4"}, newRefreshSchedule(realClock{}))
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
