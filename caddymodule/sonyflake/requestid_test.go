package sonyflake

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/caddymodule/internal/metricstest"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// requestIDTestMachineID hands each test its own machine ID: the slot
// registry is process-wide. 61000+ is this file's range.
var requestIDTestMachineID atomic.Int64

// newTestRequestID returns h attached, as Provision would, to an app with a
// fresh generator on a fake clock, and the handler's log.
func newTestRequestID(t testing.TB, h RequestID) (*RequestID, *fakeClock, *observer.ObservedLogs) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)}
	machineID := 61000 + requestIDTestMachineID.Add(1)
	app := testApp(defaultLayout, machineID, clock.now, clock.sleep)
	core, logs := observer.New(zapcore.WarnLevel)
	h.attach(app, zap.New(core))
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	return &h, clock, logs
}

// seen is what the next handler saw of a request.
type seen struct {
	header   []string // the request ID header's values
	id       any      // var request_id
	mintedID any      // var sonyflake.minted_id
}

// serveRequestID sends r through h to next (nil: a handler that records
// what it saw and writes 204), the way Caddy's server prepares requests.
func serveRequestID(h *RequestID, r *http.Request, trustedProxy bool, next caddyhttp.Handler) (*httptest.ResponseRecorder, *seen, error) {
	w := httptest.NewRecorder()
	r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)
	caddyhttp.SetVar(r.Context(), caddyhttp.TrustedProxyVarKey, trustedProxy)
	got := new(seen)
	record := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		got.header = r.Header.Values(h.header)
		got.id = caddyhttp.GetVar(r.Context(), requestIDVar)
		got.mintedID = caddyhttp.GetVar(r.Context(), mintedIDVar)
		if next != nil {
			return next.ServeHTTP(w, r)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
	err := h.ServeHTTP(w, r, record)
	return w, got, err
}

func TestRequestIDStampsRequestResponseAndVars(t *testing.T) {
	h, _, _ := newTestRequestID(t, RequestID{})
	minted := metricstest.CounterDelta(t, requestIDMetrics.minted)
	var ids []int64
	for range 2 {
		w, got, err := serveRequestID(h, httptest.NewRequest(http.MethodGet, "/", nil), false, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp := w.Result().Header.Values("X-Request-ID")
		if len(resp) != 1 {
			t.Fatalf("response X-Request-ID = %q, want one value", resp)
		}
		id, err := strconv.ParseInt(resp[0], 10, 64)
		if err != nil {
			t.Fatalf("response X-Request-ID %q is not a decimal ID: %v", resp[0], err)
		}
		if len(got.header) != 1 || got.header[0] != resp[0] {
			t.Errorf("request X-Request-ID = %q, want [%s]", got.header, resp[0])
		}
		if got.id != resp[0] {
			t.Errorf("var request_id = %v, want %s", got.id, resp[0])
		}
		if want := (mintedID{id: id, layout: defaultLayout}); got.mintedID != want {
			t.Errorf("var %s = %v, want %v", mintedIDVar, got.mintedID, want)
		}
		if w.Code != http.StatusNoContent {
			t.Errorf("status %d, want next's 204", w.Code)
		}
		ids = append(ids, id)
	}
	if ids[1] <= ids[0] {
		t.Errorf("second ID %d is not after the first %d", ids[1], ids[0])
	}
	if d := minted(); d != 2 {
		t.Errorf("minted counter grew by %v, want 2", d)
	}
}

func TestRequestIDCustomHeaderReplacesClientValue(t *testing.T) {
	h, _, _ := newTestRequestID(t, RequestID{Header: "x-trace"})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Trace", "chosen-by-client")
	w, got, err := serveRequestID(h, r, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := w.Header().Get("X-Trace")
	if _, err := strconv.ParseInt(id, 10, 64); err != nil {
		t.Fatalf("response X-Trace = %q, want a fresh decimal ID", id)
	}
	if len(got.header) != 1 || got.header[0] != id {
		t.Errorf("request X-Trace = %q, want [%s]: the client's value replaced", got.header, id)
	}
	if w.Header().Get("X-Request-ID") != "" {
		t.Error("X-Request-ID set although the header is X-Trace")
	}
}

// reverse_proxy adds the upstream's headers to the response's, whichever
// way the body is then written; the edge's ID must be the only value.
func TestRequestIDReplacesUpstreamValue(t *testing.T) {
	for name, write := range map[string]func(http.ResponseWriter){
		"WriteHeader": func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) },
		"Write":       func(w http.ResponseWriter) { _, _ = w.Write([]byte("body")) },
		// A reader without WriteTo: io.Copy would call WriteTo and never
		// the writer's ReadFrom, which then goes untested.
		"ReadFrom": func(w http.ResponseWriter) {
			_, _ = w.(io.ReaderFrom).ReadFrom(struct{ io.Reader }{strings.NewReader("body")})
		},
	} {
		t.Run(name, func(t *testing.T) {
			h, _, _ := newTestRequestID(t, RequestID{})
			upstream := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Add("X-Request-ID", "from-upstream")
				write(w)
				return nil
			})
			w, got, err := serveRequestID(h, httptest.NewRequest(http.MethodGet, "/", nil), false, upstream)
			if err != nil {
				t.Fatal(err)
			}
			if resp := w.Result().Header.Values("X-Request-ID"); len(resp) != 1 || resp[0] != got.id {
				t.Errorf("response X-Request-ID = %q, want only the edge's [%v]", resp, got.id)
			}
		})
	}
}

