package sonyflake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/headers"
)

// handlerT0 is 5 ms into a 10 ms unit.
var handlerT0 = time.Date(2026, 3, 1, 12, 0, 0, 5e6, time.UTC)

// newTestHandler returns an endpoint over its own generator (not the
// process-wide registry) for machine ID 10, on a fake clock at handlerT0.
func newTestHandler() (*Handler, *fakeClock) {
	clock := &fakeClock{t: handlerT0}
	return testHandler(testApp(defaultLayout, 10, clock.now, clock.sleep)), clock
}

// testHandler is an ID endpoint minting from app, with the shares
// Provision gives it.
func testHandler(app *App) *Handler {
	return &Handler{app: app, shares: newClientShares(clientShareIDs, maxClients)}
}

func serve(t *testing.T, h *Handler, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	if err := h.ServeHTTP(w, r, nil); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	return w
}

// wantJSON is titpetric/sonyflake's body for the ID with this sequence
// number minted at handlerT0 by machine ID 10, composed by the library.
func wantJSON(t *testing.T, sequence int) string {
	t.Helper()
	lib := librarySonyflake(t, defaultLayout, 10)
	id, err := lib.Compose(handlerT0, sequence, 10)
	if err != nil {
		t.Fatal(err)
	}
	parts := lib.Decompose(id)
	return fmt.Sprintf(`{"id":%d,"machine-id":%d,"msb":0,"sequence":%d,"time":%d}`, id, parts["machine"], parts["sequence"], parts["time"])
}

func TestEndpointAnswersTitpetricJSON(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		h, _ := newTestHandler()
		w := serve(t, h, httptest.NewRequest(method, "/id", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("%s: status %d", method, w.Code)
		}
		if got := w.Header().Get("Content-Type"); got != "application/json" {
			t.Errorf("%s: Content-Type %q", method, got)
		}
		if got := w.Header().Get("Cache-Control"); got != "no-store" {
			t.Errorf("%s: Cache-Control %q", method, got)
		}
		if got, want := w.Body.String(), wantJSON(t, 0); got != want {
			t.Errorf("%s: body\n%s\nwant\n%s", method, got, want)
		}
		if got := w.Header().Get("Content-Length"); got != strconv.Itoa(w.Body.Len()) {
			t.Errorf("%s: Content-Length %q for a %d-byte body", method, got, w.Body.Len())
		}
	}
}

func TestEndpointText(t *testing.T) {
	lib := librarySonyflake(t, defaultLayout, 10)
	first, _ := lib.Compose(handlerT0, 0, 10)
	for _, tc := range []struct {
		name, target, accept string
		text                 bool
	}{
		{"format=text", "/id?format=text", "", true},
		{"Accept text/plain", "/id", "text/plain", true},
		{"format=json beats Accept", "/id?format=json", "text/plain", false},
		{"Accept with JSON too", "/id", "text/plain, application/json", false},
		{"Accept anything", "/id", "*/*", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newTestHandler()
			r := httptest.NewRequest(http.MethodGet, tc.target, nil)
			if tc.accept != "" {
				r.Header.Set("Accept", tc.accept)
			}
			w := serve(t, h, r)
			if !tc.text {
				if got := w.Header().Get("Content-Type"); got != "application/json" {
					t.Fatalf("Content-Type %q, want JSON", got)
				}
				return
			}
			if got := w.Header().Get("Content-Type"); got != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", got)
			}
			if got, want := w.Body.String(), strconv.FormatInt(first, 10)+"\n"; got != want {
				t.Errorf("body %q, want %q", got, want)
			}
		})
	}
}

func TestEndpointCount(t *testing.T) {
	h, _ := newTestHandler()
	w := serve(t, h, httptest.NewRequest(http.MethodGet, "/id?count=3", nil))
	if want := "[" + wantJSON(t, 0) + "," + wantJSON(t, 1) + "," + wantJSON(t, 2) + "]"; w.Body.String() != want {
		t.Errorf("count=3: body\n%s\nwant\n%s", w.Body, want)
	}

	h, _ = newTestHandler()
	w = serve(t, h, httptest.NewRequest(http.MethodGet, "/id?count=1", nil))
	if want := "[" + wantJSON(t, 0) + "]"; w.Body.String() != want {
		t.Errorf("count=1: body %s, want an array of one: %s", w.Body, want)
	}

	h, _ = newTestHandler()
	w = serve(t, h, httptest.NewRequest(http.MethodGet, "/id?count=1000", nil))
	var batch []idParts
	if err := json.Unmarshal(w.Body.Bytes(), &batch); err != nil {
		t.Fatal(err)
	}
	lib := librarySonyflake(t, defaultLayout, 10)
	for i, p := range batch {
		ref := lib.Decompose(p.ID)
		if p.Time != ref["time"] || p.Sequence != ref["sequence"] || p.MachineID != ref["machine"] || p.MSB != 0 {
			t.Fatalf("object %d = %+v, library decomposes %v", i, p, ref)
		}
		if i > 0 && p.ID <= batch[i-1].ID {
			t.Fatalf("IDs not increasing at %d", i)
		}
	}
	if len(batch) != 1000 {
		t.Fatalf("count=1000 gave %d IDs", len(batch))
	}

	h, _ = newTestHandler()
	w = serve(t, h, httptest.NewRequest(http.MethodGet, "/id?count=3&format=text", nil))
	lines := strings.Split(w.Body.String(), "\n")
	if len(lines) != 4 || lines[3] != "" {
		t.Fatalf("text count=3: body %q, want 3 lines", w.Body)
	}
	for i, line := range lines[:3] {
		want, _ := lib.Compose(handlerT0, i, 10)
		if line != strconv.FormatInt(want, 10) {
			t.Errorf("line %d = %q, want %d", i, line, want)
		}
	}
}

