// Package load is a small HTTP load generator for tests and benchmarks on
// loopback: C keep-alive clients, each with its own transport and exactly
// one connection (so "a keep-alive client" is what a balancer really sees),
// sending GET requests one after another until a duration or a request
// count runs out.
//
// Every request is recorded (when it was sent, its status or transport
// error, its latency and the task that answered, from a response header
// such as the stand-in's X-Task) into per-client, preallocated slices, so
// that recording takes no lock and little time. The [Result] answers
// questions over the whole run or a time window of it: totals, failures by
// kind, latency percentiles, requests per task and per task over time.
//
//	run, err := load.Start(load.Config{URL: "http://127.0.0.1:8080/", Clients: 30, Duration: 5 * time.Second})
//	…                       // change something while the load runs
//	mark := run.Elapsed()
//	res := run.Wait()
//	after := res.Summarize(mark, res.Elapsed)
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config, set by Start.
const (
	DefaultTaskHeader = "X-Task"
	DefaultTimeout    = 5 * time.Second
)

// Config describes a load run. At least one of Duration and Requests must
// be set: a run always stops by itself.
type Config struct {
	// URL is requested with GET by every client. Its host must be a
	// loopback address (127.0.0.0/8, ::1) or localhost, unless
	// AllowAnyHost is set.
	URL string

	// AllowAnyHost lets URL name any host. The default keeps to loopback
	// because the clients send as fast as they can: a test or benchmark
	// whose URL comes out wrong must not flood a real machine. Only the
	// e2e load client sets it: it runs inside the test's own Docker
	// network, where the edge is a service name.
	AllowAnyHost bool

	// Clients is the number of concurrent keep-alive clients. Default 1.
	// Each uses one connection at a time and keeps it; it opens another
	// only when that one closes, or when Go's transport declines to reuse
	// it (the last request's write not confirmed within 50 ms: a starved
	// machine).
	Clients int

	// Duration ends the run this long after it started; requests in
	// flight then are cut short and not recorded. 0: no time bound.
	Duration time.Duration

	// Requests ends the run after this many requests in all. 0: no count
	// bound.
	Requests int

	// Timeout bounds one request, body included. Default 5s.
	Timeout time.Duration

	// TaskHeader names the response header that says which task answered.
	// Default "X-Task".
	TaskHeader string

	// Check, if set, sees every complete answer with a status below 400
	// and its whole body (valid only during the call); an error makes the
	// request fail as ErrCheck. The clients call it concurrently.
	Check func(resp *http.Response, body []byte) error
}

// Run is a load run in progress.
type Run struct {
	cfg     Config
	start   time.Time
	ctx     context.Context
	cancel  context.CancelFunc
	clients []*client
	wg      sync.WaitGroup
	budget  atomic.Int64 // requests left to start when cfg.Requests > 0

	waitOnce sync.Once
	result   *Result
}

