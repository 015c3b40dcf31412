package swarmsim

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/swarmedge/swarmedge/integration/testsupport"
)

// startService starts a service for t and, when t ends, closes it and
// checks that every goroutine it started has ended.
func startService(t *testing.T, cfg Config) *Service {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if !testsupport.Eventually(10*time.Second, func() bool { return len(serviceGoroutines()) == 0 }) {
			t.Errorf("goroutines of the service still run after Close:\n%s", strings.Join(serviceGoroutines(), "\n\n"))
		}
	})
	return s
}

// serviceGoroutines returns the stacks of the goroutines running this
// package's code (not its tests'): none may outlive Close. Unlike a
// process-wide count, this sees a leak also when some other goroutine
// (the runtime's, the HTTP client's) ended meanwhile. The tests of this
// package do not run in parallel, so every such goroutine is the closed
// service's.
func serviceGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var leaked []string
	for stack := range strings.SplitSeq(string(buf), "\n\n") {
		for line := range strings.Lines(stack) {
			if file, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && strings.Contains(file, "/integration/swarmsim/") && !strings.HasSuffix(file, "_test.go") {
				leaked = append(leaked, stack)
				break
			}
		}
	}
	return leaked
}

// exchange sends an A query for name over network ("udp" or "tcp"), with
// an EDNS0 buffer size unless ednsSize is 0.
func exchange(s *Service, network, name string, ednsSize uint16, timeout time.Duration) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	if ednsSize > 0 {
		q.SetEdns0(ednsSize, false)
	}
	c := dns.Client{Net: network, Timeout: timeout}
	r, _, err := c.Exchange(q, s.DNS().String())
	return r, err
}

// mustExchange is exchange that fails t on error.
func mustExchange(t *testing.T, s *Service, network, name string, ednsSize uint16) *dns.Msg {
	t.Helper()
	r, err := exchange(s, network, name, ednsSize, 2*time.Second)
	if err != nil {
		t.Fatalf("%s query for %s: %v", network, name, err)
	}
	return r
}

// answerAddrs returns the addresses of r's A records in answer order.
func answerAddrs(r *dns.Msg) []string {
	var addrs []string
	for _, rr := range r.Answer {
		addrs = append(addrs, rr.(*dns.A).A.String())
	}
	return addrs
}

// sortedAnswerAddrs returns answerAddrs sorted.
func sortedAnswerAddrs(r *dns.Msg) []string {
	addrs := answerAddrs(r)
	slices.Sort(addrs)
	return addrs
}

// taskIPs returns the IPs of slots 1..n, sorted.
func taskIPs(s *Service, n int) []string {
	var ips []string
	for slot := 1; slot <= n; slot++ {
		ips = append(ips, s.TaskAddr(slot).Addr().String())
	}
	slices.Sort(ips)
	return ips
}

// newClient returns an HTTP client whose idle connections close when t ends.
func newClient(t *testing.T, keepAlive bool) *http.Client {
	tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// get requests url and returns the response with its body read.
func get(t *testing.T, c *http.Client, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	return testsupport.Do(t, c, http.MethodGet, url, header)
}

// rawConn is one client TCP connection that sends HTTP/1.1 requests by hand,
// so a test knows exactly which connection carried them.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

// dialRaw connects to addr.
func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

// task sends one keep-alive request and returns the task that answered.
func (c *rawConn) task(t *testing.T) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: app\r\n\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get("X-Task")
}

// closedByPeer reports whether the peer closes the connection (EOF or
// reset) before a deadline.
func (c *rawConn) closedByPeer() bool {
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := c.r.ReadByte()
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return false
	}
	return err != nil
}
