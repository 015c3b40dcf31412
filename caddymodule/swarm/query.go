package swarm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	// queryTimeout bounds one background lookup, all record types and
	// resolvers together: Docker forwards a name it does not know for up
	// to 3 × 4 s before it answers NXDOMAIN, and that answer is worth
	// waiting for.
	queryTimeout = 15 * time.Second

	// ednsUDPSize is the UDP answer size offered (the DNS flag day size):
	// about 70 tasks fit; larger answers are truncated and asked again
	// over TCP.
	ednsUDPSize = 1232
)

// dnsClient asks a loop's DNS servers for one name's addresses, over the
// process's shared UDP sockets, and over TCP when an answer is truncated.
// It remembers each server's last answer per record type, so an answer
// that has not changed is recognised by its bytes and not read again.
type dnsClient struct {
	qname   string   // absolute, lower-case
	types   []uint16 // the record types asked, in order
	servers []string // "host:port", asked in order
	queries [][]byte // the packed query per type, in order; its ID is replaced

	mu      sync.Mutex
	sockets []*udpSocket // by server; nil until first used
	closed  bool
	last    []*lastAnswer // by server and type (see lastIndex)
}

// answerKey names a server's answers to one record type.
type answerKey struct {
	server int
	qtype  uint16
}

// lastAnswer is an answer and what readAnswer made of it.
type lastAnswer struct {
	raw    []byte // the message without its ID, canonical (see canonicalizeAnswer)
	addrs  []netip.Addr
	result refreshResult
	err    error
}

// newDNSClient returns a client for name (without the final dot) of the
// given record types, asking servers in order.
func newDNSClient(name string, types []uint16, servers []string) *dnsClient {
	c := &dnsClient{
		qname:   dns.Fqdn(name),
		types:   types,
		servers: servers,
		queries: make([][]byte, len(types)),
		sockets: make([]*udpSocket, len(servers)),
		last:    make([]*lastAnswer, len(servers)*len(types)),
	}
	for i, qtype := range types {
		packed, err := c.queryMsg(qtype).Pack()
		if err != nil {
			panic(fmt.Sprintf("swarm: packing a query for %q: %v", name, err)) // validated names pack
		}
		c.queries[i] = packed
	}
	return c
}

// lastIndex is where c.last holds the last answer of key.
func (c *dnsClient) lastIndex(key answerKey) int {
	return key.server*len(c.types) + slices.Index(c.types, key.qtype)
}

// queryMsg is the question for qtype, offering EDNS answers larger than
// 512 bytes.
func (c *dnsClient) queryMsg(qtype uint16) *dns.Msg {
	msg := new(dns.Msg)
	msg.SetQuestion(c.qname, qtype)
	msg.SetEdns0(ednsUDPSize, false)
	return msg
}

// close gives the sockets back; the lookups running end at once.
func (c *dnsClient) close() {
	c.mu.Lock()
	c.closed = true
	sockets := slices.Clone(c.sockets)
	clear(c.sockets)
	c.mu.Unlock()
	for _, s := range sockets {
		if s != nil {
			s.release(c)
		}
	}
}

// socket returns the UDP socket to server i.
func (c *dnsClient) socket(i int) (*udpSocket, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, net.ErrClosed
	}
	if c.sockets[i] == nil {
		c.sockets[i] = acquireUDPSocket(c.servers[i])
	}
	return c.sockets[i], nil
}

// begin starts a lookup of every record type in turn, which ends by the
// deadline, or at once when ctx ends or the client is closed, and calls
// done with tag and its result. A failure of any type fails the lookup:
// a partial set would drop tasks that are there. The addresses are
// sorted and unique; the caller must not modify them.
//
// No goroutine waits for the answers: each step is taken by whoever
// hands on the previous one's outcome, in practice the socket's reader.
func (c *dnsClient) begin(ctx context.Context, deadline time.Time, dialer net.Dialer, tag uint64, done lookupDone) {
	r := lookupRuns.Get().(*lookupRun)
	*r = lookupRun{c: c, ctx: ctx, deadline: deadline, dialer: dialer, tag: tag, done: done, result: resultEmpty, failures: r.failures[:0]}
	r.ask()
}

