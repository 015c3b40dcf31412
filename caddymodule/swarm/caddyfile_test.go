package swarm

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// durationPtr returns a pointer to d as a caddy.Duration.
func durationPtr(d time.Duration) *caddy.Duration {
	cd := caddy.Duration(d)
	return &cd
}

func TestSwarmUnmarshalCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		input   string
		want    Upstreams
		wantErr string
	}{
		{name: "service only", input: `swarm app`, want: Upstreams{Service: "app"}},
		{name: "service and port", input: `swarm app 8080`, want: Upstreams{Service: "app", Port: 8080}},
		{name: "every option", input: `swarm app 8080 {
			name tasks.app.internal
			refresh 500ms
			resolvers 127.0.0.11 10.0.0.2:5353
			max_stale 10m
			versions ipv4 ipv6
			dial_timeout 2s
			dial_fallback_delay -1s
			health_uri /healthz?full=1
			health_interval 3s
			health_timeout 750ms
			wait_for_tasks 30s
			max_waiting 10000
		}`, want: Upstreams{
			Service: "app", Port: 8080, Name: "tasks.app.internal",
			Refresh: caddy.Duration(500 * time.Millisecond), Resolvers: []string{"127.0.0.11", "10.0.0.2:5353"},
			MaxStale: caddy.Duration(10 * time.Minute), Versions: []string{"ipv4", "ipv6"},
			DialTimeout: caddy.Duration(2 * time.Second), DialFallbackDelay: caddy.Duration(-time.Second),
			HealthURI: "/healthz?full=1", HealthInterval: caddy.Duration(3 * time.Second),
			HealthTimeout: caddy.Duration(750 * time.Millisecond), WaitForTasks: durationPtr(30 * time.Second), MaxWaiting: 10000,
		}},
		{name: "max_waiting zero", input: "swarm app {\n\tmax_waiting 0\n}", wantErr: `max_waiting: must be a positive number of requests, not "0"`},
		{name: "max_waiting not a number", input: "swarm app {\n\tmax_waiting many\n}", wantErr: `max_waiting: must be a positive number of requests, not "many"`},
		{name: "max_waiting missing", input: "swarm app {\n\tmax_waiting\n}", wantErr: "wrong argument count"},
		{name: "wait_for_tasks off", input: "swarm app {\n\twait_for_tasks 0\n}", want: Upstreams{Service: "app", WaitForTasks: durationPtr(0)}},
		{name: "negative wait_for_tasks", input: "swarm app {\n\twait_for_tasks -1s\n}", wantErr: "wait_for_tasks: must not be negative"},
		{name: "bad wait_for_tasks", input: "swarm app {\n\twait_for_tasks long\n}", wantErr: `wait_for_tasks: bad duration "long"`},
		{name: "wait_for_tasks missing", input: "swarm app {\n\twait_for_tasks\n}", wantErr: "wrong argument count"},
		{name: "no service", input: `swarm`, wantErr: "service name is required"},
		{name: "bad service", input: `swarm {http.host}`, wantErr: "service:"},
		{name: "port not a number", input: `swarm app http`, wantErr: `bad port "http"`},
		{name: "port out of range", input: `swarm app 65536`, wantErr: `bad port "65536"`},
		{name: "port zero", input: `swarm app 0`, wantErr: `bad port "0"`},
		{name: "extra argument", input: `swarm app 80 81`, wantErr: "wrong argument count"},
		{name: "unknown subdirective", input: "swarm app {\n\tttl 5s\n}", wantErr: `unknown subdirective "ttl"`},
		{name: "duplicate subdirective", input: "swarm app {\n\trefresh 1s\n\trefresh 2s\n}", wantErr: "refresh given twice"},
		{name: "name missing", input: "swarm app {\n\tname\n}", wantErr: "wrong argument count"},
		{name: "name twice on a line", input: "swarm app {\n\tname a b\n}", wantErr: "wrong argument count"},
		{name: "bad name", input: "swarm app {\n\tname tasks..app\n}", wantErr: "name: not a DNS name"},
		{name: "bad duration", input: "swarm app {\n\trefresh soon\n}", wantErr: `refresh: bad duration "soon"`},
		{name: "duration missing", input: "swarm app {\n\tmax_stale\n}", wantErr: "wrong argument count"},
		{name: "two durations", input: "swarm app {\n\tdial_timeout 1s 2s\n}", wantErr: "wrong argument count"},
		{name: "zero refresh", input: "swarm app {\n\trefresh 0s\n}", wantErr: "refresh: must be positive"},
		{name: "negative health timeout", input: "swarm app {\n\thealth_timeout -1s\n}", wantErr: "health_timeout: must be positive"},
		{name: "no resolvers", input: "swarm app {\n\tresolvers\n}", wantErr: "at least one address"},
		{name: "bad resolver", input: "swarm app {\n\tresolvers 127.0.0.11 udp/10.0.0.1\n}", wantErr: `"udp/10.0.0.1": no network prefix`},
		{name: "bad resolver host", input: "swarm app {\n\tresolvers dns{x}.example\n}", wantErr: `"dns{x}.example" is not an IP address`},
		{name: "resolver port range", input: "swarm app {\n\tresolvers 127.0.0.11:53-54\n}", wantErr: `bad port in "127.0.0.11:53-54"`},
		{name: "bad resolver port", input: "swarm app {\n\tresolvers 127.0.0.11:99999\n}", wantErr: `bad address "127.0.0.11:99999": invalid start port`},
		{name: "no versions", input: "swarm app {\n\tversions\n}", wantErr: "ipv4, ipv6 or both"},
		{name: "unknown version", input: "swarm app {\n\tversions ipv4 ip6\n}", wantErr: `unknown version "ip6"`},
		{name: "version twice", input: "swarm app {\n\tversions ipv4 ipv4\n}", wantErr: "ipv4 given twice"},
		{name: "relative health uri", input: "swarm app {\n\thealth_uri healthz\n}", wantErr: "health_uri: must start with /"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Upstreams
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "Testfile:") {
					t.Fatalf("error %q does not name the file and line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
