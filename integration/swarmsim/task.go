package swarmsim

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
)

// task is one replica: an HTTP server on its own loopback address.
type task struct {
	slot int
	name string
	addr netip.AddrPort
	ip   net.IP // addr's IP as DNS records carry it

	requests  atomic.Uint64
	unhealthy atomic.Bool

	// dead and keepRecord are guarded by Service.mu.
	dead       bool
	keepRecord bool // advertise the task even though it is dead or unhealthy

	srv    *http.Server
	served chan struct{} // closed when srv.Serve has returned

	// Response parts built once, so that serving a request allocates
	// nothing beyond what net/http does anyway (handlers are benchmarked).
	nameHeader []string
	bodyPrefix []byte
}

// Header values shared by every response; net/http only reads them.
var (
	textPlain = []string{"text/plain; charset=utf-8"}
	newline   = []byte("\n")
	healthOK  = []byte("ok\n")
	healthBad = []byte("unhealthy\n")
)

// startTask starts the task in slot of service, listening on addr.
func startTask(service string, slot int, addr netip.AddrPort) (*task, error) {
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	name := service + "." + strconv.Itoa(slot) // Swarm's <service>.<slot>
	t := &task{
		slot:       slot,
		name:       name,
		addr:       addr,
		ip:         addr.Addr().AsSlice(),
		served:     make(chan struct{}),
		nameHeader: []string{name},
		bodyPrefix: []byte(name + " " + addr.String() + " request-id="),
	}
	t.srv = &http.Server{
		Handler:  t,
		ErrorLog: log.New(io.Discard, "", 0), // killed connections are expected, not news
	}
	go func() {
		defer close(t.served)
		t.srv.Serve(ln)
	}()
	return t, nil
}

// ServeHTTP answers /healthz with the task's health and every other path
// with one line naming the task and the X-Request-ID it received, which it
// also echoes in X-Seen-Request-ID. Only the latter requests are counted.
func (t *task) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = textPlain
	h["X-Task"] = t.nameHeader
	if r.URL.Path == "/healthz" {
		if t.unhealthy.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			w.Write(healthBad)
			return
		}
		w.Write(healthOK)
		return
	}
	t.requests.Add(1)
	ids := r.Header["X-Request-Id"]
	if len(ids) > 0 {
		h["X-Seen-Request-Id"] = ids
	}
	w.Write(t.bodyPrefix)
	if len(ids) > 0 {
		io.WriteString(w, ids[0])
	}
	w.Write(newline)
}

// kill closes the task's listener and every open connection, like a
// container that dies, and returns once the server has stopped.
func (t *task) kill() {
	t.srv.Close()
	<-t.served
}

// advertised reports whether Swarm would list the task in DNS and the VIP.
// The caller holds Service.mu.
func (t *task) advertised() bool {
	return t.keepRecord || !t.dead && !t.unhealthy.Load()
}

// TaskStatus is a snapshot of one task.
type TaskStatus struct {
	Slot     int            `json:"slot"`
	Name     string         `json:"name"`
	Addr     netip.AddrPort `json:"addr"`
	State    string         `json:"state"`  // "running", "unhealthy" or "dead"
	InDNS    bool           `json:"in_dns"` // listed in DNS and the VIP
	Requests uint64         `json:"requests"`
}

// status returns the task's snapshot. The caller holds Service.mu.
func (t *task) status() TaskStatus {
	state := "running"
	switch {
	case t.dead:
		state = "dead"
	case t.unhealthy.Load():
		state = "unhealthy"
	}
	return TaskStatus{
		Slot:     t.slot,
		Name:     t.name,
		Addr:     t.addr,
		State:    state,
		InDNS:    t.advertised(),
		Requests: t.requests.Load(),
	}
}
