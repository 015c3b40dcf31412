//go:build unix

package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// BenchmarkProxyRoundTrip compares, in one run, a loopback round trip
// through reverse_proxy: plain, with request_id, and with
// header_up X-Request-ID {http.request.uuid}. Client, Caddy and backend
// share the CPUs, so compare the three figures with each other only; on a
// busy machine cpu-ns/op (CPU time of the whole process: client, Caddy,
// backend, GC) is steadier than ns/op.
func BenchmarkProxyRoundTrip(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	b.Cleanup(backend.Close)
	tester := caddytest.NewTester(b)
	tester.InitServer(e2eConfig(b, fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	https_port 9443
}

http://localhost:9080 {
	reverse_proxy %[1]s
}

http://localhost:9081 {
	request_id
	reverse_proxy %[1]s
}

http://localhost:9082 {
	reverse_proxy %[1]s {
		header_up X-Request-ID {http.request.uuid}
	}
}
`, backend.URL)), "json")

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for _, bc := range []struct{ name, url string }{
		{"plain", "http://127.0.0.1:9080/"},
		{"request_id", "http://127.0.0.1:9081/"},
		{"header_up_uuid", "http://127.0.0.1:9082/"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req, err := http.NewRequest(http.MethodGet, bc.url, nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Host = "localhost"
			b.ReportAllocs()
			cpuBefore := processCPUTime(b)
			for b.Loop() {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			b.ReportMetric(float64(processCPUTime(b)-cpuBefore)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPUTime is the user and system CPU time the process has used.
func processCPUTime(b *testing.B) time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		b.Fatal(err)
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
