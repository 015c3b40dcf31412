package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Timing in these tests is only ever a lower bound that causality
// guarantees (a request cannot end before its server answers), so a
// loaded machine makes them slower, never wrong.

// A request held back by the in-flight bound counts its latency from when
// it was due, not from when it could leave.
func TestSendAtRateLatencyFromSchedule(t *testing.T) {
	const hold = 300 * time.Millisecond
	var first atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			time.Sleep(hold) // from after the run started: the others wait at least until start+hold
		}
	}))
	defer srv.Close()

	load := rateLoad{url: srv.URL, rate: 100, duration: 200 * time.Millisecond, timeout: 5 * time.Second, maxInFlight: 1}
	res := sendAtRate(context.Background(), rateClient(1), load)

	if len(res.records) != 20 {
		t.Fatalf("%d requests recorded, want 20", len(res.records))
	}
	for i, rec := range res.records {
		// Every request waited behind the first, held until `hold`.
		if want := hold - rec.due; rec.latency < want {
			t.Errorf("request %d (due %v): latency %v, want at least %v (held behind the first)", i, rec.due, rec.latency, want)
		}
		if rec.outcome != outcomeOK {
			t.Errorf("request %d: outcome %d, status %d", i, rec.outcome, rec.status)
		}
	}
}

// A slow server is asked exactly once per scheduled request: the schedule,
// not the answers, sets how many requests leave.
func TestSendAtRateSlowServerCountedOncePerRequest(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		time.Sleep(150 * time.Millisecond)
	}))
	defer srv.Close()

	load := rateLoad{url: srv.URL, rate: 50, duration: 400 * time.Millisecond, timeout: 5 * time.Second, maxInFlight: 50}
	res := sendAtRate(context.Background(), rateClient(50), load)

	s := res.all()
	if s.Sent != 20 || hits.Load() != 20 {
		t.Fatalf("sent %d, server saw %d; want 20 and 20", s.Sent, hits.Load())
	}
	if s.Failed != 0 || s.Statuses[200] != 20 {
		t.Fatalf("failed %d, statuses %v; want 0 failed, 20 × 200", s.Failed, s.Statuses)
	}
	if s.Worst < 150*time.Millisecond {
		t.Errorf("worst latency %v, below the server's 150 ms", s.Worst)
	}
}

// No more than maxInFlight requests are open at once, and none is lost to
// the bound.
func TestSendAtRateBoundsInFlight(t *testing.T) {
	var mu sync.Mutex
	open, most := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		open++
		most = max(most, open)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		open--
		mu.Unlock()
	}))
	defer srv.Close()

	load := rateLoad{url: srv.URL, rate: 1000, duration: 100 * time.Millisecond, timeout: 5 * time.Second, maxInFlight: 3}
	res := sendAtRate(context.Background(), rateClient(3), load)

	if s := res.all(); s.Sent != 100 || s.Failed != 0 {
		t.Fatalf("sent %d, failed %d; want 100 sent, 0 failed", s.Sent, s.Failed)
	}
	if most > 3 {
		t.Fatalf("%d requests open at once, bound 3", most)
	}
}

// A request without an answer within the timeout fails once, as a
// timeout; an error status fails as such.
func TestSendAtRateTimeoutsAndStatuses(t *testing.T) {
	done := make(chan struct{})
	defer close(done)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			select {
			case <-done:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	hang := sendAtRate(context.Background(), rateClient(10), rateLoad{url: srv.URL + "/hang", rate: 20, duration: 100 * time.Millisecond, timeout: 100 * time.Millisecond, maxInFlight: 10})
	if s := hang.all(); s.Sent != 2 || s.Timeouts != 2 || s.Failed != 2 || s.Worst < 100*time.Millisecond {
		t.Errorf("hanging server: %+v; want 2 sent, 2 timeouts, 2 failed, worst ≥ 100 ms", s)
	}
	busy := sendAtRate(context.Background(), rateClient(10), rateLoad{url: srv.URL, rate: 20, duration: 100 * time.Millisecond, timeout: time.Second, maxInFlight: 10})
	if s := busy.all(); s.Sent != 2 || s.Failed != 2 || s.Timeouts != 0 || s.Statuses[503] != 2 {
		t.Errorf("503 server: %+v; want 2 sent, 2 failed as 503", s)
	}
}

// Ending the context stops the schedule; what was sent is still recorded.
func TestSendAtRateStopsWithContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	res := sendAtRate(ctx, rateClient(10), rateLoad{url: srv.URL, rate: 10, duration: time.Hour, timeout: time.Second, maxInFlight: 10})
	if n := len(res.records); n < 1 || n > 10 {
		t.Fatalf("%d requests after the context ended at 150 ms of a 10/s schedule", n)
	}
}

func TestRateSummarize(t *testing.T) {
	ms := time.Millisecond
	res := rateResult{records: []rateRecord{
		{due: 0, latency: 2 * ms, status: 200},
		{due: 10 * ms, latency: 900 * ms, status: 503, outcome: outcomeStatus},
		{due: 20 * ms, latency: 3 * ms, status: 200},
		{due: 30 * ms, latency: 5000 * ms, outcome: outcomeTimeout},
		{due: 40 * ms, latency: 1 * ms, outcome: outcomeError},
	}}
	tests := []struct {
		name     string
		from, to time.Duration
		want     rateSummary
	}{
		{"all", 0, time.Hour, rateSummary{Sent: 5, Failed: 3, Timeouts: 1, Worst: 5000 * ms, P99: 5000 * ms, Statuses: map[int]int{200: 2, 503: 1}}},
		{"window", 10 * ms, 30 * ms, rateSummary{Sent: 2, Failed: 1, Worst: 900 * ms, P99: 900 * ms, Statuses: map[int]int{200: 1, 503: 1}}},
		{"empty", time.Hour, 2 * time.Hour, rateSummary{Statuses: map[int]int{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := res.summarize(tt.from, tt.to)
			if got.Sent != tt.want.Sent || got.Failed != tt.want.Failed || got.Timeouts != tt.want.Timeouts ||
				got.Worst != tt.want.Worst || got.P99 != tt.want.P99 || len(got.Statuses) != len(tt.want.Statuses) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			for code, n := range tt.want.Statuses {
				if got.Statuses[code] != n {
					t.Fatalf("statuses %v, want %v", got.Statuses, tt.want.Statuses)
				}
			}
		})
	}
}

func TestRateSummaryP99(t *testing.T) {
	var res rateResult
	for i := range 200 {
		res.records = append(res.records, rateRecord{due: time.Duration(i), latency: time.Duration(i + 1)})
	}
	if s := res.all(); s.P99 != 198 || s.Worst != 200 {
		t.Fatalf("p99 %d, worst %d over 1..200; want 198, 200", s.P99, s.Worst)
	}
}
