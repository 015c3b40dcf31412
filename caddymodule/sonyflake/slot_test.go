package sonyflake

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// testApp returns an app of layout l with a generator already running on
// its own registry (no storage, no ceiling), for handler tests.
func testApp(l layout, machineID int64, now func() time.Time, sleep func(time.Duration)) *App {
	reg := newRegistry(now, sleep, 0)
	s := reg.slot(machineID)
	s.current.Store(newGenerator(l, machineID, -1, now, sleep))
	return &App{layout: l, machineID: machineID, registry: reg, slot: s}
}

// testNode is one process's view of a machine ID: its registry on a fake
// clock, and the storage that outlives the process.
type testNode struct {
	clock   *fakeClock
	storage certmagic.Storage
	reg     *registry
}

func newTestNode(t *testing.T, t0 time.Time) *testNode {
	clock := &fakeClock{t: t0}
	return &testNode{clock: clock, storage: &certmagic.FileStorage{Path: t.TempDir()}, reg: newRegistry(clock.now, clock.sleep, 0)}
}

// restart is the node's next process: a new registry, the same storage.
func (n *testNode) restart() {
	n.reg = newRegistry(n.clock.now, n.clock.sleep, 0)
}

// start provisions and starts an app of layout l, as Caddy would.
func (n *testNode) start(l layout, machineID int64) (*App, error) {
	a := &App{layout: l, machineID: machineID, registry: n.reg, slot: n.reg.slot(machineID), storage: n.storage, logger: zap.NewNop()}
	return a, a.Start()
}