// Start checks cfg and starts the clients. The run ends when its duration
// or request count is spent, or on Stop; Wait returns its result.
func Start(cfg Config) (*Run, error) {
	if cfg.Clients == 0 {
		cfg.Clients = 1
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.TaskHeader == "" {
		cfg.TaskHeader = DefaultTaskHeader
	}
	target, err := cfg.validate()
	if err != nil {
		return nil, err
	}

	r := &Run{cfg: cfg}
	r.budget.Store(int64(cfg.Requests))
	if cfg.Duration > 0 {
		r.ctx, r.cancel = context.WithTimeout(context.Background(), cfg.Duration)
	} else {
		r.ctx, r.cancel = context.WithCancel(context.Background())
	}
	perClient := 1024 // grows by append when a timed run needs more
	if cfg.Requests > 0 {
		perClient = cfg.Requests/cfg.Clients + 1
	}
	r.clients = make([]*client, cfg.Clients)
	for i := range r.clients {
		r.clients[i] = newClient(r.ctx, target, cfg, perClient)
	}
	r.start = time.Now()
	for _, c := range r.clients {
		r.wg.Go(func() { c.run(r) })
	}
	return r, nil
}

// validate checks the fields Start does not default and returns the
// parsed URL.
func (cfg Config) validate() (*url.URL, error) {
	if cfg.Clients < 0 {
		return nil, fmt.Errorf("load: clients must not be negative: %d", cfg.Clients)
	}
	if cfg.Duration < 0 || cfg.Requests < 0 || cfg.Timeout < 0 {
		return nil, errors.New("load: duration, requests and timeout must not be negative")
	}
	if cfg.Duration == 0 && cfg.Requests == 0 {
		return nil, errors.New("load: set a duration, a request count or both, so that the run ends")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("load: %v", err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("load: URL %q: only http is supported", cfg.URL)
	}
	if host := u.Hostname(); host != "localhost" && !cfg.AllowAnyHost {
		addr, err := netip.ParseAddr(host)
		if err != nil || !addr.IsLoopback() {
			return nil, fmt.Errorf("load: URL %q: the host must be a loopback address or localhost", cfg.URL)
		}
	}
	return u, nil
}

// Elapsed returns the time since the run started, on the clock its
// records use.
func (r *Run) Elapsed() time.Duration { return time.Since(r.start) }

// Stop ends the run early; requests in flight are cut short and not
// recorded. Wait still returns the result.
func (r *Run) Stop() { r.cancel() }

// Progress returns how many requests the run has recorded so far and how
// many of them failed, for watching a run that is still going.
func (r *Run) Progress() (requests, failed int) {
	for _, c := range r.clients {
		requests += int(c.recorded.Load())
		failed += int(c.failed.Load())
	}
	return requests, failed
}

// Wait waits for the run to end and returns its result. Later calls
// return the same result.
func (r *Run) Wait() *Result {
	r.waitOnce.Do(func() {
		r.wg.Wait()
		elapsed := r.Elapsed()
		r.cancel()
		r.result = merge(r.clients, elapsed)
		for _, c := range r.clients {
			c.transport.CloseIdleConnections()
		}
	})
	return r.result
}

// take reserves one request of the count budget; it reports false when
// the budget is spent. Without a count bound it always succeeds.
func (r *Run) take() bool {
	return r.cfg.Requests == 0 || r.budget.Add(-1) >= 0
}

// client is one keep-alive client and its records.
type client struct {
	transport  *http.Transport
	httpClient *http.Client
	req        *http.Request
	taskHeader string
	check      func(*http.Response, []byte) error
	records    []Record
	tasks      []string       // this client's task names; record.Task indexes it
	taskIndex  map[string]int // name → index in tasks
	body       bytes.Buffer   // the last answer's body, reused

	// len(records) and how many of them failed, for Run.Progress
	recorded, failed atomic.Int64
}

// newClient returns a client with its own transport, which holds at most
// one connection.
func newClient(ctx context.Context, target *url.URL, cfg Config, capacity int) *client {
	dialer := &net.Dialer{Timeout: cfg.Timeout}
	transport := &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConns:        1,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	// reused for every request: GET with no body, nothing in it changes
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	return &client{
		transport:  transport,
		httpClient: &http.Client{Transport: transport, Timeout: cfg.Timeout},
		req:        req,
		taskHeader: http.CanonicalHeaderKey(cfg.TaskHeader),
		check:      cfg.Check,
		records:    make([]Record, 0, capacity),
		tasks:      []string{""}, // index 0: no task header
		taskIndex:  map[string]int{"": 0},
	}
}

// run sends requests one after another until the run ends.
func (c *client) run(r *Run) {
	for r.ctx.Err() == nil && r.take() {
		sent := time.Now()
		status, kind, task := c.do()
		if r.ctx.Err() != nil && kind != ErrNone {
			return // cut short by the end of the run: not the target's failure
		}
		c.records = append(c.records, Record{
			At:      sent.Sub(r.start),
			Latency: time.Since(sent),
			Status:  int16(status),
			Err:     kind,
			Task:    uint16(c.taskID(task)),
		})
		c.recorded.Add(1)
		if kind != ErrNone {
			c.failed.Add(1)
		}
	}
}

// do sends one request and reads the whole answer, so that the connection
// can carry the next one.
func (c *client) do() (status int, kind ErrorKind, task string) {
	resp, err := c.httpClient.Do(c.req)
	if err != nil {
		return 0, classify(err), ""
	}
	defer resp.Body.Close()
	if vals := resp.Header[c.taskHeader]; len(vals) > 0 {
		task = vals[0]
	}
	c.body.Reset()
	if _, err := c.body.ReadFrom(resp.Body); err != nil {
		return resp.StatusCode, classify(err), task
	}
	if resp.StatusCode >= 400 {
		return resp.StatusCode, ErrStatus, task
	}
	if c.check != nil && c.check(resp, c.body.Bytes()) != nil {
		return resp.StatusCode, ErrCheck, task
	}
	return resp.StatusCode, ErrNone, task
}

// taskID interns a task name for this client.
func (c *client) taskID(name string) int {
	id, ok := c.taskIndex[name]
	if !ok {
		id = len(c.tasks)
		c.tasks = append(c.tasks, name)
		c.taskIndex[name] = id
	}
	return id
}
