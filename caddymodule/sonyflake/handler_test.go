package sonyflake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// handlerT0 is 5 ms into a 10 ms unit.
var handlerT0 = time.Date(2026, 3, 1, 12, 0, 0, 5e6, time.UTC)

// newTestHandler returns an endpoint over its own generator (not the
// process-wide registry) for machine ID 10, on a fake clock at handlerT0.
func newTestHandler() (*Handler, *fakeClock) {
	clock := &fakeClock{t: handlerT0}
	return &Handler{app: testApp(defaultLayout, 10, clock.now, clock.sleep)}, clock
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
	for _, query := range []string{
		"count=0", "count=1001", "count=-1", "count=abc", "count=", "count=1&count=2", "count=2.5",
		"format=xml", "format=", "format=text&format=json", "count=%zz",
	} {
		h, _ := newTestHandler()
		w := serve(t, h, httptest.NewRequest(http.MethodGet, "/id?"+query, nil))
		body := w.Body.String()
		if w.Code != http.StatusBadRequest || !strings.HasSuffix(body, "\n") || strings.Count(body, "\n") != 1 || len(body) < 10 {
			t.Errorf("?%s: %d %q, want 400 with a one-line reason", query, w.Code, body)
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

// withMintedID is r as request_id leaves it after minting id.
func withMintedID(r *http.Request, id int64) *http.Request {
	vars := map[string]any{mintedIDVar: mintedID{id: id, layout: defaultLayout}}
	return r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
}

func TestEndpointServesTheRequestsMintedID(t *testing.T) {
	h, _ := newTestHandler()
	stamped, err := h.app.stamp(0) // what request_id did for this request
	if err != nil {
		t.Fatal(err)
	}
	w := serve(t, h, withMintedID(httptest.NewRequest(http.MethodGet, "/id", nil), stamped.id))
	if got, want := w.Body.String(), wantJSON(t, 0); got != want {
		t.Fatalf("body %s, want the stamped ID %s", got, want)
	}

	w = serve(t, h, withMintedID(httptest.NewRequest(http.MethodGet, "/id?count=3", nil), stamped.id))
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
		if body := w.Body.String(); strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
			t.Errorf("503 body %q, want one line", body)
		}
		if len(clock.slept) != 0 {
			t.Errorf("slept %v: the request should be refused, not held", clock.slept)
		}
	}
}

func BenchmarkEndpoint(b *testing.B) {
	h := &Handler{app: testApp(benchLayout, 1, monotonicNow, time.Sleep)}
	r := httptest.NewRequest(http.MethodGet, "/id", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		if err := h.ServeHTTP(w, r, nil); err != nil {
			b.Fatal(err)
		}
	}
}
