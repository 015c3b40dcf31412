package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrorKind says how a request failed.
type ErrorKind uint8

// The kinds of failure. A request fails when no complete answer came back
// (a transport error), the answer's status is 400 or more, or Config.Check
// refused the answer.
const (
	ErrNone    ErrorKind = iota // a complete answer with status < 400
	ErrStatus                   // a complete answer with status ≥ 400
	ErrCheck                    // a complete answer that Config.Check refused
	ErrTimeout                  // no answer within Config.Timeout
	ErrRefused                  // connection refused
	ErrReset                    // connection reset by the peer
	ErrEOF                      // connection closed before the answer was complete
	ErrOther                    // any other transport error
)

var errorKindNames = [...]string{
	ErrNone: "ok", ErrStatus: "status", ErrCheck: "check", ErrTimeout: "timeout", ErrRefused: "refused",
	ErrReset: "reset", ErrEOF: "eof", ErrOther: "error",
}

// String names the kind.
func (k ErrorKind) String() string {
	if int(k) < len(errorKindNames) {
		return errorKindNames[k]
	}
	return "ErrorKind(" + strconv.Itoa(int(k)) + ")"
}

// classify returns the kind of a transport error.
func classify(err error) ErrorKind {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return ErrTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrRefused
	case errors.Is(err, syscall.ECONNRESET):
		return ErrReset
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return ErrEOF
	default:
		return ErrOther
	}
}

// Record is one request. Records are compact (24 bytes): a run of a
// million requests keeps them all.
type Record struct {
	At      time.Duration // when the request was sent, since the run started
	Latency time.Duration // until the body was read or the request failed
	Status  int16         // the HTTP status; 0 when no answer came
	Err     ErrorKind
	Task    uint16 // index into Result.Tasks; 0 ("") when no task header came
}

// Failed reports whether the request failed.
func (rec Record) Failed() bool { return rec.Err != ErrNone }

// failureKind names a failure for Summary.Failures: "status 503",
// "refused", …
func (rec Record) failureKind() string {
	if rec.Err == ErrStatus {
		return "status " + strconv.Itoa(int(rec.Status))
	}
	return rec.Err.String()
}

// Result is what a run recorded.
type Result struct {
	// Elapsed is how long the run took.
	Elapsed time.Duration
	// Records holds every request, ordered by At.
	Records []Record
	// Tasks are the names of the tasks that answered, in order of first
	// answer; Tasks[0] is "", for answers without a task header.
	Tasks []string
}

// merge combines the clients' records, mapping their task numbers to one
// table.
func merge(clients []*client, elapsed time.Duration) *Result {
	res := &Result{Elapsed: elapsed, Tasks: []string{""}}
	index := map[string]uint16{"": 0}
	total := 0
	for _, c := range clients {
		total += len(c.records)
	}
	res.Records = make([]Record, 0, total)
	for _, c := range clients {
		global := make([]uint16, len(c.tasks))
		for i, name := range c.tasks {
			id, ok := index[name]
			if !ok {
				id = uint16(len(res.Tasks))
				res.Tasks = append(res.Tasks, name)
				index[name] = id
			}
			global[i] = id
		}
		for _, rec := range c.records {
			rec.Task = global[rec.Task]
			res.Records = append(res.Records, rec)
		}
	}
	slices.SortFunc(res.Records, func(a, b Record) int { return int(a.At - b.At) })
	return res
}

// Summary describes the requests of a run, or of a window of it.
type Summary struct {
	From, To time.Duration // the window: requests sent in [From, To)
	Requests int
	// Failures counts failed requests by kind: "status 503", "check",
	// "timeout", "refused", "reset", "eof", "error".
	Failures map[string]int
	// Latency percentiles of all requests, failed ones included.
	P50, P99, Max time.Duration
	// PerTask counts the answers (failed ones included) by task name;
	// answers with no task header count under "".
	PerTask map[string]int
}

