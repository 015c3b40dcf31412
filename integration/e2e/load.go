// Package e2e tests the edge on a real Docker engine (build tag e2e): a
// single-node swarm, an overlay network, a 5-replica app in dnsrr mode and
// the edge in a FROM scratch image, driven by a load client that runs in a
// container on the same network. This file is the load client's engine
// (./loadclient is its main), so the tests read its JSON into the same
// type it writes.
package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LoadConfig says what load to send.
type LoadConfig struct {
	URL         string
	Connections int           // concurrent keep-alive connections
	Requests    int           // stop after this many requests; 0: until ctx ends
	Timeout     time.Duration // per request
	// MachineIDBits is the Sonyflake layout's machine ID width: the low bits
	// of each X-Request-ID that name the edge that minted it.
	MachineIDBits int
	// Progress, if set, gets a line "progress requests=N failed=M" every
	// second, so that a test can watch load that runs in a container.
	Progress io.Writer
}

// LoadResult is what the load client saw. Every request is a GET, so the
// edge may retry any of them: a failed request is one the client saw fail.
type LoadResult struct {
	Requests int `json:"requests"`
	Failed   int `json:"failed"`
	// Cancelled counts requests cut short by the client's own stop.
	Cancelled int            `json:"cancelled"`
	Errors    map[string]int `json:"errors,omitempty"` // failures by kind
	Seconds   float64        `json:"seconds"`
	// Hostnames counts answers per app task (the app's Hostname line).
	Hostnames map[string]int `json:"hostnames"`
	// MachineIDs counts X-Request-IDs per machine ID.
	MachineIDs map[string]int `json:"machine_ids"`
	// DuplicateIDs counts X-Request-IDs seen before in this run.
	DuplicateIDs int `json:"duplicate_ids"`
	// IDNotEchoed counts successful answers whose X-Request-ID response
	// header is missing or differs from the one the app received.
	IDNotEchoed int `json:"id_not_echoed"`
}

// Load sends GETs to cfg.URL over cfg.Connections keep-alive connections
// until cfg.Requests are done or ctx ends.
func Load(ctx context.Context, cfg LoadConfig) LoadResult {
	transport := &http.Transport{
		MaxIdleConnsPerHost: cfg.Connections,
		MaxConnsPerHost:     cfg.Connections,
		IdleConnTimeout:     90 * time.Second,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: cfg.Timeout}

	var (
		mu      sync.Mutex
		res     = LoadResult{Errors: map[string]int{}, Hostnames: map[string]int{}, MachineIDs: map[string]int{}}
		seenIDs = map[uint64]bool{}
		issued  int // requests handed to workers, under mu
	)
	record := func(a answer) {
		mu.Lock()
		defer mu.Unlock()
		if a.cancelled {
			res.Cancelled++
			return
		}
		res.Requests++
		if a.err != "" {
			res.Failed++
			res.Errors[a.err]++
			return
		}
		res.Hostnames[a.hostname]++
		if !a.echoed {
			res.IDNotEchoed++
		}
		if id, err := strconv.ParseUint(a.id, 10, 64); err == nil {
			if seenIDs[id] {
				res.DuplicateIDs++
			}
			seenIDs[id] = true
			res.MachineIDs[strconv.FormatUint(id&(1<<cfg.MachineIDBits-1), 10)]++
		}
	}
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if cfg.Requests > 0 && issued >= cfg.Requests {
			return false
		}
		issued++
		return true
	}

	start := time.Now()
	if cfg.Progress != nil {
		done := make(chan struct{})
		defer close(done)
		go func() {
			ticker := time.NewTicker(time.Second)
			defer ticker.Stop()
			for {
				select {
				case <-done:
					return
				case <-ticker.C:
				}
				mu.Lock()
				n, failed := res.Requests, res.Failed
				mu.Unlock()
				fmt.Fprintf(cfg.Progress, "progress requests=%d failed=%d\n", n, failed)
			}
		}()
	}
	var wg sync.WaitGroup
	for range cfg.Connections {
		wg.Go(func() {
			for ctx.Err() == nil && take() {
				record(get(ctx, client, cfg.URL))
			}
		})
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	return res
}

// answer is one request's outcome.
type answer struct {
	err       string // failure kind; empty on success
	cancelled bool   // the client stopped mid-request
	hostname  string
	id        string // the response's X-Request-ID
	echoed    bool   // the app received that same ID
}

func get(ctx context.Context, client *http.Client, url string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return answer{err: err.Error()}
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return answer{cancelled: true}
		}
		return answer{err: errorKind(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return answer{err: "reading body: " + errorKind(err)}
	}
	if resp.StatusCode != http.StatusOK {
		return answer{err: resp.Status}
	}
	a := answer{id: resp.Header.Get("X-Request-Id")}
	for line := range strings.Lines(string(body)) {
		key, value, _ := strings.Cut(strings.TrimSpace(line), ": ")
		switch key {
		case "Hostname":
			a.hostname = value
		case "X-Request-Id":
			a.echoed = a.id != "" && value == a.id
		}
	}
	return a
}

// errorKind shortens a transport error to its last part (e.g.
// "connection reset by peer"), so that failures group by kind.
func errorKind(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		return msg[i+2:]
	}
	return msg
}

// String sums up a result in one line for test logs.
func (r LoadResult) String() string {
	return fmt.Sprintf("%d requests in %.1fs (%.0f/s), %d failed %v, tasks %v, machine IDs %v, %d duplicate IDs, %d IDs not echoed",
		r.Requests, r.Seconds, float64(r.Requests)/max(r.Seconds, 1e-9), r.Failed, r.Errors, r.Hostnames, r.MachineIDs, r.DuplicateIDs, r.IDNotEchoed)
}
