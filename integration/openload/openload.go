// Package openload sends GET requests open-loop, at a fixed rate that
// does not depend on how fast answers come: request i is sent at
// i/Rate after the start whether or not earlier ones have been answered,
// and its latency counts from that planned time. A closed-loop client
// (integration/load, wrk) sends the next request only after an answer, so
// during an outage it counts a fast 503 many times and a slow success
// once; this one sees every request a user would have sent.
//
//	res, err := openload.Run(ctx, openload.Config{URL: "http://127.0.0.1:8080/", Rate: 200, Duration: 10 * time.Second})
//	fmt.Println(res.Summary())
package openload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultTimeout bounds one request when Config.Timeout is 0.
const DefaultTimeout = 15 * time.Second

// Config describes a run. It always ends by itself: after Duration, plus
// the Timeout of the last requests.
type Config struct {
	// URL is requested with GET. Its host must be a loopback address or
	// localhost unless AllowAnyHost is set.
	URL string

	// AllowAnyHost lets URL name any host (the e2e client, inside its own
	// Docker network).
	AllowAnyHost bool

	// Rate is the number of requests sent per second.
	Rate int

	// Duration is how long requests are sent.
	Duration time.Duration

	// Timeout bounds one request, body included. Default 15s.
	Timeout time.Duration
}

// Record is one request.
type Record struct {
	At      time.Duration // when it was planned, since the start
	Latency time.Duration // from At until the body was read or it failed
	Status  int           // 0 when no answer came
	Err     string        // empty when it succeeded (2xx)
}

// Result is what a run recorded, ordered by At.
type Result struct {
	Records []Record
}

// Run sends cfg.Rate requests a second for cfg.Duration and returns when
// every one has ended. Cancelling ctx stops sending; requests in flight
// then end with their own timeout.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	client := &http.Client{
		Timeout:   cfg.Timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Rate, IdleConnTimeout: 30 * time.Second},
	}
	defer client.CloseIdleConnections()

	total := int(cfg.Duration.Seconds() * float64(cfg.Rate))
	records := make([]Record, total)
	interval := time.Second / time.Duration(cfg.Rate)
	start := time.Now()
	var wg sync.WaitGroup
	sent := 0
	for ; sent < total; sent++ {
		at := time.Duration(sent) * interval
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(start.Add(at))):
		}
		if ctx.Err() != nil {
			break
		}
		rec := &records[sent]
		wg.Go(func() { *rec = send(client, cfg.URL, start, at) })
	}
	wg.Wait()
	return &Result{Records: records[:sent]}, nil
}

// validate checks cfg.
func (cfg Config) validate() error {
	if cfg.Rate <= 0 || cfg.Duration <= 0 || cfg.Timeout < 0 {
		return errors.New("openload: rate and duration must be positive, timeout not negative")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return fmt.Errorf("openload: %v", err)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("openload: URL %q: only http is supported", cfg.URL)
	}
	if host := u.Hostname(); host != "localhost" && !cfg.AllowAnyHost {
		if addr, err := netip.ParseAddr(host); err != nil || !addr.IsLoopback() {
			return fmt.Errorf("openload: URL %q: the host must be a loopback address or localhost", cfg.URL)
		}
	}
	return nil
}

// send makes one request planned at start+at.
func send(client *http.Client, target string, start time.Time, at time.Duration) Record {
	rec := Record{At: at}
	resp, err := client.Get(target)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		rec.Status = resp.StatusCode
		if err == nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	rec.Latency = time.Since(start) - at
	if err != nil {
		rec.Err = err.Error()
	}
	return rec
}

// Summary is a run, or a window of it, in figures.
type Summary struct {
	Sent, Failed int
	Worst, P99   time.Duration
	// Failures counts the failed requests by error text.
	Failures map[string]int
}

// Summary sums up the whole run.
func (res *Result) Summary() Summary { return res.Summarize(0, time.Duration(1<<62)) }

// Summarize sums up the requests planned in [from, to).
func (res *Result) Summarize(from, to time.Duration) Summary {
	s := Summary{Failures: make(map[string]int)}
	var latencies []time.Duration
	for _, rec := range res.Records {
		if rec.At < from || rec.At >= to {
			continue
		}
		s.Sent++
		latencies = append(latencies, rec.Latency)
		if rec.Err != "" {
			s.Failed++
			s.Failures[shorten(rec.Err)]++
		}
	}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		s.Worst = latencies[len(latencies)-1]
		s.P99 = latencies[(len(latencies)*99+99)/100-1]
	}
	return s
}

// shorten keeps error texts groupable: a transport error names the
// request's URL and ephemeral port.
func shorten(err string) string {
	if i := strings.LastIndex(err, ": "); i >= 0 && !strings.HasPrefix(err, "status") {
		return err[i+2:]
	}
	return err
}

// String formats s on one line.
func (s Summary) String() string {
	return fmt.Sprintf("sent %d, failed %d, worst %v, p99 %v, failures %v",
		s.Sent, s.Failed, s.Worst.Round(time.Millisecond), s.P99.Round(time.Millisecond), s.Failures)
}
