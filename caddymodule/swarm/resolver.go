package swarm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/miekg/dns"
	"go.uber.org/zap"
)

const (
	// queryTimeout bounds one background lookup, all resolvers together:
	// Docker forwards a name it does not know for up to 3 × 4 s before it
	// answers NXDOMAIN, and that answer is worth waiting for.
	queryTimeout = 15 * time.Second

	// minEarlyRefreshGap rate-limits the re-resolves ResetCache asks for:
	// every retry of every request asks.
	minEarlyRefreshGap = 250 * time.Millisecond

	// ednsUDPSize is the UDP answer size offered (the DNS flag day size):
	// about 70 tasks fit; larger answers are truncated and asked again
	// over TCP.
	ednsUDPSize = 1232

	// emptyAnswersToConfirm is how many empty answers or NXDOMAINs in a
	// row empty the set: a single one can be a node's passing glitch.
	emptyAnswersToConfirm = 2

	// resolvConfPath is where the system resolver's servers are read.
	resolvConfPath = "/etc/resolv.conf"

	// maxLookupsInFlight bounds the lookups of one loop that overlap
	// because the earlier ones have not ended (a slow NXDOMAIN, a DNS
	// server that does not answer): one a second for the 15 s query
	// timeout, so that a dead server is not flooded at short refreshes.
	maxLookupsInFlight = 16
)

// refreshResult is the outcome of one lookup, as counted in the metrics.
type refreshResult string

// The outcomes of a lookup.
const (
	resultOK       refreshResult = "ok"       // at least one address
	resultEmpty    refreshResult = "empty"    // NOERROR with no address
	resultNXDomain refreshResult = "nxdomain" // no such name
	resultServFail refreshResult = "servfail" // the server failed
	resultTimeout  refreshResult = "timeout"  // no answer in time
	resultError    refreshResult = "error"    // anything else: refused, bad answer, network error
)

// swarmClock is the time source of the lookup and probe loops; tests
// replace it to drive state changes without sleeping.
type swarmClock interface {
	Now() time.Time
	After(time.Duration) <-chan time.Time
}

// realClock is the wall clock.
type realClock struct{}

// Now returns the current time.
func (realClock) Now() time.Time { return time.Now() }

// After waits for d to pass.
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// swarmLog returns the process's current default logger: the loops live on
// the process, not on a config, so they must not keep a config's logger.
func swarmLog() *zap.Logger { return caddy.Log().Named("swarm") }

// resolverKey identifies a process-wide lookup loop.
type resolverKey struct {
	name      string // lower-case, without the final dot; looked up as absolute
	resolvers string // "host:port,…"; empty: the system resolver's
	versions  string // "ipv4", "ipv6" or "ipv4 ipv6"
}

// queryTypes returns the record types to ask for.
func (k resolverKey) queryTypes() []uint16 {
	var types []uint16
	if strings.Contains(k.versions, "ipv4") {
		types = append(types, dns.TypeA)
	}
	if strings.Contains(k.versions, "ipv6") {
		types = append(types, dns.TypeAAAA)
	}
	return types
}

// servers returns the DNS servers to ask.
func (k resolverKey) servers() []string {
	if k.resolvers != "" {
		return strings.Split(k.resolvers, ",")
	}
	return systemResolvers()
}

// systemResolvers returns the name servers of /etc/resolv.conf (Docker
// writes 127.0.0.11 there), read once per loop. Like Go's own resolver it
// falls back to the local host when the file is missing or lists none.
func systemResolvers() []string {
	conf, err := dns.ClientConfigFromFile(resolvConfPath)
	if err != nil || len(conf.Servers) == 0 {
		return []string{"127.0.0.1:53", "[::1]:53"}
	}
	servers := make([]string, len(conf.Servers))
	for i, s := range conf.Servers {
		servers[i] = net.JoinHostPort(s, conf.Port)
	}
	return servers
}

// loopSettings are the settings a user asks of a shared loop; the loop
// uses the shortest of each among its users.
type loopSettings struct {
	refresh           time.Duration
	dialTimeout       time.Duration
	dialFallbackDelay time.Duration
}

