//go:build multinode

package multinode

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
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
	slow       []get               // the slowest few GETs over slowGET, slowest first
	took       []time.Duration     // every GET's, failed ones too
	ids        map[string][]string // the X-Request-IDs answered, by URL
	distinct   map[string]struct{}
	duplicates int
}

// slowGET is the time above which a GET is noted, with when it started
// and which task answered, to tell later why it was slow; the slowest
// keepSlow are kept.
const (
	slowGET  = time.Second
	keepSlow = 8
)

// get is one GET as the load saw it.
type get struct {
	url      string
	at, took time.Duration // start, from the start of the load; duration
	err      error
	id       string // the answer's X-Request-ID
	servedBy string // the task that answered (whoami's Hostname line)
}

// record notes one GET.
func (r *loadResult) record(g get) {
	url, took, err, id := g.url, g.took, g.err, g.id
	r.mu.Lock()
	r.took = append(r.took, took)
	if took > slowGET {
		i, _ := slices.BinarySearchFunc(r.slow, took, func(s get, took time.Duration) int { return cmp.Compare(took, s.took) })
		r.slow = slices.Insert(r.slow, i, g)
		r.slow = r.slow[:min(len(r.slow), keepSlow)]
	}
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

// slowest describes the slowest GETs over slowGET.
func (r *loadResult) slowest() []string {
	var lines []string
	for _, g := range r.slow {
		lines = append(lines, fmt.Sprintf("started at +%.2fs, took %v, answered by %q, error %v", g.at.Seconds(), g.took.Round(time.Millisecond), g.servedBy, g.err))
	}
	return lines
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
	begin := time.Now()
	get := func(url string) {
		start := time.Now()
		g := getOnce(client, url)
		g.at, g.took = start.Sub(begin), time.Since(start)
		res.record(g)
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

// getOnce sends one GET to url and reads the answer.
func getOnce(client *http.Client, url string) get {
	g := get{url: url}
	resp, err := client.Get(url)
	if err != nil {
		g.err = err
		return g
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	g.id = resp.Header.Get("X-Request-Id")
	if _, rest, found := strings.Cut(string(body), "Hostname: "); found {
		g.servedBy, _, _ = strings.Cut(rest, "\n")
	}
	switch {
	case err != nil:
		g.err = err
	case resp.StatusCode != http.StatusOK:
		g.err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return g
}
