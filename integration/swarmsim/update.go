package swarmsim

import (
	"fmt"
	"net/netip"
	"time"
)

// StopFirstUpdate replaces the task in slot as Swarm's default
// (stop-first) update does: the old task leaves DNS and the VIP and
// stops, and gap later its replacement starts, on a new address as a new
// Swarm task gets a new IP (addresses past the slots' range, one more per
// update). It returns once the replacement runs.
func (s *Service) StopFirstUpdate(slot int, gap time.Duration) error {
	s.mu.Lock()
	old, err := s.liveTask(slot)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	old.dead = true
	s.publish()
	s.mu.Unlock()
	old.kill()

	time.Sleep(gap)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if slot > len(s.slots) {
		return fmt.Errorf("slot %d was scaled away during the update", slot)
	}
	s.updates++
	addr := slotAddr(s.cfg.TaskBase, MaxReplicas+s.updates)
	if !isLoopback(addr) {
		return fmt.Errorf("no loopback address left for update %d", s.updates)
	}
	t, err := startTask(s.cfg.Name, slot, netip.AddrPortFrom(addr, s.cfg.Port))
	if err != nil {
		return fmt.Errorf("starting the replacement of task %d: %w", slot, err)
	}
	s.slots[slot-1] = t
	s.publish()
	return nil
}