// dnsStatus is what a loop knows after a lookup. It is published
// atomically and never modified.
type dnsStatus struct {
	addrs       []netip.Addr // the current set: sorted, unique
	lastGood    time.Time    // when DNS last confirmed the set; zero: never
	lastRefresh time.Time    // when the last lookup ended; zero: none yet
	lastResult  refreshResult
	lastErr     error // why the last lookup was not ok; nil when it was
	emptyStreak int   // empty answers or NXDOMAINs since the last ok
}

// lookupFunc performs one lookup. It returns the addresses found with
// resultOK, or no addresses, another result and an error describing it.
type lookupFunc func(ctx context.Context) ([]netip.Addr, refreshResult, error)

// dnsLoop looks up one name in the background for every handler that uses
// it, across config reloads, and tells the task pools attached to it.
type dnsLoop struct {
	key     resolverKey
	servers []string
	clock   swarmClock
	lookup  lookupFunc
	started time.Time

	status      atomic.Pointer[dnsStatus] // never nil
	early       chan struct{}             // capacity 1: a pending early re-resolve
	firstAnswer chan struct{}             // closed after the first lookup
	firstOnce   sync.Once                 // closes firstAnswer
	lastStarted atomic.Uint64             // number of the last lookup started
	ctx         context.Context           // the process's, cancelled by stop
	stop        context.CancelFunc
	done        chan struct{} // closed when run returns

	mu       sync.Mutex
	users    map[*Upstreams]loopSettings
	settings loopSettings // the shortest of each among users
	pools    map[*taskPool]struct{}
	applied  uint64 // number of the last lookup whose result was applied
}

// newDNSLoop returns a loop that is not running yet.
func newDNSLoop(key resolverKey, clock swarmClock) *dnsLoop {
	ctx, stop := context.WithCancel(context.Background())
	l := &dnsLoop{
		key:         key,
		servers:     key.servers(),
		clock:       clock,
		started:     clock.Now(),
		early:       make(chan struct{}, 1),
		firstAnswer: make(chan struct{}),
		ctx:         ctx,
		stop:        stop,
		done:        make(chan struct{}),
		users:       make(map[*Upstreams]loopSettings),
		pools:       make(map[*taskPool]struct{}),
	}
	l.lookup = l.query
	l.status.Store(new(dnsStatus))
	return l
}