func TestEndpointRefusesBadQueries(t *testing.T) {
	for _, tc := range []struct{ query, reason string }{
		{"count=0", `count "0": want a whole number from 1 to 1000`},
		{"count=1001", `count "1001": want a whole number from 1 to 1000`},
		{"count=-1", `count "-1": want a whole number from 1 to 1000`},
		{"count=abc", `count "abc": want a whole number from 1 to 1000`},
		{"count=", `count "": want a whole number from 1 to 1000`},
		{"count=2.5", `count "2.5": want a whole number from 1 to 1000`},
		{"count=1&count=2", "count: give it once"},
		{"format=xml", `format "xml": want json or text`},
		{"format=", `format "": want json or text`},
		{"format=text&format=json", "format: give it once"},
		{"count=%zz", `malformed query string: invalid URL escape "%zz"`},
	} {
		h, _ := newTestHandler()
		w := serve(t, h, httptest.NewRequest(http.MethodGet, "/id?"+tc.query, nil))
		if w.Code != http.StatusBadRequest || w.Body.String() != tc.reason+"\n" {
			t.Errorf("?%s: %d %q, want 400 %q", tc.query, w.Code, w.Body, tc.reason+"\n")
		}
	}
}

func TestEndpointOtherMethods(t *testing.T) {
	for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch} {
		h, _ := newTestHandler()
		w := serve(t, h, httptest.NewRequest(method, "/id", nil))
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD, POST" {
			t.Errorf("%s: %d, Allow %q; want 405 with Allow: GET, HEAD, POST", method, w.Code, w.Header().Get("Allow"))
		}
		if want := "method " + method + " not allowed: use GET, HEAD or POST\n"; w.Body.String() != want {
			t.Errorf("%s: body %q, want %q", method, w.Body, want)
		}
	}
}

func TestEndpointHead(t *testing.T) {
	h, _ := newTestHandler()
	w := serve(t, h, httptest.NewRequest(http.MethodHead, "/id", nil))
	if w.Code != http.StatusOK || w.Body.Len() != 0 {
		t.Fatalf("HEAD: %d with a %d-byte body, want 200 and no body", w.Code, w.Body.Len())
	}
	if got, want := w.Header().Get("Content-Length"), strconv.Itoa(len(wantJSON(t, 0))); got != want {
		t.Errorf("HEAD: Content-Length %q, want the GET body's %s", got, want)
	}
	if w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("HEAD: Content-Type %q", w.Header().Get("Content-Type"))
	}
}

// withMintedID is r as request_id leaves it after minting id in layout l.
func withMintedID(r *http.Request, id int64, l layout) *http.Request {
	vars := map[string]any{mintedIDVar: mintedID{id: id, layout: l}}
	return r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
}

func TestEndpointServesTheRequestsMintedID(t *testing.T) {
	h, _ := newTestHandler()
	stamped, err := h.app.stamp(0) // what request_id did for this request
	if err != nil {
		t.Fatal(err)
	}
	w := serve(t, h, withMintedID(httptest.NewRequest(http.MethodGet, "/id", nil), stamped.id, stamped.layout))
	if got, want := w.Body.String(), wantJSON(t, 0); got != want {
		t.Fatalf("body %s, want the stamped ID %s", got, want)
	}

	w = serve(t, h, withMintedID(httptest.NewRequest(http.MethodGet, "/id?count=3", nil), stamped.id, stamped.layout))
	// The stamped ID first, then two fresh ones: sequence 1 and 2.
	if want := "[" + wantJSON(t, 0) + "," + wantJSON(t, 1) + "," + wantJSON(t, 2) + "]"; w.Body.String() != want {
		t.Fatalf("count=3: body\n%s\nwant\n%s", w.Body, want)
	}
	next, _ := h.app.stamp(0)
	if seq := defaultLayout.decompose(next.id).Sequence; seq != 3 {
		t.Fatalf("after a 3-ID batch that reused the stamped ID, the next sequence is %d, want 3: one request spent more than its IDs", seq)
	}
}

