package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/swarmedge/swarmedge/integration/load"
)

// The stamping figure: proxied requests through `request_id` while batch
// clients ask the ID endpoint for as many IDs as it gives, in a loop.
const (
	stampBatchClients = 4
	// stampSeenHeader is where the stand-in's tasks echo the X-Request-ID
	// they received.
	stampSeenHeader = "X-Seen-Request-Id"
)

// errUnstamped marks a proxied answer whose request carried no ID.
var errUnstamped = errors.New("request reached the task without an X-Request-ID")

// stampingSample is one run of the stamping figure.
type stampingSample struct {
	ProxiedPerSec  float64 // proxied answers per second, any status
	StampedShare   float64 // of the proxied answers below 400, those whose request carried an ID
	Failed         int     // proxied requests that failed otherwise
	BatchesPerSec  float64 // batch answers with status 200 per second
	BatchIDsPerSec float64 // IDs the batch clients got per second
	BatchShed      int     // batch answers other than 200 (shed with 503)
}

// stamping loads proxied with keep-alive clients for d while
// stampBatchClients loop on batchURL.
func stamping(ctx context.Context, proxied, batchURL string, d time.Duration) (stampingSample, error) {
	var s stampingSample
	run, err := load.Start(load.Config{
		URL: proxied, Clients: proxyConns, Duration: d, Timeout: requestTimeout,
		Check: func(resp *http.Response, _ []byte) error {
			if resp.Header.Get(stampSeenHeader) == "" {
				return errUnstamped
			}
			return nil
		},
	})
	if err != nil {
		return s, err
	}
	batchCtx, stopBatches := context.WithTimeout(ctx, d)
	defer stopBatches()
	var served, shed atomic.Int64
	var wg sync.WaitGroup
	for range stampBatchClients {
		wg.Go(func() { askBatches(batchCtx, batchURL, &served, &shed) })
	}
	res := run.Wait()
	stopBatches()
	wg.Wait()

	sum := res.Summary()
	if sum.Requests == 0 {
		return s, fmt.Errorf("%s: no proxied request in %v", proxied, d)
	}
	unstamped := sum.Failures["check"]
	answered := sum.Requests - sum.Failed() + unstamped
	s.ProxiedPerSec = sum.Throughput()
	s.Failed = sum.Failed() - unstamped
	if answered > 0 {
		s.StampedShare = float64(answered-unstamped) / float64(answered)
	}
	s.BatchesPerSec = float64(served.Load()) / d.Seconds()
	s.BatchIDsPerSec = s.BatchesPerSec * idBatch
	s.BatchShed = int(shed.Load())
	if served.Load() == 0 {
		return s, fmt.Errorf("%s: no batch served in %v beside proxied traffic", batchURL, d)
	}
	return s, nil
}

// askBatches asks url over one keep-alive connection until ctx ends,
// counting the 200s and the rest.
func askBatches(ctx context.Context, url string, served, shed *atomic.Int64) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return
		}
		resp, err := client.Do(req)
		if err != nil {
			sleep(ctx, 10*time.Millisecond) // ctx ended, or a reset: do not spin
			continue
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
		case resp.StatusCode == http.StatusOK:
			served.Add(1)
		default:
			shed.Add(1)
		}
	}
}
