package swarmsim

import (
	"testing"
)

func TestVIPPinsKeepAliveConnections(t *testing.T) {
	s := startService(t, Config{Replicas: 3})
	vip := s.VIP().String()

	pinned := dialRaw(t, vip)
	first := pinned.task(t)
	for range 10 {
		if got := pinned.task(t); got != first {
			t.Fatalf("keep-alive connection moved from %s to %s", first, got)
		}
	}

	// New connections go round robin: each task once per round.
	seen := map[string]int{}
	for range 6 {
		seen[dialRaw(t, vip).task(t)]++
	}
	for _, name := range []string{"app.1", "app.2", "app.3"} {
		if seen[name] != 2 {
			t.Errorf("6 new connections spread %v, want 2 on each task", seen)
			break
		}
	}

	// Scaling out does not move established connections: new tasks get nothing.
	if err := s.Scale(5); err != nil {
		t.Fatal(err)
	}
	s.ResetCounts()
	for range 10 {
		if got := pinned.task(t); got != first {
			t.Fatalf("after scale-out, keep-alive connection moved from %s to %s", first, got)
		}
	}
	for _, st := range s.Tasks() {
		if st.Name != first && st.Requests != 0 {
			t.Errorf("%s got %d requests from a connection pinned to %s", st.Name, st.Requests, first)
		}
	}
}

func TestVIPWithNoTaskClosesConnections(t *testing.T) {
	s := startService(t, Config{Replicas: 0})
	if !dialRaw(t, s.VIP().String()).closedByPeer() {
		t.Error("connection to a VIP with no task stayed open")
	}
}
