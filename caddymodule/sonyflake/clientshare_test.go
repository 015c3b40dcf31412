package sonyflake

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestClientSharesBoundEachClient(t *testing.T) {
	s := newClientShares(2000, 2)
	a, b, c := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32"), netip.MustParsePrefix("2001:db8::/64")
	for _, n := range []int{1000, 999, 1} {
		if refusal := s.acquire(a, n); refusal != nil {
			t.Fatalf("a asks %d within its share: refused %+v", n, refusal)
		}
	}
	refusal := s.acquire(a, 1)
	if refusal == nil || refusal.status != http.StatusTooManyRequests {
		t.Fatalf("a asks past its share of 2000: %+v, want 429", refusal)
	}
	for _, want := range []string{"192.0.2.1/32", "has 2000 IDs in flight", "share of 2000"} {
		if !strings.Contains(refusal.reason, want) {
			t.Errorf("reason %q does not say %q", refusal.reason, want)
		}
	}
	if refusal := s.acquire(b, 1000); refusal != nil {
		t.Fatalf("b, with a at its share: refused %+v", refusal)
	}
	// Two clients tracked: a third is refused until one is forgotten.
	refusal = s.acquire(c, 1)
	if refusal == nil || refusal.status != http.StatusServiceUnavailable || !strings.Contains(refusal.reason, "2 clients have IDs in flight") {
		t.Fatalf("a third client past the 2 tracked: %+v, want 503 saying so", refusal)
	}
	s.release(b, 1000)
	if refusal := s.acquire(c, 1); refusal != nil {
		t.Fatalf("c after b was forgotten: refused %+v", refusal)
	}
	s.release(c, 1)
	s.release(a, 2000)
	if len(s.inFlight) != 0 {
		t.Errorf("%d clients still tracked after all released: %v", len(s.inFlight), s.inFlight)
	}
}

func TestClientOf(t *testing.T) {
	for _, tc := range []struct {
		name, remoteAddr, clientIP, want string
	}{
		{"IPv4 peer", "192.0.2.7:5555", "", "192.0.2.7/32"},
		{"Caddy's client IP first", "10.0.0.1:5555", "198.51.100.9", "198.51.100.9/32"},
		{"IPv6 peer is its /64", "[2001:db8:1:2:3:4:5:6]:443", "", "2001:db8:1:2::/64"},
		{"IPv6 zone dropped", "[fe80::1%eth0]:443", "", "fe80::/64"},
		{"IPv4-mapped IPv6 is IPv4", "[::ffff:192.0.2.7]:1", "", "192.0.2.7/32"},
		{"no port", "192.0.2.7", "", "192.0.2.7/32"},
		{"unreadable", "@", "", "invalid Prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/id", nil)
			r.RemoteAddr = tc.remoteAddr
			if tc.clientIP != "" {
				r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{caddyhttp.ClientIPVarKey: tc.clientIP}))
			}
			if got := clientOf(r).String(); got != tc.want {
				t.Errorf("client %s, want %s", got, tc.want)
			}
		})
	}
}

// One client asking count=1000 on many connections at once, as fast as it
// can, must not lock a second client out: without a share per client its
// batches would queue the generator more than endpointMaxWait ahead, and
// every other request would get a 503.
func TestEndpointOneClientCannotStarveAnother(t *testing.T) {
	h := testHandler(testApp(defaultLayout, 11, monotonicNow, time.Sleep))
	request := func(client, target string) int {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.RemoteAddr = client
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, nil); err != nil {
			t.Error(err)
		}
		return w.Code
	}

	var stop atomic.Bool
	var hammered sync.WaitGroup
	var served, refused atomic.Int64
	for range 64 {
		hammered.Go(func() {
			for !stop.Load() {
				switch request("192.0.2.1:40000", "/id?count=1000") {
				case http.StatusOK:
					served.Add(1)
				case http.StatusTooManyRequests:
					refused.Add(1)
				}
			}
		})
	}
	// Let the hammering client fill what it can before the other one asks.
	for deadline := time.Now().Add(30 * time.Second); served.Load() < 5 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	var statuses []int
	for range 20 {
		statuses = append(statuses, request("192.0.2.2:40000", "/id?count=1000"))
	}
	stop.Store(true)
	hammered.Wait()
	for i, status := range statuses {
		if status != http.StatusOK {
			t.Errorf("second client's request %d: status %d, want 200 (all: %v)", i, status, statuses)
			break
		}
	}
	if served.Load() == 0 || refused.Load() == 0 {
		t.Errorf("hammering client: %d batches served, %d refused; want both: served up to its share", served.Load(), refused.Load())
	}
}
