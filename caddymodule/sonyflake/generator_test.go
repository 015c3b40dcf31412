package sonyflake

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sony/sonyflake/v2"
)

// fakeClock is a settable clock whose sleep advances it, so waits are
// recorded instead of slept.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	slept []time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
	c.t = c.t.Add(d)
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var defaultLayout = layout{start: defaultStartTime, unit: defaultTimeUnit, sequenceBits: defaultSequenceBits, machineIDBits: defaultMachineIDBits}

func newTestGenerator(l layout, machineID int64, t0 time.Time) (*generator, *fakeClock) {
	clock := &fakeClock{t: t0}
	return newGenerator(l, machineID, -1, clock.now, clock.sleep), clock
}

// librarySonyflake is the library's generator for the same layout: the
// reference for Compose/Decompose/ToTime.
func librarySonyflake(t *testing.T, l layout, machineID int) *sonyflake.Sonyflake {
	t.Helper()
	sf, err := sonyflake.New(sonyflake.Settings{
		BitsSequence: l.sequenceBits, BitsMachineID: l.machineIDBits,
		TimeUnit: l.unit, StartTime: l.start,
		MachineID: func() (int, error) { return machineID, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return sf
}

func TestGeneratorMatchesLibraryLayout(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 5e6, time.UTC)
	for _, l := range []layout{
		defaultLayout,
		{start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), unit: time.Millisecond, sequenceBits: 16, machineIDBits: 8},
		{start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), unit: 20 * time.Millisecond, sequenceBits: 4, machineIDBits: 8},
	} {
		g, _ := newTestGenerator(l, 10, t0)
		lib := librarySonyflake(t, l, 10)
		for seq := range 3 {
			id, err := g.next(0)
			if err != nil {
				t.Fatal(err)
			}
			want, err := lib.Compose(t0, seq, 10)
			if err != nil {
				t.Fatal(err)
			}
			if id != want {
				t.Errorf("layout %+v: ID %d = %d, library composes %d", l, seq, id, want)
			}
			parts, ref := l.decompose(id), lib.Decompose(id)
			if parts.Time != ref["time"] || parts.Sequence != ref["sequence"] || parts.MachineID != ref["machine"] || parts.MSB != 0 {
				t.Errorf("decompose(%d) = %+v, library says %v", id, parts, ref)
			}
			if got := l.timeOf(parts.Time); !got.Equal(lib.ToTime(id)) {
				t.Errorf("timeOf = %s, library ToTime = %s", got, lib.ToTime(id))
			}
		}
	}
}

func TestGeneratorWaitsForNextUnitOutsideTheLock(t *testing.T) {
	l := layout{start: defaultStartTime, unit: 10 * time.Millisecond, sequenceBits: 2, machineIDBits: 16}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 3e6, time.UTC) // 3 ms into a unit
	g, clock := newTestGenerator(l, 1, t0)
	var ids []int64
	for range 4 {
		id, err := g.next(0)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if len(clock.slept) != 0 {
		t.Fatalf("slept %v for IDs of the current unit", clock.slept)
	}
	if _, err := g.next(5 * time.Millisecond); !errors.As(err, new(*waitError)) {
		t.Fatalf("fifth ID with a 5ms bound: err = %v, want a waitError (7ms needed)", err)
	}
	id, err := g.next(10 * time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(clock.slept) != 1 || clock.slept[0] != 7*time.Millisecond {
		t.Fatalf("slept %v, want [7ms] until the next unit", clock.slept)
	}
	first, next := l.decompose(ids[0]), l.decompose(id)
	if next.Time != first.Time+1 || next.Sequence != 0 {
		t.Fatalf("ID after the unit ran out: %+v, want time %d sequence 0", next, first.Time+1)
	}
}

func TestGeneratorClockBehindRefusesWithRetryDelay(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g, clock := newTestGenerator(defaultLayout, 1, t0)
	last, err := g.next(0)
	if err != nil {
		t.Fatal(err)
	}
	clock.set(t0.Add(-5 * time.Minute))
	_, err = g.next(time.Second)
	var wait *waitError
	if !errors.As(err, &wait) || wait.Wait != 5*time.Minute {
		t.Fatalf("next with the clock 5 min behind the last ID: %v, want a waitError of 5m", err)
	}
	if len(clock.slept) != 0 {
		t.Fatalf("slept %v though the wait was refused", clock.slept)
	}
	clock.set(t0)
	id, err := g.next(0)
	if err != nil || id != last+1<<defaultLayout.machineIDBits {
		t.Fatalf("next once the clock caught up = %d, %v; want the next sequence number after %d", id, err, last)
	}
}

func TestGeneratorBatchSpansUnits(t *testing.T) {
	l := defaultLayout
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g, clock := newTestGenerator(l, 7, t0)
	ids, err := g.nextN(nil, 1000, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1000 {
		t.Fatalf("got %d IDs, want 1000", len(ids))
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("IDs not increasing at %d: %d after %d", i, ids[i], ids[i-1])
		}
	}
	if lastUnit := l.decompose(ids[999]).Time - l.decompose(ids[0]).Time; lastUnit != 3 {
		t.Fatalf("1000 IDs at 256 per unit span %d units after the first, want 3", lastUnit)
	}
	if want := []time.Duration{30 * time.Millisecond}; len(clock.slept) != 1 || clock.slept[0] != want[0] {
		t.Fatalf("slept %v, want %v", clock.slept, want)
	}
}

func TestGeneratorConcurrentMintingIsUnique(t *testing.T) {
	l := layout{start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), unit: time.Millisecond, sequenceBits: 8, machineIDBits: 16}
	g := newGenerator(l, 3, -1, monotonicNow, time.Sleep)
	const workers, each = 8, 2000
	results := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range each {
				id, err := g.next(time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				results[w] = append(results[w], id)
			}
		})
	}
	wg.Wait()
	seen := make(map[int64]bool, workers*each)
	for _, ids := range results {
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("duplicate ID %d", id)
			}
			seen[id] = true
		}
	}
}