// Summary summarizes the whole run.
func (res *Result) Summary() Summary { return res.Summarize(0, res.Elapsed) }

// Summarize summarizes the requests sent in [from, to).
func (res *Result) Summarize(from, to time.Duration) Summary {
	s := Summary{From: from, To: to, Failures: map[string]int{}, PerTask: map[string]int{}}
	window := res.window(from, to)
	latencies := make([]time.Duration, len(window))
	for i, rec := range window {
		latencies[i] = rec.Latency
		if rec.Failed() {
			s.Failures[rec.failureKind()]++
		}
		if rec.Status != 0 {
			s.PerTask[res.Tasks[rec.Task]]++
		}
	}
	s.Requests = len(window)
	if len(latencies) > 0 {
		slices.Sort(latencies)
		s.P50 = percentile(latencies, 50)
		s.P99 = percentile(latencies, 99)
		s.Max = latencies[len(latencies)-1]
	}
	return s
}

// window returns the records sent in [from, to).
func (res *Result) window(from, to time.Duration) []Record {
	lo := sort.Search(len(res.Records), func(i int) bool { return res.Records[i].At >= from })
	hi := sort.Search(len(res.Records), func(i int) bool { return res.Records[i].At >= to })
	return res.Records[lo:max(lo, hi)]
}

// percentile returns the p-th percentile (nearest rank) of sorted values.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (len(sorted)*p + 99) / 100 // ceil(n·p/100), 1-based
	return sorted[max(rank, 1)-1]
}

// Failed returns the number of failed requests.
func (s Summary) Failed() int {
	n := 0
	for _, c := range s.Failures {
		n += c
	}
	return n
}

// Share returns task's fraction of the answers that named a task.
func (s Summary) Share(task string) float64 {
	named := 0
	for name, n := range s.PerTask {
		if name != "" {
			named += n
		}
	}
	if named == 0 {
		return 0
	}
	return float64(s.PerTask[task]) / float64(named)
}

// Throughput returns requests per second over the window.
func (s Summary) Throughput() float64 {
	if s.To <= s.From {
		return 0
	}
	return float64(s.Requests) / (s.To - s.From).Seconds()
}

// String is a one-line report: tasks in name order with their shares, and
// the number of answers without a task header.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests (%.0f/s), %d failed", s.Requests, s.Throughput(), s.Failed())
	for _, kind := range slices.Sorted(maps.Keys(s.Failures)) {
		fmt.Fprintf(&b, " [%s: %d]", kind, s.Failures[kind])
	}
	fmt.Fprintf(&b, ", latency p50 %v p99 %v max %v; tasks:", s.P50, s.P99, s.Max)
	for _, task := range slices.Sorted(maps.Keys(s.PerTask)) {
		if task == "" {
			fmt.Fprintf(&b, " (no task header) %d", s.PerTask[task])
			continue
		}
		fmt.Fprintf(&b, " %s %.1f%%", task, 100*s.Share(task))
	}
	return b.String()
}

// Bucket counts the requests sent in one slice of time.
type Bucket struct {
	Start    time.Duration
	Requests int
	Failed   int
	// PerTask counts answers by task, indexed like Result.Tasks.
	PerTask []int
}

// Timeline splits the run into buckets of width (default 250ms) and
// counts each bucket's requests per task: the data of a "share over time"
// chart.
func (res *Result) Timeline(width time.Duration) []Bucket {
	if width <= 0 {
		width = 250 * time.Millisecond
	}
	buckets := make([]Bucket, int(res.Elapsed/width)+1)
	for i := range buckets {
		buckets[i] = Bucket{Start: time.Duration(i) * width, PerTask: make([]int, len(res.Tasks))}
	}
	for _, rec := range res.Records {
		b := &buckets[min(int(rec.At/width), len(buckets)-1)]
		b.Requests++
		if rec.Failed() {
			b.Failed++
		}
		if rec.Status != 0 {
			b.PerTask[rec.Task]++
		}
	}
	return buckets
}
