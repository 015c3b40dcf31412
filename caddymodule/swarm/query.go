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

	// truncatedFlag is the TC bit in the third byte of a DNS message.
	truncatedFlag = 0x02
)

// dnsClient asks a loop's DNS servers for one name's addresses, over the
// process's shared UDP sockets, and over TCP when an answer is truncated.
// It remembers each server's last answer per record type, so an answer
// that has not changed is recognised by its bytes and not read again.
type dnsClient struct {
	qname   string            // absolute, lower-case
	types   []uint16          // the record types asked, in order
	servers []string          // "host:port", asked in order
	queries map[uint16][]byte // the packed query per type; its ID is replaced

	mu      sync.Mutex
	sockets []*udpSocket // by server; nil until first used
	closed  bool
	last    map[answerKey]*lastAnswer
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
		queries: make(map[uint16][]byte, len(types)),
		sockets: make([]*udpSocket, len(servers)),
		last:    make(map[answerKey]*lastAnswer),
	}
	for _, qtype := range types {
		packed, err := c.queryMsg(qtype).Pack()
		if err != nil {
			panic(fmt.Sprintf("swarm: packing a query for %q: %v", name, err)) // validated names pack
		}
		c.queries[qtype] = packed
	}
	return c
}

// queryMsg is the question for qtype, offering EDNS answers larger than
// 512 bytes.
func (c *dnsClient) queryMsg(qtype uint16) *dns.Msg {
	msg := new(dns.Msg)
	msg.SetQuestion(c.qname, qtype)
	msg.SetEdns0(ednsUDPSize, false)
	return msg
}

// close gives the sockets back; a lookup still running fails.
func (c *dnsClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for i, s := range c.sockets {
		if s != nil {
			s.release()
			c.sockets[i] = nil
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

// lookup asks for every record type in turn, until the deadline or ctx's
// end. A failure of any type fails the lookup: a partial set would drop
// tasks that are there. The addresses are sorted and unique; the caller
// must not modify them.
func (c *dnsClient) lookup(ctx context.Context, deadline time.Time, dialer net.Dialer) ([]netip.Addr, refreshResult, error) {
	var addrs []netip.Addr
	var noTask error
	result := resultEmpty
	for _, qtype := range c.types {
		found, res, err := c.lookupType(ctx, deadline, qtype, dialer)
		switch {
		case res == resultOK && addrs == nil:
			addrs = found
		case res == resultOK:
			addrs = slices.Concat(addrs, found) // A records sort before AAAA
		case res.settles():
			if result != resultNXDomain {
				result, noTask = res, err
			}
		default:
			return nil, res, err
		}
	}
	if len(addrs) > 0 {
		return addrs, resultOK, nil
	}
	return nil, result, noTask
}

// lookupType asks the servers in order for one record type until one
// settles the question (addresses, empty, no such name); a timeout,
// SERVFAIL, refusal or unreadable answer moves on to the next. Each server
// gets an equal share of the time left before the one deadline.
func (c *dnsClient) lookupType(ctx context.Context, deadline time.Time, qtype uint16, dialer net.Dialer) ([]netip.Addr, refreshResult, error) {
	var failures []string
	result := resultError
	for i := range c.servers {
		share := time.Until(deadline) / time.Duration(len(c.servers)-i)
		addrs, res, err := c.ask(ctx, time.Now().Add(share), i, qtype, dialer)
		if res.settles() {
			return addrs, res, err
		}
		result = res
		failures = append(failures, err.Error())
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			break
		}
	}
	return nil, result, errors.New(strings.Join(failures, "; "))
}

// ask asks server i for qtype over UDP and, whenever the answer has the
// TC bit, again over TCP, before its records are read: a truncated
// answer may not even unpack, and a truncated subset would churn the set.
func (c *dnsClient) ask(ctx context.Context, deadline time.Time, i int, qtype uint16, dialer net.Dialer) ([]netip.Addr, refreshResult, error) {
	sock, err := c.socket(i)
	if err != nil {
		return nil, resultError, err
	}
	x := udpExchanges.Get().(*udpExchange)
	defer udpExchanges.Put(x)
	x.query = append(x.query[:0], c.queries[qtype]...)
	answer, err := sock.exchange(ctx, x, deadline, dialer)
	switch {
	case err != nil:
		return nil, failureResult(err), fmt.Errorf("asking %s: %w", c.servers[i], err)
	case len(answer) > 2 && answer[2]&truncatedFlag != 0:
		return c.askOverTCP(ctx, deadline, i, qtype, dialer)
	}
	addrs, result, err := c.read(answer, answerKey{i, qtype})
	if err != nil {
		err = fmt.Errorf("%s answered: %w", c.servers[i], err)
	}
	return addrs, result, err
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
	last := c.last[key]
	c.mu.Unlock()
	if last != nil && bytes.Equal(last.raw, answer[2:]) {
		return last.addrs, last.result, last.err
	}
	addrs, result, err := unpackAnswer(answer, c.qname, key.qtype)
	if result != resultError || err == nil {
		c.mu.Lock()
		c.last[key] = &lastAnswer{raw: bytes.Clone(answer[2:]), addrs: addrs, result: result, err: err}
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
