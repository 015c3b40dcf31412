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

	"golang.org/x/net/ipv4"
)

const (
	// answerBufferSize is the room for each UDP answer read: more than
	// the ednsUDPSize offered. An answer that fills it may have been cut
	// and is asked again over TCP.
	answerBufferSize = 4096

	// answerBatch is how many answers one read may take: the answers to
	// the lookups of one refresh tick arrive together.
	answerBatch = 32

	// truncatedFlag is the TC bit in the third byte of a DNS message.
	truncatedFlag = 0x02

	// udpReadBuffer is the receive buffer asked for each socket (the
	// kernel caps it at net.core.rmem_max): the answers of hundreds of
	// services can arrive while the process waits for a CPU on a loaded
	// machine, and each one dropped is a lookup that fails only at its
	// timeout. The default of about 200 KiB holds some 100 of them.
	udpReadBuffer = 4 << 20

	// udpWindow bounds the queries a socket has out unanswered; the rest
	// wait their turn. The lookups of one refresh tick leave together,
	// and hundreds at once overflow a server's receive buffer (dnsmasq's
	// default holds about 200): each query dropped is a lookup that
	// fails only at its timeout.
	udpWindow = 64
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

	mu         sync.Mutex
	conn       net.Conn  // nil until the first query, and after a read failure
	batch      batchConn // conn's batch calls
	released   bool      // its last user left: no new connection
	pending    map[uint16]*udpExchange
	queue      []uint16 // IDs of pending queries to write, in order, from queueHead
	queueHead  int
	unanswered int            // pending queries written, at most udpWindow
	batchOut   []ipv4.Message // reused by flush
}

// batchConn reads and writes several datagrams per system call
// (recvmmsg and sendmmsg on Linux, one at a time elsewhere).
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// answerWaiter receives the answer to a query, or why none came: once,
// from any goroutine. The answer is valid only during the call.
type answerWaiter interface {
	answered(answer []byte, err error)
}

// udpExchange is one query waiting for its answer. Its fields change only
// under its socket's mutex, as it is recycled.
type udpExchange struct {
	query    []byte   // the query as sent, ID included
	buffers  [][]byte // query alone, for a batch write
	written  bool     // sent to the server, not just queued
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
			x := &udpExchange{buffers: make([][]byte, 1)}
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
			s.conn, s.batch = nil, nil
		}
	}
	ended := s.takePending(func(x *udpExchange) bool { return last || x.owner == owner })
	s.mu.Unlock()
	s.finishAll(ended, net.ErrClosed)
}

// send sends query with a fresh random ID and hands the answer to w, or
// why none came by the deadline. w may be called before send returns.
func (s *udpSocket) send(ctx context.Context, query []byte, deadline time.Time, dialer net.Dialer, owner *dnsClient, w answerWaiter) {
	held, err := s.register(ctx, query, deadline, dialer, owner, w)
	switch {
	case err != nil:
		w.answered(nil, err)
	case !held:
		s.flush()
	}
}

// register lists a copy of query as pending under an ID no other pending
// query has, until the deadline, and queues it for writing, connecting
// first if need be. It reports whether writes are held (see
// holdUDPWrites): else the caller flushes.
func (s *udpSocket) register(ctx context.Context, query []byte, deadline time.Time, dialer net.Dialer, owner *dnsClient, w answerWaiter) (held bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.released {
		return false, net.ErrClosed // a lookup of a stopped loop
	}
	if s.conn == nil {
		conn, err := dialer.DialContext(ctx, "udp", s.server)
		if err != nil {
			return false, err
		}
		udp := conn.(*net.UDPConn)
		_ = udp.SetReadBuffer(udpReadBuffer)            // best effort: a smaller buffer still works
		s.conn, s.batch = conn, ipv4.NewPacketConn(udp) // the batch calls serve IPv6 sockets too
		go s.read(conn, s.batch)
	}
	if len(s.pending) > 1<<15 {
		return false, errors.New("too many queries in flight")
	}
	id := uint16(rand.Uint32())
	for s.pending[id] != nil {
		id = uint16(rand.Uint32())
	}
	x := s.exchanges.Get().(*udpExchange)
	x.query = append(x.query[:0], query...)
	binary.BigEndian.PutUint16(x.query, id)
	x.buffers[0] = x.query
	x.written, x.deadline, x.owner, x.waiter = false, deadline, owner, w
	x.timer.Reset(time.Until(deadline))
	s.pending[id] = x
	s.queue = append(s.queue, id)
	return holdingWrites(s), nil
}

