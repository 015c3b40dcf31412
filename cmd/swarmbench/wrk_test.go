package main

import (
	"testing"
	"time"
)

const wrkReport = `Running 4s test @ http://127.0.0.1:8080/
  2 threads and 30 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.05ms    1.12ms  40.21ms   91.30%
    Req/Sec     7.45k   512.00     8.20k    72.50%
  Latency Distribution
     50%    1.91ms
     75%    2.30ms
     90%    2.80ms
     99%  812.00us
  59612 requests in 4.00s, 9.12MB read
  Socket errors: connect 0, read 12, write 1, timeout 3
  Non-2xx or 3xx responses: 45
Requests/sec:  14902.75
Transfer/sec:      2.28MB
`

func TestParseWrk(t *testing.T) {
	got, err := parseWrk(wrkReport)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{
		Requests: 59612, RequestsSec: 14902.75,
		P50: 1910 * time.Microsecond, P99: 812 * time.Microsecond,
		Read: 12, Write: 1, Timeout: 3, Non2xx: 45,
	}
	if got != want {
		t.Fatalf("parseWrk:\n got %+v\nwant %+v", got, want)
	}
	if got.Failed() != 61 {
		t.Errorf("Failed = %d, want 61", got.Failed())
	}
	if share, want := got.FailedShare(), 61.0/(59612+16); share != want {
		t.Errorf("FailedShare = %v, want %v", share, want)
	}
}

func TestParseWrkUnits(t *testing.T) {
	for _, tc := range []struct {
		line string
		want time.Duration
	}{
		{"99%  812.00us", 812 * time.Microsecond},
		{"99%    3.20ms", 3200 * time.Microsecond},
		{"99%    2.92s", 2920 * time.Millisecond},
		{"99%    1.50m", 90 * time.Second},
	} {
		out := "  1 requests in 1.00s, 1KB read\nRequests/sec: 1.00\n50% 1.00us\n" + tc.line + "\n"
		got, err := parseWrk(out)
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if got.P99 != tc.want {
			t.Errorf("%q: P99 = %v, want %v", tc.line, got.P99, tc.want)
		}
	}
}

func TestParseWrkRefusesPartialOutput(t *testing.T) {
	for name, out := range map[string]string{
		"no total":       "Requests/sec: 10.00\n",
		"no rate":        "  10 requests in 1.00s, 1KB read\n",
		"no percentiles": "  10 requests in 1.00s, 1KB read\nRequests/sec: 10.00\n",
		"empty":          "unable to connect to 127.0.0.1:1 Connection refused\n",
	} {
		if _, err := parseWrk(out); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// No request completed: wrk prints no distribution, and that is a result.
	if got, err := parseWrk("  0 requests in 1.00s, 0.00B read\nRequests/sec: 0.00\n"); err != nil || got.Requests != 0 {
		t.Errorf("zero requests: %+v, %v", got, err)
	}
}
