package sonyflake

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

const (
	// maxSwitchWait bounds how long Start waits for a successor's first ID
	// to be due; a successor that would wait longer refuses the config.
	maxSwitchWait = time.Second

	// reservationInterval is how often the reservation in storage is renewed.
	reservationInterval = time.Second
)

// registry holds a slot per machine ID for the life of the process: two
// generators with one machine ID would mint duplicates. Slots are never
// removed: they are a few words each, and a removed one could be recreated
// within the same time unit and reissue its IDs.
type registry struct {
	now        func() time.Time
	sleep      func(time.Duration)
	renewEvery time.Duration // 0: no background renewal (tests renew by hand)

	mu    sync.Mutex
	slots map[int64]*slot
}

// processRegistry is the registry of the running process.
var processRegistry = newRegistry(monotonicNow, time.Sleep, reservationInterval)

func newRegistry(now func() time.Time, sleep func(time.Duration), renewEvery time.Duration) *registry {
	return &registry{now: now, sleep: sleep, renewEvery: renewEvery, slots: make(map[int64]*slot)}
}

// slot returns machineID's slot, creating an empty one: looking it up
// changes nothing about minting.
func (r *registry) slot(machineID int64) *slot {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.slots[machineID]
	if s == nil {
		s = &slot{machineID: machineID, reg: r}
		r.slots[machineID] = s
	}
	return s
}

// slot is the process-wide home of one machine ID's generator. It outlives
// config reloads: handlers of an old and a new config share it, and the
// generator changes only when a config starts.
type slot struct {
	machineID int64
	reg       *registry
	current   atomic.Pointer[generator] // nil until the first config starts

	mu       sync.Mutex        // serializes starts and reservation renewals
	storage  certmagic.Storage // the newest started config's
	logger   *zap.Logger
	renewing bool
}

// reserve takes n consecutive IDs from the slot's current generator (see
// generator.reserve) and returns the first and the layout it was minted in.
func (s *slot) reserve(n int, lead, maxWait time.Duration) (int64, layout, error) {
	for {
		g := s.current.Load()
		if g == nil { // a handler serving before its app started
			return 0, layout{}, &waitError{Wait: maxSwitchWait}
		}
		first, err := g.reserve(n, lead, maxWait)
		if !errors.Is(err, errRetired) {
			return first, g.layout, err
		}
	}
}

// start makes a generator of layout l current, as a config starts. The
// successor issues only IDs above every ID issued before: its
// predecessor's, or in a fresh process, the reservation in storage and the
// time unit the process started in. It refuses (leaving the predecessor
// running) when its first ID would be due more than maxSwitchWait after the
// endpoint's lead; it waits when that is shorter.
func (s *slot) start(l layout, storage certmagic.Storage, logger *zap.Logger) error {
	prev := s.current.Load()
	if prev != nil && prev.layout == l {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.storage, s.logger = storage, logger
		return s.renew(prev)
	}
	succ, err := s.successor(prev, l, storage, logger)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storage, s.logger = storage, logger
	if err := s.renew(succ); err != nil {
		return err
	}
	if prev != nil {
		succ.raiseFloor(prev.retire())
		logger.Info("sonyflake layout changed: minting continues above the last ID", zap.Int64("machine_id", s.machineID), zap.Int64("after", prev.lastID()))
	}
	s.current.Store(succ)
	if err := s.renew(succ); err != nil { // covers what prev issued since
		return err
	}
	if !s.renewing && s.reg.renewEvery > 0 {
		s.renewing = true
		go s.keepRenewing(s.reg.renewEvery)
	}
	return nil
}

// successor builds the generator that follows prev (nil: none in this
// process) in layout l, after waiting until its first ID is nearly due.
func (s *slot) successor(prev *generator, l layout, storage certmagic.Storage, logger *zap.Logger) (*generator, error) {
	now := s.reg.now()
	var after int64
	stored := reservation{ID: -1} // the previous process's; none for prev
	if prev != nil {
		after = prev.lastID()
	} else {
		var err error
		if stored, err = loadReservation(storage, s.machineID); err != nil {
			return nil, err
		}
		// Never the time unit this process started in: the previous
		// process may have minted in it.
		after = max(stored.ID, l.compose(l.unitsAt(now), l.maxSequence(), s.machineID))
	}
	succ := newGenerator(l, s.machineID, after, s.reg.now, s.reg.sleep)
	next := succ.lastUnits() + 1
	if err := checkResumable(l, s.machineID, stored, next, now); err != nil {
		return nil, err
	}
	due := l.timeOf(next)
	wait := due.Sub(now) - endpointLead
	switch {
	case wait <= 0:
	case prev != nil && wait > maxSwitchWait:
		return nil, refusal(prev.layout, l, s.machineID, due)
	case prev == nil && wait > restartLead(l):
		// The clock stepped back since the reservation was written.
		logger.Warn("sonyflake: the clock is behind the IDs reserved in storage; minting resumes when it gets there",
			zap.Int64("machine_id", s.machineID), zap.Time("resumes", due))
	default:
		s.reg.sleep(wait)
	}
	return succ, nil
}

// refusal is the error for a layout whose IDs stay below the running
// generator's until due: it names the settings that moved the time field.
func refusal(old, l layout, machineID int64, due time.Time) error {
	var changed []string
	if !old.start.Equal(l.start) {
		changed = append(changed, fmt.Sprintf("start_time %s (was %s)", l.start.Format(time.RFC3339), old.start.Format(time.RFC3339)))
	}
	if old.unit != l.unit {
		changed = append(changed, fmt.Sprintf("time_unit %s (was %s)", l.unit, old.unit))
	}
	if old.timeBits() != l.timeBits() {
		changed = append(changed, fmt.Sprintf("sequence_bits %d/machine_id_bits %d: %d time bits (was %d)", l.sequenceBits, l.machineIDBits, l.timeBits(), old.timeBits()))
	}
	return fmt.Errorf("sonyflake: %s: the IDs of this layout stay at or below those already minted for machine ID %d until %s; keep the running settings, or apply these once that date has passed with no IDs minted meanwhile (e.g. the edge stopped)",
		strings.Join(changed, ", "), machineID, due.UTC().Add(time.Second).Truncate(time.Second).Format(time.RFC3339))
}

// renew writes a reservation that covers g reservationLead ahead of now or
// of its last reservation, whichever is later, and lets g mint up to it.
func (s *slot) renew(g *generator) error {
	l := g.layout
	from := s.reg.now()
	if last := l.timeOf(g.lastUnits()); last.After(from) {
		from = last
	}
	until := from.Add(reservationLead(l))
	units := l.unitsAt(until)
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	r := reservation{ID: l.compose(units, l.maxSequence(), s.machineID), Until: l.timeOf(units + 1).UTC()}
	if err := storeReservation(ctx, s.storage, s.machineID, r); err != nil {
		return err
	}
	g.setCeiling(units)
	return nil
}

// keepRenewing renews the reservation every interval for the life of the
// process: the generator outlives configs.
func (s *slot) keepRenewing(every time.Duration) {
	ticker := time.NewTicker(every)
	for range ticker.C {
		s.renewCurrent()
	}
}

// renewCurrent renews the current generator's reservation; a failure is
// counted and logged.
func (s *slot) renewCurrent() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.renew(s.current.Load()); err != nil {
		mintMetrics.reservationErrors.Inc()
		s.logger.Error("sonyflake: renewing the ID reservation failed; minting stops where the last one ends", zap.Error(err))
	}
}