// run starts a lookup every refresh interval, or earlier when asked,
// until the loop is stopped. A lookup still running does not hold back
// the next one: Docker answers NXDOMAIN for a service with no task only
// after up to 12 s, and tasks started meanwhile must be found within an
// interval, not after that answer. Up to maxLookupsInFlight overlap; a
// result that arrives after a later lookup's is dropped (see apply).
func (l *dnsLoop) run() {
	var lookups sync.WaitGroup
	defer close(l.done)
	defer lookups.Wait()
	inFlight := make(chan struct{}, maxLookupsInFlight)
	for {
		select {
		case inFlight <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
		started := l.clock.Now()
		lookups.Go(func() {
			defer func() { <-inFlight }()
			l.refresh()
			l.firstOnce.Do(func() { close(l.firstAnswer) })
		})
		if !l.waitForNextRefresh(started) {
			return
		}
	}
}

// waitForNextRefresh waits for the refresh interval or an early re-resolve
// request, the latter no sooner than minEarlyRefreshGap after the last
// lookup started. It reports false when the loop is stopped.
func (l *dnsLoop) waitForNextRefresh(lastLookup time.Time) bool {
	select {
	case <-l.ctx.Done():
		return false
	case <-l.clock.After(l.currentSettings().refresh):
		return true
	case <-l.early:
	}
	if wait := lastLookup.Add(minEarlyRefreshGap).Sub(l.clock.Now()); wait > 0 {
		select {
		case <-l.ctx.Done():
			return false
		case <-l.clock.After(wait):
		}
	}
	return true
}

// requestEarlyRefresh asks for a lookup before the next refresh; it never
// blocks, and requests made while one is pending are merged.
func (l *dnsLoop) requestEarlyRefresh() {
	select {
	case l.early <- struct{}{}:
	default:
	}
}

// refresh performs one lookup and applies its result.
func (l *dnsLoop) refresh() {
	seq := l.lastStarted.Add(1)
	ctx, cancel := context.WithTimeout(l.ctx, queryTimeout)
	addrs, result, err := l.lookup(ctx)
	cancel()
	if l.ctx.Err() != nil {
		return // stopped meanwhile: the result is of no use
	}
	l.apply(seq, l.clock.Now(), addrs, result, err)
}

// apply updates the set with the result of lookup number seq by the rules
// of the contract: an ok answer replaces it; an empty answer or NXDOMAIN
// empties it only when the one before was empty too; any failure keeps it
// (the task pools stop serving it once it is older than their max_stale).
// Then it tells the pools. A result older than one already applied is
// only counted: it describes the service as it was before.
func (l *dnsLoop) apply(seq uint64, now time.Time, addrs []netip.Addr, result refreshResult, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	swarmMetrics.refreshes.WithLabelValues(l.key.name, string(result)).Inc()
	if seq <= l.applied {
		return
	}
	l.applied = seq
	prev := l.status.Load()
	next := &dnsStatus{
		addrs:       prev.addrs,
		lastGood:    prev.lastGood,
		lastRefresh: now,
		lastResult:  result,
		lastErr:     err,
		emptyStreak: prev.emptyStreak,
	}
	switch result {
	case resultOK:
		slices.SortFunc(addrs, netip.Addr.Compare)
		// sorted and unique, so the pools recognise an unchanged set
		next.addrs = slices.Compact(addrs)
		next.lastGood = now
		next.emptyStreak = 0
	case resultEmpty, resultNXDomain:
		next.emptyStreak++
		if next.emptyStreak >= emptyAnswersToConfirm {
			next.addrs = nil
			next.lastGood = now
		}
	}
	l.status.Store(next)
	l.logChange(prev, next)
	for p := range l.pools {
		p.sync(next, now)
	}
}

// logChange logs changes of the set and of the lookup outcome, not every
// lookup: a failing DNS would otherwise log every second.
func (l *dnsLoop) logChange(prev, next *dnsStatus) {
	log := swarmLog().With(zap.String("name", l.key.name))
	if !slices.Equal(prev.addrs, next.addrs) {
		log.Info("swarm tasks changed",
			zap.Int("tasks", len(next.addrs)),
			zap.Int("previous", len(prev.addrs)),
			zap.Stringers("addresses", next.addrs))
	}
	if next.lastResult == prev.lastResult && errorText(next.lastErr) == errorText(prev.lastErr) {
		return
	}
	switch next.lastResult {
	case resultOK:
		if prev.lastResult != "" {
			log.Info("DNS lookup succeeds again", zap.Int("tasks", len(next.addrs)))
		}
	case resultEmpty, resultNXDomain:
		log.Warn("DNS lookup found no task",
			zap.String("result", string(next.lastResult)),
			zap.Int("in_a_row", next.emptyStreak),
			zap.Int("tasks_kept", len(next.addrs)),
			zap.Error(next.lastErr))
	default:
		fields := []zap.Field{
			zap.String("result", string(next.lastResult)),
			zap.Int("tasks_kept", len(next.addrs)),
			zap.Error(next.lastErr),
		}
		if !next.lastGood.IsZero() { // a zero time would log as a date in year 1
			fields = append(fields, zap.Time("last_good", next.lastGood))
		}
		log.Error("DNS lookup failed; keeping the last good tasks", fields...)
	}
}

// errorText is err's message, or "" for nil.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// addUser adds or updates a user's settings.
func (l *dnsLoop) addUser(user *Upstreams, s loopSettings) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.users[user] = s
	l.updateSettings()
}

// removeUser removes a user and returns how many remain and whether it
// was a user.
func (l *dnsLoop) removeUser(user *Upstreams) (remaining int, wasUser bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, wasUser = l.users[user]
	delete(l.users, user)
	l.updateSettings()
	return len(l.users), wasUser
}

// updateSettings sets the shortest of each setting among the users.
// l.mu must be held.
func (l *dnsLoop) updateSettings() {
	first := true
	for _, s := range l.users {
		if first {
			l.settings, first = s, false
			continue
		}
		l.settings.refresh = min(l.settings.refresh, s.refresh)
		l.settings.dialTimeout = min(l.settings.dialTimeout, s.dialTimeout)
		l.settings.dialFallbackDelay = min(l.settings.dialFallbackDelay, s.dialFallbackDelay)
	}
}

// currentSettings returns the settings in effect.
func (l *dnsLoop) currentSettings() loopSettings {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.settings
}

