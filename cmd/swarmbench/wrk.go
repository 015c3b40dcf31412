package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkLoad is one wrk invocation: the same threads and connections for every
// peer of a scenario, so that the figures compare.
type wrkLoad struct {
	threads, conns int
	duration       time.Duration // whole seconds: wrk takes no finer unit
	timeout        time.Duration // a request slower than this counts as a socket timeout
}

// wrkResult is what wrk reports about one run.
type wrkResult struct {
	Requests    int64   // responses received, any status
	RequestsSec float64 // Requests/sec
	P50, P99    time.Duration
	// Socket errors; a request still open when wrk stops counts nowhere.
	Connect, Read, Write, Timeout int64
	Non2xx                        int64 // responses with a status outside 2xx and 3xx
}

// Failed counts the requests that did not get a 2xx or 3xx answer.
func (r wrkResult) Failed() int64 {
	return r.Connect + r.Read + r.Write + r.Timeout + r.Non2xx
}

// FailedShare is Failed over every attempt wrk saw end (responses and
// socket errors).
func (r wrkResult) FailedShare() float64 {
	attempts := r.Requests + r.Connect + r.Read + r.Write + r.Timeout
	if attempts == 0 {
		return 0
	}
	return float64(r.Failed()) / float64(attempts)
}

// runWrk runs wrk against url and parses its report.
func runWrk(ctx context.Context, load wrkLoad, url string, header ...string) (wrkResult, error) {
	args := []string{
		"-t" + strconv.Itoa(load.threads),
		"-c" + strconv.Itoa(load.conns),
		"-d" + strconv.Itoa(int(load.duration.Seconds())) + "s",
		"--timeout", strconv.Itoa(int(load.timeout.Seconds())) + "s",
		"--latency",
	}
	for _, h := range header {
		args = append(args, "-H", h)
	}
	args = append(args, url)
	out, err := exec.CommandContext(ctx, "wrk", args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	res, err := parseWrk(string(out))
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return res, nil
}

var (
	wrkTotal        = regexp.MustCompile(`^(\d+) requests in `)
	wrkRate         = regexp.MustCompile(`^Requests/sec:\s+([0-9.]+)`)
	wrkPercentile   = regexp.MustCompile(`^(50|99)%\s+([0-9.]+)(us|ms|s|m|h)$`)
	wrkSocketErrors = regexp.MustCompile(`^Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx       = regexp.MustCompile(`^Non-2xx or 3xx responses: (\d+)`)
)

// wrkTimeUnits are the units wrk prints latencies in.
var wrkTimeUnits = map[string]time.Duration{
	"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour,
}

// parseWrk reads the report of `wrk --latency`. The total, the rate and
// both percentiles must be there; the error lines appear only when nonzero.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveTotal, haveRate, haveP50, haveP99 bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := wrkTotal.FindStringSubmatch(line); m != nil {
			r.Requests, _ = strconv.ParseInt(m[1], 10, 64)
			haveTotal = true
		} else if m := wrkRate.FindStringSubmatch(line); m != nil {
			r.RequestsSec, _ = strconv.ParseFloat(m[1], 64)
			haveRate = true
		} else if m := wrkPercentile.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			d := time.Duration(v * float64(wrkTimeUnits[m[3]]))
			if m[1] == "50" {
				r.P50, haveP50 = d, true
			} else {
				r.P99, haveP99 = d, true
			}
		} else if m := wrkSocketErrors.FindStringSubmatch(line); m != nil {
			r.Connect, _ = strconv.ParseInt(m[1], 10, 64)
			r.Read, _ = strconv.ParseInt(m[2], 10, 64)
			r.Write, _ = strconv.ParseInt(m[3], 10, 64)
			r.Timeout, _ = strconv.ParseInt(m[4], 10, 64)
		} else if m := wrkNon2xx.FindStringSubmatch(line); m != nil {
			r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
		}
	}
	switch {
	case !haveTotal:
		return r, fmt.Errorf("no request total in wrk's output")
	case !haveRate:
		return r, fmt.Errorf("no Requests/sec in wrk's output")
	case !haveP50 || !haveP99:
		// wrk prints no distribution when no request completed.
		if r.Requests == 0 {
			return r, nil
		}
		return r, fmt.Errorf("no 50%%/99%% latency in wrk's output (run with --latency)")
	}
	return r, nil
}
