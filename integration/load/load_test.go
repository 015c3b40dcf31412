package load

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/integration/testsupport"
)

// startServer serves handler on 127.0.0.1 and counts the connections
// clients open.
func startServer(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestCountBoundedRunKeepsOneConnectionPerClient(t *testing.T) {
	var served atomic.Int64
	srv, conns := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		task := "even"
		if served.Add(1)%2 == 1 {
			task = "odd"
		}
		w.Header().Set("X-Task", task)
		w.Write([]byte(strings.Repeat("x", 100)))
	})
	run, err := Start(Config{URL: srv.URL + "/", Clients: 4, Requests: 1000})
	if err != nil {
		t.Fatal(err)
	}
	res := run.Wait()
	s := res.Summary()
	if s.Requests != 1000 || served.Load() != 1000 {
		t.Fatalf("%d requests recorded, %d served; want 1000 of each", s.Requests, served.Load())
	}
	if s.Failed() != 0 {
		t.Fatalf("failures: %v", s.Failures)
	}
	// Go's transport drops a connection instead of reusing it when the
	// write of the last request is not confirmed within 50 ms (a starved
	// machine), so a client may now and then open another one.
	if got := int(conns.Load()); got < 4 || got > 4+s.Requests/100 {
		t.Fatalf("%d connections opened by 4 keep-alive clients for %d requests, want 4 (a few more at most)", got, s.Requests)
	}
	if s.PerTask["odd"] != 500 || s.PerTask["even"] != 500 || s.Share("odd") != 0.5 {
		t.Fatalf("per task %v, share of odd %v; want 500 each, 0.5", s.PerTask, s.Share("odd"))
	}
	if s.P50 <= 0 || s.P50 > s.P99 || s.P99 > s.Max {
		t.Fatalf("latencies p50 %v p99 %v max %v out of order", s.P50, s.P99, s.Max)
	}
	for i := 1; i < len(res.Records); i++ {
		if res.Records[i].At < res.Records[i-1].At {
			t.Fatal("records not ordered by time")
		}
	}
	if run.Wait() != res {
		t.Fatal("a second Wait returned another result")
	}
}

