package swarm

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeLoopClock is a swarmClock that moves only when told to. Every After call
// is reported on waits, so a test knows when a loop is parked.
type fakeLoopClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeLoopTimer
	waits  chan time.Duration
}

type fakeLoopTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeLoopClock() *fakeLoopClock {
	return &fakeLoopClock{
		now:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		waits: make(chan time.Duration, 100),
	}
}

func (c *fakeLoopClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeLoopClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, fakeLoopTimer{at: c.now.Add(d), ch: ch})
	c.mu.Unlock()
	c.waits <- d
	return ch
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeLoopClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	pending := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			pending = append(pending, t)
			continue
		}
		t.ch <- c.now
	}
	c.timers = pending
}

// awaitWait returns the duration of the next After call, failing the test
// if none comes (a deadlock guard, not a condition polled until it holds).
func (c *fakeLoopClock) awaitWait(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.waits:
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("the loop never waited on the clock")
		return 0
	}
}

// scriptedLookup is a lookupFunc whose answer the test sets, counting the
// lookups made.
type scriptedLookup struct {
	mu     sync.Mutex
	addrs  []string
	result refreshResult
	err    error
	calls  chan struct{}
}

func newScriptedLookup() *scriptedLookup {
	return &scriptedLookup{result: resultOK, calls: make(chan struct{}, 100)}
}

func (s *scriptedLookup) set(result refreshResult, addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.result, s.addrs, s.err = result, addrs, nil
	if result != resultOK {
		s.err = errors.New(string(result))
	}
}

func (s *scriptedLookup) lookup(context.Context) ([]netip.Addr, refreshResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls <- struct{}{}
	addrs := make([]netip.Addr, len(s.addrs))
	for i, a := range s.addrs {
		addrs[i] = netip.MustParseAddr(a)
	}
	if s.result != resultOK {
		addrs = nil
	}
	return addrs, s.result, s.err
}

// inGoroutine makes a lookup that blocks a beginFunc of l.
func inGoroutine(l *dnsLoop, lookup func(context.Context) ([]netip.Addr, refreshResult, error)) beginFunc {
	return func(tag uint64, done lookupDone) {
		go func() {
			addrs, result, err := lookup(l.ctx)
			done(tag, addrs, result, err)
		}()
	}
}

// refresh performs one lookup outside the schedule, applies its result
// and returns when it has.
func (l *dnsLoop) refresh() {
	ended := make(chan struct{})
	l.begin(l.lastStarted.Add(1), func(seq uint64, addrs []netip.Addr, result refreshResult, err error) {
		if l.ctx.Err() == nil {
			l.apply(seq, l.schedule.clock.Now(), addrs, result, err)
		}
		close(ended)
	})
	<-ended
}

// runLoop puts l on its schedule until the test ends, then waits for its
// lookups to end.
func runLoop(t *testing.T, l *dnsLoop) {
	t.Cleanup(func() { l.stop(); <-l.done })
	l.schedule.add(l)
}

// takeEarly reports whether an early re-resolve of l was asked for, and
// forgets it.
func takeEarly(l *dnsLoop) bool {
	l.schedule.mu.Lock()
	defer l.schedule.mu.Unlock()
	asked := l.turn.early
	l.turn.early = false
	return asked
}

