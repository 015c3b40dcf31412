package sonyflake

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Minting is the plugin's own short loop over the library's layout, not the
// library's NextID: that one reads the wall clock with no hook and sleeps
// while holding its lock, so a clock stepped back would hang every request.
//
// Here time comes from a monotonic clock anchored at process start (a wall
// clock stepped after start changes nothing), and the lock is held only to
// reserve IDs. IDs are reserved in one increasing order for every caller,
// so none is issued twice or at or below an earlier one. A reservation may
// lie ahead of the clock by the caller's lead (stamping runs ahead when
// demand is above the ceiling); beyond that the caller waits, outside the
// lock, until it is within the lead, or, when that is longer than its
// bound, reserves nothing and is told how long to wait. Nothing is minted
// past the ceiling that the storage reservation covers (see reservation.go),
// so a restarted process starts above every ID issued before.

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

// noCeiling lets a generator mint any time field its layout holds.
const noCeiling = math.MaxInt64

// generator mints IDs for one machine ID.
type generator struct {
	layout    layout
	machineID int64
	now       func() time.Time
	sleep     func(time.Duration)

	mu       sync.Mutex
	units    int64 // time field of the last reservation
	sequence int64 // last sequence number used in units
	ceiling  int64 // highest time field the storage reservation covers
	retired  bool  // a successor took over: callers go there
}

// newGenerator returns a generator that issues only IDs greater than after
// (-1: any), an ID of any layout. It has no ceiling until setCeiling.
func newGenerator(l layout, machineID int64, after int64, now func() time.Time, sleep func(time.Duration)) *generator {
	g := &generator{layout: l, machineID: machineID, now: now, sleep: sleep, ceiling: noCeiling}
	g.units, g.sequence = l.positionBefore(after, machineID)
	return g
}

// next mints one ID that is due now, waiting at most maxWait for it.
func (g *generator) next(maxWait time.Duration) (int64, error) {
	return g.reserve(1, 0, maxWait)
}

// nextN appends n consecutive IDs to dst, waiting at most maxWait.
func (g *generator) nextN(dst []int64, n int, maxWait time.Duration) ([]int64, error) {
	first, err := g.reserve(n, 0, maxWait)
	if err != nil {
		return dst, err
	}
	return g.layout.appendRun(dst, first, n), nil
}

// reserve takes n consecutive IDs and returns the first. The last one's
// time unit may begin up to lead after now; for a later one reserve waits,
// outside the lock, at most maxWait.
func (g *generator) reserve(n int, lead, maxWait time.Duration) (int64, error) {
	g.mu.Lock()
	if g.retired {
		g.mu.Unlock()
		return 0, errRetired
	}
	now := g.now()
	firstUnits, firstSeq, lastUnits, lastSeq := g.following(n, g.layout.unitsAt(now))
	if lastUnits >= 1<<g.layout.timeBits() {
		g.mu.Unlock()
		return 0, fmt.Errorf("%w: the time field ended on %s", errOutOfIDs, g.layout.end().UTC().Format(time.RFC3339))
	}
	wait := g.layout.timeOf(lastUnits).Sub(now) - lead
	if lastUnits > g.ceiling {
		// The reservation in storage is renewed about once a second.
		wait = max(wait, g.layout.timeOf(lastUnits).Sub(g.layout.timeOf(g.ceiling)))
		maxWait = 0
	}
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

// following returns the positions of the first and the last of the n IDs
// after the last reservation, starting no earlier than time field current.
func (g *generator) following(n int, current int64) (firstUnits, firstSeq, lastUnits, lastSeq int64) {
	units, seq := g.units, g.sequence
	if current > units {
		units, seq = current, -1
	}
	perUnit := g.layout.maxSequence() + 1
	firstUnits, firstSeq = units+(seq+1)/perUnit, (seq+1)%perUnit
	total := firstSeq + int64(n) - 1
	return firstUnits, firstSeq, firstUnits + total/perUnit, total % perUnit
}

// lastID is the highest ID reserved so far, or, before the first, the
// highest the generator may not issue.
func (g *generator) lastID() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.layout.compose(g.units, g.sequence, g.machineID)
}

// lastUnits is the time field of the last reservation.
func (g *generator) lastUnits() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.units
}

// setCeiling lets g mint up to time field units, which the storage
// reservation now covers.
func (g *generator) setCeiling(units int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ceiling = units
}

// raiseFloor makes g issue only IDs greater than after, an ID of any layout.
func (g *generator) raiseFloor(after int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	units, seq := g.layout.positionBefore(after, g.machineID)
	if units > g.units || units == g.units && seq > g.sequence {
		g.units, g.sequence = units, seq
	}
}

// retire stops g from minting and returns the highest ID it reserved.
func (g *generator) retire() (lastID int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.retired = true
	return g.layout.compose(g.units, g.sequence, g.machineID)
}

// errRetired tells a caller holding a retired generator to ask its slot for
// the successor.
var errRetired = errors.New("generator retired")
