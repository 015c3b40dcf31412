package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// rateLoad is an open-loop load: requests leave at fixed intervals whatever
// the answers do, as users arrive. A closed loop (wrk) sends the next
// request only after an answer, so it counts a fast 503 many times and a
// slow success once, and it measures latency from when it got round to
// sending, hiding the wait.
type rateLoad struct {
	url      string
	rate     int           // requests per second
	duration time.Duration // requests are scheduled over this long
	timeout  time.Duration // a request slower than this fails as a timeout
	// maxInFlight bounds the requests open at once (and so the goroutines).
	// A request due while the bound is reached leaves as soon as one
	// finishes; its latency still counts from when it was due.
	maxInFlight int
}

// outcome is how one request ended.
type outcome int

const (
	outcomeOK      outcome = iota // 2xx or 3xx
	outcomeStatus                 // any other status
	outcomeTimeout                // no answer within rateLoad.timeout
	outcomeError                  // refused, reset, …
)

// rateRecord is one scheduled request.
type rateRecord struct {
	due     time.Duration // from the start of the run
	latency time.Duration // from due to the end of the answer's body
	status  int           // 0 when no answer
	outcome outcome
}

// rateResult is every request of an open-loop run, in due order.
type rateResult struct {
	records []rateRecord
}

// sendAtRate runs load against its URL with client and returns once every
// scheduled request has ended. Ending ctx stops scheduling; requests in
// flight run to their timeout.
func sendAtRate(ctx context.Context, client *http.Client, load rateLoad) rateResult {
	interval := time.Second / time.Duration(load.rate)
	n := int(load.duration / interval)
	records := make([]rateRecord, n)
	slots := make(chan struct{}, load.maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	scheduled := 0
	for ; scheduled < n; scheduled++ {
		i, due := scheduled, time.Duration(scheduled)*interval
		if !sleepUntil(ctx, start.Add(due)) || !acquire(ctx, slots) {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			records[i] = send(client, load, start, due)
		})
	}
	wg.Wait()
	return rateResult{records: records[:scheduled]}
}

// send makes one request due at start+due and records it.
func send(client *http.Client, load rateLoad, start time.Time, due time.Duration) rateRecord {
	rec := rateRecord{due: due}
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(due).Add(load.timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, load.url, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = client.Do(req); err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			rec.status = resp.StatusCode
		}
	}
	rec.latency = time.Since(start) - due
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		rec.outcome = outcomeTimeout
	case err != nil:
		rec.outcome = outcomeError
	case rec.status >= 400:
		rec.outcome = outcomeStatus
	}
	return rec
}

// sleepUntil waits until t and reports whether ctx is still alive.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// acquire takes a slot, waiting while all are taken, and reports whether
// ctx is still alive.
func acquire(ctx context.Context, slots chan struct{}) bool {
	select {
	case slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// rateClient is the open-loop client's HTTP client: keep-alive connections,
// as many idle as may be in flight; each request bounds itself.
func rateClient(maxInFlight int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: maxInFlight,
		DisableCompression:  true,
	}}
}

// rateSummary is an open-loop run's figures, over all its requests or a
// window of them.
type rateSummary struct {
	Sent, Failed, Timeouts int
	Worst, P99             time.Duration
	Statuses               map[int]int // answers by status
}

// summarize sums up the requests due in [from, to).
func (r rateResult) summarize(from, to time.Duration) rateSummary {
	s := rateSummary{Statuses: map[int]int{}}
	var latencies []time.Duration
	for _, rec := range r.records {
		if rec.due < from || rec.due >= to {
			continue
		}
		s.Sent++
		latencies = append(latencies, rec.latency)
		if rec.status != 0 {
			s.Statuses[rec.status]++
		}
		switch rec.outcome {
		case outcomeOK:
		case outcomeTimeout:
			s.Timeouts++
			s.Failed++
		default:
			s.Failed++
		}
	}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		s.Worst = latencies[len(latencies)-1]
		s.P99 = latencies[(len(latencies)*99+99)/100-1]
	}
	return s
}

// all sums up the whole run.
func (r rateResult) all() rateSummary { return r.summarize(0, 1<<62) }
