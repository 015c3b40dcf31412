package sonyflake

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sony/sonyflake/v2"
)

// Layout defaults: the Sonyflake v1 format, which titpetric/sonyflake used.
var defaultStartTime = time.Date(2014, 9, 1, 0, 0, 0, 0, time.UTC)

const (
	defaultTimeUnit      = 10 * time.Millisecond
	defaultSequenceBits  = 8
	defaultMachineIDBits = 16

	// minLifetime is how far past now a layout's time field must reach:
	// a layout that runs out sooner is refused at load, not in production.
	minLifetime = 10 * 365 * 24 * time.Hour
)

// layout is how an ID's 63 bits are split and what its time field counts:
// time<<(sequenceBits+machineIDBits) | sequence<<machineIDBits | machineID.
type layout struct {
	start         time.Time
	unit          time.Duration
	sequenceBits  int
	machineIDBits int
}

// newLayout returns the layout for these settings, zero values taking the
// defaults. Like the library, it counts whole units since the Unix epoch
// minus start's: start is rounded down to a multiple of unit, so IDs and
// their times agree with the library's Compose and ToTime for any start.
func newLayout(start time.Time, unit time.Duration, sequenceBits, machineIDBits int) layout {
	if start.IsZero() {
		start = defaultStartTime
	}
	if unit == 0 {
		unit = defaultTimeUnit
	}
	if sequenceBits == 0 {
		sequenceBits = defaultSequenceBits
	}
	if machineIDBits == 0 {
		machineIDBits = defaultMachineIDBits
	}
	if unit > 0 { // a negative unit is refused by check
		rem := time.Duration(start.UnixNano() % int64(unit))
		if rem < 0 {
			rem += unit
		}
		start = start.Add(-rem)
	}
	return layout{start: start.UTC(), unit: unit, sequenceBits: sequenceBits, machineIDBits: machineIDBits}
}

// idParts is an ID taken apart, in the fields of titpetric/sonyflake's JSON.
type idParts struct {
	ID        int64 `json:"id"`
	MachineID int64 `json:"machine-id"`
	MSB       int64 `json:"msb"`
	Sequence  int64 `json:"sequence"`
	Time      int64 `json:"time"`
}

func (l layout) timeBits() int { return 63 - l.sequenceBits - l.machineIDBits }

// maxSequence is the highest sequence number: IDs per time unit minus one.
func (l layout) maxSequence() int64 { return 1<<l.sequenceBits - 1 }

// compose builds an ID from its fields; they must already be in range.
func (l layout) compose(units, sequence, machineID int64) int64 {
	return units<<(l.sequenceBits+l.machineIDBits) | sequence<<l.machineIDBits | machineID
}

// decompose takes an ID apart.
func (l layout) decompose(id int64) idParts {
	return idParts{
		ID:        id,
		MachineID: id & (1<<l.machineIDBits - 1),
		MSB:       int64(uint64(id) >> 63),
		Sequence:  id >> l.machineIDBits & l.maxSequence(),
		Time:      id >> (l.sequenceBits + l.machineIDBits) & (1<<l.timeBits() - 1),
	}
}

// appendRun appends to dst the n consecutive IDs that start at first: the
// sequence counts up and carries into the time field.
func (l layout) appendRun(dst []int64, first int64, n int) []int64 {
	p := l.decompose(first)
	units, seq := p.Time, p.Sequence
	for range n {
		dst = append(dst, l.compose(units, seq, p.MachineID))
		if seq++; seq > l.maxSequence() {
			units, seq = units+1, 0
		}
	}
	return dst
}

// positionBefore is the position (time field, sequence) just before the
// first one whose ID with machineID is greater than after, an ID of any
// layout (negative: none): where a generator that must issue only IDs
// above after starts. IDs compare as numbers whatever their layout.
func (l layout) positionBefore(after, machineID int64) (units, sequence int64) {
	if after < 0 {
		return -1, l.maxSequence()
	}
	first := after >> l.machineIDBits // after's time field and sequence in l
	if machineID <= after&(1<<l.machineIDBits-1) {
		first++
	}
	return (first - 1) >> l.sequenceBits, (first - 1) & l.maxSequence()
}

// unitsAt is the time field for instant t: whole units since start.
func (l layout) unitsAt(t time.Time) int64 { return int64(t.Sub(l.start) / l.unit) }

// timeOf is the instant at which time field units begins; units must be at
// most maxUnits.
func (l layout) timeOf(units int64) time.Time { return l.start.Add(time.Duration(units) * l.unit) }

// maxUnits is the largest time field whose instant timeOf can compute: a
// time.Duration reaches about 292 years past start.
func (l layout) maxUnits() int64 { return math.MaxInt64 / int64(l.unit) }

// end is the first instant the time field cannot hold, or for a field that
// lasts longer than maxUnits, the instant of maxUnits (centuries away).
func (l layout) end() time.Time {
	return l.timeOf(min(1<<l.timeBits(), l.maxUnits()))
}

// validate checks the layout and the machine ID with check and refuses a
// layout whose time field runs out within minLifetime of now.
func (l layout) validate(machineID int, now time.Time) error {
	if err := l.check(machineID); err != nil {
		return err
	}
	if end := l.end(); end.Before(now.Add(minLifetime)) {
		return fmt.Errorf("time field of %d bits at time_unit %s from start_time %s ends on %s, less than 10 years from now: use fewer sequence_bits/machine_id_bits, a longer time_unit or a later start_time",
			l.timeBits(), l.unit, l.start.Format(time.RFC3339), end.UTC().Format("2006-01-02"))
	}
	return nil
}

// check applies the library's own rules (so the plugin accepts exactly what
// Sonyflake accepts), with errors that name the option.
func (l layout) check(machineID int) error {
	_, err := sonyflake.New(sonyflake.Settings{
		BitsSequence:  l.sequenceBits,
		BitsMachineID: l.machineIDBits,
		TimeUnit:      l.unit,
		StartTime:     l.start,
		MachineID:     func() (int, error) { return machineID, nil },
	})
	switch {
	case errors.Is(err, sonyflake.ErrInvalidBitsSequence):
		return fmt.Errorf("sequence_bits %d: must be 1 to 30", l.sequenceBits)
	case errors.Is(err, sonyflake.ErrInvalidBitsMachineID):
		return fmt.Errorf("machine_id_bits %d: must be 1 to 30", l.machineIDBits)
	case errors.Is(err, sonyflake.ErrInvalidBitsTime):
		return fmt.Errorf("sequence_bits %d + machine_id_bits %d = %d: together they must be at most 31, leaving at least 32 bits of time",
			l.sequenceBits, l.machineIDBits, l.sequenceBits+l.machineIDBits)
	case errors.Is(err, sonyflake.ErrInvalidTimeUnit):
		return fmt.Errorf("time_unit %s: must be at least 1ms", l.unit)
	case errors.Is(err, sonyflake.ErrStartTimeAhead):
		return fmt.Errorf("start_time %s: is in the future", l.start.Format(time.RFC3339))
	case errors.Is(err, sonyflake.ErrInvalidMachineID):
		return fmt.Errorf("machine_id %d: must be 0 to %d for machine_id_bits %d", machineID, 1<<l.machineIDBits-1, l.machineIDBits)
	}
	return err
}
