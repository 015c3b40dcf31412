package swarm

import (
	"context"
	"sync"
	"time"
)

// firstAnswerWait bounds how long the Provisions of one config wait, all
// together, for the first DNS answers, so that a fresh edge does not
// start with 503s but a dead resolver does not hold up the config load.
var firstAnswerWait = 2 * time.Second

// swarmRegistry holds the process-wide loops and task pools. It outlives
// configs: a reload provisions the new config (joining the running loops)
// before it cleans up the old one.
var swarmRegistry = struct {
	sync.Mutex
	loops map[resolverKey]*dnsLoop
	pools map[poolKey]*taskPool
}{
	loops: make(map[resolverKey]*dnsLoop),
	pools: make(map[poolKey]*taskPool),
}

// acquireTaskPool returns the pool for key, starting it and its loop if
// they do not run yet, and counts user in.
func acquireTaskPool(key poolKey, user any, s loopSettings) *taskPool {
	swarmRegistry.Lock()
	defer swarmRegistry.Unlock()
	loop := swarmRegistry.loops[key.resolverKey]
	newLoop := loop == nil
	if newLoop {
		loop = newDNSLoop(key.resolverKey, refreshes)
		swarmRegistry.loops[key.resolverKey] = loop
	}
	loop.addUser(user, s)
	if newLoop {
		refreshes.add(loop) // after addUser: the first lookup needs the settings
	}
	pool := swarmRegistry.pools[key]
	if pool == nil {
		pool = newTaskPool(key, loop, realClock{})
		swarmRegistry.pools[key] = pool
		loop.attach(pool)
		pool.start()
	}
	pool.users++
	return pool
}

// releaseTaskPool counts user out of pool and stops the pool and its loop
// when they have no user left. Releasing twice is harmless.
func releaseTaskPool(pool *taskPool, user any) {
	swarmRegistry.Lock()
	defer swarmRegistry.Unlock()
	remaining, wasUser := pool.loop.removeUser(user)
	if !wasUser {
		return
	}
	pool.users--
	if pool.users == 0 {
		pool.loop.detach(pool)
		pool.stop()
		delete(swarmRegistry.pools, pool.key)
	}
	if remaining == 0 {
		pool.loop.stop()
		delete(swarmRegistry.loops, pool.loop.key)
	}
}

// firstAnswerDeadlines holds, per config being loaded (by its context's
// Done channel), until when its Provisions may wait for first answers.
var firstAnswerDeadlines = struct {
	sync.Mutex
	byConfig map[<-chan struct{}]time.Time
}{byConfig: make(map[<-chan struct{}]time.Time)}

// awaitFirstAnswer waits for loop's first answer, at most until the
// deadline that the first Provision of the config ctx set, and not past
// ctx's end. It reports whether the answer came.
func awaitFirstAnswer(ctx context.Context, loop *dnsLoop) bool {
	select {
	case <-loop.firstAnswer:
		return true
	default:
	}
	timer := time.NewTimer(time.Until(firstAnswerDeadline(ctx)))
	defer timer.Stop()
	select {
	case <-loop.firstAnswer:
		return true
	case <-timer.C:
	case <-ctx.Done():
	}
	return false
}

// firstAnswerDeadline returns ctx's deadline for first answers, setting
// it firstAnswerWait from now on the first call for ctx. A context that
// never ends gets a fresh one each time: nothing would forget it.
func firstAnswerDeadline(ctx context.Context) time.Time {
	deadline := time.Now().Add(firstAnswerWait)
	config := ctx.Done()
	if config == nil {
		return deadline
	}
	firstAnswerDeadlines.Lock()
	defer firstAnswerDeadlines.Unlock()
	if set, ok := firstAnswerDeadlines.byConfig[config]; ok {
		return set
	}
	firstAnswerDeadlines.byConfig[config] = deadline
	context.AfterFunc(ctx, func() {
		firstAnswerDeadlines.Lock()
		defer firstAnswerDeadlines.Unlock()
		delete(firstAnswerDeadlines.byConfig, config)
	})
	return deadline
}
