package swarm

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/caddymodule/internal/metricstest"
)

// probeScript is a probeFunc failing the dial addresses in fail.
type probeScript struct {
	mu   sync.Mutex
	fail map[string]bool
}

func (s *probeScript) set(fail ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = make(map[string]bool)
	for _, f := range fail {
		s.fail[f] = true
	}
}

func (s *probeScript) probe(_ context.Context, dial string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail[dial] {
		return probeStatusError(http.StatusServiceUnavailable)
	}
	return nil
}

func TestSwarmHealthWithholdsFailingTasksAndFailsOpen(t *testing.T) {
	key := poolKey{
		resolverKey: resolverKey{name: "tasks.probed", versions: "ipv4"},
		port:        8080, healthURI: "/healthz", healthInterval: 2 * time.Second, healthTimeout: time.Second,
	}
	_, script, loop, pool := newTestPool(t, key)
	probes := new(probeScript)
	pool.probe = probes.probe

	script.set(resultOK, "10.0.0.1", "10.0.0.2", "10.0.0.3")
	loop.refresh()
	all := []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"}
	if got := served(pool); !slices.Equal(got, all) {
		t.Fatalf("before any probe: served %v, want all (unchecked tasks are served)", got)
	}

	failed := metricstest.CounterDelta(t, swarmMetrics.probes.WithLabelValues("tasks.probed", "8080", "status"))
	probes.set("10.0.0.2:8080")
	pool.probeAll()
	if got, want := served(pool), []string{"10.0.0.1:8080", "10.0.0.3:8080"}; !slices.Equal(got, want) {
		t.Fatalf("one failing: served %v, want %v", got, want)
	}
	if got := failed(); got != 1 {
		t.Fatalf("failed probes counted %v, want 1", got)
	}
	task := pool.snapshot.Load().tasks[1]
	if task.Health != healthUnhealthy || task.Served || task.ProbeError != "status 503" {
		t.Fatalf("admin view of the failing task: %+v", task)
	}

	// a new task is served before its first probe
	script.set(resultOK, "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4")
	loop.refresh()
	if got, want := served(pool), []string{"10.0.0.1:8080", "10.0.0.3:8080", "10.0.0.4:8080"}; !slices.Equal(got, want) {
		t.Fatalf("new task: served %v, want %v", got, want)
	}

	probes.set("10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080", "10.0.0.4:8080")
	pool.probeAll()
	if got := served(pool); len(got) != 4 || !pool.snapshot.Load().failOpen {
		t.Fatalf("all failing: served %v (fail-open %v), want all four", got, pool.snapshot.Load().failOpen)
	}

	probes.set("10.0.0.4:8080")
	pool.probeAll()
	if got, want := served(pool), []string{"10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080"}; !slices.Equal(got, want) {
		t.Fatalf("recovered: served %v, want %v", got, want)
	}

	// a task that leaves DNS forgets its health
	script.set(resultOK, "10.0.0.1")
	loop.refresh()
	if _, kept := pool.health[netip.MustParseAddr("10.0.0.4")]; kept {
		t.Fatal("the health of a task gone from DNS is kept")
	}
}

func TestSwarmHTTPProbe(t *testing.T) {
	status := http.StatusOK
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RequestURI() != "/healthz?deep=1" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer backend.Close()
	dial := backend.Listener.Addr().String()
	pool := newTaskPool(poolKey{healthURI: "/healthz?deep=1"}, nil, realClock{})

	for _, tc := range []struct {
		status int
		want   string
	}{
		{http.StatusOK, "ok"},
		{http.StatusNoContent, "ok"},
		{http.StatusFound, "status"},
		{http.StatusInternalServerError, "status"},
	} {
		status = tc.status
		if got := probeResult(pool.httpProbe(context.Background(), dial)); got != tc.want {
			t.Errorf("status %d: probe result %q, want %q", tc.status, got, tc.want)
		}
	}

	backend.Close()
	if got := probeResult(pool.httpProbe(context.Background(), dial)); got != "error" {
		t.Errorf("closed backend: probe result %q, want error", got)
	}
	expired, cancel := context.WithDeadline(context.Background(), time.Now())
	defer cancel()
	if err := pool.httpProbe(expired, dial); probeResult(err) != "timeout" {
		t.Errorf("expired context: probe error %v, want a timeout", err)
	}
}

func TestSwarmUnchangedProbeRoundIsNotRepublished(t *testing.T) {
	key := poolKey{
		resolverKey: resolverKey{name: "tasks.steady", versions: "ipv4"},
		port:        80, healthURI: "/healthz", healthInterval: 2 * time.Second, healthTimeout: time.Second,
	}
	_, script, loop, pool := newTestPool(t, key)
	probes := new(probeScript)
	pool.probe = probes.probe
	script.set(resultOK, "10.0.0.1", "10.0.0.2")
	loop.refresh()

	probes.set("10.0.0.2:80")
	pool.probeAll()
	before := pool.snapshot.Load()
	pool.probeAll()
	if after := pool.snapshot.Load(); after != before {
		t.Fatalf("a probe round with the same results replaced the snapshot: %+v -> %+v", before.tasks, after.tasks)
	}
	if got := served(pool); !slices.Equal(got, []string{"10.0.0.1:80"}) {
		t.Fatalf("served %v, want [10.0.0.1:80]", got)
	}
}