// After a 1xx (e.g. 103 Early Hints passed on by reverse_proxy), the final
// header still carries only the edge's ID. Served over real HTTP: the
// ResponseRecorder keeps the header of the first WriteHeader, 1xx or not.
func TestRequestIDReplacesUpstreamValueAfter1xx(t *testing.T) {
	h, _, _ := newTestRequestID(t, RequestID{})
	upstream := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Add("X-Request-ID", "from-upstream")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Add("X-Request-ID", "upstream-again")
		w.WriteHeader(http.StatusOK)
		return nil
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = caddyhttp.PrepareRequest(r, caddy.NewReplacer(), w, nil)
		if err := h.ServeHTTP(w, r, upstream); err != nil {
			t.Error(err)
		}
	}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ids := resp.Header.Values("X-Request-ID")
	if len(ids) != 1 {
		t.Fatalf("final response %d has X-Request-ID %q, want only the edge's", resp.StatusCode, ids)
	}
	if _, err := strconv.ParseInt(ids[0], 10, 64); err != nil {
		t.Fatalf("final response %d has X-Request-ID %q, want the edge's decimal ID", resp.StatusCode, ids[0])
	}
}

// Caddy writes error responses (e.g. reverse_proxy's 502) itself, on the
// server's writer, after the handler chain returned.
func TestRequestIDHeaderOnErrorResponse(t *testing.T) {
	h, _, _ := newTestRequestID(t, RequestID{})
	upstreamErr := caddyhttp.Error(http.StatusBadGateway, errors.New("dial tcp: connection refused"))
	failing := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return upstreamErr })
	w, got, err := serveRequestID(h, httptest.NewRequest(http.MethodGet, "/", nil), false, failing)
	if !errors.Is(err, upstreamErr) {
		t.Fatalf("error %v, want the upstream's %v passed on", err, upstreamErr)
	}
	if resp := w.Header().Values("X-Request-ID"); len(resp) != 1 || resp[0] != got.id {
		t.Errorf("X-Request-ID on the writer the server answers with = %q, want [%v]", resp, got.id)
	}
}

func TestRequestIDHeaderRemovedDownstreamStaysRemoved(t *testing.T) {
	h, _, _ := newTestRequestID(t, RequestID{})
	removing := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Del("X-Request-ID") // like `header -X-Request-ID`
		w.WriteHeader(http.StatusOK)
		return nil
	})
	w, _, err := serveRequestID(h, httptest.NewRequest(http.MethodGet, "/", nil), false, removing)
	if err != nil {
		t.Fatal(err)
	}
	if resp := w.Result().Header.Values("X-Request-ID"); len(resp) != 0 {
		t.Errorf("X-Request-ID = %q after a handler removed it", resp)
	}
}

