package swarm

import (
	"net"
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
