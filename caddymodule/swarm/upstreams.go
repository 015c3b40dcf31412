package swarm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/swarmedge/swarmedge/caddymodule/internal/metrics"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/miekg/dns"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Defaults of Upstreams, set in Provision.
const (
	defaultSwarmPort           = 80
	defaultSwarmRefresh        = time.Second
	defaultSwarmMaxStale       = 5 * time.Minute
	defaultSwarmDialTimeout    = time.Second
	defaultSwarmHealthInterval = 2 * time.Second
	defaultSwarmHealthTimeout  = time.Second
)

// Upstreams provides upstreams from the A records of a Docker Swarm
// service's task name (tasks.<service>): one upstream per running task, so
// that requests are balanced across the tasks rather than pinned to a task
// by the service VIP's per-connection balancing. Any name with A records
// works, e.g. a Kubernetes headless service.
//
// Names are resolved in the background by a process-wide loop shared by all
// handlers that use the same name, resolvers and versions, and kept across
// config reloads; a request only reads the latest result and never waits on
// DNS. Placeholders are not supported.
//
// EXPERIMENTAL: Subject to change.
type Upstreams struct {
	// The Swarm service name; the name looked up defaults to
	// "tasks.<service>".
	Service string `json:"service,omitempty"`

	// The port of the tasks to proxy to. Default: 80
	Port int `json:"port,omitempty"`

	// The name to look up, used as an absolute name (no search domains).
	// Default: "tasks.<service>"
	Name string `json:"name,omitempty"`

	// How often the name is looked up again. The records' TTL (600 s in
	// Docker) is ignored. Where several handlers share a lookup, the
	// shortest refresh wins. Default: 1s
	Refresh caddy.Duration `json:"refresh,omitempty"`

	// The DNS servers to ask, as "host" or "host:port" (port 53 by
	// default); they are tried in order, the next one when a server fails
	// (no answer, SERVFAIL, refusal, an unreadable answer) but not when it
	// answers empty or NXDOMAIN, all within one lookup's 15 s. Default: the name servers of
	// /etc/resolv.conf (127.0.0.11 in a Docker container), or 127.0.0.1:53
	// and [::1]:53 when it lists none, as Go's resolver does.
	Resolvers []string `json:"resolvers,omitempty"`

	// How long the last good set of tasks is still served while lookups
	// fail (timeouts, SERVFAIL, bad answers). After that no task is
	// served until DNS answers again. It is checked after each lookup, so
	// it ends up to one lookup (at most 15 s) late. Default: 5m
	MaxStale caddy.Duration `json:"max_stale,omitempty"`

	// The address families to look up: "ipv4" (A records), "ipv6" (AAAA
	// records) or both. Default: ["ipv4"]
	Versions []string `json:"versions,omitempty"`

	// How long to wait for a connection to a DNS server (it matters for
	// the TCP retry of truncated answers). Where several handlers share a
	// lookup, the shortest wins. Default: 1s
	DialTimeout caddy.Duration `json:"dial_timeout,omitempty"`

	// How long to wait before an RFC 6555 Fast Fallback connection to a
	// DNS server given by host name; negative disables it. Where several
	// handlers share a lookup, the shortest wins, 0 counting as 300ms and
	// a negative value as the longest. Default: Go's (300ms)
	DialFallbackDelay caddy.Duration `json:"dial_fallback_delay,omitempty"`

	// If set, each task is probed with "GET <health_uri>" and a task that
	// does not answer 2xx is withheld until it does. When every task
	// fails, all of them are served (fail-open): a broken probe should not
	// take the service down. Caddy's own active health checks do not run
	// on dynamic upstreams.
	HealthURI string `json:"health_uri,omitempty"`

	// How often each task is probed. Default: 2s (with health_uri)
	HealthInterval caddy.Duration `json:"health_interval,omitempty"`

	// How long a probe may take before it counts as failed.
	// Default: 1s (with health_uri)
	HealthTimeout caddy.Duration `json:"health_timeout,omitempty"`

	// How long a request waits for a task when the service has just lost
	// all of them: its set went from some tasks to none (a single
	// replica's stop-first update), or every task refused connections on
	// a retry (lb_retries). The bound counts from the moment the tasks
	// were lost, and the request's own context bounds it too; meanwhile
	// the name is looked up every 250ms. Once the service has had no task
	// for longer, requests get 503 at once: a service scaled to 0 fails
	// fast, and so does one that never had a task. 0 turns it off.
	// Default: 10s
	WaitForTasks *caddy.Duration `json:"wait_for_tasks,omitempty"`
	// How many requests may wait for a task at once (wait_for_tasks);
	// more get 503 at once. Size it to the request rate times the gap of
	// a deploy (200 requests/s through a 10 s gap is 2,000). Each waiting
	// request holds its connection and about 60 KiB of memory.
	// Default: 4096
	MaxWaiting int `json:"max_waiting,omitempty"`

	pool      *taskPool
	logger    *zap.Logger
	waitBound time.Duration // WaitForTasks with its default
}

