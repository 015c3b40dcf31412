package swarm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"syscall"
	"time"
)

const (
	// maxUDPMessage is the largest DNS message a UDP datagram can carry.
	maxUDPMessage = 65535

	// udpReadBuffer is the receive buffer asked for each socket (the
	// kernel caps it at net.core.rmem_max): the answers of hundreds of
	// services can arrive while the process waits for a CPU on a loaded
	// machine, and each one dropped is a lookup that fails only at its
	// timeout. The default of about 200 KiB holds some 100 of them.
	udpReadBuffer = 4 << 20
)

// udpSocket is a connected UDP socket to one DNS server, shared by every
// loop that asks it: one socket and one reading goroutine per server, not
// a new socket per lookup. Answers are matched to their queries by the
// random message ID; an answer nobody waits for (late, or forged) is
// dropped.
type udpSocket struct {
	server string
	users  int // guarded by udpSockets

	mu       sync.Mutex
	conn     net.Conn // nil until the first query, and after a read failure
	released bool     // its last user left: no new connection
	pending  map[uint16]*udpExchange
}

// udpExchange is one query waiting for its answer.
type udpExchange struct {
	query  []byte // the query as sent, ID included
	answer []byte // the answer, copied from the reader's buffer
	err    error
	done   chan struct{} // capacity 1: the reader's hand-over
	timer  *time.Timer   // the deadline, reused: no timer per query
}

// udpExchanges recycles exchanges and their buffers: a lookup every
// second per service should allocate nothing.
var udpExchanges = sync.Pool{New: func() any {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	return &udpExchange{done: make(chan struct{}, 1), timer: timer}
}}

// udpSockets holds the process's sockets by server address.
var udpSockets = struct {
	sync.Mutex
	byServer map[string]*udpSocket
}{byServer: make(map[string]*udpSocket)}

// acquireUDPSocket returns the socket to server, counting a user in.
func acquireUDPSocket(server string) *udpSocket {
	udpSockets.Lock()
	defer udpSockets.Unlock()
	s := udpSockets.byServer[server]
	if s == nil {
		s = &udpSocket{server: server, pending: make(map[uint16]*udpExchange)}
		udpSockets.byServer[server] = s
	}
	s.users++
	return s
}

// release counts a user out and closes the socket after the last.
func (s *udpSocket) release() {
	udpSockets.Lock()
	defer udpSockets.Unlock()
	s.users--
	if s.users > 0 {
		return
	}
	delete(udpSockets.byServer, s.server)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.released = true
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	s.failPending(net.ErrClosed)
}

// exchange sends query (its ID is replaced by a fresh random one) and
// waits for the answer until the deadline or ctx's end. The answer is
// valid until x is put back into udpExchanges.
func (s *udpSocket) exchange(ctx context.Context, x *udpExchange, deadline time.Time, dialer net.Dialer) ([]byte, error) {
	conn, err := s.register(ctx, x, dialer)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(x.query); err != nil {
		if !s.forget(x) {
			<-x.done
		}
		return nil, err
	}
	x.timer.Reset(time.Until(deadline))
	defer x.timer.Stop()
	select {
	case <-x.done:
	case <-x.timer.C:
		if s.forget(x) {
			return nil, context.DeadlineExceeded
		}
		<-x.done // the reader is handing the answer over
	case <-ctx.Done():
		if s.forget(x) {
			return nil, ctx.Err()
		}
		<-x.done
	}
	if x.err != nil {
		return nil, x.err
	}
	return x.answer, nil
}

// register gives x an ID no other pending query has and lists it as
// pending, connecting first if need be.
func (s *udpSocket) register(ctx context.Context, x *udpExchange, dialer net.Dialer) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return nil, net.ErrClosed // a lookup of a stopped loop
	}
	if s.conn == nil {
		conn, err := dialer.DialContext(ctx, "udp", s.server)
		if err != nil {
			return nil, err
		}
		if udp, ok := conn.(*net.UDPConn); ok {
			_ = udp.SetReadBuffer(udpReadBuffer) // best effort: a smaller buffer still works
		}
		s.conn = conn
		go s.read(conn)
	}
	if len(s.pending) > 1<<15 {
		return nil, errors.New("too many queries in flight")
	}
	id := uint16(rand.Uint32())
	for s.pending[id] != nil {
		id = uint16(rand.Uint32())
	}
	binary.BigEndian.PutUint16(x.query, id)
	x.answer, x.err = x.answer[:0], nil
	s.pending[id] = x
	return s.conn, nil
}

// forget removes x from the pending queries; false means the reader has
// taken it and will hand it over.
func (s *udpSocket) forget(x *udpExchange) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := binary.BigEndian.Uint16(x.query)
	if s.pending[id] != x {
		return false
	}
	delete(s.pending, id)
	return true
}

// read hands each answer on conn to the query with its ID until conn
// fails. A refused port (ICMP, seen on a connected socket) fails every
// pending query at once rather than letting them time out.
func (s *udpSocket) read(conn net.Conn) {
	buf := make([]byte, maxUDPMessage)
	for {
		n, err := conn.Read(buf)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			s.failPendingOn(conn, fmt.Errorf("%s refused the query: %w", s.server, err), false)
			continue
		case err != nil:
			s.failPendingOn(conn, err, true)
			conn.Close()
			return
		case n < 2:
			continue
		}
		id := binary.BigEndian.Uint16(buf)
		s.mu.Lock()
		x := s.pending[id]
		delete(s.pending, id)
		s.mu.Unlock()
		if x != nil {
			x.answer = append(x.answer[:0], buf[:n]...)
			x.done <- struct{}{}
		}
	}
}

// failPendingOn hands err to every query pending on conn, if conn is
// still the socket's connection, and drops conn if it is broken: the
// next query connects again.
func (s *udpSocket) failPendingOn(conn net.Conn, err error, broken bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != conn {
		return // released, or replaced: its queries were failed then
	}
	if broken {
		s.conn = nil
	}
	s.failPending(err)
}

// failPending hands err to every pending query. s.mu must be held.
func (s *udpSocket) failPending(err error) {
	for id, x := range s.pending {
		delete(s.pending, id)
		x.err = err
		x.done <- struct{}{}
	}
}