func TestEndpointClockBehindAnswers503(t *testing.T) {
	for _, tc := range []struct {
		behind     time.Duration
		retryAfter string
	}{
		{5 * time.Minute, "300"},
		{1500 * time.Millisecond, "2"},
	} {
		h, clock := newTestHandler()
		serve(t, h, httptest.NewRequest(http.MethodGet, "/id", nil))
		clock.set(handlerT0.Add(-tc.behind))
		w := serve(t, h, httptest.NewRequest(http.MethodGet, "/id", nil))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != tc.retryAfter {
			t.Errorf("clock %s behind: %d, Retry-After %q; want 503, %s", tc.behind, w.Code, w.Header().Get("Retry-After"), tc.retryAfter)
		}
		if want := "no ID available within 1s: demand is above the format's ceiling, or the clock is behind the last ID issued\n"; w.Body.String() != want {
			t.Errorf("503 body %q, want %q", w.Body, want)
		}
		if len(clock.slept) != 0 {
			t.Errorf("slept %v: the request should be refused, not held", clock.slept)
		}
	}
}

func BenchmarkEndpoint(b *testing.B) {
	h := testHandler(testApp(benchLayout, 1, monotonicNow, time.Sleep))
	r := httptest.NewRequest(http.MethodGet, "/id", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// editedHeaders is what a deferred `header` directive does to every answer
// of the endpoint: it edits each header's values in place (a replace op),
// when the response header is written.
var editedHeaders = []string{"Cache-Control", "Content-Type", "Content-Length", "Allow", "Retry-After"}

func deferredHeaderEdit(t *testing.T) *headers.Handler {
	t.Helper()
	replace := make(map[string][]headers.Replacement)
	for _, name := range editedHeaders {
		replace[name] = []headers.Replacement{{SearchRegexp: "$", Replace: ";edited"}}
	}
	edit := &headers.Handler{Response: &headers.RespHeaderOps{HeaderOps: &headers.HeaderOps{Replace: replace}, Deferred: true}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := edit.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	return edit
}

// serveEdited answers one request of each kind (JSON, text, 400, 405) through
// the deferred edit and checks that each header has one value, edited once.
func serveEdited(h *Handler, edit *headers.Handler, i int) error {
	method, target := http.MethodGet, "/id"
	switch i % 4 {
	case 1:
		target = "/id?format=text&count=2"
	case 2:
		target = "/id?count=zero"
	case 3:
		method = http.MethodPut
	}
	w := httptest.NewRecorder()
	r := caddyhttp.PrepareRequest(httptest.NewRequest(method, target, nil), caddy.NewReplacer(), w, nil)
	endpoint := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return h.ServeHTTP(w, r, nil) })
	if err := edit.ServeHTTP(w, r, endpoint); err != nil {
		return err
	}
	for _, name := range editedHeaders {
		values, ok := w.Result().Header[name]
		if !ok {
			continue
		}
		if len(values) != 1 || strings.Count(values[0], ";edited") != 1 {
			return fmt.Errorf("%s %s, response %d: %s = %q, want one value edited once", method, target, i, name, values)
		}
	}
	return nil
}

func TestEndpointHeadersAreNotSharedBetweenResponses(t *testing.T) {
	h, _ := newTestHandler()
	edit := deferredHeaderEdit(t)
	for i := range 1000 {
		if err := serveEdited(h, edit, i); err != nil {
			t.Fatal(err)
		}
	}
}

// Run with -race: responses written at once must not share header values.
func TestEndpointHeadersConcurrent(t *testing.T) {
	h, _ := newTestHandler()
	edit := deferredHeaderEdit(t)
	const workers, each = 8, 125
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for i := range each {
				if err := serveEdited(h, edit, i); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// After a reload changed the layout, an ID request_id minted before it is
// still taken apart in the layout that minted it.
func TestEndpointDecodesTheStampedIDInItsLayout(t *testing.T) {
	h, _ := newTestHandler()
	before := newLayout(defaultStartTime, defaultTimeUnit, 10, 14)
	stamped := before.compose(before.unitsAt(handlerT0), 5, 10)
	w := serve(t, h, withMintedID(httptest.NewRequest(http.MethodGet, "/id?count=2", nil), stamped, before))
	var batch []idParts
	if err := json.Unmarshal(w.Body.Bytes(), &batch); err != nil {
		t.Fatalf("body %s: %v", w.Body, err)
	}
	if want := before.decompose(stamped); len(batch) != 2 || batch[0] != want {
		t.Fatalf("stamped ID served as %+v, want %+v, its own layout's fields", batch, want)
	}
	if want := defaultLayout.decompose(batch[1].ID); batch[1] != want || want.Sequence != 0 {
		t.Errorf("fresh ID served as %+v, want %+v in the current layout", batch[1], want)
	}
}

// A layout whose time field has ended is a server error naming the date, not
// a 503 to retry.
func TestEndpointTimeFieldEnded(t *testing.T) {
	ended := newLayout(handlerT0.Add(-60*24*time.Hour), time.Millisecond, 15, 16) // 2^32 ms: 49.7 days
	clock := &fakeClock{t: handlerT0}
	h := testHandler(testApp(ended, 10, clock.now, clock.sleep))
	err := h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/id", nil), nil)
	var herr caddyhttp.HandlerError
	if !errors.As(err, &herr) || herr.StatusCode != http.StatusInternalServerError {
		t.Fatalf("error %v, want a 500 handler error", err)
	}
	if want := "the time field ended on " + ended.end().UTC().Format(time.RFC3339); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}
