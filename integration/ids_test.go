package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/sonyflake/v2"

	"github.com/swarmedge/swarmedge/integration/edge"
)

// Tests of the promise that an edge never mints an ID twice or at or below
// one it minted before, for one machine ID: across reloads that change the
// layout, refused configs and restarts (kill -9), and that stamping gets
// IDs beside batch clients of the endpoint.

const idsMachineID = 4343

// idsCaddyfile serves the endpoint at /id and, with a backend, stamps and
// proxies everything else; settings go into the sonyflake option.
func idsCaddyfile(settings, backend string) string {
	site := `	handle /id {
		sonyflake
	}
`
	if backend != "" {
		site += `	handle {
		request_id
		reverse_proxy ` + backend + `
	}
`
	}
	return globalOptions + fmt.Sprintf(`	sonyflake {
		machine_id %d
%s	}
}
http://127.0.0.1:{{.HTTPPort}} {
%s}
`, idsMachineID, settings, site)
}

// fetchIDs asks the endpoint for count IDs as text; nil when it answers 503
// (no ID in time) or 429 (this client has its share of IDs in flight).
func fetchIDs(t testing.TB, e *edge.Edge, count int) []int64 {
	t.Helper()
	resp, body := get(t, http.MethodGet, e.URL(fmt.Sprintf("/id?format=text&count=%d", count)), nil)
	switch resp.StatusCode {
	case http.StatusOK:
		return parseIDLines(t, body)
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		return nil
	}
	t.Fatalf("/id: status %d: %s", resp.StatusCode, body)
	return nil
}

// idLedger checks IDs as they come: none twice.
type idLedger struct {
	mu   sync.Mutex
	seen map[int64]bool
}

func (l *idLedger) add(t testing.TB, ids []int64) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = make(map[int64]bool)
	}
	for _, id := range ids {
		if l.seen[id] {
			t.Errorf("ID %d issued twice", id)
		}
		l.seen[id] = true
	}
}

func TestReloadLayoutChange(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings string
		refused  string // the setting a refusal must name; "" either outcome
	}{
		{"later start_time", "start_time 2020-01-01T00:00:00Z\n", "start_time"},
		{"longer time_unit", "time_unit 20ms\n", "time_unit"},
		{"more time bits", "sequence_bits 7\n", "sequence_bits"},
		{"fewer time bits", "sequence_bits 9\n", ""},
		{"same time field", "sequence_bits 10\nmachine_id_bits 14\n", ""},
		{"time_unit 1ms from 2026", "start_time 2026-01-01T00:00:00Z\ntime_unit 1ms\n", "start_time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := edge.MustStart(t, idsCaddyfile("", ""))
			var ledger idLedger
			var before []int64
			// Clients fetch during the reload too. Their IDs count as
			// "before" only when the fetch ended before the reload began:
			// one still running may be served by the new generator, after
			// the first fetches below.
			var (
				busy        sync.WaitGroup
				stop        atomic.Bool
				reloadBegun atomic.Bool
				mu          sync.Mutex
			)
			// 2 × 500 in flight leaves this client's share (2,000) room
			// for the 1,000 fetched after the reload.
			for range 2 {
				busy.Go(func() {
					for !stop.Load() {
						ids := fetchIDs(t, e, 500)
						ledger.add(t, ids)
						if !reloadBegun.Load() {
							mu.Lock()
							before = append(before, ids...)
							mu.Unlock()
						}
					}
				})
			}
			time.Sleep(300 * time.Millisecond)
			reloadBegun.Store(true)
			err := e.Reload(idsCaddyfile(tc.settings, ""))
			var after []int64
			for range 5 {
				ids := fetchIDs(t, e, 1000)
				ledger.add(t, ids)
				after = append(after, ids...)
			}
			stop.Store(true)
			busy.Wait()

			switch {
			case err != nil && tc.refused == "":
				t.Fatalf("reload refused: %v", err)
			case err != nil && !strings.Contains(err.Error(), tc.refused):
				t.Fatalf("refusal does not name %s: %v", tc.refused, err)
			case err == nil && tc.refused != "":
				t.Logf("reload accepted (a refusal naming %s was also fine)", tc.refused)
			default:
				t.Logf("reload: %v", err)
			}
			if len(before) == 0 || len(after) == 0 {
				t.Fatalf("%d IDs before the reload, %d after: want some of each", len(before), len(after))
			}
			var maxBefore int64
			for _, id := range before {
				maxBefore = max(maxBefore, id)
			}
			for _, id := range after {
				if id <= maxBefore {
					t.Fatalf("ID %d after the reload is not above %d from before it", id, maxBefore)
				}
			}
		})
	}
}

