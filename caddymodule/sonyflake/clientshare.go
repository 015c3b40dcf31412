package sonyflake

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

const (
	// clientShareIDs is how many IDs one client may have in flight at the
	// endpoint: two full batches, one being minted while the next is asked
	// for. The generator hands out IDs in order, so each ID a client has in
	// flight delays everyone after it; the share bounds how far one client
	// can push others back (2,000 IDs: 80 ms of the default format).
	clientShareIDs = 2 * maxCount

	// maxClients bounds the clients tracked at once, and so the memory: a
	// client is tracked only while it has IDs in flight.
	maxClients = 4096
)

// clientShares is the endpoint's fair share: it counts the IDs each client
// has in flight (asked for and not yet minted) and refuses a request that
// would take a client past its share, so one client's batches cannot queue
// the generator so far ahead that other clients wait past endpointMaxWait.
type clientShares struct {
	mu       sync.Mutex
	inFlight map[netip.Prefix]int
	share    int // IDs per client
	clients  int // most clients tracked at once
}

func newClientShares(share, clients int) *clientShares {
	return &clientShares{inFlight: make(map[netip.Prefix]int), share: share, clients: clients}
}

// shareRefusal is why a request was refused its IDs.
type shareRefusal struct {
	status int
	reason string
}

// acquire counts n IDs in flight for client, or says why not.
func (s *clientShares) acquire(client netip.Prefix, n int) *shareRefusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	held, tracked := s.inFlight[client]
	switch {
	case held+n > s.share:
		return &shareRefusal{http.StatusTooManyRequests, fmt.Sprintf(
			"client %s has %d IDs in flight; %d more would exceed its share of %d: retry when its other requests are answered",
			client, held, n, s.share)}
	case !tracked && len(s.inFlight) >= s.clients:
		return &shareRefusal{http.StatusServiceUnavailable, fmt.Sprintf(
			"endpoint busy: %d clients have IDs in flight, the most it serves at once", len(s.inFlight))}
	}
	s.inFlight[client] = held + n
	return nil
}

// release counts n of client's IDs as no longer in flight; a client with
// none left is forgotten.
func (s *clientShares) release(client netip.Prefix, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if held := s.inFlight[client] - n; held > 0 {
		s.inFlight[client] = held
	} else {
		delete(s.inFlight, client)
	}
}

// clientOf returns the client a request counts against: the client IP
// Caddy determined (behind trusted_proxies, the original client), else the
// peer address. An IPv6 client is its /64, which one host usually holds
// whole. Requests whose address cannot be read share the zero prefix.
func clientOf(r *http.Request) netip.Prefix {
	address, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if address == "" {
		address = r.RemoteAddr
		if host, _, err := net.SplitHostPort(address); err == nil {
			address = host
		}
	}
	ip, err := netip.ParseAddr(address)
	if err != nil {
		return netip.Prefix{}
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	prefix, _ := ip.Prefix(bits)
	return prefix
}