// take takes the query with ID id off the pending ones; nil if none.
// s.mu must be held.
func (s *udpSocket) take(id uint16) *udpExchange {
	x := s.pending[id]
	if x == nil {
		return nil
	}
	delete(s.pending, id)
	if x.written {
		s.unanswered--
	}
	return x
}

// flush writes the queued queries, as many as the window lets out, in
// batches. A query whose write fails ends with the error; the rest
// still go.
func (s *udpSocket) flush() {
	s.mu.Lock()
	var failed []failedWrite
	batch := s.batchOut[:0]
	for s.queueHead < len(s.queue) && s.unanswered+len(batch) < udpWindow {
		x := s.pending[s.queue[s.queueHead]]
		s.queueHead++
		if x != nil && !x.written { // else ended meanwhile
			x.written = true
			batch = append(batch, ipv4.Message{Buffers: x.buffers})
		}
	}
	if s.queueHead > len(s.queue)/2 { // reuse the room written out: a queue that never empties (a dead server) must not grow
		s.queue = s.queue[:copy(s.queue, s.queue[s.queueHead:])]
		s.queueHead = 0
	}
	s.unanswered += len(batch)
	for rest := batch; len(rest) > 0; {
		n, err := s.writeBatch(rest)
		if err != nil {
			id := binary.BigEndian.Uint16(rest[n].Buffers[0])
			if x := s.take(id); x != nil {
				failed = append(failed, failedWrite{x, err})
			}
			n++
		}
		rest = rest[n:]
	}
	clear(batch)
	s.batchOut = batch[:0]
	s.mu.Unlock()
	for _, f := range failed {
		s.finish(f.x, nil, f.err)
	}
}

// writeBatch writes some of batch: n of them, then an error for the
// next if err is not nil. s.mu must be held.
func (s *udpSocket) writeBatch(batch []ipv4.Message) (n int, err error) {
	if s.batch == nil {
		return 0, net.ErrClosed // the connection broke after the query was queued
	}
	n, err = s.batch.WriteBatch(batch, 0)
	if err != nil && n >= len(batch) {
		n = len(batch) - 1
	}
	return n, err
}

// failedWrite is a query whose write failed, taken off the pending ones.
type failedWrite struct {
	x   *udpExchange
	err error
}

// read hands each answer on conn to the query with its ID until conn
// fails. A refused port (ICMP, seen on a connected socket) fails every
// pending query at once rather than letting them time out.
func (s *udpSocket) read(conn net.Conn, batch batchConn) {
	answers := make([]ipv4.Message, answerBatch)
	for i := range answers {
		answers[i].Buffers = [][]byte{make([]byte, answerBufferSize)}
	}
	for {
		n, err := batch.ReadBatch(answers, 0)
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			s.failPendingOn(conn, fmt.Errorf("%s refused the query: %w", s.server, err), false)
			continue
		case err != nil:
			s.failPendingOn(conn, err, true)
			conn.Close()
			return
		}
		for _, m := range answers[:n] {
			s.dispatch(m.Buffers[0][:m.N])
		}
		s.flush() // the answers made room in the window
	}
}

// dispatch hands an answer to the query with its ID, if one waits.
func (s *udpSocket) dispatch(answer []byte) {
	if len(answer) < 2 {
		return // no ID
	}
	if len(answer) == answerBufferSize {
		answer[2] |= truncatedFlag // it may have been cut: ask over TCP
	}
	s.mu.Lock()
	x := s.take(binary.BigEndian.Uint16(answer))
	s.mu.Unlock()
	if x != nil {
		s.finish(x, answer, nil)
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
	s.take(id)
	s.mu.Unlock()
	s.finish(x, nil, context.DeadlineExceeded)
	s.flush() // it made room in the window
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
		s.conn, s.batch = nil, nil
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
			taken = append(taken, s.take(id))
		}
	}
	return taken
}
