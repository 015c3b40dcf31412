package swarm

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// The shared UDP socket asks for a receive buffer that holds the answers
// of hundreds of services arriving while the process waits for a CPU.
func TestSwarmUDPSocketHasALargeReceiveBuffer(t *testing.T) {
	raw, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip(err)
	}
	rmemMax, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	want := min(udpReadBuffer, rmemMax)
	if want <= 256<<10 {
		t.Skipf("net.core.rmem_max is %d: no room above the default to check", rmemMax)
	}
	srv := startTestDNSServer(t, func(q dns.Question) *dns.Msg { return aRecords(q.Name, "10.0.0.1") })
	loop := newQueryLoop(t, "tasks.app", "ipv4", srv.addr)
	if _, result, err := lookupWithin(loop, 5*time.Second); result != resultOK {
		t.Fatalf("lookup: %q %v", result, err)
	}
	sock, err := loop.client.socket(0)
	if err != nil {
		t.Fatal(err)
	}
	sock.mu.Lock()
	conn := sock.conn.(syscall.Conn)
	sock.mu.Unlock()
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var optErr error
	if err := rc.Control(func(fd uintptr) { size, optErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); err != nil || optErr != nil {
		t.Fatal(err, optErr)
	}
	if size < want { // Linux reports twice the size asked for
		t.Fatalf("receive buffer %d bytes, want at least %d", size, want)
	}
}