func mustStart(t *testing.T, n *testNode, l layout, machineID int64) *App {
	t.Helper()
	a, err := n.start(l, machineID)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustStamp(t *testing.T, a *App) mintedID {
	t.Helper()
	m, err := a.stamp(0)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 3e6, time.UTC)

func TestLayoutChangeSuccessorStartsAboveOrIsRefused(t *testing.T) {
	later := func(d time.Duration) layout {
		return newLayout(defaultStartTime.Add(d), defaultTimeUnit, defaultSequenceBits, defaultMachineIDBits)
	}
	for _, tc := range []struct {
		name    string
		next    layout
		refused []string // settings the refusal names; none: accepted
	}{
		{"same time field, other split", newLayout(defaultStartTime, defaultTimeUnit, 10, 14), nil},
		{"shorter time_unit", newLayout(defaultStartTime, time.Millisecond, 8, 16), nil},
		{"fewer time bits", newLayout(defaultStartTime, defaultTimeUnit, 9, 16), nil},
		{"start_time 300ms later: waits", later(300 * time.Millisecond), nil},
		{"start_time 1h later", later(time.Hour), []string{"start_time 2014-09-01T01:00:00Z (was 2014-09-01T00:00:00Z)"}},
		{"longer time_unit", newLayout(defaultStartTime, 20*time.Millisecond, 8, 16), []string{"time_unit 20ms (was 10ms)"}},
		{"more time bits", newLayout(defaultStartTime, defaultTimeUnit, 7, 16), []string{"sequence_bits 7/machine_id_bits 16: 40 time bits (was 39)"}},
		{"time_unit 1ms from start_time 2026-01-01", newLayout(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Millisecond, 8, 16), []string{"start_time 2026-01-01", "time_unit 1ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNode(t, t0)
			old := mustStart(t, n, defaultLayout, 42)
			n.clock.slept = nil
			before, _, err := old.mintN(nil, 1000, time.Second) // runs 30ms ahead
			if err != nil {
				t.Fatal(err)
			}
			last := before[len(before)-1]
			running := old.slot.current.Load()

			next, err := n.start(tc.next, 42)
			if tc.refused != nil {
				if err == nil {
					t.Fatal("accepted a layout whose IDs are below the last one")
				}
				for _, want := range append(tc.refused, "until 2") {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("refusal %q does not name %q", err, want)
					}
				}
				if old.slot.current.Load() != running {
					t.Fatal("a refused layout replaced the running generator")
				}
				if m := mustStamp(t, old); m.id <= last || m.layout != defaultLayout {
					t.Fatalf("after the refusal: ID %d in %+v, want above %d in the running layout", m.id, m.layout, last)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range n.clock.slept {
				if d > maxSwitchWait {
					t.Errorf("Start waited %s, more than %s", d, maxSwitchWait)
				}
			}
			m := mustStamp(t, next)
			if m.layout != tc.next || m.id <= last {
				t.Fatalf("successor's first ID %d (layout %+v) not above the predecessor's last %d", m.id, m.layout, last)
			}
			// Handlers of the old config mint from the successor too.
			if m2 := mustStamp(t, old); m2.id <= m.id || m2.layout != tc.next {
				t.Fatalf("old config's handler minted %d in %+v after %d", m2.id, m2.layout, m.id)
			}
		})
	}
}

func TestFreshProcessSkipsItsStartUnit(t *testing.T) {
	n := newTestNode(t, t0) // 3ms into a 10ms unit
	a := mustStart(t, n, defaultLayout, 7)
	if got, want := defaultLayout.decompose(mustStamp(t, a).id).Time, defaultLayout.unitsAt(t0)+1; got != want {
		t.Fatalf("first ID in time unit %d, want %d: the unit the process started in may hold the last process's IDs", got, want)
	}
}

func TestRestartContinuesAboveReservation(t *testing.T) {
	for _, tc := range []struct {
		name       string
		clockMoves time.Duration // between the two processes
	}{
		{"at once", 0},
		{"clock stepped back 1h", -time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNode(t, t0)
			a := mustStart(t, n, defaultLayout, 9)
			var last int64
			for range 300 { // beyond one unit: stamping runs ahead
				last = mustStamp(t, a).id
			}
			stored, err := loadReservation(n.storage, 9)
			if err != nil || stored.ID <= last {
				t.Fatalf("stored reservation %d (%v), want above the last ID %d", stored.ID, err, last)
			}

			n.restart() // kill -9
			n.clock.set(n.clock.now().Add(tc.clockMoves))
			b := mustStart(t, n, defaultLayout, 9)
			if tc.clockMoves < 0 {
				if _, err := b.stamp(defaultTimeUnit); !errors.As(err, new(*waitError)) {
					t.Fatalf("stamp with the clock an hour behind the reservation: %v, want a waitError", err)
				}
				n.clock.set(defaultLayout.timeOf(defaultLayout.decompose(stored.ID).Time + 1))
			}
			if first := mustStamp(t, b).id; first <= stored.ID {
				t.Fatalf("restarted process's first ID %d, want above the reservation %d (last ID %d)", first, stored.ID, last)
			}
		})
	}
}

func TestRestartAboveReservationInFuture(t *testing.T) {
	n := newTestNode(t, t0)
	future := defaultLayout.compose(defaultLayout.unitsAt(t0.Add(10*time.Minute)), 5, 11)
	if err := storeReservation(t.Context(), n.storage, 11, reservation{ID: future}); err != nil {
		t.Fatal(err)
	}
	a := mustStart(t, n, defaultLayout, 11)
	if len(n.clock.slept) != 0 {
		t.Fatalf("Start waited %v for a reservation 10 minutes ahead", n.clock.slept)
	}
	if _, _, err := a.mintN(nil, 1, time.Second); !errors.As(err, new(*waitError)) {
		t.Fatalf("endpoint 10 minutes before the reservation: %v, want a waitError", err)
	}
	n.clock.set(t0.Add(10 * time.Minute))
	ids, _, err := a.mintN(nil, 3, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ids[0] <= future {
		t.Fatalf("first ID %d not above the stored reservation %d", ids[0], future)
	}
}

func TestReservationCeilingStopsMinting(t *testing.T) {
	n := newTestNode(t, t0)
	a := mustStart(t, n, defaultLayout, 12)
	stored, err := loadReservation(n.storage, 12)
	if err != nil {
		t.Fatal(err)
	}
	// Storage is not renewed: stamping stops at the reservation however
	// long the clock runs.
	for {
		n.clock.set(n.clock.now().Add(100 * time.Millisecond))
		m, err := a.stamp(defaultTimeUnit)
		if err != nil {
			break
		}
		if m.id > stored.ID {
			t.Fatalf("minted %d past the stored reservation %d", m.id, stored.ID)
		}
	}
	if err := a.slot.renew(a.slot.current.Load()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.stamp(defaultTimeUnit); err != nil {
		t.Fatalf("after a renewal: %v", err)
	}
}

// stillClock never moves: its sleep only records.
type stillClock struct{ fakeClock }

func (c *stillClock) sleep(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.slept = append(c.slept, d)
}

func TestStampingRunsAheadAtMostOneSecond(t *testing.T) {
	clock := &stillClock{fakeClock{t: t0}}
	a := testApp(defaultLayout, 13, clock.now, clock.sleep)
	limit := t0.Add(maxRunAhead + defaultTimeUnit)
	stamped := 0
	for {
		m, err := a.stamp(defaultTimeUnit)
		if err != nil {
			if !errors.As(err, new(*waitError)) {
				t.Fatal(err)
			}
			break
		}
		stamped++
		if at := defaultLayout.timeOf(defaultLayout.decompose(m.id).Time); at.After(limit) {
			t.Fatalf("stamped ID of %s, more than %s ahead of the clock", at, maxRunAhead)
		}
	}
	if perSecond := int(time.Second / defaultTimeUnit << defaultSequenceBits); stamped < perSecond {
		t.Errorf("stamped %d IDs before refusing, want at least one second's %d", stamped, perSecond)
	}
	for _, d := range clock.slept {
		if d > defaultTimeUnit {
			t.Errorf("stamping waited %s, more than one unit", d)
		}
	}
}

func TestEndpointLeavesStampingItsShare(t *testing.T) {
	clock := &stillClock{fakeClock{t: t0}}
	a := testApp(defaultLayout, 14, clock.now, clock.sleep)
	// Batch clients at full speed: the clock does not move while they wait.
	served := 0
	for {
		if _, _, err := a.mintN(nil, maxCount, endpointMaxWait); err != nil {
			break
		}
		served++
	}
	if served == 0 {
		t.Fatal("the endpoint got no IDs")
	}
	// Stamping still finds IDs within its run-ahead: at least half a
	// second's worth, without waiting.
	clock.slept = nil
	perHalfSecond := int(endpointLead / defaultTimeUnit << defaultSequenceBits)
	for i := range perHalfSecond - 2*maxCount {
		if _, err := a.stamp(defaultTimeUnit); err != nil {
			t.Fatalf("stamp %d after the endpoint took its share: %v", i, err)
		}
	}
}

// A restart with a layout whose time field sits lower than that of the
// layout that wrote the reservation finds the reserved ID years (or past
// the end of its time field) ahead of the clock: the start is refused with
// an error naming the reservation and the remedies, and nothing is minted.
func TestRestartWithAnotherLayoutFarAboveTheReservationIsRefused(t *testing.T) {
	fewerSequenceBits := newLayout(defaultStartTime, defaultTimeUnit, defaultSequenceBits-4, defaultMachineIDBits)
	millisecondUnits := newLayout(defaultStartTime, time.Millisecond, 2, 8)
	for _, tc := range []struct {
		name    string
		l       layout
		wantErr string
	}{
		{"4 more time bits", fewerSequenceBits, "minting above it would run the time field"},
		{"past the end of the time field", millisecondUnits, "lies past the end of its time field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNode(t, t0)
			a := mustStart(t, n, defaultLayout, 13)
			mustStamp(t, a)
			n.restart()
			if _, err := n.start(tc.l, 13); err == nil || !strings.Contains(err.Error(), tc.wantErr) ||
				!strings.Contains(err.Error(), "sonyflake/13") || !strings.Contains(err.Error(), "start with the layout that wrote it") {
				t.Fatalf("restart with another layout: %v, want a refusal containing %q, the reservation's key and the remedy", err, tc.wantErr)
			}
			if _, err := n.start(defaultLayout, 13); err != nil {
				t.Fatalf("restart with the layout that wrote the reservation: %v", err)
			}
		})
	}
}
