package swarm

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// connTracker knows a transport's connections to each task and how many
// requests use each, so that it can close a task's pooled connections at
// once and its busy ones when their response is done: a response in
// progress is never cut.
type connTracker struct {
	mu    sync.Mutex
	tasks map[string]map[*trackedConn]struct{} // by dial address
}

// newConnTracker returns an empty tracker.
func newConnTracker() *connTracker {
	return &connTracker{tasks: make(map[string]map[*trackedConn]struct{})}
}

// trackedConn is a connection to a task, known to its tracker until closed.
type trackedConn struct {
	net.Conn
	task    string
	tracker *connTracker
	users   int  // guarded by tracker.mu: requests using it
	retired bool // guarded by tracker.mu: close it when it goes idle

	// timedOut is set once the peer left data unacknowledged for longer
	// than TCP_USER_TIMEOUT.
	timedOut atomic.Bool
}

// track starts tracking conn, a new connection to task.
func (t *connTracker) track(task string, conn net.Conn) *trackedConn {
	c := &trackedConn{Conn: conn, task: task, tracker: t}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tasks[task] == nil {
		t.tasks[task] = make(map[*trackedConn]struct{})
	}
	t.tasks[task][c] = struct{}{}
	return c
}

// acquire notes that a request got c.
func (t *connTracker) acquire(c *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c.users++
}

// release notes that a request gave c back to the idle pool, and closes it
// if its task was retired meanwhile.
func (t *connTracker) release(c *trackedConn) {
	t.mu.Lock()
	c.users--
	closeNow := c.retired && c.users == 0
	t.mu.Unlock()
	if closeNow {
		_ = c.Close()
	}
}

// retireTask closes the idle connections to task now and its busy ones as
// soon as their requests are done.
func (t *connTracker) retireTask(task string) {
	var idle []*trackedConn
	t.mu.Lock()
	for c := range t.tasks[task] {
		if c.users == 0 {
			idle = append(idle, c)
		} else {
			c.retired = true
		}
	}
	t.mu.Unlock()
	for _, c := range idle {
		_ = c.Close()
	}
}

// count returns how many connections to task are open.
func (t *connTracker) count(task string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.tasks[task])
}

// forget stops tracking c.
func (t *connTracker) forget(c *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.tasks[c.task], c)
	if len(t.tasks[c.task]) == 0 {
		delete(t.tasks, c.task)
	}
}

// Read reads from the connection, noting a peer that stopped acknowledging.
func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.noteError(err)
	return n, err
}

// Write writes to the connection, noting a peer that stopped acknowledging.
func (c *trackedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.noteError(err)
	return n, err
}

// Close closes the connection and stops tracking it.
func (c *trackedConn) Close() error {
	c.tracker.forget(c)
	return c.Conn.Close()
}

// noteError retires the connection's task when err says its peer stopped
// acknowledging: its other pooled connections lead to the same dead host.
func (c *trackedConn) noteError(err error) {
	if err != nil && errors.Is(err, syscall.ETIMEDOUT) && !c.timedOut.Swap(true) {
		c.tracker.retireTask(c.task)
	}
}