// benchLayout does not run out of sequence numbers at benchmark rates:
// 65,536 IDs per millisecond.
var benchLayout = layout{start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), unit: time.Millisecond, sequenceBits: 16, machineIDBits: 8}

func BenchmarkMint(b *testing.B) {
	l := benchLayout
	g := newGenerator(l, 1, -1, monotonicNow, time.Sleep)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.next(time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMintParallel(b *testing.B) {
	l := benchLayout
	g := newGenerator(l, 1, -1, monotonicNow, time.Sleep)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := g.next(time.Second); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// raiseFloor (a successor taking over after its predecessor's last ID)
// only ever raises: an ID below what g already issued, even within the
// same time unit, must not make g issue that unit's IDs again.
func TestGeneratorRaiseFloorNeverLowers(t *testing.T) {
	l := defaultLayout
	const m = 10
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u := l.unitsAt(t0)
	for _, tc := range []struct {
		name  string
		after int64
		want  int64 // the next ID issued
	}{
		{"earlier sequence, same unit", l.compose(u, 1, m), l.compose(u, 3, m)},
		{"earlier unit, higher sequence", l.compose(u-1, 200, m), l.compose(u, 3, m)},
		{"the last ID issued", l.compose(u, 2, m), l.compose(u, 3, m)},
		{"later sequence, same unit", l.compose(u, 9, m), l.compose(u, 10, m)},
		{"later sequence, higher machine ID", l.compose(u, 9, m+1), l.compose(u, 10, m)},
		{"later unit", l.compose(u+1, 0, m), l.compose(u+1, 1, m)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := newTestGenerator(l, m, t0)
			if _, err := g.nextN(nil, 3, 0); err != nil { // sequences 0 to 2 of unit u
				t.Fatal(err)
			}
			g.raiseFloor(tc.after)
			id, err := g.next(time.Second)
			if err != nil || id != tc.want {
				t.Fatalf("next after raiseFloor(%+v) = %+v, %v; want %+v", l.decompose(tc.after), l.decompose(id), err, l.decompose(tc.want))
			}
		})
	}
}

// The last time unit the field holds still mints; the one after is
// refused (its IDs would set bit 63: negative).
func TestGeneratorMintsUpToTheEndOfTheTimeField(t *testing.T) {
	l := layout{start: defaultStartTime, unit: time.Millisecond, sequenceBits: 15, machineIDBits: 16} // 2^32 ms: 49.7 days
	last := l.timeOf(1<<l.timeBits() - 1)
	for _, tc := range []struct {
		name    string
		now     time.Time
		wantErr bool
	}{
		{"last unit", last, false},
		{"after the end", last.Add(l.unit), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := newTestGenerator(l, 1, tc.now)
			id, err := g.next(0)
			if tc.wantErr != (err != nil) || err != nil && !errors.Is(err, errOutOfIDs) {
				t.Fatalf("next at %s = %d, %v; want an error: %v (errOutOfIDs)", tc.now, id, err, tc.wantErr)
			}
			if err == nil && (id < 0 || l.decompose(id).Time != 1<<l.timeBits()-1) {
				t.Fatalf("next at %s = %d (%+v), want an ID of the last unit", tc.now, id, l.decompose(id))
			}
		})
	}
}