func TestRequestIDTrustIncoming(t *testing.T) {
	longest := strings.Repeat("a", 128)
	const everyKind = "azAZ09._:-" // both ends of each letter and digit range, and each sign
	for _, tc := range []struct {
		name          string
		trustIncoming bool
		trustedProxy  bool
		incoming      []string
		wantKept      bool
	}{
		{name: "kept from trusted proxy", trustIncoming: true, trustedProxy: true, incoming: []string{everyKind}, wantKept: true},
		{name: "kept at 128 characters", trustIncoming: true, trustedProxy: true, incoming: []string{longest}, wantKept: true},
		{name: "untrusted source", trustIncoming: true, incoming: []string{everyKind}},
		{name: "trust_incoming off", trustedProxy: true, incoming: []string{everyKind}},
		{name: "129 characters", trustIncoming: true, trustedProxy: true, incoming: []string{longest + "a"}},
		{name: "empty", trustIncoming: true, trustedProxy: true, incoming: []string{""}},
		{name: "space", trustIncoming: true, trustedProxy: true, incoming: []string{"a b"}},
		{name: "slash", trustIncoming: true, trustedProxy: true, incoming: []string{"a/b"}},
		{name: "non-ASCII", trustIncoming: true, trustedProxy: true, incoming: []string{"idé"}},
		{name: "comma-joined", trustIncoming: true, trustedProxy: true, incoming: []string{"a,b"}},
		{name: "two values", trustIncoming: true, trustedProxy: true, incoming: []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _, _ := newTestRequestID(t, RequestID{TrustIncoming: tc.trustIncoming})
			kept, minted := metricstest.CounterDelta(t, requestIDMetrics.kept), metricstest.CounterDelta(t, requestIDMetrics.minted)
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header["X-Request-Id"] = tc.incoming
			w, got, err := serveRequestID(h, r, tc.trustedProxy, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp := w.Header().Get("X-Request-ID")
			if tc.wantKept {
				if resp != tc.incoming[0] || got.id != tc.incoming[0] || len(got.header) != 1 || got.header[0] != tc.incoming[0] {
					t.Errorf("response %q, var %v, request %q: want the incoming %q kept", resp, got.id, got.header, tc.incoming[0])
				}
				if got.mintedID != nil {
					t.Errorf("var %s = %v for a kept ID", mintedIDVar, got.mintedID)
				}
				if kept() != 1 || minted() != 0 {
					t.Errorf("counters kept +%v minted +%v, want +1 +0", kept(), minted())
				}
				return
			}
			if _, err := strconv.ParseInt(resp, 10, 64); err != nil || got.id != resp || len(got.header) != 1 || got.header[0] != resp {
				t.Errorf("response %q, var %v, request %q: want one fresh decimal ID everywhere", resp, got.id, got.header)
			}
			if kept() != 0 || minted() != 1 {
				t.Errorf("counters kept +%v minted +%v, want +0 +1", kept(), minted())
			}
		})
	}
}

