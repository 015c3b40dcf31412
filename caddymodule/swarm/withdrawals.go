package swarm

import (
	"slices"
	"sync"
)

// withdrawalWatchers are told the dial address ("ip:port") of every task a
// pool stops serving: gone from DNS, failing its probe, or all tasks of a
// set that went stale. Transports use it to close their pooled connections
// to such tasks; a task on a lost node never sends the RST that would.
var withdrawalWatchers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func(dial string)
}

// watchWithdrawals calls fn for each task withdrawn from now on, until
// stop is called. fn runs while a pool's lock is held: it must not block.
func watchWithdrawals(fn func(dial string)) (stop func()) {
	w := &withdrawalWatchers
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = make(map[int]func(string))
	}
	id := w.next
	w.next++
	w.fns[id] = fn
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.fns, id)
	}
}

// notifyWithdrawn tells the watchers about each task served before and
// not after.
func notifyWithdrawn(before, after []string) {
	w := &withdrawalWatchers
	for _, dial := range before {
		if slices.Contains(after, dial) {
			continue
		}
		w.mu.Lock()
		for _, fn := range w.fns {
			fn(dial)
		}
		w.mu.Unlock()
	}
}
