// Package e2e tests the edge on a real Docker engine (build tag e2e): a
// single-node swarm, an overlay network, a 5-replica app in dnsrr mode and
// the edge in a FROM scratch image, driven by a load client that runs in a
// container on the same network. This file is what every load checks, on
// top of package load; the load client (./loadclient) prints its result as
// JSON, so the tests read it into the same type.
package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/swarmedge/swarmedge/integration/load"
)

// machineIDBits is the Sonyflake layout's machine ID width (the default):
// the low bits of each X-Request-ID name the edge that minted it.
const machineIDBits = 16

// LoadResult is what a load saw. Every request is a GET, so the edge may
// retry any of them: a failed request is one the client saw fail.
type LoadResult struct {
	Requests int `json:"requests"`
	Failed   int `json:"failed"`
	// Failures counts failed requests by kind, as load.Summary does;
	// "check" is an answer other than the app's 200.
	Failures map[string]int `json:"failures,omitempty"`
	Seconds  float64        `json:"seconds"`
	// Hostnames counts answers per app task (the app's Hostname line).
	Hostnames map[string]int `json:"hostnames"`
	// MachineIDs counts X-Request-IDs per machine ID.
	MachineIDs map[string]int `json:"machine_ids"`
	// DuplicateIDs counts X-Request-IDs seen before in this load.
	DuplicateIDs int `json:"duplicate_ids"`
	// IDNotEchoed counts answers whose X-Request-ID response header is
	// missing or differs from the one the app received.
	IDNotEchoed int `json:"id_not_echoed"`
}

// CheckedLoad is a load run whose answers are checked as they come: each
// must be the app's 200, and its X-Request-ID is tallied.
type CheckedLoad struct {
	*load.Run

	mu      sync.Mutex
	seen    map[uint64]bool // X-Request-IDs so far
	tallies LoadResult      // the per-answer fields; Result adds the totals
}

// StartCheckedLoad starts a load run of cfg with the e2e checks as its
// Check.
func StartCheckedLoad(cfg load.Config) (*CheckedLoad, error) {
	l := &CheckedLoad{
		seen:    map[uint64]bool{},
		tallies: LoadResult{Hostnames: map[string]int{}, MachineIDs: map[string]int{}},
	}
	cfg.Check = l.check
	run, err := load.Start(cfg)
	if err != nil {
		return nil, err
	}
	l.Run = run
	return l, nil
}

var errNotOK = errors.New("not a 200 answer")

// check reads an answer of cmd/whoami: "Hostname: <task>" and
// "X-Request-Id: <the ID it received>".
func (l *CheckedLoad) check(resp *http.Response, body []byte) error {
	if resp.StatusCode != http.StatusOK {
		return errNotOK
	}
	id := resp.Header.Get("X-Request-Id")
	var hostname, received string
	for line := range strings.Lines(string(body)) {
		key, value, _ := strings.Cut(strings.TrimSpace(line), ": ")
		switch key {
		case "Hostname":
			hostname = value
		case "X-Request-Id":
			received = value
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	l.tallies.Hostnames[hostname]++
	if id == "" || received != id {
		l.tallies.IDNotEchoed++
	}
	if n, err := strconv.ParseUint(id, 10, 64); err == nil {
		if l.seen[n] {
			l.tallies.DuplicateIDs++
		}
		l.seen[n] = true
		l.tallies.MachineIDs[strconv.FormatUint(n&(1<<machineIDBits-1), 10)]++
	}
	return nil
}

// Result waits for the run to end and returns what it saw.
func (l *CheckedLoad) Result() LoadResult {
	sum := l.Wait().Summary()
	l.mu.Lock()
	defer l.mu.Unlock()
	res := l.tallies
	res.Requests, res.Failed, res.Failures, res.Seconds = sum.Requests, sum.Failed(), sum.Failures, sum.To.Seconds()
	return res
}

// String sums up a result in one line for test logs.
func (r LoadResult) String() string {
	return fmt.Sprintf("%d requests in %.1fs (%.0f/s), %d failed %v, tasks %v, machine IDs %v, %d duplicate IDs, %d IDs not echoed",
		r.Requests, r.Seconds, float64(r.Requests)/max(r.Seconds, 1e-9), r.Failed, r.Failures, r.Hostnames, r.MachineIDs, r.DuplicateIDs, r.IDNotEchoed)
}