// CaddyModule returns the Caddy module information.
func (Upstreams) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.upstreams.swarm",
		New: func() caddy.Module { return new(Upstreams) },
	}
}

// Provision sets the defaults, joins (or starts) the process-wide lookup of
// the name and waits briefly for its first answer (at most firstAnswerWait
// for all the Provisions of a config together).
func (su *Upstreams) Provision(ctx caddy.Context) error {
	su.logger = ctx.Logger()
	if su.Port == 0 {
		su.Port = defaultSwarmPort
	}
	if su.Name == "" && su.Service != "" {
		su.Name = "tasks." + su.Service
	}
	if su.Refresh == 0 {
		su.Refresh = caddy.Duration(defaultSwarmRefresh)
	}
	if su.MaxStale == 0 {
		su.MaxStale = caddy.Duration(defaultSwarmMaxStale)
	}
	if len(su.Versions) == 0 {
		su.Versions = []string{"ipv4"}
	}
	if su.DialTimeout == 0 {
		su.DialTimeout = caddy.Duration(defaultSwarmDialTimeout)
	}
	if su.WaitForTasks == nil {
		wait := caddy.Duration(defaultWaitForTasks)
		su.WaitForTasks = &wait
	}
	su.waitBound = time.Duration(*su.WaitForTasks)
	if su.MaxWaiting == 0 {
		su.MaxWaiting = defaultMaxWaiting
	}
	if su.HealthURI != "" {
		if su.HealthInterval == 0 {
			su.HealthInterval = caddy.Duration(defaultSwarmHealthInterval)
		}
		if su.HealthTimeout == 0 {
			su.HealthTimeout = caddy.Duration(defaultSwarmHealthTimeout)
		}
	}
	// the pool key is built from validated values; Caddy validates only
	// after Provision
	if err := su.Validate(); err != nil {
		return err
	}
	if err := metrics.Register(ctx.GetMetricsRegistry(), swarmCollectors()...); err != nil {
		return fmt.Errorf("registering swarm metrics: %v", err)
	}

	su.pool = acquireTaskPool(su.poolKey(), su, su.loopSettings())
	if !awaitFirstAnswer(ctx, su.pool.loop) {
		su.logger.Warn("no DNS answer yet; starting without tasks", zap.String("name", su.Name))
	}
	return nil
}

// Validate checks the configuration; each error names its field.
func (su *Upstreams) Validate() error {
	if su.Service == "" && su.Name == "" {
		return errors.New("swarm: service or name is required")
	}
	if err := checkSwarmName(su.Name); err != nil {
		return fmt.Errorf("swarm: name: %v", err)
	}
	if err := checkSwarmPort(su.Port); err != nil {
		return fmt.Errorf("swarm: port: %v", err)
	}
	for _, r := range su.Resolvers {
		if _, err := normalizeResolver(r); err != nil {
			return fmt.Errorf("swarm: resolvers: %v", err)
		}
	}
	if _, err := canonicalVersions(su.Versions); err != nil {
		return fmt.Errorf("swarm: versions: %v", err)
	}
	for _, d := range []struct {
		field string
		value caddy.Duration
	}{
		{"refresh", su.Refresh},
		{"max_stale", su.MaxStale},
		{"dial_timeout", su.DialTimeout},
		{"health_interval", su.HealthInterval},
		{"health_timeout", su.HealthTimeout},
		{"wait_for_tasks", ptrOrZero(su.WaitForTasks)},
	} {
		if d.value < 0 {
			return fmt.Errorf("swarm: %s: must not be negative: %s", d.field, time.Duration(d.value))
		}
	}
	if su.MaxWaiting < 0 {
		return fmt.Errorf("swarm: max_waiting: must not be negative: %d", su.MaxWaiting)
	}
	if su.HealthURI == "" && (su.HealthInterval != 0 || su.HealthTimeout != 0) {
		return errors.New("swarm: health_interval and health_timeout need health_uri")
	}
	if su.HealthURI != "" {
		if err := checkHealthURI(su.HealthURI); err != nil {
			return fmt.Errorf("swarm: health_uri: %v", err)
		}
	}
	return nil
}

