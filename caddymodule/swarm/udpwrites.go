package swarm

import (
	"slices"
	"sync"
)

// udpWriteHold holds back the queries sent while a refresh tick's lookups
// start, so that they leave in a few batch writes instead of a system
// call each: at hundreds of services, most of a tick's cost.
var udpWriteHold = struct {
	sync.Mutex
	depth   int          // holds in effect: writes leave with the last flush
	sockets []*udpSocket // the sockets holding queries
}{}

// holdUDPWrites holds the queries sent from now until flushUDPWrites.
func holdUDPWrites() {
	udpWriteHold.Lock()
	defer udpWriteHold.Unlock()
	udpWriteHold.depth++
}

// flushUDPWrites ends a hold and, with the last one, writes the queries
// held.
func flushUDPWrites() {
	udpWriteHold.Lock()
	udpWriteHold.depth--
	if udpWriteHold.depth > 0 {
		udpWriteHold.Unlock()
		return
	}
	sockets := udpWriteHold.sockets
	udpWriteHold.sockets = nil
	udpWriteHold.Unlock()
	for _, s := range sockets {
		s.flush()
	}
}

// holdingWrites reports whether writes are held, listing s as holding
// queries if so. s.mu must be held: a flush then either finds the query
// that s queued or has ended the hold before s asked.
func holdingWrites(s *udpSocket) bool {
	udpWriteHold.Lock()
	defer udpWriteHold.Unlock()
	if udpWriteHold.depth == 0 {
		return false
	}
	if !slices.Contains(udpWriteHold.sockets, s) {
		udpWriteHold.sockets = append(udpWriteHold.sockets, s)
	}
	return true
}
