package sonyflake

import (
	"testing"
	"time"
)

func TestLayoutMatchesLibraryForUnalignedStart(t *testing.T) {
	// 7ms does not divide 2014-09-01 since the Unix epoch: the library
	// counts whole units since the Unix epoch, so start is rounded down.
	l := newLayout(time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC), 7*time.Millisecond, 8, 16)
	lib := librarySonyflake(t, l, 1)
	for _, at := range []time.Time{
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 6_999_999, time.UTC),
		time.Date(2031, 7, 8, 9, 10, 11, 12, time.UTC),
	} {
		want, err := lib.Compose(at, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.compose(l.unitsAt(at), 0, 1); got != want {
			t.Errorf("ID at %s = %d, library composes %d", at, got, want)
		}
		if got := l.timeOf(l.decompose(want).Time); !got.Equal(lib.ToTime(want)) {
			t.Errorf("time of %d = %s, library says %s", want, got, lib.ToTime(want))
		}
	}
}

func TestLayoutWithLongUnitIsNotRefused(t *testing.T) {
	// 2^34 seconds overflow a time.Duration (and wrapped to an end in
	// 1974): the field must still count as lasting far beyond 10 years.
	l := newLayout(time.Time{}, time.Second, 13, 16)
	if err := l.validate(1, time.Now()); err != nil {
		t.Fatal(err)
	}
}
