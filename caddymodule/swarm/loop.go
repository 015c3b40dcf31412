package swarm

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

const (
	// minEarlyRefreshGap rate-limits the re-resolves ResetCache asks for:
	// every retry of every request asks.
	minEarlyRefreshGap = 250 * time.Millisecond

	// emptyAnswersToConfirm is how many empty answers or NXDOMAINs in a
	// row, the first and last at least a refresh interval apart, empty
	// the set: a single one can be a node's passing glitch, and early
	// re-resolves must not confirm it within milliseconds.
	emptyAnswersToConfirm = 2

	// maxLookupsInFlight bounds the lookups of one loop that overlap
	// because the earlier ones have not ended (a slow NXDOMAIN, a DNS
	// server that does not answer): one a second for the 15 s query
	// timeout, so that a dead server is not flooded at short refreshes.
	maxLookupsInFlight = 16

	// maxRefreshTick is the coarsest grid the refreshes are aligned to.
	maxRefreshTick = 100 * time.Millisecond

	// defaultDialFallbackDelay is Go's Fast Fallback delay, which a
	// dial_fallback_delay of 0 stands for.
	defaultDialFallbackDelay = 300 * time.Millisecond
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

// loopSettings are the settings a user asks of a shared loop; the loop
// uses the shortest of each among its users.
type loopSettings struct {
	refresh           time.Duration
	dialTimeout       time.Duration
	dialFallbackDelay time.Duration // 0: Go's default; negative: off
}

// dnsStatus is what a loop knows after a lookup. It is published
// atomically and never modified.
type dnsStatus struct {
	addrs       []netip.Addr // the current set: sorted, unique
	lastGood    time.Time    // when DNS last confirmed the set; zero: never
	lastRefresh time.Time    // when the last lookup ended; zero: none yet
	lastResult  refreshResult
	lastErr     error     // why the last lookup was not ok; nil when it was
	emptyStreak int       // empty answers or NXDOMAINs since the last ok
	emptySince  time.Time // when the first of them came
}

// statusFollower is told each status a loop publishes (a task pool).
type statusFollower interface {
	sync(st *dnsStatus, now time.Time)
}

// lookupDone receives the result of the lookup begun with tag: the
// addresses found with resultOK, or no addresses, another result and an
// error describing it.
type lookupDone func(tag uint64, addrs []netip.Addr, result refreshResult, err error)

// beginFunc starts one lookup and returns at once; done is called once,
// from any goroutine, with tag when the lookup ends.
type beginFunc func(tag uint64, done lookupDone)

// dnsLoop looks up one name in the background for every handler that uses
// it, across config reloads, and tells the task pools attached to it. Its
// lookups are started by a refreshSchedule.
type dnsLoop struct {
	key      resolverKey
	servers  []string
	client   *dnsClient
	schedule *refreshSchedule
	begin    beginFunc
	ended    lookupDone // lookupEnded, made once: not a closure per lookup
	started  time.Time

	status       atomic.Pointer[dnsStatus] // never nil
	refreshNanos atomic.Int64              // the refresh interval in effect
	turn         loopTurn                  // guarded by schedule.mu
	firstAnswer  chan struct{}             // closed after the first lookup
	firstOnce    sync.Once                 // closes firstAnswer
	lastStarted  atomic.Uint64             // number of the last lookup started
	ctx          context.Context           // cancelled by stop
	cancel       context.CancelFunc
	done         chan struct{} // closed when stopped and no lookup runs

	mu       sync.Mutex
	users    map[any]loopSettings // by user, in practice its *Upstreams
	settings loopSettings         // the shortest of each among users
	pools    map[statusFollower]struct{}
	applied  uint64                               // number of the last lookup whose result was applied
	counted  map[refreshResult]prometheus.Counter // the refreshes counters of the name
}

// newDNSLoop returns a loop on schedule that is not running yet (see
// refreshSchedule.add).
func newDNSLoop(key resolverKey, schedule *refreshSchedule) *dnsLoop {
	ctx, cancel := context.WithCancel(context.Background())
	servers := key.servers()
	l := &dnsLoop{
		key:         key,
		servers:     servers,
		client:      newDNSClient(key.name, key.queryTypes(), servers),
		schedule:    schedule,
		started:     schedule.clock.Now(),
		turn:        loopTurn{index: -1},
		firstAnswer: make(chan struct{}),
		ctx:         ctx,
		cancel:      cancel,
		done:        make(chan struct{}),
		users:       make(map[any]loopSettings),
		pools:       make(map[statusFollower]struct{}),
		counted:     make(map[refreshResult]prometheus.Counter),
	}
	l.begin, l.ended = l.query, l.lookupEnded
	l.status.Store(new(dnsStatus))
	return l
}

// stop takes the loop off its schedule and gives its sockets back; the
// lookups in flight end at once, and done is closed when they have.
func (l *dnsLoop) stop() {
	l.cancel()
	if l.schedule.remove(l) {
		close(l.done)
	}
	l.client.close()
}

// startLookup starts a lookup, numbered so that a result that arrives
// after a later lookup's is recognised (see apply). A lookup still
// running does not hold back the next one: Docker answers NXDOMAIN for a
// service with no task only after up to 12 s, and tasks started
// meanwhile must be found within an interval, not after that answer. The
// schedule lets up to maxLookupsInFlight overlap.
func (l *dnsLoop) startLookup() {
	l.begin(l.lastStarted.Add(1), l.ended)
}

// lookupEnded applies the result of lookup number seq, unless the loop
// was stopped meanwhile, and marks the first answer as come.
func (l *dnsLoop) lookupEnded(seq uint64, addrs []netip.Addr, result refreshResult, err error) {
	if l.ctx.Err() == nil {
		l.apply(seq, l.schedule.clock.Now(), addrs, result, err)
		l.firstOnce.Do(func() { close(l.firstAnswer) })
	}
	if l.schedule.ended(l) {
		close(l.done)
	}
}

// nextRefresh is when the lookup after one that started at last is due:
// refresh after the tick last was due at, on a grid of ticks, a tenth of
// refresh and at most maxRefreshTick. The refreshes of all loops then fall
// on few instants, and the process wakes once for many of them instead of
// once for each, which is most of the idle cost of hundreds of services.
// Counted from the tick, not from last (a little after it), the interval
// is refresh, not refresh plus a tick.
func nextRefresh(last time.Time, refresh time.Duration) time.Time {
	tick := min(refresh/10, maxRefreshTick)
	if tick <= 0 {
		return last.Add(refresh)
	}
	due := last.Add(-time.Duration(last.UnixNano() % int64(tick))).Add(refresh)
	if late := time.Duration(due.UnixNano() % int64(tick)); late > 0 {
		return due.Add(tick - late)
	}
	return due
}

// requestEarlyRefresh asks for a lookup before the next refresh; it never
// blocks, and requests made while one is pending are merged.
func (l *dnsLoop) requestEarlyRefresh() {
	l.schedule.askEarly(l)
}

// query is the real beginFunc: the lookup ends within queryTimeout.
func (l *dnsLoop) query(tag uint64, done lookupDone) {
	l.client.begin(l.ctx, time.Now().Add(queryTimeout), l.currentSettings().dialer(), tag, done)
}

// dialer is the dialer of connections to DNS servers.
func (s loopSettings) dialer() net.Dialer {
	return net.Dialer{Timeout: s.dialTimeout, FallbackDelay: s.dialFallbackDelay}
}

// apply updates the set with the result of lookup number seq by the rules
// of the contract: an ok answer replaces it; empty answers or NXDOMAINs
// empty it only when confirmed (see emptyAnswersToConfirm); any failure
// keeps it (the task pools stop serving it once it is older than their
// max_stale). Then it tells the pools. A result older than one already
// applied is only counted: it describes the service as it was before. An
// unchanged set is passed on as the same slice, so nothing downstream is
// rebuilt.
func (l *dnsLoop) apply(seq uint64, now time.Time, addrs []netip.Addr, result refreshResult, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counter(result).Inc()
	if seq <= l.applied {
		return
	}
	l.applied = seq
	prev := l.status.Load()
	next := *prev
	next.lastRefresh, next.lastResult, next.lastErr = now, result, err
	switch result {
	case resultOK:
		if addrs = sortedUnique(addrs); !slices.Equal(addrs, prev.addrs) {
			next.addrs = addrs
		}
		next.lastGood = now
		next.emptyStreak, next.emptySince = 0, time.Time{}
	case resultEmpty, resultNXDomain:
		if next.emptyStreak == 0 {
			next.emptySince = now
		}
		next.emptyStreak++
		if next.emptyStreak >= emptyAnswersToConfirm && now.Sub(next.emptySince) >= l.settings.refresh {
			next.addrs = nil
			next.lastGood = now
		}
	}
	l.status.Store(&next)
	l.logChange(prev, &next)
	for p := range l.pools {
		p.sync(&next, now)
	}
}

// counter returns the refreshes counter of result for the loop's name,
// looked up once. l.mu must be held.
func (l *dnsLoop) counter(result refreshResult) prometheus.Counter {
	c := l.counted[result]
	if c == nil {
		c = swarmMetrics.refreshes.WithLabelValues(l.key.name, string(result))
		l.counted[result] = c
	}
	return c
}

// logChange logs changes of the set and of the lookup outcome, not every
// lookup: a failing DNS would otherwise log every second.
func (l *dnsLoop) logChange(prev, next *dnsStatus) {
	setChanged := !slices.Equal(prev.addrs, next.addrs)
	outcomeChanged := next.lastResult != prev.lastResult || errorText(next.lastErr) != errorText(prev.lastErr)
	if !setChanged && !outcomeChanged {
		return
	}
	log := swarmLog().With(zap.String("name", l.key.name))
	if setChanged {
		log.Info("swarm tasks changed",
			zap.Int("tasks", len(next.addrs)),
			zap.Int("previous", len(prev.addrs)),
			zap.Stringers("addresses", next.addrs))
	}
	if !outcomeChanged {
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
func (l *dnsLoop) addUser(user any, s loopSettings) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.users[user] = s
	l.updateSettings()
}

// removeUser removes a user and returns how many remain and whether it
// was a user.
func (l *dnsLoop) removeUser(user any) (remaining int, wasUser bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, wasUser = l.users[user]
	delete(l.users, user)
	l.updateSettings()
	return len(l.users), wasUser
}

// updateSettings sets the shortest of each setting among the users and
// moves the next lookup when the refresh interval changed. l.mu must be
// held.
func (l *dnsLoop) updateSettings() {
	var merged loopSettings
	first := true
	for _, s := range l.users {
		if first {
			merged, first = s, false
			continue
		}
		merged.refresh = min(merged.refresh, s.refresh)
		merged.dialTimeout = min(merged.dialTimeout, s.dialTimeout)
		merged.dialFallbackDelay = shorterFallbackDelay(merged.dialFallbackDelay, s.dialFallbackDelay)
	}
	changed := merged.refresh != l.settings.refresh
	l.settings = merged
	if changed {
		l.refreshNanos.Store(int64(merged.refresh))
		l.schedule.refreshChanged(l)
	}
}

// refreshInterval is the refresh interval in effect; unlike
// currentSettings, it takes no lock.
func (l *dnsLoop) refreshInterval() time.Duration {
	return time.Duration(l.refreshNanos.Load())
}

// shorterFallbackDelay returns the shorter of two dial_fallback_delay
// settings, where 0 stands for Go's default and a negative value, no
// Fast Fallback, for the longest.
func shorterFallbackDelay(a, b time.Duration) time.Duration {
	effective := func(d time.Duration) time.Duration {
		switch {
		case d == 0:
			return defaultDialFallbackDelay
		case d < 0:
			return time.Duration(1<<63 - 1)
		}
		return d
	}
	if effective(b) < effective(a) {
		return b
	}
	return a
}

// currentSettings returns the settings in effect.
func (l *dnsLoop) currentSettings() loopSettings {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.settings
}

// attach makes p follow the loop, starting from the current status.
func (l *dnsLoop) attach(p statusFollower) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pools[p] = struct{}{}
	p.sync(l.status.Load(), l.schedule.clock.Now())
}

// detach stops telling p.
func (l *dnsLoop) detach(p statusFollower) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pools, p)
}

// secondsSinceGood is how long ago DNS last confirmed the set, or since
// the loop started if it never has.
func (l *dnsLoop) secondsSinceGood() float64 {
	since := l.status.Load().lastGood
	if since.IsZero() {
		since = l.started
	}
	return l.schedule.clock.Now().Sub(since).Seconds()
}