// lookupRuns recycles lookups: one every second per service.
var lookupRuns = sync.Pool{New: func() any { return new(lookupRun) }}

// lookupRun is one lookup in progress. Each record type is asked of the
// servers in order until one settles it (addresses, empty, no such name);
// a timeout, SERVFAIL, refusal or unreadable answer moves on to the next
// server. Each server gets an equal share of the time left before the one
// deadline. Its steps follow one another, never overlap.
type lookupRun struct {
	c        *dnsClient
	ctx      context.Context
	deadline time.Time
	dialer   net.Dialer
	tag      uint64
	done     lookupDone

	typeIndex int       // the record type asked now, in c.types
	server    int       // the server asked now
	askedBy   time.Time // the deadline of the server asked now
	addrs     []netip.Addr
	result    refreshResult // of the types that settled with no address
	noTask    error         // why they did
	failures  []string      // of the servers that failed the current type
}

// end hands the result on and recycles r.
func (r *lookupRun) end(addrs []netip.Addr, result refreshResult, err error) {
	done, tag := r.done, r.tag
	*r = lookupRun{failures: r.failures[:0]}
	lookupRuns.Put(r)
	done(tag, addrs, result, err)
}

// qtype is the record type asked now.
func (r *lookupRun) qtype() uint16 { return r.c.types[r.typeIndex] }

// ask asks the current server for the current type over UDP.
func (r *lookupRun) ask() {
	sock, err := r.c.socket(r.server)
	if err != nil {
		r.failed(resultError, err)
		return
	}
	share := time.Until(r.deadline) / time.Duration(len(r.c.servers)-r.server)
	r.askedBy = time.Now().Add(share)
	sock.send(r.ctx, r.c.queries[r.typeIndex], r.askedBy, r.dialer, r.c, r)
}

// answered takes the current server's UDP answer, or why none came; an
// answer with the TC bit is asked again over TCP before its records are
// read: a truncated answer may not even unpack, and a truncated subset
// would churn the set.
func (r *lookupRun) answered(answer []byte, err error) {
	server := r.c.servers[r.server]
	switch {
	case err != nil:
		r.failed(failureResult(err), fmt.Errorf("asking %s: %w", server, err))
	case len(answer) > 2 && answer[2]&truncatedFlag != 0:
		go func() { r.got(r.c.askOverTCP(r.ctx, r.askedBy, r.server, r.qtype(), r.dialer)) }()
	default:
		addrs, result, err := r.c.read(answer, answerKey{r.server, r.qtype()})
		if err != nil {
			err = fmt.Errorf("%s answered: %w", server, err)
		}
		r.got(addrs, result, err)
	}
}

// got takes the current server's reading of its answer: one that settles
// the type moves on to the next type, or ends the lookup after the last.
func (r *lookupRun) got(addrs []netip.Addr, result refreshResult, err error) {
	switch {
	case !result.settles():
		r.failed(result, err)
		return
	case result == resultOK && r.addrs == nil:
		r.addrs = addrs
	case result == resultOK:
		r.addrs = slices.Concat(r.addrs, addrs) // A records sort before AAAA
	case r.result != resultNXDomain:
		r.result, r.noTask = result, err
	}
	r.typeIndex, r.server, r.failures = r.typeIndex+1, 0, r.failures[:0]
	switch {
	case r.typeIndex < len(r.c.types):
		r.ask()
	case len(r.addrs) > 0:
		r.end(r.addrs, resultOK, nil)
	default:
		r.end(nil, r.result, r.noTask)
	}
}

// failed takes the current server's failure: the next server is asked
// while there is one and time is left, else the lookup fails.
func (r *lookupRun) failed(result refreshResult, err error) {
	r.failures = append(r.failures, err.Error())
	r.server++
	if r.server < len(r.c.servers) && r.ctx.Err() == nil && time.Now().Before(r.deadline) {
		r.ask()
		return
	}
	r.end(nil, result, errors.New(strings.Join(r.failures, "; ")))
}

