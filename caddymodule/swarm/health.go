package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// The health of a task, as the admin API shows it.
const (
	healthUnchecked = "unchecked" // no probe configured, or not probed yet
	healthHealthy   = "healthy"
	healthUnhealthy = "unhealthy"
)

// poolKey identifies a process-wide task pool: the tasks of one lookup
// loop, as dial addresses on one port, filtered by one health setting and
// one max_stale.
type poolKey struct {
	resolverKey
	port           uint16
	maxStale       time.Duration
	healthURI      string // empty: no probes
	healthInterval time.Duration
	healthTimeout  time.Duration
	maxWaiting     int // requests that may wait for a task at once
}

// probeFunc checks one task at dial ("ip:port"); nil error means healthy.
type probeFunc func(ctx context.Context, dial string) error

// taskStatus is one task as the admin API shows it.
type taskStatus struct {
	// "ip:port"
	Address string `json:"address"`
	// unchecked, healthy or unhealthy
	Health string `json:"health"`
	// Why the last probe failed.
	ProbeError string `json:"probe_error,omitempty"`
	// Whether requests go to it.
	Served bool `json:"served"`
}

// poolSnapshot is what a pool serves; published atomically, never
// modified.
type poolSnapshot struct {
	dials    []string     // the dial addresses of the tasks served
	tasks    []taskStatus // every known task
	stale    bool         // DNS failed for longer than max_stale: nothing served
	failOpen bool         // every task fails its probe: all are served
}

// taskPool turns a loop's addresses into the dial addresses requests use,
// withholding tasks that fail their health probes (unless all do) and
// serving nothing once DNS has failed for longer than max_stale.
type taskPool struct {
	key       poolKey
	loop      *dnsLoop
	clock     swarmClock
	probe     probeFunc   // nil without health_uri
	dialReach reachDialer // connects to a task for checkReachable
	users     int         // guarded by swarmRegistry
	snapshot  atomic.Pointer[poolSnapshot]

	ctx    context.Context // the process's, cancelled by stop
	cancel context.CancelFunc

	waits taskWaits // outages and the requests waiting through them

	mu     sync.Mutex
	addrs  []netip.Addr         // the loop's current set
	stale  bool                 // the set is older than max_stale
	health map[netip.Addr]error // the last probe's result; absent: unchecked
}

// newTaskPool returns a pool that is neither attached nor started.
func newTaskPool(key poolKey, loop *dnsLoop, clock swarmClock) *taskPool {
	ctx, cancel := context.WithCancel(context.Background())
	p := &taskPool{
		key:    key,
		loop:   loop,
		clock:  clock,
		ctx:    ctx,
		cancel: cancel,
		health: make(map[netip.Addr]error),
	}
	p.dialReach = dialAndClose
	if key.healthURI != "" {
		p.probe = p.httpProbe
	}
	p.waits.max = key.maxWaiting
	p.snapshot.Store(&poolSnapshot{tasks: []taskStatus{}})
	return p
}

// start starts the probes, if any.
func (p *taskPool) start() {
	if p.probe != nil {
		go p.runProbes()
	}
}

// stop stops the probes without waiting for one in flight.
func (p *taskPool) stop() { p.cancel() }

// sync takes a loop's status, observed at now.
func (p *taskPool) sync(st *dnsStatus, now time.Time) {
	stale := len(st.addrs) > 0 && now.Sub(st.lastGood) > p.key.maxStale
	p.mu.Lock()
	defer p.mu.Unlock()
	if stale == p.stale && slices.Equal(st.addrs, p.addrs) {
		return
	}
	if stale != p.stale {
		log := p.log()
		if stale {
			log.Error("DNS has failed for longer than max_stale; serving no task",
				zap.Duration("max_stale", p.key.maxStale), zap.Time("last_good", st.lastGood))
		} else {
			log.Info("DNS answers again; serving tasks", zap.Int("tasks", len(st.addrs)))
		}
	}
	prev := p.addrs
	p.addrs, p.stale = st.addrs, stale
	for addr := range p.health {
		if !p.has(addr) {
			delete(p.health, addr)
		}
	}
	p.publishSet(prev, now)
}

// has reports whether addr is in the current set. p.mu must be held.
func (p *taskPool) has(addr netip.Addr) bool {
	_, found := slices.BinarySearchFunc(p.addrs, addr, netip.Addr.Compare)
	return found
}

