package swarm

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

const (
	// defaultWaitForTasks is how long a request waits for a task when
	// the pool has just lost all of them (Upstreams.WaitForTasks).
	defaultWaitForTasks = 10 * time.Second

	// outageRecheck is how often, while requests wait, the loop is asked
	// to re-resolve and the tasks of a set that refused connections are
	// tried again. Early re-resolves are rate-limited to
	// minEarlyRefreshGap anyway, so the resolver is not hammered.
	outageRecheck = minEarlyRefreshGap

	// defaultMaxWaiting bounds the requests waiting on one pool
	// (Upstreams.MaxWaiting), so that a dead service cannot pile up
	// goroutines: 200 requests/s through a 16 s gap, the longest seen in
	// Swarm's stop-first update of a task with a healthcheck, fit.
	defaultMaxWaiting = 4096

	// reachTimeout bounds the connection check of a set's tasks.
	reachTimeout = 250 * time.Millisecond

	// firstRelease is how many of the requests held through an outage go
	// at once when it ends. Each released request that completes lets two
	// more go, so the window doubles with every round of responses (TCP's
	// slow start): a task that has just started gets connections as fast
	// as it serves them. Released all at once, 1,600 requests made dials
	// time out on a loaded machine, and passive health (fail_duration)
	// then withheld the only task: hundreds of 503s after the gap.
	firstRelease = 16

	// maxReleaseHold bounds how long a request released from an outage
	// waits for its turn, should the first ones hang (a long poll).
	maxReleaseHold = 2 * time.Second
)

// The outcomes of a request that found no task to offer, as counted in
// the metrics.
const (
	waitTask     = "task"     // a task appeared, or the set accepts connections again
	waitExpired  = "expired"  // wait_for_tasks passed since the outage began
	waitCanceled = "canceled" // the request's context ended
	waitFull     = "full"     // max_waiting requests were waiting already
)

// outage is a time when a pool has no task to offer after it had some:
// its set went from some tasks to none, or every task of it refused
// connections. It is immutable but for over, closed when it ends.
type outage struct {
	since time.Time
	over  chan struct{}
	turns chan struct{} // one per request that may go now it has ended
}

// newOutage returns an outage that began at since, whose first
// firstRelease requests go at once when it ends, of at most max held.
func newOutage(since time.Time, max int) *outage {
	o := &outage{since: since, over: make(chan struct{}), turns: make(chan struct{}, max)}
	o.addTurns(firstRelease)
	return o
}

// addTurns lets n more held requests go, as far as room is left.
func (o *outage) addTurns(n int) {
	for range n {
		select {
		case o.turns <- struct{}{}:
		default:
			return
		}
	}
}

// reachCheck is a connection check of the served tasks; done is closed
// when it has ended and its result has been applied.
type reachCheck struct {
	done chan struct{}
}

// taskWaits is the state of a pool's outages and of the requests
// waiting through them.
type taskWaits struct {
	outage atomic.Pointer[outage]     // nil: tasks to offer
	check  atomic.Pointer[reachCheck] // nil: none in flight
	max    int                        // max_waiting

	mu        sync.Mutex
	waiting   int       // requests waiting now
	waited    uint64    // requests that have waited, in all
	watching  bool      // watchOutage runs
	lastCheck time.Time // when the last reachCheck started
}

// servedDials returns the dial addresses a request is served from. In an
// outage that began less than bound ago, it first waits, while ctx lasts,
// for the outage to end. A connection check in flight is waited for too:
// it may be about to start an outage.
func (p *taskPool) servedDials(ctx context.Context, bound time.Duration) []string {
	if bound <= 0 {
		return p.snapshot.Load().dials
	}
	if c := p.waits.check.Load(); c != nil {
		select {
		case <-c.done:
		case <-ctx.Done():
		}
	}
	if o := p.waits.outage.Load(); o != nil {
		p.awaitOutageEnd(ctx, o, bound)
	}
	return p.snapshot.Load().dials
}

