package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/caddymodule/internal/metrics"

	"github.com/caddyserver/caddy/v2"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

func TestSwarmProvisionSharesOneLoopAndServesTasks(t *testing.T) {
	srv := startTestDNSServer(t, func(q dns.Question) *dns.Msg {
		return aRecords(q.Name, "10.0.0.2", "10.0.0.1")
	})
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()

	first := &Upstreams{Service: "web", Port: 8080, Resolvers: []string{srv.addr}}
	second := &Upstreams{Service: "web", Port: 9090, Resolvers: []string{srv.addr}, Refresh: caddy.Duration(time.Minute)}
	for _, su := range []*Upstreams{first, second} {
		if err := su.Provision(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if first.pool.loop != second.pool.loop || first.pool == second.pool {
		t.Fatal("two ports of one name should share the loop, not the pool")
	}
	loop := first.pool.loop
	if got := loop.currentSettings().refresh; got != time.Second {
		t.Fatalf("shared refresh %v, want the shortest, 1s", got)
	}

	// Provision waited for the first answer
	upstreams, err := first.GetUpstreams(nil)
	if err != nil {
		t.Fatal(err)
	}
	var dials []string
	for _, u := range upstreams {
		dials = append(dials, u.Dial)
	}
	if want := []string{"10.0.0.1:8080", "10.0.0.2:8080"}; !slices.Equal(dials, want) {
		t.Fatalf("upstreams %v, want %v", dials, want)
	}
	again, _ := first.GetUpstreams(nil)
	if again[0] == upstreams[0] {
		t.Fatal("GetUpstreams returned an Upstream it had returned before; Caddy writes into them")
	}

	services := swarmServices()
	if len(services) != 2 || services[0].Port != 8080 || services[1].Port != 9090 || services[0].Name != "tasks.web" {
		t.Fatalf("admin view: %+v", services)
	}

	// a reload: the new config joins before the old one leaves
	reloaded := &Upstreams{Service: "web", Port: 8080, Resolvers: []string{srv.addr}}
	if err := reloaded.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	_ = first.Cleanup()
	_ = first.Cleanup() // twice: must not count the reloaded user out
	_ = second.Cleanup()
	if up, _ := first.GetUpstreams(nil); len(up) != 2 {
		t.Fatalf("an old config's request in flight got %d upstreams, want the last 2", len(up))
	}
	if services := swarmServices(); len(services) != 1 || services[0].Port != 8080 {
		t.Fatalf("after the old config left: %+v, want the reloaded pool only", services)
	}
	if reloaded.pool.loop != loop {
		t.Fatal("a reload started a new loop")
	}
	select {
	case <-loop.done:
		t.Fatal("the loop stopped while still used")
	default:
	}

	_ = reloaded.Cleanup()
	select {
	case <-loop.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not stop when its last user left")
	}
	if len(swarmServices()) != 0 {
		t.Fatalf("pools left after every user left: %+v", swarmServices())
	}
}

func TestSwarmGetUpstreamsWithNoTask(t *testing.T) {
	_, _, _, pool := newTestPool(t, poolKey{port: 80})
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	su := &Upstreams{Name: "tasks.app", pool: pool, logger: ctx.Logger()}
	upstreams, err := su.GetUpstreams(nil)
	if err != nil || upstreams == nil || len(upstreams) != 0 {
		t.Fatalf("got %v, %v; want an empty list and no error", upstreams, err)
	}
}

// benchmarkPool returns a source serving n tasks, as GetUpstreams sees it.
func benchmarkPool(n int) *Upstreams {
	pool := newTaskPool(poolKey{port: 8080}, nil, realClock{})
	snap := &poolSnapshot{}
	for i := range n {
		snap.dials = append(snap.dials, fmt.Sprintf("10.0.0.%d:8080", i+1))
	}
	pool.snapshot.Store(snap)
	return &Upstreams{pool: pool}
}

func TestSwarmGetUpstreamsAllocations(t *testing.T) {
	su := benchmarkPool(5)
	allocs := testing.AllocsPerRun(100, func() { _, _ = su.GetUpstreams(nil) })
	if allocs != 1+5 {
		t.Fatalf("%v allocations per call, want 6: the slice and one Upstream per task", allocs)
	}
}

func BenchmarkGetUpstreams(b *testing.B) {
	su := benchmarkPool(5)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = su.GetUpstreams(nil)
	}
}

func TestSwarmProvisionDefaultsAndValidate(t *testing.T) {
	srv := startTestDNSServer(t, func(q dns.Question) *dns.Msg { return aRecords(q.Name, "10.0.0.1") })
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()

	su := &Upstreams{Service: "app", Resolvers: []string{srv.addr}, HealthURI: "/healthz"}
	if err := su.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer su.Cleanup()
	want := Upstreams{
		Service: "app", Port: 80, Name: "tasks.app", Refresh: caddy.Duration(time.Second),
		Resolvers: []string{srv.addr}, MaxStale: caddy.Duration(5 * time.Minute), Versions: []string{"ipv4"},
		DialTimeout: caddy.Duration(time.Second), HealthURI: "/healthz",
		HealthInterval: caddy.Duration(2 * time.Second), HealthTimeout: caddy.Duration(time.Second),
		WaitForTasks: durationPtr(10 * time.Second), MaxWaiting: 4096,
	}
	if su.waitBound != 10*time.Second {
		t.Fatalf("waitBound %v, want the default wait_for_tasks, 10s", su.waitBound)
	}
	capped := &Upstreams{Service: "app", Resolvers: []string{srv.addr}, HealthURI: "/healthz", MaxWaiting: 3}
	if err := capped.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer capped.Cleanup()
	if su.pool.waits.max != 4096 || capped.pool.waits.max != 3 {
		t.Fatalf("waiting requests capped at %d by default and %d with max_waiting 3, want 4096 and 3",
			su.pool.waits.max, capped.pool.waits.max)
	}
	got := *su
	got.pool, got.logger, got.waitBound = nil, nil, 0
	if !jsonEqual(t, got, want) {
		t.Fatalf("after Provision:\n%+v\nwant\n%+v", got, want)
	}

	for _, tc := range []struct {
		name    string
		modify  func(*Upstreams)
		wantErr string
	}{
		{"valid", func(*Upstreams) {}, ""},
		{"no service or name", func(s *Upstreams) { s.Service, s.Name = "", "" }, "service or name"},
		{"bad name", func(s *Upstreams) { s.Name = "tasks.{http.host}" }, "name:"},
		{"bad port", func(s *Upstreams) { s.Port = 70000 }, "port:"},
		{"bad resolver", func(s *Upstreams) { s.Resolvers = []string{"udp/10.0.0.1"} }, "resolvers:"},
		{"bad version", func(s *Upstreams) { s.Versions = []string{"ipv5"} }, "versions:"},
		{"negative refresh", func(s *Upstreams) { s.Refresh = -1 }, "refresh:"},
		{"negative max_stale", func(s *Upstreams) { s.MaxStale = -1 }, "max_stale:"},
		{"negative wait_for_tasks", func(s *Upstreams) { s.WaitForTasks = durationPtr(-time.Second) }, "wait_for_tasks: must not be negative"},
		{"wait_for_tasks off", func(s *Upstreams) { s.WaitForTasks = durationPtr(0) }, ""},
		{"negative max_waiting", func(s *Upstreams) { s.MaxWaiting = -1 }, "max_waiting: must not be negative: -1"},
		{"health settings without uri", func(s *Upstreams) { s.HealthURI = "" }, "need health_uri"},
		{"relative health uri", func(s *Upstreams) { s.HealthURI = "healthz" }, "health_uri:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := got
			tc.modify(&s)
			err := s.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

func TestSwarmNormalizeResolver(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.11":       "127.0.0.11:53",
		"127.0.0.11:5353":  "127.0.0.11:5353",
		"::1":              "[::1]:53",
		"[::1]":            "[::1]:53",
		"[fd00::1]:54":     "[fd00::1]:54",
		"dns.example":      "dns.example:53",
		"dns.example:1053": "dns.example:1053",
		"::0:1":            "[::1]:53",
		"::ffff:10.0.0.1":  "10.0.0.1:53",
		"10.0.0.1:53-54":   "",
		"udp/10.0.0.1":     "",
		"10.0.0.1:0":       "",
		"10.0.0.1:dns":     "",
		"10.0.0.1:99999":   "",
		"":                 "",
		"a b":              "",
	} {
		got, err := normalizeResolver(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("normalizeResolver(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestSwarmAdminEndpoint(t *testing.T) {
	_, script, loop, pool := newTestPool(t, poolKey{
		resolverKey: resolverKey{name: "tasks.admin", resolvers: "127.0.0.11:53", versions: "ipv4"}, port: 8080,
	})
	script.set(resultOK, "10.0.0.1")
	loop.refresh()
	script.set(resultServFail)
	loop.refresh()
	registerTestPool(t, pool)

	rec := httptest.NewRecorder()
	if err := (adminSwarm{}).handleUpstreams(rec, httptest.NewRequest(http.MethodGet, "/swarm/upstreams", nil)); err != nil {
		t.Fatal(err)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	var services []swarmServiceStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &services); err != nil {
		t.Fatal(err)
	}
	if len(services) != 1 {
		t.Fatalf("%d services, want 1: %s", len(services), rec.Body)
	}
	s := services[0]
	if s.Name != "tasks.admin" || s.Port != 8080 || !slices.Equal(s.Resolvers, []string{"127.0.0.11:53"}) ||
		len(s.Tasks) != 1 || s.Tasks[0].Address != "10.0.0.1:8080" || !s.Tasks[0].Served || s.Tasks[0].Health != healthUnchecked ||
		s.LastResult != "servfail" || s.LastError != "servfail" || s.LastGood == nil || s.LastRefresh == nil || s.Stale {
		t.Fatalf("admin view: %s", rec.Body)
	}

	err := (adminSwarm{}).handleUpstreams(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/swarm/upstreams", nil))
	var apiErr caddy.APIError
	if !errors.As(err, &apiErr) || apiErr.HTTPStatus != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %v, want 405", err)
	}
}

// registerTestPool puts a test pool and its loop into the process-wide
// registry for the admin API and metrics, until the test ends.
func registerTestPool(t *testing.T, pool *taskPool) {
	swarmRegistry.Lock()
	swarmRegistry.pools[pool.key] = pool
	swarmRegistry.loops[pool.key.resolverKey] = pool.loop
	swarmRegistry.Unlock()
	t.Cleanup(func() {
		swarmRegistry.Lock()
		delete(swarmRegistry.pools, pool.key)
		delete(swarmRegistry.loops, pool.key.resolverKey)
		swarmRegistry.Unlock()
	})
}

func TestSwarmMetricsReportProcessState(t *testing.T) {
	clk, script, loop, pool := newTestPool(t, poolKey{
		resolverKey: resolverKey{name: "tasks.metered", resolvers: "127.0.0.11:53", versions: "ipv4"}, port: 8080,
	})
	script.set(resultOK, "10.0.0.1", "10.0.0.2")
	loop.refresh()
	clk.Advance(90 * time.Second)
	registerTestPool(t, pool)

	// registering twice, as two handlers of one config do, is fine
	reg := prometheus.NewPedanticRegistry()
	for range 2 {
		if err := metrics.Register(reg, swarmCollectors()...); err != nil {
			t.Fatal(err)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := make(map[string]float64)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, label := range m.GetLabel() {
				if label.GetName() == "name" && label.GetValue() == "tasks.metered" {
					values[f.GetName()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	if got := values["swarmedge_swarm_tasks"]; got != 2 {
		t.Errorf("swarmedge_swarm_tasks %v, want 2", got)
	}
	if got := values["swarmedge_swarm_seconds_since_last_good"]; got != 90 {
		t.Errorf("swarmedge_swarm_seconds_since_last_good %v, want 90", got)
	}
}