// With the clock far behind the last ID, no ID comes within one time unit:
// the request is served anyway, without an ID, and counted; the warning is
// logged once however many requests follow.
func TestRequestIDUnavailableServesWithoutID(t *testing.T) {
	h, clock, logs := newTestRequestID(t, RequestID{})
	if _, _, err := serveRequestID(h, httptest.NewRequest(http.MethodGet, "/", nil), false, nil); err != nil {
		t.Fatal(err)
	}
	clock.set(clock.now().Add(-5 * time.Second)) // beyond stamping's run-ahead
	unavailable := metricstest.CounterDelta(t, requestIDMetrics.unavailable)
	for range 3 {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-Request-ID", "chosen-by-client")
		w, got, err := serveRequestID(h, r, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if w.Code != http.StatusNoContent {
			t.Errorf("status %d, want next's 204: the request must be served", w.Code)
		}
		if resp := w.Header().Values("X-Request-ID"); len(resp) != 0 {
			t.Errorf("response X-Request-ID = %q, want none", resp)
		}
		if got.header != nil || got.id != nil || got.mintedID != nil {
			t.Errorf("request header %q, vars %v %v: want no ID anywhere", got.header, got.id, got.mintedID)
		}
	}
	if d := unavailable(); d != 3 {
		t.Errorf("unavailable counter grew by %v, want 3", d)
	}
	warnings := logs.FilterLevelExact(zapcore.WarnLevel).All()
	if len(warnings) != 1 {
		t.Fatalf("%d warnings for 3 requests within a second, want 1", len(warnings))
	}
	if msg := warnings[0].Message; !strings.Contains(msg, "served without a request ID") || !strings.Contains(msg, "within one time unit") {
		t.Errorf("warning %q does not say the request went without an ID and why", msg)
	}
}

// A request that meets request_id twice (a route and handle_errors) keeps
// its first ID and spends one.
func TestRequestIDStampsOnce(t *testing.T) {
	h, _, _ := newTestRequestID(t, RequestID{})
	minted := metricstest.CounterDelta(t, requestIDMetrics.minted)
	var second []string
	again := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return h.ServeHTTP(w, r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			second = r.Header.Values("X-Request-ID")
			w.WriteHeader(http.StatusOK)
			return nil
		}))
	})
	w, first, err := serveRequestID(h, httptest.NewRequest(http.MethodGet, "/", nil), false, again)
	if err != nil {
		t.Fatal(err)
	}
	if len(second) != 1 || second[0] != first.id || w.Header().Get("X-Request-ID") != first.id {
		t.Errorf("IDs: first %v, second %q, response %q: want one", first.id, second, w.Header().Get("X-Request-ID"))
	}
	if d := minted(); d != 1 {
		t.Errorf("minted %v IDs, want 1", d)
	}
}

func TestRequestIDValidateHeader(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   string // "": accepted
	}{
		{"", ""},
		{"X-Correlation-ID", ""},
		{"traceparent", ""},
		{"X Request ID", `request_id: header "X Request ID" is not a valid HTTP header name`},
		{"X-Request-ID\r\nX-Evil", `is not a valid HTTP header name`},
		{":authority", `request_id: header ":authority" is an HTTP/2 pseudo-header`},
		{":path", `pseudo-header`},
	} {
		checkValidate(t, tc.header, tc.want)
	}
	for _, name := range []string{
		"Host", "host", "Content-Length", "Transfer-Encoding", "Connection", "Upgrade", "TE", "te",
		"Trailer", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "proxy-authorization",
	} {
		checkValidate(t, name, `request_id: header "`+name+`" frames or routes the message, or is hop-by-hop: choose another name, e.g. X-Request-ID`)
	}
}

// checkValidate checks that Validate accepts header (want "") or refuses it
// with an error containing want.
func checkValidate(t *testing.T, header, want string) {
	t.Helper()
	h := RequestID{Header: header}
	h.attach(&App{layout: defaultLayout}, zap.NewNop())
	err := h.Validate()
	switch {
	case want == "" && err != nil:
		t.Errorf("header %q: %v, want it accepted", header, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("header %q: error %v, want one saying %q", header, err, want)
	}
}

func BenchmarkRequestID(b *testing.B) {
	h, _, _ := newTestRequestID(b, RequestID{})
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusOK)
		return nil
	})
	w := httptest.NewRecorder()
	// Requests are prepared in batches outside the timer: stopping it per
	// request would cost more than the handler.
	const batch = 1024
	requests := make([]*http.Request, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%batch == 0 {
			b.StopTimer()
			for j := range requests {
				requests[j] = caddyhttp.PrepareRequest(httptest.NewRequest(http.MethodGet, "/", nil), caddy.NewReplacer(), w, nil)
			}
			b.StartTimer()
		}
		if err := h.ServeHTTP(w, requests[i%batch], next); err != nil {
			b.Fatal(err)
		}
	}
}