// awaitOutageEnd waits for o to end, for at most bound since it began
// and while ctx lasts; once that has passed it returns at once, so that a
// service scaled to 0 fails fast. A set that refused then has no waiters
// to have it checked again, so this request has it checked: the outage
// must end when the tasks accept again, or the next one would not start.
func (p *taskPool) awaitOutageEnd(ctx context.Context, o *outage, bound time.Duration) {
	start := p.clock.Now()
	left := o.since.Add(bound).Sub(start)
	if left <= 0 {
		p.checkReachable()
		return
	}
	if !p.joinWaiters() {
		p.countWait(waitFull, 0)
		return
	}
	defer p.leaveWaiters()
	outcome := waitExpired
	select {
	case <-o.over:
		outcome = waitTask
		p.awaitTurn(ctx, o)
	case <-ctx.Done():
		outcome = waitCanceled
	case <-p.clock.After(left):
	}
	p.countWait(outcome, p.clock.Now().Sub(start))
}

// awaitTurn holds a request released from the ended outage o until its
// turn (see firstRelease), for at most maxReleaseHold. ctx is the
// request's: it ends when the request is done, which lets two more go.
func (p *taskPool) awaitTurn(ctx context.Context, o *outage) {
	select {
	case <-o.turns:
	default:
		select {
		case <-o.turns:
		case <-ctx.Done():
			return
		case <-p.clock.After(maxReleaseHold):
			return
		}
	}
	context.AfterFunc(ctx, func() { o.addTurns(2) })
}

// joinWaiters counts a request in, starting the watch of the outage if
// it is the first, or reports false when too many wait already.
func (p *taskPool) joinWaiters() bool {
	w := &p.waits
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting >= w.max {
		return false
	}
	w.waiting++
	w.waited++
	if !w.watching {
		w.watching = true
		go p.watchOutage()
	}
	return true
}

// leaveWaiters counts a request out.
func (p *taskPool) leaveWaiters() {
	p.waits.mu.Lock()
	p.waits.waiting--
	p.waits.mu.Unlock()
}

// countWait records a request's wait in the metrics.
func (p *taskPool) countWait(outcome string, waited time.Duration) {
	port := strconv.Itoa(int(p.key.port))
	swarmMetrics.waited.WithLabelValues(p.key.name, port, outcome).Inc()
	if outcome != waitFull {
		swarmMetrics.waitSeconds.WithLabelValues(p.key.name, port).Observe(waited.Seconds())
	}
}

// watchOutage, while requests wait through an outage, asks the loop for
// early re-resolves and checks a refusing set's tasks again, every
// outageRecheck, so that a new task is found within that and not within
// the refresh interval.
func (p *taskPool) watchOutage() {
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.clock.After(outageRecheck):
		}
		p.waits.mu.Lock()
		if p.waits.waiting == 0 || p.waits.outage.Load() == nil {
			p.waits.watching = false
			p.waits.mu.Unlock()
			return
		}
		p.waits.mu.Unlock()
		p.loop.requestEarlyRefresh()
		p.checkReachable()
	}
}

// checkReachable checks in the background, at most once per
// outageRecheck, whether any served task accepts a connection: when none
// does, an outage begins; when one does, an outage ends. Caddy calls
// ResetCache, and so this, before each retry of a request; requests wait
// for the check (see servedDials), which ends at the first task that
// accepts or after reachTimeout.
func (p *taskPool) checkReachable() {
	dials := p.snapshot.Load().dials
	if len(dials) == 0 {
		return // an empty set ends its outage by sync
	}
	w := &p.waits
	w.mu.Lock()
	now := p.clock.Now()
	if w.check.Load() != nil || !w.lastCheck.IsZero() && now.Sub(w.lastCheck) < outageRecheck {
		w.mu.Unlock()
		return
	}
	w.lastCheck = now
	check := &reachCheck{done: make(chan struct{})}
	w.check.Store(check)
	w.mu.Unlock()

	go func() {
		defer close(check.done)
		defer w.check.Store(nil)
		withdrawn := p.dnsWithdrewAll()
		reachable := !withdrawn && !allRefuse(p.ctx, p.dialReach, dials)
		p.mu.Lock()
		defer p.mu.Unlock()
		switch {
		case reachable:
			p.endOutage("a task accepts connections again, or may")
		case !slices.Equal(p.snapshot.Load().dials, dials):
		case withdrawn:
			p.startOutage(p.clock.Now(), "DNS lists no task any more and a request failed")
		default:
			p.startOutage(p.clock.Now(), "every task refuses connections")
		}
	}()
}