func TestDurationBoundedRunStopsByItself(t *testing.T) {
	srv, _ := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
	})
	begin := time.Now()
	run, err := Start(Config{URL: srv.URL, Clients: 2, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	res := run.Wait()
	// It ends by itself: Wait returns without Stop, within a bound that
	// a loaded machine meets.
	if took := time.Since(begin); took > 30*time.Second {
		t.Fatalf("a 300ms run took %v", took)
	}
	s := res.Summary()
	if s.Requests == 0 || s.Failed() != 0 {
		t.Fatalf("summary %v", s)
	}
	if s.PerTask[""] != s.Requests {
		t.Fatalf("answers without a task header counted as %v", s.PerTask)
	}
	buckets := res.Timeline(100 * time.Millisecond)
	if len(buckets) < 3 {
		t.Fatalf("%d buckets of 100ms in a 300ms run", len(buckets))
	}
	total := 0
	for i, b := range buckets {
		if b.Start != time.Duration(i)*100*time.Millisecond {
			t.Fatalf("bucket %d starts at %v", i, b.Start)
		}
		total += b.PerTask[0]
	}
	if total != s.Requests {
		t.Fatalf("buckets count %d requests, summary %d", total, s.Requests)
	}
}

func TestFailuresByKind(t *testing.T) {
	srv, _ := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Task", "app.1")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	run, err := Start(Config{URL: srv.URL, Requests: 3})
	if err != nil {
		t.Fatal(err)
	}
	s := run.Wait().Summary()
	if s.Failures["status 503"] != 3 || s.Failed() != 3 || s.PerTask["app.1"] != 3 {
		t.Fatalf("503 answers: failures %v, per task %v", s.Failures, s.PerTask)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String() + "/"
	ln.Close()
	run, err = Start(Config{URL: closedURL, Requests: 2})
	if err != nil {
		t.Fatal(err)
	}
	if s := run.Wait().Summary(); s.Failures["refused"] != 2 || len(s.PerTask) != 0 {
		t.Fatalf("closed port: failures %v, per task %v", s.Failures, s.PerTask)
	}

	slow, _ := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	run, err = Start(Config{URL: slow.URL, Requests: 1, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if s := run.Wait().Summary(); s.Failures["timeout"] != 1 {
		t.Fatalf("slow server: failures %v", s.Failures)
	}
}

func TestCheckSeesAnswersAndFailsThoseItRefuses(t *testing.T) {
	var served atomic.Int64
	srv, _ := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		w.Header().Set("X-Serial", strconv.FormatInt(n, 10))
		switch n % 3 {
		case 0:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 1:
			w.Write([]byte("good"))
		case 2:
			w.Write([]byte("bad"))
		}
	})
	var (
		mu      sync.Mutex
		serials = map[string]bool{}
	)
	run, err := Start(Config{URL: srv.URL, Clients: 3, Requests: 300, Check: func(resp *http.Response, body []byte) error {
		mu.Lock()
		serials[resp.Header.Get("X-Serial")] = true
		mu.Unlock()
		if string(body) != "good" {
			return errors.New("not good")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := run.Wait().Summary()
	if s.Requests != 300 || s.Failures["check"] != 100 || s.Failures["status 503"] != 100 || s.Failed() != 200 {
		t.Fatalf("100 good, 100 bad, 100 503 answers: %v", s)
	}
	if len(serials) != 200 {
		t.Fatalf("Check saw %d answers, want the 200 with status 200", len(serials))
	}
	if requests, failed := run.Progress(); requests != s.Requests || failed != s.Failed() {
		t.Fatalf("progress %d requests, %d failed after the run; summary %v", requests, failed, s)
	}
}

func TestProgressGrowsDuringARun(t *testing.T) {
	srv, _ := startServer(t, func(w http.ResponseWriter, r *http.Request) {})
	run, err := Start(Config{URL: srv.URL, Clients: 2, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Wait()
	defer run.Stop()
	testsupport.WaitFor(t, "100 requests shown during the run", 30*time.Second, func() bool {
		requests, _ := run.Progress()
		return requests >= 100
	})
}

func TestStopEndsARunEarlyWithoutCountingCutRequests(t *testing.T) {
	srv, _ := startServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	run, err := Start(Config{URL: srv.URL, Clients: 3, Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, run.Stop)
	if s := run.Wait().Summary(); s.Requests != 0 {
		t.Fatalf("requests cut short by Stop were recorded: %v", s)
	}
}

func TestStartRefusesUnboundedOrNonLoopbackRuns(t *testing.T) {
	for _, tc := range []struct {
		cfg     Config
		wantErr string
	}{
		{Config{URL: "http://127.0.0.1:1/"}, "set a duration, a request count or both"},
		{Config{URL: "http://192.0.2.1/", Requests: 1}, `URL "http://192.0.2.1/": the host must be a loopback address or localhost`},
		{Config{URL: "http://example.com/", Requests: 1}, `URL "http://example.com/": the host must be a loopback address or localhost`},
		{Config{URL: "https://127.0.0.1/", Requests: 1}, `URL "https://127.0.0.1/": only http is supported`},
		{Config{URL: "http://127.0.0.1/", Requests: 1, Clients: -1}, "clients must not be negative: -1"},
		{Config{URL: "http://127.0.0.1/", Duration: -time.Second, Requests: 1}, "duration, requests and timeout must not be negative"},
	} {
		if _, err := Start(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Start(%+v): error %v, want one containing %q", tc.cfg, err, tc.wantErr)
		}
	}
	for _, url := range []string{"http://localhost:1/", "http://[::1]:1/", "http://127.0.10.7:1/"} {
		if _, err := (Config{URL: url, Requests: 1}).validate(); err != nil {
			t.Errorf("%s refused: %v", url, err)
		}
	}
	for _, url := range []string{"http://192.0.2.1/", "http://edge/"} {
		if _, err := (Config{URL: url, Requests: 1, AllowAnyHost: true}).validate(); err != nil {
			t.Errorf("%s refused with AllowAnyHost: %v", url, err)
		}
	}
}

func TestSummarizeWindowAndPercentiles(t *testing.T) {
	res := &Result{Elapsed: 4 * time.Second, Tasks: []string{"", "a", "b"}}
	for i := range 100 {
		res.Records = append(res.Records, Record{
			At:      time.Duration(i) * 40 * time.Millisecond,
			Latency: time.Duration(i+1) * time.Millisecond,
			Status:  200,
			Task:    uint16(1 + i%2),
		})
	}
	s := res.Summarize(time.Second, 2*time.Second) // records 25..49
	if s.Requests != 25 || s.PerTask["a"] != 12 || s.PerTask["b"] != 13 {
		t.Fatalf("window: %v", s)
	}
	if s.P50 != 38*time.Millisecond || s.P99 != 50*time.Millisecond || s.Max != 50*time.Millisecond {
		t.Fatalf("window percentiles p50 %v p99 %v max %v", s.P50, s.P99, s.Max)
	}
	if got := s.Throughput(); got != 25 {
		t.Fatalf("throughput %v, want 25/s", got)
	}
	all := res.Summary()
	if all.P50 != 50*time.Millisecond || all.P99 != 99*time.Millisecond {
		t.Fatalf("whole run p50 %v p99 %v", all.P50, all.P99)
	}
}