// attach makes p follow the loop, starting from the current status.
func (l *dnsLoop) attach(p *taskPool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pools[p] = struct{}{}
	p.sync(l.status.Load(), l.clock.Now())
}

// detach stops telling p.
func (l *dnsLoop) detach(p *taskPool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pools, p)
}

// query is the real lookupFunc: every configured record type, each asked
// of the servers in turn until one answers. A failure of any type fails
// the lookup: a partial set would drop tasks that are there.
func (l *dnsLoop) query(ctx context.Context) ([]netip.Addr, refreshResult, error) {
	var addrs []netip.Addr
	var noTask error
	result := resultEmpty
	for _, qtype := range l.key.queryTypes() {
		found, res, err := l.queryType(ctx, qtype)
		switch res {
		case resultOK:
			addrs = append(addrs, found...)
		case resultEmpty, resultNXDomain:
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

// queryType asks for one record type, trying the servers in order; each
// gets an equal share of the time. An answer that settles the question
// (addresses, empty, NXDOMAIN) ends the search.
func (l *dnsLoop) queryType(ctx context.Context, qtype uint16) ([]netip.Addr, refreshResult, error) {
	qname := dns.Fqdn(l.key.name)
	msg := new(dns.Msg)
	msg.SetQuestion(qname, qtype)
	msg.SetEdns0(ednsUDPSize, false)
	settings := l.currentSettings()
	perServer := queryTimeout / time.Duration(len(l.servers))

	var result refreshResult
	var err error
	for _, server := range l.servers {
		var resp *dns.Msg
		resp, err = exchange(ctx, msg, server, settings, perServer)
		if err != nil {
			result = resultError
			if isTimeout(err) {
				result = resultTimeout
			}
			err = fmt.Errorf("asking %s: %w", server, err)
			continue
		}
		var addrs []netip.Addr
		addrs, result, err = readAnswer(resp, qname, qtype)
		if err != nil {
			err = fmt.Errorf("%s answered: %w", server, err)
		}
		switch result {
		case resultOK, resultEmpty, resultNXDomain:
			return addrs, result, err
		}
	}
	return nil, result, err
}

// exchange asks server over UDP and, when the answer is truncated, again
// over TCP: Docker truncates at 512 bytes or the EDNS size, so a service
// of more than ~15 tasks needs TCP. The TCP answer's failure is the
// lookup's: a truncated, shuffled subset would churn the set.
func exchange(ctx context.Context, msg *dns.Msg, server string, s loopSettings, timeout time.Duration) (*dns.Msg, error) {
	resp, err := exchangeOver(ctx, "udp", msg, server, s, timeout)
	if err == nil && resp.Truncated {
		return exchangeOver(ctx, "tcp", msg, server, s, timeout)
	}
	return resp, err
}

// exchangeOver sends msg to server over network and reads the answer.
// The connection is dialed here rather than by the DNS client, whose
// request timeout would otherwise be capped by the dial timeout.
func exchangeOver(ctx context.Context, network string, msg *dns.Msg, server string, s loopSettings, timeout time.Duration) (*dns.Msg, error) {
	dialer := net.Dialer{Timeout: s.dialTimeout, FallbackDelay: s.dialFallbackDelay}
	conn, err := dialer.DialContext(ctx, network, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// the DNS client obeys only the context's deadline; closing the
	// connection makes a stopped loop stop waiting for an answer
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	client := dns.Client{Net: network, ReadTimeout: timeout, WriteTimeout: timeout}
	resp, _, err := client.ExchangeWithConnContext(ctx, msg, &dns.Conn{Conn: conn})
	if err != nil && ctx.Err() != nil {
		err = ctx.Err() // not "use of closed network connection": a timeout
	}
	return resp, err
}

// isTimeout reports whether err means no answer came in time.
func isTimeout(err error) bool {
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout()
}

// readAnswer classifies an answer to (qname, qtype), qname absolute and
// lower-case, and returns its
// addresses. Records of qtype are taken for qname and for the names a
// CNAME chain in the answer leads to; other records are ignored, but an
// answer with records and no usable address is an error, not an empty set.
func readAnswer(resp *dns.Msg, qname string, qtype uint16) ([]netip.Addr, refreshResult, error) {
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, resultNXDomain, fmt.Errorf("NXDOMAIN: no such name %s (a service with no running task?)", qname)
	case dns.RcodeServerFailure:
		return nil, resultServFail, errors.New("SERVFAIL")
	default:
		return nil, resultError, fmt.Errorf("rcode %s", dns.RcodeToString[resp.Rcode])
	}
	if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, qname) || resp.Question[0].Qtype != qtype {
		return nil, resultError, fmt.Errorf("answer does not match the question %s %s", qname, dns.TypeToString[qtype])
	}

	owners := map[string]bool{qname: true}
	for followed := true; followed; {
		followed = false
		for _, rr := range resp.Answer {
			if cname, ok := rr.(*dns.CNAME); ok && owners[dns.CanonicalName(cname.Hdr.Name)] && !owners[dns.CanonicalName(cname.Target)] {
				owners[dns.CanonicalName(cname.Target)] = true
				followed = true
			}
		}
	}
	var addrs []netip.Addr
	for _, rr := range resp.Answer {
		if !owners[dns.CanonicalName(rr.Header().Name)] {
			continue
		}
		var ip net.IP
		switch rec := rr.(type) {
		case *dns.A:
			if qtype == dns.TypeA {
				ip = rec.A
			}
		case *dns.AAAA:
			if qtype == dns.TypeAAAA {
				ip = rec.AAAA
			}
		}
		if addr, ok := netip.AddrFromSlice(ip); ok && !addr.Unmap().IsUnspecified() {
			addrs = append(addrs, addr.Unmap())
		}
	}
	switch {
	case len(addrs) > 0:
		return addrs, resultOK, nil
	case len(resp.Answer) > 0:
		return nil, resultError, fmt.Errorf("no usable %s record for %s among %d records: %s",
			dns.TypeToString[qtype], qname, len(resp.Answer), describeRecords(resp.Answer))
	default:
		return nil, resultEmpty, fmt.Errorf("no %s record for %s", dns.TypeToString[qtype], qname)
	}
}

// describeRecords summarises records for an error message.
func describeRecords(rrs []dns.RR) string {
	const most = 3
	parts := make([]string, 0, most+1)
	for i, rr := range rrs {
		if i == most {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, strings.Join(strings.Fields(rr.String()), " "))
	}
	return strings.Join(parts, "; ")
}

// swarmRegistry holds the process-wide loops and task pools. It outlives
// configs: a reload provisions the new config (joining the running loops)
// before it cleans up the old one.
var swarmRegistry = struct {
	sync.Mutex
	loops map[resolverKey]*dnsLoop
	pools map[poolKey]*taskPool
}{
	loops: make(map[resolverKey]*dnsLoop),
	pools: make(map[poolKey]*taskPool),
}

// acquireTaskPool returns the pool for key, starting it and its loop if
// they do not run yet, and counts user in.
func acquireTaskPool(key poolKey, user *Upstreams, s loopSettings) *taskPool {
	swarmRegistry.Lock()
	defer swarmRegistry.Unlock()
	loop := swarmRegistry.loops[key.resolverKey]
	newLoop := loop == nil
	if newLoop {
		loop = newDNSLoop(key.resolverKey, realClock{})
		swarmRegistry.loops[key.resolverKey] = loop
	}
	loop.addUser(user, s)
	if newLoop {
		go loop.run() // after addUser: the first lookup needs the settings
	}
	pool := swarmRegistry.pools[key]
	if pool == nil {
		pool = newTaskPool(key, loop, realClock{})
		swarmRegistry.pools[key] = pool
		loop.attach(pool)
		pool.start()
	}
	pool.users++
	return pool
}

// releaseTaskPool counts user out of pool and stops the pool and its loop
// when they have no user left. Releasing twice is harmless.
func releaseTaskPool(pool *taskPool, user *Upstreams) {
	swarmRegistry.Lock()
	defer swarmRegistry.Unlock()
	remaining, wasUser := pool.loop.removeUser(user)
	if !wasUser {
		return
	}
	pool.users--
	if pool.users == 0 {
		pool.loop.detach(pool)
		pool.stop()
		delete(swarmRegistry.pools, pool.key)
	}
	if remaining == 0 {
		pool.loop.stop()
		delete(swarmRegistry.loops, pool.loop.key)
	}
}
