package sonyflake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"time"

	"github.com/caddyserver/certmagic"
)

// The reservation is how a restarted process continues above the IDs of the
// one before, even after the wall clock stepped back: the process keeps in
// Caddy's storage an ID at or above every ID it minted or may mint before
// its next write, renewed about once a second, and a new process starts
// above it.

// storageTimeout bounds one read or write of the reservation.
const storageTimeout = 5 * time.Second

// reservationLead is how far ahead of the generator a reservation reaches:
// one renewal interval, stamping's run-ahead, and one unit of waiting.
func reservationLead(l layout) time.Duration {
	return reservationInterval + maxRunAhead + l.unit
}

// reservation is what storage holds at sonyflake/<machine id>.
type reservation struct {
	// ID is at or above every ID minted, or that may be minted before the
	// next write, with this machine ID.
	ID int64 `json:"id"`

	// Until is the instant ID's time field ends, for people reading it.
	Until time.Time `json:"until"`
}

func reservationKey(machineID int64) string {
	return "sonyflake/" + strconv.FormatInt(machineID, 10)
}

// loadReservation returns the reservation of machineID; its ID is -1 when
// storage has none.
func loadReservation(storage certmagic.Storage, machineID int64) (reservation, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	key := reservationKey(machineID)
	data, err := storage.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return reservation{ID: -1}, nil
	}
	if err != nil {
		return reservation{}, fmt.Errorf("sonyflake: reading the ID reservation %s from storage: %w", key, err)
	}
	var r reservation
	if err := json.Unmarshal(data, &r); err != nil || r.ID < 0 {
		return reservation{}, fmt.Errorf("sonyflake: the ID reservation %s in storage is not {\"id\":<ID>,\"until\":<time>}: %q; it holds the highest ID this machine ID may have minted, restore it rather than delete it", key, data)
	}
	return r, nil
}

// checkResumable refuses to resume above stored, the reservation of
// machineID, at time field next of layout l when another layout wrote it
// and in l it lies past the end of the time field (timeOf would overflow),
// or further ahead of now than a restart at once finds: the time field
// then runs ahead of the clock until the clock gets there, years maybe.
// A reservation of this layout that far ahead means the clock stepped
// back, which minting waits out. Reservations written before Until was
// kept are checked against the end of the time field only.
func checkResumable(l layout, machineID int64, stored reservation, next int64, now time.Time) error {
	if stored.ID < 0 {
		return nil
	}
	settings := fmt.Sprintf("start_time %s, time_unit %s, sequence_bits %d, machine_id_bits %d",
		l.start.Format(time.RFC3339), l.unit, l.sequenceBits, l.machineIDBits)
	if next >= min(1<<l.timeBits(), l.maxUnits()) {
		return fmt.Errorf("sonyflake: the ID reservation %s in storage holds ID %d, which in this layout (%s) lies past the end of its time field, %s: start with the layout that wrote it, or give this edge another machine ID",
			reservationKey(machineID), stored.ID, settings, l.end().UTC().Format(time.RFC3339))
	}
	due := l.timeOf(next)
	writtenByAnother := !stored.Until.IsZero() && (due.Sub(stored.Until) > time.Second || stored.Until.Sub(due) > time.Second)
	if writtenByAnother && due.Sub(now) > restartLead(l) {
		return fmt.Errorf("sonyflake: the ID reservation %s in storage holds ID %d, written with another layout (its time field ends %s); in this layout (%s) minting above it would run the time field %s ahead of the clock: start with the layout that wrote it, give this edge another machine ID, or start after %s",
			reservationKey(machineID), stored.ID, stored.Until.UTC().Format(time.RFC3339), settings,
			due.Sub(now).Round(time.Second), due.UTC().Add(time.Second).Truncate(time.Second).Format(time.RFC3339))
	}
	return nil
}

// restartLead is how far ahead of the clock a restart at once finds the
// reservation of the process before: further means the clock stepped back
// (or the layout changed).
func restartLead(l layout) time.Duration {
	return 2*reservationLead(l) + l.unit
}

// storeReservation writes r as machineID's reservation.
func storeReservation(ctx context.Context, storage certmagic.Storage, machineID int64, r reservation) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := storage.Store(ctx, reservationKey(machineID), data); err != nil {
		return fmt.Errorf("sonyflake: writing the ID reservation %s to storage: %w", reservationKey(machineID), err)
	}
	return nil
}
