package swarmsim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// DNSFault is a failure mode of the DNS server, as seen in real clusters.
type DNSFault int32

// The DNS faults. Stale records of dead tasks are not a fault of the server
// but of a task: see [KeepRecord].
const (
	FaultNone     DNSFault = iota // answer normally
	FaultDrop                     // answer nothing: clients time out
	FaultServFail                 // answer SERVFAIL to everything
)

var dnsFaultNames = [...]string{FaultNone: "none", FaultDrop: "drop", FaultServFail: "servfail"}

// String returns the fault's name as the control API spells it.
func (f DNSFault) String() string {
	if f < 0 || int(f) >= len(dnsFaultNames) {
		return "DNSFault(" + fmt.Sprint(int32(f)) + ")"
	}
	return dnsFaultNames[f]
}

// parseDNSFault is the inverse of DNSFault.String.
func parseDNSFault(name string) (DNSFault, error) {
	for f, n := range dnsFaultNames {
		if n == name {
			return DNSFault(f), nil
		}
	}
	return 0, fmt.Errorf("unknown DNS fault %q (want none, drop or servfail)", name)
}

// recordTTL is the TTL Docker puts on every record it answers itself.
const recordTTL = 600

// dnsServer answers like Docker's embedded DNS server at 127.0.0.11 for one
// service: <service> is the VIP, tasks.<service> the advertised tasks.
type dnsServer struct {
	vipName   string // lower-case FQDN
	tasksName string // lower-case FQDN
	vip       net.IP
	endpoints *atomic.Pointer[[]*task]

	fault   atomic.Int32 // a DNSFault
	nxDelay atomic.Int64 // a time.Duration

	udp, tcp *dns.Server
	done     chan struct{} // closed on close, to cut NXDOMAIN delays short
}

// startDNS serves DNS on addr over UDP and TCP until close.
func startDNS(service string, vip netip.Addr, addr netip.AddrPort, endpoints *atomic.Pointer[[]*task], nxDelay time.Duration) (*dnsServer, error) {
	pc, ln, err := listenDNS(addr)
	if err != nil {
		return nil, err
	}
	name := dns.Fqdn(strings.ToLower(service))
	d := &dnsServer{
		vipName:   name,
		tasksName: "tasks." + name,
		vip:       vip.AsSlice(),
		endpoints: endpoints,
		done:      make(chan struct{}),
	}
	d.nxDelay.Store(int64(nxDelay))
	d.udp = &dns.Server{PacketConn: pc, Handler: d}
	d.tcp = &dns.Server{Listener: ln, Handler: d}
	if err := activate(d.udp); err != nil {
		pc.Close()
		ln.Close()
		return nil, err
	}
	if err := activate(d.tcp); err != nil {
		ln.Close()
		d.udp.Shutdown()
		return nil, err
	}
	return d, nil
}

// listenDNS opens UDP and TCP on addr; with port 0, both on one free port.
func listenDNS(addr netip.AddrPort) (*net.UDPConn, *net.TCPListener, error) {
	const attempts = 10 // a free UDP port may be taken for TCP; rare
	for i := 1; ; i++ {
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		if err != nil {
			return nil, nil, err
		}
		port := pc.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr.Addr(), port)))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if addr.Port() != 0 || i == attempts {
			return nil, nil, err
		}
	}
}

// activate starts srv and returns once it serves.
func activate(srv *dns.Server) error {
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	failed := make(chan error, 1)
	go func() { failed <- srv.ActivateAndServe() }()
	select {
	case <-started:
		return nil
	case err := <-failed:
		return err
	}
}

// addr returns the address the server listens on (UDP and TCP alike).
func (d *dnsServer) addr() netip.AddrPort {
	return d.udp.PacketConn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// close stops both servers and waits for their handlers.
func (d *dnsServer) close() error {
	close(d.done)
	return errors.Join(d.udp.Shutdown(), d.tcp.Shutdown())
}

// ServeDNS implements dns.Handler.
func (d *dnsServer) ServeDNS(w dns.ResponseWriter, query *dns.Msg) {
	resp := new(dns.Msg)
	switch DNSFault(d.fault.Load()) {
	case FaultDrop:
		return
	case FaultServFail:
		w.WriteMsg(resp.SetRcode(query, dns.RcodeServerFailure))
		return
	}
	if len(query.Question) != 1 {
		w.WriteMsg(resp.SetRcodeFormatError(query))
		return
	}
	q := query.Question[0]
	resp.SetReply(query)
	resp.RecursionAvailable = true // Docker sets it: it forwards what it does not know

	var ips []net.IP
	switch strings.ToLower(q.Name) {
	case d.vipName:
		ips = []net.IP{d.vip}
	case d.tasksName:
		ips = d.shuffledTaskIPs()
	}
	if len(ips) == 0 {
		// Docker asks external resolvers before giving up: slow.
		if !d.wait(time.Duration(d.nxDelay.Load())) {
			return
		}
		w.WriteMsg(resp.SetRcode(query, dns.RcodeNameError))
		return
	}
	if q.Qtype == dns.TypeA {
		for _, ip := range ips {
			resp.Answer = append(resp.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: recordTTL},
				A:   ip,
			})
		}
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		truncate(resp, udpSize(query))
	}
	w.WriteMsg(resp)
}

// shuffledTaskIPs returns the advertised tasks' addresses in a new random
// order, as Docker shuffles them on each answer.
func (d *dnsServer) shuffledTaskIPs() []net.IP {
	tasks := *d.endpoints.Load()
	ips := make([]net.IP, len(tasks))
	for i, t := range tasks {
		ips[i] = t.ip
	}
	rand.Shuffle(len(ips), func(i, j int) { ips[i], ips[j] = ips[j], ips[i] })
	return ips
}

// wait sleeps for delay and reports whether the server is still open.
func (d *dnsServer) wait(delay time.Duration) bool {
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-d.done:
		return false
	}
}

// udpSize returns the largest UDP answer the client takes: 512 bytes or
// its EDNS0 buffer size when larger.
func udpSize(query *dns.Msg) int {
	if opt := query.IsEdns0(); opt != nil && int(opt.UDPSize()) > dns.MinMsgSize {
		return int(opt.UDPSize())
	}
	return dns.MinMsgSize
}

// truncate drops the answers that do not fit in size bytes and sets TC.
// Docker sends answers uncompressed, so it fits fewer records than
// dns.Msg.Truncate would (which compresses to make room).
func truncate(m *dns.Msg, size int) {
	m.Compress = false
	if m.Len() <= size {
		return
	}
	answers := m.Answer
	m.Answer = nil
	room := size - m.Len()
	fit := 0
	for _, rr := range answers {
		if room -= dns.Len(rr); room < 0 {
			break
		}
		fit++
	}
	m.Answer = answers[:fit]
	m.Truncated = true
}