// A config refused because another module fails to provision leaves the
// edge minting with its old settings.
func TestRefusedConfigKeepsMinting(t *testing.T) {
	e := edge.MustStart(t, idsCaddyfile("", ""))
	var ledger idLedger
	before := fetchIDs(t, e, 1000)
	ledger.add(t, before)

	// /b comes after /id in the route (shorter path), so the sonyflake app
	// is provisioned before the reverse_proxy fails.
	failing := strings.Replace(idsCaddyfile("sequence_bits 10\nmachine_id_bits 14\n", ""), "	handle /id {", `	handle /b {
		reverse_proxy https://127.0.0.1:1 {
			transport http {
				tls_trust_pool file `+filepath.Join(t.TempDir(), "missing.pem")+`
			}
		}
	}
	handle /id {`, 1)
	if err := e.Reload(failing); err == nil {
		t.Fatal("a config with a reverse_proxy that cannot load its CA file was accepted")
	}

	flake := referenceFlake(t, sonyflake.Settings{}, idsMachineID)
	last := before[len(before)-1]
	for range 5 {
		resp, body := get(t, http.MethodGet, e.URL("/id?count=1000"), nil)
		assertIDResponse(t, resp, "application/json")
		for _, obj := range parseIDObjects(t, body, true) {
			checkFreshID(t, flake, idsMachineID, obj.ID, &obj) // the old layout
			if t.Failed() {
				t.FailNow()
			}
			ledger.add(t, []int64{obj.ID})
			if obj.ID <= last {
				t.Fatalf("ID %d after the refused config is not above %d", obj.ID, last)
			}
			last = obj.ID
		}
	}
}

// Twenty restarts by kill -9 on one storage, each within one time unit of
// a second: no ID repeats, and each process starts above the last ID of
// the one before.
func TestRestartLoop(t *testing.T) {
	node := edge.NewNode(t)
	settings := "time_unit 1s\nsequence_bits 12\n"
	var ledger idLedger
	var last int64
	for i := range 20 {
		e, err := node.Start(t, idsCaddyfile(settings, ""))
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for range 3 {
			ids = append(ids, fetchIDs(t, e, 100)...)
		}
		e.Kill()
		if len(ids) == 0 {
			t.Fatalf("process %d: no IDs", i)
		}
		if ids[0] <= last {
			t.Fatalf("process %d: first ID %d not above the previous process's last %d", i, ids[0], last)
		}
		ledger.add(t, ids)
		last = ids[len(ids)-1]
	}
}

// A reservation ahead of the clock in storage (as after the clock stepped
// back): the new process mints only above it.
func TestRestartAboveStoredReservation(t *testing.T) {
	node := edge.NewNode(t)
	flake := referenceFlake(t, sonyflake.Settings{}, idsMachineID)
	ahead := time.Now().Add(8 * time.Second) // beyond what a restart at once finds
	reserved, err := flake.Compose(ahead, 255, idsMachineID)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(node.StorageDir(), "sonyflake", fmt.Sprint(idsMachineID))
	data, _ := json.Marshal(map[string]any{"id": reserved, "until": ahead})
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := node.Start(t, idsCaddyfile("", ""))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if ids := fetchIDs(t, e, 1); ids != nil {
			if ids[0] <= reserved {
				t.Fatalf("first ID %d not above the stored reservation %d", ids[0], reserved)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no ID within 20 s of a reservation 8 s ahead")
}

// Batch clients at full speed beside proxied traffic: every proxied
// response carries an X-Request-ID, and the batch clients still get IDs.
// The layout's ceiling is 6,400 IDs/s, which the batch clients exceed on a
// small machine too.
func TestStampingBesideBatchClients(t *testing.T) {
	backend := echoBackend(t)
	e := edge.MustStart(t, idsCaddyfile("sequence_bits 6\n", backend.URL))
	var (
		wg                 sync.WaitGroup
		stop               atomic.Bool
		proxied, unstamped atomic.Int64
		batches, batchesOK atomic.Int64
		client             = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		fetch              = func(path string) (*http.Response, error) { return client.Get(e.URL(path)) }
	)
	for range 16 {
		wg.Go(func() {
			for !stop.Load() {
				resp, err := fetch("/id?count=1000&format=text")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				batches.Add(1)
				if resp.StatusCode == http.StatusOK {
					batchesOK.Add(1)
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				resp, err := fetch("/app")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				proxied.Add(1)
				// The echo backend sends X-Request-ID: from-upstream.
				if _, err := strconv.ParseInt(resp.Header.Get("X-Request-ID"), 10, 64); err != nil {
					unstamped.Add(1)
				}
			}
		})
	}
	time.Sleep(3 * time.Second)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d proxied requests, %d unstamped; %d batches, %d served", proxied.Load(), unstamped.Load(), batches.Load(), batchesOK.Load())
	if proxied.Load() == 0 || unstamped.Load() != 0 {
		t.Errorf("%d of %d proxied responses without X-Request-ID, want none", unstamped.Load(), proxied.Load())
	}
	if batchesOK.Load() == 0 {
		t.Errorf("no batch of %d served", batches.Load())
	}
}