// GetUpstreams returns one new upstream per task being served. Caddy writes
// into the returned values, so they are fresh on every call; their dial
// addresses were built when the set of tasks or their health changed.
// When the service has just lost all its tasks, it first waits for one
// (wait_for_tasks). With no task to serve it returns an empty list, so
// that Caddy answers 503.
func (su *Upstreams) GetUpstreams(r *http.Request) ([]*reverseproxy.Upstream, error) {
	ctx := context.Background()
	if r != nil {
		ctx = r.Context()
	}
	dials := su.pool.servedDials(ctx, su.waitBound)
	if len(dials) == 0 {
		if c := su.logger.Check(zapcore.ErrorLevel, "no swarm tasks to proxy to"); c != nil {
			c.Write(zap.String("name", su.Name), zap.Int("port", su.Port),
				zap.Error(su.pool.loop.status.Load().lastErr))
		}
		return []*reverseproxy.Upstream{}, nil
	}
	upstreams := make([]*reverseproxy.Upstream, len(dials))
	for i, dial := range dials {
		upstreams[i] = &reverseproxy.Upstream{Dial: dial}
	}
	return upstreams, nil
}

// ResetCache asks the shared lookup for an early re-resolve; Caddy calls it
// before each retry (lb_retries). With wait_for_tasks it also starts a
// check of whether any task still accepts connections, which the retry
// then waits for in GetUpstreams. It never blocks: the lookup and the
// check run in the background, at most once per minEarlyRefreshGap.
func (su *Upstreams) ResetCache(*http.Request) error {
	su.pool.loop.requestEarlyRefresh()
	if su.waitBound > 0 {
		su.pool.checkReachable()
	}
	return nil
}

// Cleanup leaves the shared lookup, which stops when its last user leaves.
// The pool stays readable: requests of the old config still in flight
// after a reload keep getting its last tasks.
func (su *Upstreams) Cleanup() error {
	if su.pool != nil {
		releaseTaskPool(su.pool, su)
	}
	return nil
}

// poolKey identifies the tasks pool this configuration uses. Called after
// Validate, so the parsing cannot fail.
func (su *Upstreams) poolKey() poolKey {
	resolvers := make([]string, len(su.Resolvers))
	for i, r := range su.Resolvers {
		resolvers[i], _ = normalizeResolver(r)
	}
	versions, _ := canonicalVersions(su.Versions)
	return poolKey{
		resolverKey: resolverKey{
			name:      strings.ToLower(strings.TrimSuffix(su.Name, ".")),
			resolvers: strings.Join(resolvers, ","),
			versions:  versions,
		},
		port:           uint16(su.Port),
		maxStale:       time.Duration(su.MaxStale),
		healthURI:      su.HealthURI,
		healthInterval: time.Duration(su.HealthInterval),
		healthTimeout:  time.Duration(su.HealthTimeout),
		maxWaiting:     su.MaxWaiting,
	}
}

// loopSettings is what this configuration asks of the shared lookup.
func (su *Upstreams) loopSettings() loopSettings {
	return loopSettings{
		refresh:           time.Duration(su.Refresh),
		dialTimeout:       time.Duration(su.DialTimeout),
		dialFallbackDelay: time.Duration(su.DialFallbackDelay),
	}
}

// ptrOrZero returns *d, or 0 for nil.
func ptrOrZero(d *caddy.Duration) caddy.Duration {
	if d == nil {
		return 0
	}
	return *d
}

// checkSwarmName accepts a DNS name that can be looked up as it is.
func checkSwarmName(name string) error {
	if _, ok := dns.IsDomainName(name); !ok || strings.ContainsAny(name, "{} \t/") {
		return fmt.Errorf("not a DNS name: %q", name)
	}
	return nil
}

// checkSwarmPort accepts a TCP port number.
func checkSwarmPort(port int) error {
	if port < 1 || port > 65535 {
		return fmt.Errorf("must be 1-65535, not %d", port)
	}
	return nil
}

// canonicalVersions checks the address families and returns them in a
// fixed order ("ipv4", "ipv6" or "ipv4 ipv6") for the lookup key.
func canonicalVersions(versions []string) (string, error) {
	for i, v := range versions {
		if v != "ipv4" && v != "ipv6" {
			return "", fmt.Errorf("unknown version %q (want ipv4 or ipv6)", v)
		}
		if slices.Contains(versions[:i], v) {
			return "", fmt.Errorf("%s given twice", v)
		}
	}
	sorted := slices.Clone(versions)
	slices.Sort(sorted)
	return strings.Join(sorted, " "), nil
}

// checkHealthURI accepts a path with an optional query.
func checkHealthURI(uri string) error {
	if !strings.HasPrefix(uri, "/") {
		return fmt.Errorf("must start with /: %q", uri)
	}
	if _, err := url.ParseRequestURI(uri); err != nil {
		return err
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner                  = (*Upstreams)(nil)
	_ caddy.Validator                    = (*Upstreams)(nil)
	_ caddy.CleanerUpper                 = (*Upstreams)(nil)
	_ reverseproxy.UpstreamSource        = (*Upstreams)(nil)
	_ reverseproxy.CachingUpstreamSource = (*Upstreams)(nil)
)
