package swarm

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func init() {
	caddy.RegisterModule(Transport{})
}

// Defaults of Transport that differ from the http transport's, set in
// Provision.
const (
	// A task on an overlay network answers a SYN within milliseconds; a
	// task on a lost node never does, and the dial timeout is the stall.
	defaultTransportDialTimeout = time.Second

	// Lets the kernel notice a dead peer of a connection that waits for a
	// response (nothing unacknowledged, so TCP_USER_TIMEOUT alone does not
	// fire) within about this plus tcp_user_timeout.
	defaultTransportProbeInterval = time.Second

	// The stall of a request on a connection to a task that just died,
	// before Caddy retries it elsewhere: with the retry, under 3 s.
	defaultTCPUserTimeout = 2 * time.Second
)

// Transport is Caddy's http transport, with every option of it, made for
// tasks that can vanish without a word (a Swarm node that dies or is cut
// off sends no RST, and Linux would retransmit for ~15 minutes):
//   - TCP_USER_TIMEOUT on upstream connections, so a connection whose peer
//     stops acknowledging fails within seconds (and Caddy retries the GET
//     on another task) instead of hanging;
//   - TCP keepalive probes after keep_alive.probe_interval of silence (1s
//     here, with that interval between probes), so the same holds for a
//     connection waiting for a response; a live peer's kernel answers the
//     probes, so a long response (streaming, long polling) is never cut;
//   - pooled HTTP/1 connections to a task that a `dynamic swarm` source
//     stopped serving (gone from DNS, failing its probe) are closed at
//     once, busy ones when their response is done;
//   - a dial_timeout of 1s by default.
//
// Connections made through a custom TLS dial (proxy_protocol, or a
// placeholder in tls_server_name) get the socket options but are not
// closed early.
//
// EXPERIMENTAL: Subject to change.
type Transport struct {
	reverseproxy.HTTPTransport

	// How long data sent to a task may stay unacknowledged before the
	// connection is dropped (TCP_USER_TIMEOUT, Linux). It also bounds how
	// long unanswered keepalive probes keep a connection. 0 turns it off.
	// Default: 2s
	TCPUserTimeout *caddy.Duration `json:"tcp_user_timeout,omitempty"`

	conns        *connTracker
	stopWatching func()
}

// CaddyModule returns the Caddy module information.
func (Transport) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.transport.swarm",
		New: func() caddy.Module { return new(Transport) },
	}
}

// Provision sets the defaults, builds the http transport and hooks its
// dials, then starts watching for withdrawn tasks.
func (t *Transport) Provision(ctx caddy.Context) error {
	if t.TCPUserTimeout == nil {
		d := caddy.Duration(defaultTCPUserTimeout)
		t.TCPUserTimeout = &d
	}
	if *t.TCPUserTimeout < 0 {
		return fmt.Errorf("swarm transport: tcp_user_timeout: must not be negative: %s", time.Duration(*t.TCPUserTimeout))
	}
	if t.DialTimeout == 0 {
		t.DialTimeout = caddy.Duration(defaultTransportDialTimeout)
	}
	if t.KeepAlive == nil {
		t.KeepAlive = new(reverseproxy.KeepAlive)
	}
	if t.KeepAlive.ProbeInterval == 0 {
		t.KeepAlive.ProbeInterval = caddy.Duration(defaultTransportProbeInterval)
	}
	if err := t.HTTPTransport.Provision(ctx); err != nil {
		return err
	}

	t.conns = newConnTracker()
	rt := t.HTTPTransport.Transport
	rt.DialContext = t.trackedDial(rt.DialContext)
	if rt.DialTLSContext != nil {
		rt.DialTLSContext = t.tunedDial(rt.DialTLSContext)
	}
	t.stopWatching = watchWithdrawals(t.conns.retireTask)
	return nil
}

// dialFunc is the signature of http.Transport's dial hooks.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// tunedDial wraps dial to set the socket options on each new connection.
func (t *Transport) tunedDial(dial dialFunc) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		raw := conn
		if tc, ok := conn.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		if err := tuneTCP(raw, time.Duration(*t.TCPUserTimeout), time.Duration(t.KeepAlive.ProbeInterval)); err != nil {
			_ = conn.Close()
			return nil, reverseproxy.NewDialError(fmt.Errorf("setting TCP options: %w", err))
		}
		return conn, nil
	}
}

// trackedDial wraps dial to tune and track each new connection. A request
// whose connection timed out is not dialed again to the same task (that
// is what net/http does on its own for a reused connection): it fails as
// a dial error, so that Caddy counts the failure and tries another task.
func (t *Transport) trackedDial(dial dialFunc) dialFunc {
	tuned := t.tunedDial(dial)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if rt, ok := ctx.Value(roundTripKey{}).(*roundTrip); ok {
			if c := rt.conn.Load(); c != nil && c.timedOut.Load() {
				return nil, reverseproxy.NewDialError(errPeerStoppedAcknowledging)
			}
		}
		conn, err := tuned(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		task := addr
		if di, ok := reverseproxy.GetDialInfo(ctx); ok {
			task = di.Address
		}
		return t.conns.track(task, conn), nil
	}
}

// errPeerStoppedAcknowledging is why a request is not dialed again to a
// task whose connection just timed out.
var errPeerStoppedAcknowledging = errors.New("the task stopped acknowledging (tcp_user_timeout); not dialing it again for this request")

// roundTripKey is the context key of a request's roundTrip.
type roundTripKey struct{}

// roundTrip is what the transport notes about one request.
type roundTrip struct {
	conn atomic.Pointer[trackedConn] // the last connection it got
}

// RoundTrip sends the request through the http transport, noting which
// connection it uses and when that goes back to the idle pool.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	rt := new(roundTrip)
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if c := asTracked(info.Conn); c != nil {
				rt.conn.Store(c)
				t.conns.acquire(c)
			}
		},
		PutIdleConn: func(error) {
			if c := rt.conn.Load(); c != nil {
				t.conns.release(c)
			}
		},
	}
	ctx := httptrace.WithClientTrace(context.WithValue(req.Context(), roundTripKey{}, rt), trace)
	return t.HTTPTransport.RoundTrip(req.WithContext(ctx))
}

// asTracked returns the tracked connection under conn, or nil.
func asTracked(conn net.Conn) *trackedConn {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	c, _ := conn.(*trackedConn)
	return c
}

// Cleanup stops watching for withdrawn tasks and closes the idle
// connections.
func (t *Transport) Cleanup() error {
	if t.stopWatching != nil {
		t.stopWatching()
	}
	return t.HTTPTransport.Cleanup()
}

// Interface guards
var (
	_ caddy.Provisioner                                = (*Transport)(nil)
	_ caddy.CleanerUpper                               = (*Transport)(nil)
	_ http.RoundTripper                                = (*Transport)(nil)
	_ reverseproxy.TLSTransport                        = (*Transport)(nil)
	_ reverseproxy.H2CTransport                        = (*Transport)(nil)
	_ reverseproxy.HealthCheckSchemeOverriderTransport = (*Transport)(nil)
	_ reverseproxy.ProxyProtocolTransport              = (*Transport)(nil)
)