// dnsWithdrewAll reports whether DNS's latest answer listed no task while
// the set still holds the last ones, kept until a second empty answer
// confirms it. Checked after a request failed, it means those tasks are on
// their way out: in a stop-first update Swarm drops the old task from DNS
// about a second before stopping it, and a request that fails on it then
// marks it down (fail_duration) although it still accepts connections.
func (p *taskPool) dnsWithdrewAll() bool {
	return p.loop.status.Load().emptyStreak > 0
}

// allRefuse reports whether every one of dials refuses a TCP connection
// within reachTimeout; it returns at the first that does not. Only a
// refusal counts: a dial that times out may be one to a task that is
// alive but busy (a fresh task taking the connections of the requests
// released onto it), and starting an outage then would hold requests a
// live task could serve.
func allRefuse(ctx context.Context, dial reachDialer, dials []string) bool {
	ctx, cancel := context.WithTimeout(ctx, reachTimeout)
	defer cancel()
	refused := make(chan bool, len(dials))
	for _, addr := range dials {
		go func() { refused <- isRefusal(dial(ctx, addr)) }()
	}
	for range dials {
		if !<-refused {
			return false
		}
	}
	return true
}

// reachDialer connects to addr and closes the connection at once.
type reachDialer func(ctx context.Context, addr string) error

// dialAndClose is the reachDialer of a pool.
func dialAndClose(ctx context.Context, addr string) error {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err == nil {
		conn.Close()
	}
	return err
}

// isRefusal reports whether a dial's error says that nothing listens
// there (a refusal or a reset) or that the address is gone (no host, no
// route): answers, not the silence of a busy or distant task.
func isRefusal(err error) bool {
	for _, refusal := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		if errors.Is(err, refusal) {
			return true
		}
	}
	return false
}

// publishSet publishes the set just taken from the loop, prev being the
// one before: a set that went from some tasks to none starts an outage
// (before it is published, so that no request sees it empty without the
// outage), and one with a task that prev lacks ends it. p.mu must be held.
func (p *taskPool) publishSet(prev []netip.Addr, now time.Time) {
	if len(prev) > 0 && len(p.addrs) == 0 {
		p.startOutage(now, "the set of tasks is empty")
	}
	p.publish()
	for _, addr := range p.addrs {
		if _, found := slices.BinarySearchFunc(prev, addr, netip.Addr.Compare); !found {
			p.endOutage("a new task appeared")
			return
		}
	}
}

// startOutage starts an outage at now unless one is on. p.mu must be held.
func (p *taskPool) startOutage(now time.Time, why string) {
	if p.waits.outage.Load() != nil {
		return
	}
	p.waits.outage.Store(newOutage(now, p.waits.max))
	p.log().Warn("no task to offer; requests wait for one up to their wait_for_tasks", zap.String("reason", why))
}

// endOutage ends the outage, if one is on, releasing the requests that
// wait through it. p.mu must be held.
func (p *taskPool) endOutage(why string) {
	o := p.waits.outage.Swap(nil)
	if o == nil {
		return
	}
	close(o.over)
	p.log().Info("tasks to offer again", zap.String("reason", why),
		zap.Duration("after", p.clock.Now().Sub(o.since)))
}

// waitCounts returns the requests waiting now and those that have waited.
func (p *taskPool) waitCounts() (waiting int, waited uint64) {
	p.waits.mu.Lock()
	defer p.waits.mu.Unlock()
	return p.waits.waiting, p.waits.waited
}
