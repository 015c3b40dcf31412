package swarm

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Loops that ask one resolver share one UDP socket: a loop that stops
// leaves it to the others, and the last one to stop closes it.
func TestSwarmSharedResolverSocketLastsUntilItsLastLoopStops(t *testing.T) {
	srv := startTestDNSServer(t, func(q dns.Question) *dns.Msg { return aRecords(q.Name, "10.0.0.1") })
	first := newQueryLoop(t, "tasks.first", "ipv4", srv.addr)
	second := newQueryLoop(t, "tasks.second", "ipv4", srv.addr)
	for _, loop := range []*dnsLoop{first, second} {
		if addrs, result, err := lookupWithin(loop, 10*time.Second); result != resultOK || len(addrs) != 1 {
			t.Fatalf("%s: result %q, addresses %v, error %v; want 10.0.0.1", loop.key.name, result, addrs, err)
		}
	}
	sources := srv.sources()
	if len(sources) != 1 {
		t.Fatalf("two loops asked from %v, want one shared socket", sources)
	}

	first.stop()
	if addrs, result, err := lookupWithin(second, 10*time.Second); result != resultOK || len(addrs) != 1 {
		t.Fatalf("after the other loop stopped: result %q, addresses %v, error %v; want 10.0.0.1", result, addrs, err)
	}

	second.stop()
	// The closed socket's port is free again; an open one holds it.
	pc, err := net.ListenPacket("udp", sources[0])
	if err != nil {
		t.Fatalf("the socket outlived its last loop: binding its address %s: %v", sources[0], err)
	}
	pc.Close()
}

// A resolver whose port is closed (ICMP port unreachable) fails the query
// at once, as refused: not after the lookup's deadline, as a timeout.
func TestSwarmRefusedQueryFailsAtOnce(t *testing.T) {
	closed := closedUDPPort(t)
	loop := newQueryLoop(t, "tasks.app", "ipv4", closed)
	_, result, err := lookupWithin(loop, 10*time.Second)
	if result != resultError || err == nil || !strings.Contains(err.Error(), closed+" refused the query") {
		t.Fatalf("result %q, error %v; want an error saying %s refused the query", result, err, closed)
	}
}

// A server that ignores the answer size offered can send a datagram
// larger than the reader's room for it: the cut answer is asked again
// over TCP, not read as a short or broken one.
func TestSwarmAnswerLargerThanTheReadBufferIsAskedOverTCP(t *testing.T) {
	var all []string
	for i := range 300 { // about 4.8 KB over UDP
		all = append(all, fmt.Sprintf("10.1.%d.%d", i/200, i%200+2))
	}
	srv := startTestDNSServer(t, func(q dns.Question) *dns.Msg { return aRecords(q.Name, all...) })
	loop := newQueryLoop(t, strings.TrimSuffix(hugeName, "."), "ipv4", srv.addr)
	addrs, result, err := lookupWithin(loop, 10*time.Second)
	if result != resultOK || len(addrs) != len(all) {
		t.Fatalf("result %q, %d of %d tasks, error %v", result, len(addrs), len(all), err)
	}
	if srv.udpQueries.Load() != 1 || srv.tcpQueries.Load() != 1 {
		t.Fatalf("queries: %d over UDP, %d over TCP; want 1 and 1", srv.udpQueries.Load(), srv.tcpQueries.Load())
	}
}

// A socket has at most udpWindow queries out unanswered: hundreds at
// once overflow a server's receive buffer, and each dropped query fails
// its lookup only at the timeout. The rest leave as answers come back.
func TestSwarmSocketKeepsAtMostAWindowOfQueriesOut(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	const lookups = udpWindow + 36
	results := beginLookups(t, "tasks.w", lookups, pc.LocalAddr().String())

	// readQueries reads queries until none comes for quiet
	readQueries := func(quiet time.Duration) []*dns.Msg {
		var got []*dns.Msg
		buf := make([]byte, 512)
		for {
			_ = pc.SetReadDeadline(time.Now().Add(quiet))
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return got
			}
			q := new(dns.Msg)
			if err := q.Unpack(buf[:n]); err != nil {
				t.Fatalf("unreadable query: %v", err)
			}
			got = append(got, q)
		}
	}
	answer := func(qs []*dns.Msg, to net.Addr) {
		for _, q := range qs {
			resp := aRecords(q.Question[0].Name, "10.0.0.1")
			resp.SetReply(q)
			packed, err := resp.Pack()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pc.WriteTo(packed, to); err != nil {
				t.Fatal(err)
			}
		}
	}

	// the client's address, from the first query
	buf := make([]byte, 512)
	_ = pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, client, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no query came: %v", err)
	}
	first := new(dns.Msg)
	if err := first.Unpack(buf[:n]); err != nil {
		t.Fatal(err)
	}
	out := append([]*dns.Msg{first}, readQueries(500*time.Millisecond)...) // a bound for a loaded box, not a timing claim
	if len(out) != udpWindow {
		t.Fatalf("%d queries out before any answer, want the window, %d", len(out), udpWindow)
	}
	answer(out, client)
	rest := readQueries(2 * time.Second)
	if len(rest) != lookups-udpWindow {
		t.Fatalf("after the answers, %d more queries came, want %d", len(rest), lookups-udpWindow)
	}
	answer(rest, client)
	awaitLookupsOK(t, results, lookups)
}

// While writes are held (the schedule starting a tick's lookups), the
// queries wait, and leave together when the hold ends.
func TestSwarmHeldQueriesLeaveAtTheFlush(t *testing.T) {
	srv := startTestDNSServer(t, func(q dns.Question) *dns.Msg { return aRecords(q.Name, "10.0.0.1") })
	holdUDPWrites()
	results := beginLookups(t, "tasks.held", 3, srv.addr)
	select {
	case r := <-results:
		flushUDPWrites()
		t.Fatalf("a lookup ended (%q) while writes were held", r)
	case <-time.After(100 * time.Millisecond): // time for a query to get out, were it not held
	}
	if got := srv.udpQueries.Load(); got != 0 {
		flushUDPWrites()
		t.Fatalf("the server got %d queries while writes were held", got)
	}
	flushUDPWrites()
	awaitLookupsOK(t, results, 3)
}

// beginLookups starts one lookup each of n names, prefix0 and on, asking
// server; the channel gets their results as they end.
func beginLookups(t *testing.T, prefix string, n int, server string) <-chan refreshResult {
	results := make(chan refreshResult, n)
	for i := range n {
		loop := newQueryLoop(t, fmt.Sprintf("%s%d", prefix, i), "ipv4", server)
		loop.client.begin(context.Background(), time.Now().Add(30*time.Second), loop.currentSettings().dialer(), 0,
			func(_ uint64, _ []netip.Addr, result refreshResult, _ error) { results <- result })
	}
	return results
}

// awaitLookupsOK fails t unless n lookups end ok.
func awaitLookupsOK(t *testing.T, results <-chan refreshResult, n int) {
	t.Helper()
	for i := range n {
		select {
		case r := <-results:
			if r != resultOK {
				t.Fatalf("a lookup ended %q, want ok", r)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d lookups never ended", n-i, n)
		}
	}
}
