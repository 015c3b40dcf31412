package swarmsim

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// DefaultName is the service name Start gives to a zero Config.Name.
const DefaultName = "app"

// Default addresses that Start gives to zero Config fields.
var (
	DefaultTaskBase = netip.MustParseAddr("127.0.10.1")
	DefaultVIP      = netip.MustParseAddr("127.0.9.1")
	DefaultDNS      = netip.MustParseAddrPort("127.0.0.11:0") // Docker's address, a free port
)

// MaxReplicas bounds Scale: enough to test truncation of large answers,
// few enough to keep task addresses in one small range.
const MaxReplicas = 1000

// Config describes a simulated service and where its parts listen.
type Config struct {
	// Name is the service name: DNS answers <Name> with the VIP and
	// tasks.<Name> with the tasks. Default "app".
	Name string

	// Replicas is the number of tasks started.
	Replicas int

	// Port is the port of every task and of the VIP; 0 picks a free one.
	Port uint16

	// TaskBase is the address of slot 1; slot k listens on TaskBase+k-1.
	// Default 127.0.10.1.
	TaskBase netip.Addr

	// VIP is the service's virtual IP address. Default 127.0.9.1.
	VIP netip.Addr

	// DNS is where the DNS server listens, UDP and TCP; port 0 picks a
	// free one. Default 127.0.0.11:0.
	DNS netip.AddrPort

	// NXDomainDelay is how long an unknown name, or tasks.<Name> with no
	// task, takes to answer NXDOMAIN. Docker takes up to 12 s (it asks
	// external resolvers first). Default 0.
	NXDomainDelay time.Duration
}

// withDefaults returns c with defaults filled in, or an error when c names
// anything outside 127.0.0.0/8.
func (c Config) withDefaults() (Config, error) {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if !c.TaskBase.IsValid() {
		c.TaskBase = DefaultTaskBase
	}
	if !c.VIP.IsValid() {
		c.VIP = DefaultVIP
	}
	if !c.DNS.IsValid() {
		c.DNS = DefaultDNS
	}
	if _, ok := dns.IsDomainName(c.Name); !ok || strings.HasSuffix(c.Name, ".") {
		return c, fmt.Errorf("service name %q is not a DNS name", c.Name)
	}
	if c.NXDomainDelay < 0 {
		return c, fmt.Errorf("negative NXDOMAIN delay %s", c.NXDomainDelay)
	}
	lastTask := slotAddr(c.TaskBase, MaxReplicas)
	for _, a := range []struct {
		what string
		addr netip.Addr
	}{
		{"task base", c.TaskBase},
		{"last task address", lastTask},
		{"VIP", c.VIP},
		{"DNS address", c.DNS.Addr()},
	} {
		if !isLoopback(a.addr) {
			return c, fmt.Errorf("%s %s is not in 127.0.0.0/8", a.what, a.addr)
		}
	}
	if c.TaskBase.Compare(c.VIP) <= 0 && c.VIP.Compare(lastTask) <= 0 {
		return c, fmt.Errorf("VIP %s is among the task addresses %s-%s", c.VIP, c.TaskBase, lastTask)
	}
	return c, nil
}

// isLoopback reports whether addr is an IPv4 address in 127.0.0.0/8.
func isLoopback(addr netip.Addr) bool {
	return addr.Is4() && addr.IsLoopback()
}

