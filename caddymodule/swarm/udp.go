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
// random message ID and handed on by the reading goroutine itself, with
// no goroutine waiting per query; an answer nobody waits for (late, or
// forged) is dropped.
type udpSocket struct {
	server    string
	users     int       // guarded by udpSockets
	exchanges sync.Pool // of *udpExchange on this socket: a lookup every second per service allocates nothing

	mu       sync.Mutex
	conn     net.Conn // nil until the first query, and after a read failure
	released bool     // its last user left: no new connection
	pending  map[uint16]*udpExchange
}

// answerWaiter receives the answer to a query, or why none came: once,
// from any goroutine. The answer is valid only during the call.
type answerWaiter interface {
	answered(answer []byte, err error)
}

// udpExchange is one query waiting for its answer. Its fields change only
// under its socket's mutex, as it is recycled.
type udpExchange struct {
	query    []byte // the query as sent, ID included
	deadline time.Time
	owner    *dnsClient // the client that asked, so that closing it ends its queries
	waiter   answerWaiter
	timer    *time.Timer // fires expire at the deadline; reused
}

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
		s.exchanges.New = func() any {
			x := new(udpExchange)
			x.timer = time.AfterFunc(time.Hour, func() { s.expire(x) })
			x.timer.Stop()
			return x
		}
		udpSockets.byServer[server] = s
	}
	s.users++
	return s
}

// release counts owner out: its queries end at once with net.ErrClosed,
// and the socket is closed after its last user.
func (s *udpSocket) release(owner *dnsClient) {
	udpSockets.Lock()
	s.users--
	last := s.users == 0
	if last {
		delete(udpSockets.byServer, s.server)
	}
	udpSockets.Unlock()

	s.mu.Lock()
	if last {
		s.released = true
		if s.conn != nil {
			s.conn.Close()
			s.conn = nil
		}
	}
	ended := s.takePending(func(x *udpExchange) bool { return last || x.owner == owner })
	s.mu.Unlock()
	s.finishAll(ended, net.ErrClosed)
}

// send sends query with a fresh random ID and hands the answer to w, or
// why none came by the deadline. w may be called before send returns.
func (s *udpSocket) send(ctx context.Context, query []byte, deadline time.Time, dialer net.Dialer, owner *dnsClient, w answerWaiter) {
	x, err := s.sendLocked(ctx, query, deadline, dialer, owner, w)
	switch {
	case x != nil:
		s.finish(x, nil, err) // the write failed
	case err != nil:
		w.answered(nil, err)
	}
}

// sendLocked lists a copy of query as pending under an ID no other
// pending query has, until the deadline, and sends it, connecting first
// if need be. The write is under the lock, so that nobody recycles the
// exchange while it is read. On a failed write it returns the exchange,
// taken off the list again, with the error.
func (s *udpSocket) sendLocked(ctx context.Context, query []byte, deadline time.Time, dialer net.Dialer, owner *dnsClient, w answerWaiter) (*udpExchange, error) {
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
	x := s.exchanges.Get().(*udpExchange)
	x.query = append(x.query[:0], query...)
	binary.BigEndian.PutUint16(x.query, id)
	x.deadline, x.owner, x.waiter = deadline, owner, w
	x.timer.Reset(time.Until(deadline))
	s.pending[id] = x
	if _, err := s.conn.Write(x.query); err != nil {
		delete(s.pending, id)
		return x, err
	}
	return nil, nil
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
			s.finish(x, buf[:n], nil)
		}
	}
}

// expire ends x with a timeout if it is still pending and its deadline
// has passed: the timer of a recycled exchange may fire late.
func (s *udpSocket) expire(x *udpExchange) {
	s.mu.Lock()
	id := binary.BigEndian.Uint16(x.query)
	if s.pending[id] != x || time.Now().Before(x.deadline) {
		s.mu.Unlock()
		return
	}
	delete(s.pending, id)
	s.mu.Unlock()
	s.finish(x, nil, context.DeadlineExceeded)
}

// finish hands an exchange taken off the pending queries to its waiter
// and recycles it.
func (s *udpSocket) finish(x *udpExchange, answer []byte, err error) {
	x.timer.Stop()
	w := x.waiter
	x.owner, x.waiter = nil, nil
	s.exchanges.Put(x)
	w.answered(answer, err)
}

// finishAll ends each of ended with err.
func (s *udpSocket) finishAll(ended []*udpExchange, err error) {
	for _, x := range ended {
		s.finish(x, nil, err)
	}
}

// failPendingOn hands err to every query pending on conn, if conn is
// still the socket's connection, and drops conn if it is broken: the
// next query connects again.
func (s *udpSocket) failPendingOn(conn net.Conn, err error, broken bool) {
	s.mu.Lock()
	if s.conn != conn {
		s.mu.Unlock()
		return // released, or replaced: its queries were failed then
	}
	if broken {
		s.conn = nil
	}
	ended := s.takePending(func(*udpExchange) bool { return true })
	s.mu.Unlock()
	s.finishAll(ended, err)
}

// takePending takes the pending queries that match off the list. s.mu
// must be held.
func (s *udpSocket) takePending(match func(*udpExchange) bool) []*udpExchange {
	var taken []*udpExchange
	for id, x := range s.pending {
		if match(x) {
			delete(s.pending, id)
			taken = append(taken, x)
		}
	}
	return taken
}