// failureResult is the result of a query that got no answer.
func failureResult(err error) refreshResult {
	if isTimeout(err) {
		return resultTimeout
	}
	return resultError
}

// isTimeout reports whether err means no answer came in time.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()
}

// read reads a UDP answer, or returns what an answer that means the same
// (its ID aside) meant last time. It canonicalizes answer in place first (see
// canonicalizeAnswer): a rotated but unchanged answer is then recognised by
// its bytes, without unpacking or allocating.
func (c *dnsClient) read(answer []byte, key answerKey) ([]netip.Addr, refreshResult, error) {
	canonicalizeAnswer(answer)
	c.mu.Lock()
	last := c.last[c.lastIndex(key)]
	c.mu.Unlock()
	if last != nil && bytes.Equal(last.raw, answer[2:]) {
		return last.addrs, last.result, last.err
	}
	addrs, result, err := unpackAnswer(answer, c.qname, key.qtype)
	if result != resultError || err == nil {
		c.mu.Lock()
		c.last[c.lastIndex(key)] = &lastAnswer{raw: bytes.Clone(answer[2:]), addrs: addrs, result: result, err: err}
		c.mu.Unlock()
	}
	return addrs, result, err
}

// unpackAnswer reads a packed answer to (qname, qtype) with readAnswer;
// the addresses come sorted and unique.
func unpackAnswer(answer []byte, qname string, qtype uint16) ([]netip.Addr, refreshResult, error) {
	msg := new(dns.Msg)
	if err := msg.Unpack(answer); err != nil {
		return nil, resultError, fmt.Errorf("unreadable answer: %w", err)
	}
	if !msg.Response {
		return nil, resultError, errors.New("a query came back, not an answer")
	}
	addrs, result, err := readAnswer(msg, qname, qtype)
	return sortedUnique(addrs), result, err
}

// askOverTCP asks server i for qtype over a new TCP connection. The
// connection is dialed here rather than by the DNS client, whose request
// timeout would otherwise be capped by the dial timeout.
func (c *dnsClient) askOverTCP(ctx context.Context, deadline time.Time, i int, qtype uint16, dialer net.Dialer) ([]netip.Addr, refreshResult, error) {
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := dialer.DialContext(ctx, "tcp", c.servers[i])
	if err != nil {
		return nil, failureResult(err), fmt.Errorf("asking %s over TCP: %w", c.servers[i], err)
	}
	defer conn.Close()
	// the DNS client obeys only the context's deadline; closing the
	// connection makes a stopped loop stop waiting for an answer
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	timeout := time.Until(deadline)
	client := dns.Client{Net: "tcp", ReadTimeout: timeout, WriteTimeout: timeout}
	resp, _, err := client.ExchangeWithConnContext(ctx, c.queryMsg(qtype), &dns.Conn{Conn: conn})
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err() // not "use of closed network connection": a timeout
		}
		return nil, failureResult(err), fmt.Errorf("asking %s over TCP: %w", c.servers[i], err)
	}
	addrs, result, err := readAnswer(resp, c.qname, qtype)
	if err != nil {
		err = fmt.Errorf("%s answered over TCP: %w", c.servers[i], err)
	}
	return sortedUnique(addrs), result, err
}

// sortedUnique returns addrs sorted without duplicates: as they are when
// they already are, else a sorted copy. Sets in that form compare equal
// when they hold the same tasks, however the server ordered them.
func sortedUnique(addrs []netip.Addr) []netip.Addr {
	for i := 1; i < len(addrs); i++ {
		if addrs[i-1].Compare(addrs[i]) >= 0 {
			sorted := slices.Clone(addrs)
			slices.SortFunc(sorted, netip.Addr.Compare)
			return slices.Compact(sorted)
		}
	}
	return addrs
}