// slotAddr returns the address of slot (1-based) counted from base; it
// wraps rather than fails, which the loopback check then catches.
func slotAddr(base netip.Addr, slot int) netip.Addr {
	b := base.As4()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n += uint32(slot - 1)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// RecordPolicy says what happens to the DNS record (and VIP entry) of a
// task that dies or turns unhealthy.
type RecordPolicy int

// The record policies.
const (
	DropRecord RecordPolicy = iota // withdraw it, as Docker does
	KeepRecord                     // keep advertising it: a stale record
)

// Service is a running simulated Swarm service: its tasks, DNS server and
// VIP. All methods are safe for concurrent use.
type Service struct {
	cfg Config // with defaults and the chosen ports
	dns *dnsServer
	vip *vip

	// endpoints is what Swarm advertises: the DNS answer and the VIP's
	// backends. Rebuilt under mu on every change, read without locks.
	endpoints atomic.Pointer[[]*task]

	mu      sync.Mutex
	slots   []*task // slot k at index k-1; nil when vacant
	updates int     // StopFirstUpdate calls, each a new address
	closed  bool
}

var errClosed = errors.New("service is closed")

// Start starts a service as cfg describes, with cfg.Replicas tasks.
func Start(cfg Config) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Service{}
	s.endpoints.Store(&[]*task{})
	if s.vip, err = listenVIP(netip.AddrPortFrom(cfg.VIP, cfg.Port), &s.endpoints); err != nil {
		return nil, err
	}
	cfg.Port = s.vip.addr().Port() // tasks share the VIP's port, as in Swarm
	if s.dns, err = startDNS(cfg.Name, cfg.VIP, cfg.DNS, &s.endpoints, cfg.NXDomainDelay); err != nil {
		s.vip.close()
		return nil, err
	}
	cfg.DNS = s.dns.addr()
	s.cfg = cfg
	if err := s.Scale(cfg.Replicas); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Name returns the service name.
func (s *Service) Name() string { return s.cfg.Name }

// Port returns the port of the tasks and the VIP.
func (s *Service) Port() uint16 { return s.cfg.Port }

// VIP returns the VIP's address and port.
func (s *Service) VIP() netip.AddrPort { return netip.AddrPortFrom(s.cfg.VIP, s.cfg.Port) }

// DNS returns the DNS server's address (UDP and TCP).
func (s *Service) DNS() netip.AddrPort { return s.cfg.DNS }

// TaskAddr returns the address that the task in slot (1-based) listens on.
func (s *Service) TaskAddr(slot int) netip.AddrPort {
	return netip.AddrPortFrom(slotAddr(s.cfg.TaskBase, slot), s.cfg.Port)
}

// Scale sets the number of replicas to n, like docker service scale: slots
// 1..n get a running task (vacant slots and dead tasks are replaced), tasks
// above n are withdrawn from DNS and the VIP and then stopped.
func (s *Service) Scale(n int) error {
	if n < 0 || n > MaxReplicas {
		return fmt.Errorf("replicas must be 0 to %d, not %d", MaxReplicas, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	var removed []*task
	if n < len(s.slots) {
		removed = append(removed, s.slots[n:]...)
		clear(s.slots[n:])
		s.slots = s.slots[:n]
	}
	for len(s.slots) < n {
		s.slots = append(s.slots, nil)
	}
	var startErr error
	for i, t := range s.slots {
		if t != nil && !t.dead {
			continue
		}
		t, err := startTask(s.cfg.Name, i+1, s.TaskAddr(i+1))
		if err != nil {
			startErr = fmt.Errorf("starting task %d: %w", i+1, err)
			break
		}
		s.slots[i] = t
	}
	s.publish()
	for _, t := range removed {
		if t != nil && !t.dead {
			t.kill()
		}
	}
	return startErr
}

// Kill kills the task in slot: its listener and open connections close at
// once. With DropRecord it leaves DNS and the VIP first; with KeepRecord
// they keep advertising it (a stale record). Scale replaces it.
func (s *Service) Kill(slot int, policy RecordPolicy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.liveTask(slot)
	if err != nil {
		return err
	}
	t.dead = true
	t.keepRecord = policy == KeepRecord
	s.publish()
	t.kill()
	return nil
}

// SetHealthy makes the task in slot answer /healthz with 200 (healthy) or
// 500. An unhealthy task leaves DNS and the VIP, as Docker withdraws
// unhealthy tasks, unless policy is KeepRecord: then only a health probe
// of its own tells a client that the task is failing.
func (s *Service) SetHealthy(slot int, healthy bool, policy RecordPolicy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.liveTask(slot)
	if err != nil {
		return err
	}
	t.unhealthy.Store(!healthy)
	t.keepRecord = !healthy && policy == KeepRecord
	s.publish()
	return nil
}

// liveTask returns the task in slot if it is running. The caller holds mu.
func (s *Service) liveTask(slot int) (*task, error) {
	if s.closed {
		return nil, errClosed
	}
	if slot < 1 || slot > len(s.slots) || s.slots[slot-1] == nil {
		return nil, fmt.Errorf("no task in slot %d (service has %d slots)", slot, len(s.slots))
	}
	t := s.slots[slot-1]
	if t.dead {
		return nil, fmt.Errorf("task %s is dead", t.name)
	}
	return t, nil
}

// publish rebuilds the advertised endpoints from the slots. The caller
// holds mu.
func (s *Service) publish() {
	endpoints := make([]*task, 0, len(s.slots))
	for _, t := range s.slots {
		if t != nil && t.advertised() {
			endpoints = append(endpoints, t)
		}
	}
	s.endpoints.Store(&endpoints)
}

// SetDNSFault makes the DNS server fail as f says, from the next query on.
func (s *Service) SetDNSFault(f DNSFault) {
	s.dns.fault.Store(int32(f))
}

// SetNXDomainDelay sets how long NXDOMAIN answers take, from the next query on.
func (s *Service) SetNXDomainDelay(d time.Duration) {
	s.dns.nxDelay.Store(int64(d))
}

// Tasks returns a snapshot of every slot's task, in slot order.
func (s *Service) Tasks() []TaskStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	statuses := make([]TaskStatus, 0, len(s.slots))
	for _, t := range s.slots {
		if t != nil {
			statuses = append(statuses, t.status())
		}
	}
	return statuses
}

// ResetCounts sets every task's request count to zero.
func (s *Service) ResetCounts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.slots {
		if t != nil {
			t.requests.Store(0)
		}
	}
}

// Close stops the DNS server, the VIP and every task, and waits for them.
// Later calls do nothing.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	tasks := s.slots
	s.slots = nil
	s.publish()
	s.mu.Unlock()

	err := errors.Join(s.dns.close(), s.vip.close())
	for _, t := range tasks {
		if t != nil && !t.dead {
			t.kill()
		}
	}
	return err
}
