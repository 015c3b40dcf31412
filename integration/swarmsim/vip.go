package swarmsim

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// backendDialTimeout bounds connecting to a task; on loopback a connect
// either succeeds or is refused at once, so it only matters when overloaded.
const backendDialTimeout = time.Second

// vip balances TCP connections over the advertised tasks like Swarm's IPVS
// virtual IP: one task per connection, chosen round robin at accept time,
// then bytes piped both ways for the connection's life. Keep-alive clients
// therefore stay pinned, and tasks added later get none of their requests.
type vip struct {
	ln        *net.TCPListener
	endpoints *atomic.Pointer[[]*task]
	next      atomic.Uint64

	mu     sync.Mutex
	conns  map[*net.TCPConn]struct{} // both sides of every proxied connection
	closed bool
	wg     sync.WaitGroup
}

// listenVIP starts the VIP on addr.
func listenVIP(addr netip.AddrPort, endpoints *atomic.Pointer[[]*task]) (*vip, error) {
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	v := &vip{ln: ln, endpoints: endpoints, conns: make(map[*net.TCPConn]struct{})}
	v.wg.Add(1)
	go v.serve()
	return v, nil
}

// addr returns the address the VIP listens on.
func (v *vip) addr() netip.AddrPort {
	return v.ln.Addr().(*net.TCPAddr).AddrPort()
}

// serve accepts connections until close.
func (v *vip) serve() {
	defer v.wg.Done()
	for {
		client, err := v.ln.AcceptTCP()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors: back off, as net/http does
			continue
		}
		if !v.track(client) {
			return
		}
		v.wg.Add(1)
		go v.proxy(client)
	}
}

// proxy pipes client to the next task until either side is done.
func (v *vip) proxy(client *net.TCPConn) {
	defer v.wg.Done()
	defer v.untrack(client)
	t := v.pick()
	if t == nil {
		return // no task: IPVS has no real server either
	}
	d := net.Dialer{Timeout: backendDialTimeout}
	conn, err := d.Dial("tcp", t.addr.String())
	if err != nil {
		return // a dead task still listed (stale): the client sees its connection drop
	}
	backend := conn.(*net.TCPConn)
	if !v.track(backend) {
		return
	}
	defer v.untrack(backend)

	upstreamDone := make(chan struct{})
	go func() {
		defer close(upstreamDone)
		io.Copy(backend, client)
		backend.CloseWrite() // pass the client's half-close on
	}()
	io.Copy(client, backend)
	// The task has finished with the connection or was killed: so is the client's.
	client.Close()
	backend.Close()
	<-upstreamDone
}

// pick returns the next advertised task round robin, or nil when there is none.
func (v *vip) pick() *task {
	tasks := *v.endpoints.Load()
	if len(tasks) == 0 {
		return nil
	}
	return tasks[(v.next.Add(1)-1)%uint64(len(tasks))]
}

// track registers conn so close can cut it. It closes conn and reports
// false when the VIP is already closed.
func (v *vip) track(conn *net.TCPConn) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		conn.Close()
		return false
	}
	v.conns[conn] = struct{}{}
	return true
}

// untrack closes conn and forgets it.
func (v *vip) untrack(conn *net.TCPConn) {
	v.mu.Lock()
	delete(v.conns, conn)
	v.mu.Unlock()
	conn.Close()
}

// close stops accepting, cuts every proxied connection and waits for the
// proxies to end.
func (v *vip) close() error {
	v.mu.Lock()
	v.closed = true
	for conn := range v.conns {
		conn.Close()
	}
	v.mu.Unlock()
	err := v.ln.Close()
	v.wg.Wait()
	return err
}
