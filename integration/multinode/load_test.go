//go:build multinode

package multinode

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what a load run saw.
type loadResult struct {
	ok, failed atomic.Int64
	maxNanos   atomic.Int64
	mu         sync.Mutex
	failures   []string            // the first few
	took       []time.Duration     // every GET's, failed ones too
	ids        map[string][]string // the X-Request-IDs answered, by URL
	distinct   map[string]struct{}
	duplicates int
}

// record notes one GET to url.
func (r *loadResult) record(url string, took time.Duration, err error, id string) {
	r.mu.Lock()
	r.took = append(r.took, took)
	r.mu.Unlock()
	for {
		cur := r.maxNanos.Load()
		if int64(took) <= cur || r.maxNanos.CompareAndSwap(cur, int64(took)) {
			break
		}
	}
	if err != nil {
		r.failed.Add(1)
		r.mu.Lock()
		if len(r.failures) < 5 {
			r.failures = append(r.failures, fmt.Sprintf("after %v: %v", took.Round(time.Millisecond), err))
		}
		r.mu.Unlock()
		return
	}
	r.ok.Add(1)
	if id != "" {
		r.mu.Lock()
		if _, seen := r.distinct[id]; seen {
			r.duplicates++
		}
		r.distinct[id] = struct{}{}
		r.ids[url] = append(r.ids[url], id)
		r.mu.Unlock()
	}
}

// sent is how many GETs the run made.
func (r *loadResult) sent() int64 { return r.ok.Load() + r.failed.Load() }

// worst is the slowest GET's time.
func (r *loadResult) worst() time.Duration { return time.Duration(r.maxNanos.Load()) }

// p99 is the 99th percentile of the GETs' times, failed ones included.
// Call it after the run.
func (r *loadResult) p99() time.Duration {
	if len(r.took) == 0 {
		return 0
	}
	sorted := slices.Clone(r.took)
	slices.Sort(sorted)
	return sorted[(len(sorted)*99-1)/100]
}

// String is the figures line.
func (r *loadResult) String() string {
	return fmt.Sprintf("%d ok, %d failed, slowest %v, p99 %v, %d distinct request IDs, %d duplicates",
		r.ok.Load(), r.failed.Load(), r.worst().Round(time.Millisecond), r.p99().Round(time.Millisecond), len(r.distinct), r.duplicates)
}

// runLoad sends GETs to each url until ctx ends: conns keep-alive
// connections in a closed loop per url, plus one open loop at rate per
// second; each GET may take 10 s. The X-Request-ID of each answer is
// collected.
func runLoad(ctx context.Context, urls []string, conns int, rate int) *loadResult {
	res := &loadResult{ids: make(map[string][]string), distinct: make(map[string]struct{})}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: conns + rate},
	}
	get := func(url string) {
		start := time.Now()
		resp, err := client.Get(url)
		id := ""
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			id = resp.Header.Get("X-Request-Id")
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		res.record(url, time.Since(start), err, id)
	}
	var wg sync.WaitGroup
	for _, url := range urls {
		for range conns {
			wg.Go(func() {
				for ctx.Err() == nil {
					get(url)
				}
			})
		}
		wg.Go(func() {
			tick := time.NewTicker(time.Second / time.Duration(rate))
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					wg.Go(func() { get(url) })
				}
			}
		})
	}
	wg.Wait()
	return res
}