// dial returns the dial address ("ip:port") of the task at addr.
func (p *taskPool) dial(addr netip.Addr) string {
	return netip.AddrPortFrom(addr, p.key.port).String()
}

// log returns the logger of the pool's state changes.
func (p *taskPool) log() *zap.Logger {
	return swarmLog().With(zap.String("name", p.key.name), zap.Uint16("port", p.key.port))
}

// publish builds and stores a new snapshot. p.mu must be held.
func (p *taskPool) publish() {
	passing := 0
	for _, addr := range p.addrs {
		if err, checked := p.health[addr]; !checked || err == nil {
			passing++
		}
	}
	failOpen := passing == 0 && len(p.addrs) > 0
	if failOpen != p.snapshot.Load().failOpen {
		log := p.log()
		if failOpen {
			log.Warn("every task fails its health probe; serving all of them", zap.Int("tasks", len(p.addrs)))
		} else {
			log.Info("tasks pass their health probes again", zap.Int("passing", passing))
		}
	}

	snap := &poolSnapshot{
		tasks:    make([]taskStatus, len(p.addrs)),
		stale:    p.stale,
		failOpen: failOpen,
	}
	for i, addr := range p.addrs {
		task := taskStatus{Address: p.dial(addr), Health: healthUnchecked}
		err, checked := p.health[addr]
		switch {
		case checked && err == nil:
			task.Health = healthHealthy
		case checked:
			task.Health, task.ProbeError = healthUnhealthy, err.Error()
		}
		task.Served = !p.stale && (failOpen || err == nil)
		if task.Served {
			snap.dials = append(snap.dials, task.Address)
		}
		snap.tasks[i] = task
	}
	prev := p.snapshot.Swap(snap)
	notifyWithdrawn(prev.dials, snap.dials)
}

// runProbes probes every task each health interval until stopped.
func (p *taskPool) runProbes() {
	for {
		p.probeAll()
		select {
		case <-p.ctx.Done():
			return
		case <-p.clock.After(p.key.healthInterval):
		}
	}
}

// probeAll probes the current tasks concurrently and publishes the
// results of those still in the set, when a task's health or its reason
// changed.
func (p *taskPool) probeAll() {
	p.mu.Lock()
	addrs := p.addrs // never modified: the loop replaces the slice
	p.mu.Unlock()

	port := strconv.Itoa(int(p.key.port))
	dials := make([]string, len(addrs))
	results := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		dials[i] = p.dial(addr)
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(p.ctx, p.key.healthTimeout)
			defer cancel()
			results[i] = p.probe(ctx, dials[i])
			swarmMetrics.probes.WithLabelValues(p.key.name, port, probeResult(results[i])).Inc()
		})
	}
	wg.Wait()
	if p.ctx.Err() != nil {
		return
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	changed := false
	for i, addr := range addrs {
		if !p.has(addr) {
			continue // gone while probed
		}
		prev, checked := p.health[addr]
		if checked && errorText(prev) == errorText(results[i]) {
			continue // as before: the snapshot shows it already
		}
		p.health[addr], changed = results[i], true
		switch {
		case results[i] != nil && (!checked || prev == nil):
			swarmLog().Warn("task fails its health probe; withholding it",
				zap.String("name", p.key.name), zap.String("task", dials[i]), zap.Error(results[i]))
		case results[i] == nil && checked && prev != nil:
			swarmLog().Info("task passes its health probe again",
				zap.String("name", p.key.name), zap.String("task", dials[i]))
		}
	}
	if changed {
		p.publish()
	}
}

// probeClient makes the health probes: a new connection each time, so that
// a probe sees what a new request would, and no redirect following.
var probeClient = &http.Client{
	Transport:     &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// probeStatusError is a probe answer that is not 2xx.
type probeStatusError int

func (e probeStatusError) Error() string { return fmt.Sprintf("status %d", int(e)) }

// httpProbe is the real probeFunc: GET health_uri; healthy on 2xx.
func (p *taskPool) httpProbe(ctx context.Context, dial string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+dial+p.key.healthURI, nil)
	if err != nil {
		return err
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return probeStatusError(resp.StatusCode)
	}
	return nil
}

// probeResult is the metrics label of a probe's outcome.
func probeResult(err error) string {
	var status probeStatusError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &status):
		return "status"
	case isTimeout(err):
		return "timeout"
	default:
		return "error"
	}
}
