package swarm

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/sys/unix"
)

// provisionTransport provisions tr as Caddy would and cleans it up after
// the test.
func provisionTransport(t *testing.T, tr *Transport) *Transport {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := tr.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Cleanup() })
	return tr
}

// get sends a GET for url through tr, reads the whole body and returns it
// with the connection the request used.
func get(t *testing.T, tr http.RoundTripper, url string) (string, net.Conn) {
	t.Helper()
	var conn net.Conn
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { conn = info.Conn },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return string(body), conn
}

// tcpOption reads an IPPROTO_TCP option of the socket under conn.
func tcpOption(t *testing.T, conn net.Conn, opt int) int {
	t.Helper()
	c := asTracked(conn)
	if c == nil {
		t.Fatalf("the request's connection %T is not tracked", conn)
	}
	raw, err := c.Conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var value int
	var optErr error
	if err := raw.Control(func(fd uintptr) { value, optErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, opt) }); err != nil {
		t.Fatal(err)
	}
	if optErr != nil {
		t.Fatal(optErr)
	}
	return value
}

func TestSwarmTransportSetsSocketOptions(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	t.Cleanup(backend.Close)
	off := caddy.Duration(0)
	five := caddy.Duration(5 * time.Second)
	for _, tc := range []struct {
		name              string
		transport         Transport
		wantUserTimeoutMS int
		wantKeepIdleS     int
	}{
		{name: "defaults", wantUserTimeoutMS: 2000, wantKeepIdleS: 1},
		{name: "set", transport: Transport{TCPUserTimeout: &five}, wantUserTimeoutMS: 5000, wantKeepIdleS: 1},
		{name: "off", transport: Transport{TCPUserTimeout: &off}, wantUserTimeoutMS: 0, wantKeepIdleS: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := provisionTransport(t, &tc.transport)
			body, conn := get(t, tr, backend.URL)
			if body != "ok" {
				t.Fatalf("body %q", body)
			}
			if got := tcpOption(t, conn, unix.TCP_USER_TIMEOUT); got != tc.wantUserTimeoutMS {
				t.Errorf("TCP_USER_TIMEOUT %d ms, want %d", got, tc.wantUserTimeoutMS)
			}
			if got := tcpOption(t, conn, unix.TCP_KEEPIDLE); got != tc.wantKeepIdleS {
				t.Errorf("TCP_KEEPIDLE %d s, want %d", got, tc.wantKeepIdleS)
			}
			if got := tcpOption(t, conn, unix.TCP_KEEPINTVL); got != tc.wantKeepIdleS {
				t.Errorf("TCP_KEEPINTVL %d s, want %d", got, tc.wantKeepIdleS)
			}
		})
	}
}

func TestSwarmTransportRejectsNegativeUserTimeout(t *testing.T) {
	negative := caddy.Duration(-time.Second)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := (&Transport{TCPUserTimeout: &negative}).Provision(ctx)
	if err == nil || err.Error() != "swarm transport: tcp_user_timeout: must not be negative: -1s" {
		t.Fatalf("error %v", err)
	}
}

// connCounter counts a server's connections that closed.
type connCounter struct{ closed atomic.Int32 }

func (c *connCounter) track(_ net.Conn, state http.ConnState) {
	if state == http.StateClosed {
		c.closed.Add(1)
	}
}

// awaitCount polls get until it returns want, failing after a generous bound.
func awaitCount(t *testing.T, what string, get func() int, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for got := get(); got != want; got = get() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSwarmTransportClosesPooledConnectionsOfWithdrawnTasks(t *testing.T) {
	release := make(chan struct{})
	counter := new(connCounter)
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			_, _ = io.WriteString(w, "first part, ")
			w.(http.Flusher).Flush()
			<-release
		}
		_, _ = io.WriteString(w, "done")
	}))
	backend.Config.ConnState = counter.track
	backend.Start()
	t.Cleanup(backend.Close)
	var releaseOnce sync.Once
	releaseSlow := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseSlow) // before backend.Close, which waits for the handler
	port := backend.Listener.Addr().(*net.TCPAddr).Port
	task := fmt.Sprintf("127.0.0.1:%d", port)

	_, script, loop, _ := newTestPool(t, poolKey{port: uint16(port)})
	script.set(resultOK, "127.0.0.1", "127.0.0.2")
	loop.refresh()

	tr := provisionTransport(t, new(Transport))
	// one connection busy with a long response, one pooled
	req, _ := http.NewRequest(http.MethodGet, "http://"+task+"/slow", nil)
	slow, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Body.Close()
	if body, _ := get(t, tr, "http://"+task+"/"); body != "done" {
		t.Fatalf("body %q", body)
	}
	if got := tr.conns.count(task); got != 2 {
		t.Fatalf("%d connections to the task, want 2", got)
	}

	// another task leaving touches nothing
	script.set(resultOK, "127.0.0.1")
	loop.refresh()
	if got := tr.conns.count(task); got != 2 {
		t.Fatalf("another task withdrawn: %d connections to the task, want 2", got)
	}

	script.set(resultOK, "127.0.0.3")
	loop.refresh()
	awaitCount(t, "connections the backend saw closed after the withdrawal", func() int { return int(counter.closed.Load()) }, 1)
	if got := tr.conns.count(task); got != 1 {
		t.Fatalf("after the withdrawal: %d connections to the task, want only the busy one", got)
	}

	releaseSlow()
	body, err := io.ReadAll(slow.Body)
	if err != nil || string(body) != "first part, done" {
		t.Fatalf("the long response was cut: %q, %v", body, err)
	}
	awaitCount(t, "connections the backend saw closed after the long response", func() int { return int(counter.closed.Load()) }, 2)
	awaitCount(t, "connections to the task left", func() int { return tr.conns.count(task) }, 0)
}

// A live peer keeps acknowledging: a response that pauses for longer than
// tcp_user_timeout between its parts, for 10 s in all, arrives whole.
func TestSwarmTransportKeepsALongResponseFromALiveTask(t *testing.T) {
	const parts, pause = 5, 2500 * time.Millisecond
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		for i := range parts {
			if i > 0 {
				time.Sleep(pause)
			}
			_, _ = fmt.Fprintf(w, "part %d\n", i)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(backend.Close)
	oneSecond := caddy.Duration(time.Second)
	tr := provisionTransport(t, &Transport{TCPUserTimeout: &oneSecond})
	body, _ := get(t, tr, backend.URL)
	if want := "part 0\npart 1\npart 2\npart 3\npart 4\n"; body != want {
		t.Fatalf("body %q, want %q", body, want)
	}
}
