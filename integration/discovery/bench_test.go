package discovery

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/integration/edge"
	"github.com/swarmedge/swarmedge/integration/load"
)

// compareTemplate serves one stand-in through two sites of one edge:
// dynamic swarm on HTTPPort, Caddy's built-in dynamic a on HTTPSPort
// (only a second free port here), with the same proxy settings.
const compareTemplate = `{
	admin {{.AdminAddr}}
	default_bind 127.0.0.1
}
http://127.0.0.1:{{.HTTPPort}} {
	reverse_proxy {
		dynamic swarm %[1]s %[2]d {
			resolvers %[3]s
			refresh 1s
		}
		lb_retries 2
		fail_duration 10s
	}
}
http://127.0.0.1:{{.HTTPSPort}} {
	reverse_proxy {
		dynamic a tasks.%[1]s %[2]d {
			resolvers %[3]s
			refresh 1s
		}
		lb_retries 2
		fail_duration 10s
	}
}
`

// BenchmarkProxyDynamicSwarmVsDynamicA measures the edge's proxy
// throughput with dynamic swarm and with Caddy's dynamic a, side by side
// in one edge against one 5-task stand-in: each iteration is one round of
// each, back to back in alternating order (30 keep-alive clients, 1 s).
// It reports the median throughput of each and the median of the rounds'
// ratios: a pair of adjacent rounds shares the machine's state, so the
// ratio holds up on a busy machine better than either figure.
//
//	go test ./integration/discovery -run '^$' -bench ProxyDynamicSwarmVsDynamicA -benchtime 21x
func BenchmarkProxyDynamicSwarmVsDynamicA(b *testing.B) {
	const round = time.Second
	s := startService(b, 5)
	e := edge.MustStart(b, fmt.Sprintf(compareTemplate, s.Name(), s.Port(), s.DNS()))
	targets := []struct {
		name string
		url  string
	}{
		{"dynamic swarm", e.URL("/")},
		{"dynamic a", fmt.Sprintf("http://127.0.0.1:%d/", e.HTTPSPort)},
	}
	measure := func(target int) float64 {
		sum := startLoad(b, load.Config{URL: targets[target].url, Clients: clients, Duration: round}).Wait().Summary()
		if sum.Failed() > 0 || len(sum.PerTask) != 5 {
			b.Fatalf("%s: %v; want no failure and 5 tasks", targets[target].name, sum)
		}
		return sum.Throughput()
	}
	measure(0) // warm-up: connections, buffers, the heap
	measure(1)

	b.ResetTimer()
	var rps [2][]float64
	var ratios []float64
	for i := range b.N {
		for _, target := range [][2]int{{0, 1}, {1, 0}}[i%2] {
			rps[target] = append(rps[target], measure(target))
		}
		ratios = append(ratios, rps[0][i]/rps[1][i])
	}
	b.StopTimer()
	b.Logf("requests/s per round: dynamic swarm %.0f, dynamic a %.0f", rps[0], rps[1])
	b.ReportMetric(0, "ns/op") // a round's length is fixed: not a figure
	b.ReportMetric(median(rps[0]), "swarm_req/s")
	b.ReportMetric(median(rps[1]), "dynamic_a_req/s")
	b.ReportMetric(100*median(ratios), "swarm_%_of_dynamic_a")
}

// median returns the median of values.
func median(values []float64) float64 {
	sorted := slices.Sorted(slices.Values(values))
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
