package sonyflake

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Minting is the plugin's own short loop over the library's layout, not the
// library's NextID: that one reads the wall clock with no hook and sleeps
// while holding its lock, so a clock stepped back would hang every request.
//
// Here time comes from a monotonic clock anchored at process start (a wall
// clock stepped after start changes nothing), the lock is held only to
// reserve IDs, and a caller that reserved IDs in a time unit that has not
// begun yet waits for it outside the lock, so no ID is handed out before its
// time (a restarted process cannot reissue it). A caller that would have to
// wait longer than its bound reserves nothing and is told how long to wait.

// processStart anchors every generator's clock: wall time at start plus
// monotonic time since.
var processStart = time.Now()

func monotonicNow() time.Time { return processStart.Add(time.Since(processStart)) }

// errOutOfIDs is wrapped by a waitError: the format's ceiling was reached.
var errOutOfIDs = errors.New("no Sonyflake ID available")

// waitError says that minting would wait longer than the caller's bound.
type waitError struct {
	// Wait is how long until the IDs would be available.
	Wait time.Duration
}

func (e *waitError) Error() string {
	return fmt.Sprintf("%v within the wait bound: next IDs in %s", errOutOfIDs, e.Wait)
}

func (e *waitError) Unwrap() error { return errOutOfIDs }

// generator mints IDs for one machine ID.
type generator struct {
	layout    layout
	machineID int64
	now       func() time.Time
	sleep     func(time.Duration)

	mu       sync.Mutex
	units    int64 // time field of the last reservation
	sequence int64 // last sequence number used in units
	retired  bool  // a successor took over: callers go there
}

// newGenerator returns a generator that issues nothing at or before time
// field floor (-1: no floor).
func newGenerator(l layout, machineID int64, floor int64, now func() time.Time, sleep func(time.Duration)) *generator {
	return &generator{
		layout:    l,
		machineID: machineID,
		now:       now,
		sleep:     sleep,
		units:     floor,
		sequence:  l.maxSequence(), // the next ID starts a new unit
	}
}

// next mints one ID, waiting at most maxWait for its time unit.
func (g *generator) next(maxWait time.Duration) (int64, error) {
	return g.reserve(1, maxWait)
}

// nextN appends n consecutive IDs to dst, waiting at most maxWait.
func (g *generator) nextN(dst []int64, n int, maxWait time.Duration) ([]int64, error) {
	first, err := g.reserve(n, maxWait)
	if err != nil {
		return dst, err
	}
	return g.layout.appendRun(dst, first, n), nil
}

// reserve takes n consecutive IDs and returns the first; it waits, outside
// the lock, until the last one's time unit has begun.
func (g *generator) reserve(n int, maxWait time.Duration) (int64, error) {
	g.mu.Lock()
	if g.retired {
		g.mu.Unlock()
		return 0, errRetired
	}
	now := g.now()
	current := g.layout.unitsAt(now)
	units, seq := g.units, g.sequence
	if current > units {
		units, seq = current, -1
	}
	perUnit := g.layout.maxSequence() + 1
	firstUnits, firstSeq := units+(seq+1)/perUnit, (seq+1)%perUnit
	total := firstSeq + int64(n) - 1
	lastUnits, lastSeq := firstUnits+total/perUnit, total%perUnit
	if lastUnits >= 1<<g.layout.timeBits() {
		g.mu.Unlock()
		return 0, fmt.Errorf("%w: the time field ended on %s", errOutOfIDs, g.layout.end().UTC().Format(time.RFC3339))
	}
	wait := g.layout.timeOf(lastUnits).Sub(now)
	if wait > maxWait {
		g.mu.Unlock()
		mintMetrics.refused.Inc()
		return 0, &waitError{Wait: wait}
	}
	g.units, g.sequence = lastUnits, lastSeq
	g.mu.Unlock()

	mintMetrics.minted.Add(float64(n))
	if wait > 0 {
		mintMetrics.waitSeconds.Add(wait.Seconds())
		g.sleep(wait)
	}
	return g.layout.compose(firstUnits, firstSeq, g.machineID), nil
}

// retire stops g from minting and returns the instant its last used time
// unit ends, so a successor can start after it.
func (g *generator) retire() (lastUnitEnd time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.retired = true
	return g.layout.timeOf(g.units + 1)
}

// errRetired tells a caller holding a retired generator to ask its slot for
// the successor.
var errRetired = errors.New("generator retired")

// slot is the process-wide home of one machine ID's generator. It outlives
// config reloads: handlers of an old and a new config share it, so two
// generators never mint with one machine ID.
type slot struct {
	current atomic.Pointer[generator]
}

// reserve takes n consecutive IDs from the slot's current generator and
// returns the first and the layout it was minted in.
func (s *slot) reserve(n int, maxWait time.Duration) (int64, layout, error) {
	for {
		g := s.current.Load()
		first, err := g.reserve(n, maxWait)
		if !errors.Is(err, errRetired) {
			return first, g.layout, err
		}
	}
}

// next mints one ID from the slot's current generator.
func (s *slot) next(maxWait time.Duration) (int64, layout, error) {
	return s.reserve(1, maxWait)
}

// nextN mints n IDs from the slot's current generator.
func (s *slot) nextN(dst []int64, n int, maxWait time.Duration) ([]int64, layout, error) {
	first, l, err := s.reserve(n, maxWait)
	if err != nil {
		return dst, l, err
	}
	return l.appendRun(dst, first, n), l, nil
}

// registry holds a slot per machine ID for the life of the process. Slots
// are never removed: they are a few words each, and a removed one could be
// recreated within the same time unit and reissue its IDs.
var registry = struct {
	sync.Mutex
	slots map[int64]*slot
}{slots: make(map[int64]*slot)}

// slotFor returns the slot of machineID, with a generator of layout l. When
// the slot's generator has another layout, a successor replaces it; the
// successor issues nothing at or before the predecessor's last time unit.
func slotFor(machineID int64, l layout, now func() time.Time, sleep func(time.Duration)) *slot {
	registry.Lock()
	defer registry.Unlock()
	s := registry.slots[machineID]
	if s == nil {
		s = new(slot)
		registry.slots[machineID] = s
	}
	floor := int64(-1)
	if prev := s.current.Load(); prev != nil {
		if prev.layout == l {
			return s
		}
		// The first unit of l that starts at or after the end of the
		// predecessor's last unit, minus one.
		end := prev.retire()
		floor = max(int64((end.Sub(l.start)+l.unit-1)/l.unit)-1, -1)
	}
	s.current.Store(newGenerator(l, machineID, floor, now, sleep))
	return s
}
