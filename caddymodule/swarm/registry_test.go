package swarm

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// setFirstAnswerWait sets firstAnswerWait until the test ends.
func setFirstAnswerWait(t *testing.T, d time.Duration) {
	old := firstAnswerWait
	firstAnswerWait = d
	t.Cleanup(func() { firstAnswerWait = old })
}

// With DNS that never answers, the Provisions of one config wait
// firstAnswerWait in all, not each; they succeed and serve no task until
// DNS answers, and their loops and sockets end with their last user.
func TestSwarmProvisionWhenDNSNeverAnswers(t *testing.T) {
	const wait = 3 * time.Second
	setFirstAnswerWait(t, wait)
	srv := startTestDNSServer(t, func(dns.Question) *dns.Msg { return nil })
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()

	var sources []*Upstreams
	start := time.Now()
	for i := range 5 {
		su := &Upstreams{Service: fmt.Sprintf("silent%d", i), Resolvers: []string{srv.addr}}
		if err := su.Provision(ctx); err != nil {
			t.Fatalf("Provision with DNS silent: %v, want it to start without tasks", err)
		}
		sources = append(sources, su)
	}
	// 5 × 3 s one after another would be 15 s; the bound allows for a loaded box
	if took := time.Since(start); took > 2*wait {
		t.Fatalf("5 Provisions took %v, want about %v in all", took, wait)
	}
	for _, su := range sources {
		if up, err := su.GetUpstreams(nil); len(up) != 0 || err != nil {
			t.Fatalf("%s: %d upstreams, error %v; want none and no error", su.Service, len(up), err)
		}
	}

	for _, su := range sources {
		_ = su.Cleanup()
	}
	for _, fn := range []string{"swarm.(*dnsLoop).run", "swarm.(*udpSocket).read"} {
		awaitNoGoroutineIn(t, fn)
	}
}

// A config whose context has ended (a load given up) does not wait.
func TestSwarmProvisionDoesNotWaitPastItsContext(t *testing.T) {
	setFirstAnswerWait(t, time.Minute)
	srv := startTestDNSServer(t, func(dns.Question) *dns.Msg { return nil })
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	cancel()
	su := &Upstreams{Service: "gone", Resolvers: []string{srv.addr}}
	done := make(chan error, 1)
	go func() { done <- su.Provision(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Provision: %v", err)
		}
	case <-time.After(10 * time.Second): // below the minute, and the 15 s of the first lookup
		t.Fatal("Provision waited for DNS past its context's end")
	}
	_ = su.Cleanup()
}

// A metrics registry that refuses the swarm collectors fails Provision
// with an error naming them, before any lookup starts.
func TestSwarmProvisionFailsWhenMetricsCannotRegister(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	clash := prometheus.NewCounter(prometheus.CounterOpts{Name: "swarmedge_swarm_refreshes_total", Help: "another metric of that name"})
	ctx.GetMetricsRegistry().MustRegister(clash)

	su := &Upstreams{Service: "metered", Resolvers: []string{"127.0.0.1:53"}}
	err := su.Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), "registering swarm metrics") || !strings.Contains(err.Error(), "swarmedge_swarm_refreshes_total") {
		t.Fatalf("Provision: %v, want an error naming the swarm metrics", err)
	}
	if su.pool != nil || len(swarmServices()) != 0 {
		t.Fatal("a failed Provision started a lookup")
	}
}

// awaitNoGoroutineIn waits until no goroutine runs fn (a function name
// as in a stack trace), failing the test after a generous bound.
func awaitNoGoroutineIn(t *testing.T, fn string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		n := 0
		for _, g := range strings.Split(stacks, "\n\n") {
			if strings.Contains(g, fn) {
				n++
			}
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still in %s:\n%s", n, fn, stacks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
