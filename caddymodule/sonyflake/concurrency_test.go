package sonyflake

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// The endpoint, stamping (alone and in front of the endpoint), reloads that
// change the layout and reservation renewals, all at once on the real
// clock: every ID is unique, and each client sees its IDs increase.
func TestConcurrentEndpointStampingAndReloads(t *testing.T) {
	n := &testNode{storage: &certmagic.FileStorage{Path: t.TempDir()}, reg: newRegistry(monotonicNow, time.Sleep, 0)}
	app := mustStart(t, n, defaultLayout, 15)
	endpoint := testHandler(app)
	stamping := &RequestID{}
	stamping.attach(app, zap.NewNop())
	layouts := []layout{newLayout(time.Time{}, 0, 10, 14), defaultLayout}

	var (
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		mu      sync.Mutex
		clients [][]int64
	)
	client := func(next func() []int64) {
		wg.Go(func() {
			var got []int64
			for {
				select {
				case <-stop:
					mu.Lock()
					clients = append(clients, got)
					mu.Unlock()
					return
				default:
				}
				got = append(got, next()...)
			}
		})
	}
	textIDs := func(body string) []int64 {
		var ids []int64
		for line := range strings.Lines(body) {
			id, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
			if err != nil {
				t.Errorf("body line %q: %v", line, err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	batch := func() []int64 {
		w := httptest.NewRecorder()
		if err := endpoint.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/id?count=50&format=text", nil), nil); err != nil {
			t.Error(err)
		}
		if w.Code != http.StatusOK {
			return nil
		}
		return textIDs(w.Body.String())
	}
	stamp := func(next caddyhttp.Handler) func() []int64 {
		return func() []int64 {
			w, _, err := serveRequestID(stamping, httptest.NewRequest(http.MethodGet, "/id?format=text", nil), false, next)
			if err != nil {
				t.Error(err)
			}
			id := w.Header().Get("X-Request-ID")
			if id == "" {
				return nil
			}
			if body := strings.TrimSpace(w.Body.String()); next != nil && body != id {
				t.Errorf("the endpoint behind request_id served %s, not the stamped %s", body, id)
			}
			return textIDs(id)
		}
	}
	client(batch)
	client(batch)
	client(stamp(nil))
	client(stamp(caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return endpoint.ServeHTTP(w, r, nil) // serves the stamped ID
	})))
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := n.start(layouts[i%2], 15); err != nil {
				t.Error(err)
			}
			app.slot.renewCurrent()
		}
	})
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()

	seen := make(map[int64]bool)
	for c, ids := range clients {
		if len(ids) == 0 {
			t.Errorf("client %d got no IDs", c)
		}
		for i, id := range ids {
			if seen[id] {
				t.Fatalf("ID %d minted twice", id)
			}
			seen[id] = true
			if i > 0 && id <= ids[i-1] {
				t.Fatalf("client %d: ID %d after %d", c, id, ids[i-1])
			}
		}
	}
}
