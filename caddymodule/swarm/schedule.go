package swarm

import (
	"container/heap"
	"sync"
	"time"
)

// refreshes is the process's schedule: every loop the registry starts
// is on it.
var refreshes = newRefreshSchedule(realClock{})

// refreshSchedule starts the lookups of many loops from one goroutine
// and one timer. A goroutine and a timer per loop cost more than the
// lookups themselves at hundreds of services: every wake-up of a parked
// goroutine is a trip through the scheduler, often a futex call.
// Lookups end by themselves (see dnsClient.begin), so starting one never
// blocks the schedule.
type refreshSchedule struct {
	clock swarmClock
	wake  chan struct{} // capacity 1: the head of the queue changed

	mu       sync.Mutex
	queue    loopQueue  // the running loops not at their lookup cap, soonest due first
	loops    int        // the loops added and not stopped
	running  bool       // the goroutine runs; it ends when no loop is left
	starting []*dnsLoop // reused by takeDue
}

// loopTurn is a loop's place on its schedule, guarded by the
// schedule's mutex.
type loopTurn struct {
	added     bool      // on the schedule, until stopped
	stopped   bool      // stopped: no further lookup
	lastStart time.Time // when the last lookup started; zero: none yet
	early     bool      // an early re-resolve was asked for since
	inFlight  int       // lookups started and not ended
	due       time.Time // when the next lookup starts, while queued
	index     int       // in the queue; -1: not queued
}

// newRefreshSchedule returns a schedule on clock with no loop.
func newRefreshSchedule(clock swarmClock) *refreshSchedule {
	return &refreshSchedule{clock: clock, wake: make(chan struct{}, 1)}
}

// add starts l's lookups: the first at once.
func (s *refreshSchedule) add(l *dnsLoop) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.turn.added || l.turn.stopped {
		return
	}
	l.turn.added = true
	s.loops++
	s.requeue(l)
	if !s.running {
		s.running = true
		go s.run()
	}
}

// remove takes l off the schedule for good and reports whether none of
// its lookups is still running.
func (s *refreshSchedule) remove(l *dnsLoop) (idle bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.turn.stopped {
		return false // reported once
	}
	l.turn.stopped = true
	if l.turn.index >= 0 {
		heap.Remove(&s.queue, l.turn.index)
	}
	if l.turn.added {
		s.loops--
		s.signal() // the goroutine ends if this was the last loop
	}
	return l.turn.inFlight == 0
}

// askEarly asks for a lookup of l before its next refresh, no sooner
// than minEarlyRefreshGap after its last one started.
func (s *refreshSchedule) askEarly(l *dnsLoop) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !l.turn.early {
		l.turn.early = true
		s.requeue(l)
	}
}

// refreshChanged moves l's next lookup to its new refresh interval: a
// reload that shortens it takes effect at once.
func (s *refreshSchedule) refreshChanged(l *dnsLoop) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requeue(l)
}

// ended counts a lookup of l out and reports whether it was the last
// one of a stopped loop.
func (s *refreshSchedule) ended(l *dnsLoop) (lastOfStopped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l.turn.inFlight--
	if l.turn.stopped {
		return l.turn.inFlight == 0
	}
	if l.turn.inFlight == maxLookupsInFlight-1 {
		s.requeue(l) // it was held back by the cap
	}
	return false
}

// requeue puts l where its next lookup is due, or takes it off the queue
// while it may start none. s.mu must be held.
func (s *refreshSchedule) requeue(l *dnsLoop) {
	t := &l.turn
	if !t.added || t.stopped || t.inFlight >= maxLookupsInFlight {
		if t.index >= 0 {
			heap.Remove(&s.queue, t.index)
		}
		return
	}
	t.due = time.Time{} // the first lookup: at once
	if !t.lastStart.IsZero() {
		t.due = nextRefresh(t.lastStart, l.refreshInterval())
		if soonest := t.lastStart.Add(minEarlyRefreshGap); t.early && soonest.Before(t.due) {
			t.due = soonest
		}
	}
	if t.index < 0 {
		heap.Push(&s.queue, l)
	} else {
		heap.Fix(&s.queue, t.index)
	}
	if t.index == 0 {
		s.signal()
	}
}

// signal wakes the goroutine to look at the queue again.
func (s *refreshSchedule) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run starts the lookups that are due and waits for the next one to be,
// until no loop is left.
func (s *refreshSchedule) run() {
	for {
		starting, wait, done := s.takeDue()
		if done {
			return
		}
		holdUDPWrites()
		for i, l := range starting {
			l.startLookup()
			starting[i] = nil
		}
		flushUDPWrites()
		var timer <-chan time.Time // none while no loop may start a lookup
		if wait >= 0 {
			timer = s.clock.After(wait)
		}
		select {
		case <-timer:
		case <-s.wake:
		}
	}
}

// takeDue marks the loops whose lookup is due as started, and returns
// them and how long until the next is due (negative: none queued), or
// done when no loop is left.
func (s *refreshSchedule) takeDue() (starting []*dnsLoop, wait time.Duration, done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loops == 0 {
		s.running = false
		return nil, 0, true
	}
	now := s.clock.Now()
	starting = s.starting[:0]
	for len(s.queue) > 0 && !s.queue[0].turn.due.After(now) {
		l := s.queue[0]
		l.turn.lastStart, l.turn.early = now, false
		l.turn.inFlight++
		s.requeue(l)
		starting = append(starting, l)
	}
	s.starting = starting
	select {
	case <-s.wake: // asked before this look at the queue: nothing new
	default:
	}
	if len(s.queue) == 0 {
		return starting, -1, false
	}
	return starting, s.queue[0].turn.due.Sub(now), false
}

// loopQueue is a heap of loops by when their next lookup is due.
type loopQueue []*dnsLoop

func (q loopQueue) Len() int           { return len(q) }
func (q loopQueue) Less(i, j int) bool { return q[i].turn.due.Before(q[j].turn.due) }

func (q loopQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].turn.index, q[j].turn.index = i, j
}

func (q *loopQueue) Push(x any) {
	l := x.(*dnsLoop)
	l.turn.index = len(*q)
	*q = append(*q, l)
}

func (q *loopQueue) Pop() any {
	old := *q
	l := old[len(old)-1]
	old[len(old)-1] = nil
	l.turn.index = -1
	*q = old[:len(old)-1]
	return l
}
