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

// loadReservation returns the reserved ID of machineID, or -1 when storage
// has none.
func loadReservation(storage certmagic.Storage, machineID int64) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	key := reservationKey(machineID)
	data, err := storage.Load(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sonyflake: reading the ID reservation %s from storage: %w", key, err)
	}
	var r reservation
	if err := json.Unmarshal(data, &r); err != nil || r.ID < 0 {
		return 0, fmt.Errorf("sonyflake: the ID reservation %s in storage is not {\"id\":<ID>,\"until\":<time>}: %q; it holds the highest ID this machine ID may have minted, restore it rather than delete it", key, data)
	}
	return r.ID, nil
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