// lookupNow performs one lookup of l's client, ending by ctx's deadline
// or queryTimeout, whichever is sooner.
func lookupNow(l *dnsLoop, ctx context.Context) ([]netip.Addr, refreshResult, error) {
	deadline := time.Now().Add(queryTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	type outcome struct {
		addrs  []netip.Addr
		result refreshResult
		err    error
	}
	ended := make(chan outcome, 1)
	l.client.begin(ctx, deadline, l.currentSettings().dialer(), 0, func(_ uint64, addrs []netip.Addr, result refreshResult, err error) {
		ended <- outcome{addrs, result, err}
	})
	o := <-ended
	return o.addrs, o.result, o.err
}

// newTestPool returns a loop and pool for key, driven by a fake clock and
// a scripted lookup, not running: tests call refresh and probeAll.
func newTestPool(t *testing.T, key poolKey) (*fakeLoopClock, *scriptedLookup, *dnsLoop, *taskPool) {
	t.Helper()
	if key.name == "" {
		key.resolverKey = resolverKey{name: "tasks.app", resolvers: "127.0.0.1:53", versions: "ipv4"}
	}
	if key.maxStale == 0 {
		key.maxStale = 5 * time.Minute
	}
	if key.maxWaiting == 0 {
		key.maxWaiting = defaultMaxWaiting
	}
	clk := newFakeLoopClock()
	script := newScriptedLookup()
	loop := newDNSLoop(key.resolverKey, newRefreshSchedule(clk))
	loop.begin = func(tag uint64, done lookupDone) {
		addrs, result, err := script.lookup(loop.ctx)
		done(tag, addrs, result, err)
	}
	loop.addUser(&Upstreams{}, loopSettings{refresh: time.Second, dialTimeout: time.Second})
	pool := newTaskPool(key, loop, clk)
	loop.attach(pool)
	return clk, script, loop, pool
}

// served returns the dial addresses the pool serves.
func served(p *taskPool) []string { return p.snapshot.Load().dials }

// testDNSServer is a DNS server on 127.0.0.1, over UDP and TCP on one
// port. It answers like Docker's: UDP answers are truncated at 512 bytes
// (whatever EDNS size the client offers) with the TC bit.
type testDNSServer struct {
	addr       string
	udpQueries atomic.Int32
	tcpQueries atomic.Int32

	mu         sync.Mutex
	udpSources map[string]bool // the client addresses UDP queries came from
}

// sources returns the client addresses UDP queries came from.
func (s *testDNSServer) sources() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.udpSources))
}

// Names the test server answers specially over UDP.
const (
	garbageName = "tasks.garbage." // bytes that do not parse
	cutName     = "tasks.cut."     // the TC bit, and the answer cut mid-record
	wrongIDName = "tasks.wrongid." // first an answer with another ID and address, then the real one
	shortName   = "tasks.short."   // the message ID alone: two bytes
	hugeName    = "tasks.huge."    // the whole answer over UDP, however large, ignoring the EDNS size
)

// startTestDNSServer serves handler's answers (the reply header and
// question are filled in); handler returns nil to not answer at all.
func startTestDNSServer(t testing.TB, handler func(q dns.Question) *dns.Msg) *testDNSServer {
	t.Helper()
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ln == nil; attempt++ {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			if attempt == 10 {
				t.Fatalf("no port free for both UDP and TCP: %v", err)
			}
		}
	}
	s := &testDNSServer{addr: pc.LocalAddr().String(), udpSources: make(map[string]bool)}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		_, udp := w.RemoteAddr().(*net.UDPAddr)
		if udp {
			s.udpQueries.Add(1)
			s.mu.Lock()
			s.udpSources[w.RemoteAddr().String()] = true
			s.mu.Unlock()
		} else {
			s.tcpQueries.Add(1)
		}
		switch req.Question[0].Name {
		case garbageName:
			// a header that promises records, then nothing parseable
			_, _ = w.Write([]byte{byte(req.Id >> 8), byte(req.Id), 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xde, 0xad})
			return
		case shortName:
			_, _ = w.Write([]byte{byte(req.Id >> 8), byte(req.Id)})
			return
		}
		resp := handler(req.Question[0])
		if resp == nil {
			return
		}
		rcode := resp.Rcode
		resp.SetReply(req)
		resp.Rcode = rcode
		switch {
		case udp && req.Question[0].Name == cutName:
			packed, err := resp.Pack()
			if err != nil {
				panic(err)
			}
			packed[2] |= 0x02 // TC
			_, _ = w.Write(packed[:60])
			return
		case udp && req.Question[0].Name == wrongIDName:
			forged := resp.Copy()
			forged.Id++
			forged.Answer = aRecords(req.Question[0].Name, "10.9.9.9").Answer
			_ = w.WriteMsg(forged)
		}
		if udp && req.Question[0].Name != hugeName {
			resp.Truncate(dns.MinMsgSize)
		}
		_ = w.WriteMsg(resp)
	})
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return s
}

// aRecords returns an answer with an A record for each address.
func aRecords(name string, addrs ...string) *dns.Msg {
	m := new(dns.Msg)
	for _, a := range addrs {
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 600},
			A:   net.ParseIP(a),
		})
	}
	return m
}
