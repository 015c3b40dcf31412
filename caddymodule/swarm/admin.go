package swarm

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/swarmedge/swarmedge/caddymodule/internal/adminapi"
)

func init() {
	caddy.RegisterModule(adminSwarm{})
}

// adminSwarm provides the /swarm/upstreams endpoint of the admin API: the
// tasks each swarm upstream source knows and serves. It reads the
// process-wide state, because Caddy builds the admin router before it
// loads the apps.
//
// EXPERIMENTAL: Subject to change.
type adminSwarm struct{}

// swarmServiceStatus is one task pool as GET /swarm/upstreams shows it.
type swarmServiceStatus struct {
	// The name looked up, e.g. "tasks.app".
	Name string `json:"name"`
	// The tasks' port.
	Port uint16 `json:"port"`
	// The DNS servers asked, in order.
	Resolvers []string `json:"resolvers"`
	// "ipv4", "ipv6" or "ipv4 ipv6".
	Versions string `json:"versions"`
	// The probe's URI; empty without probes.
	HealthURI string `json:"health_uri,omitempty"`
	// How long a set is served while DNS fails.
	MaxStale string `json:"max_stale"`
	// Every task of the current set, served or not.
	Tasks []taskStatus `json:"tasks"`
	// DNS failed for longer than max_stale: no task is served.
	Stale bool `json:"stale"`
	// Every task fails its probe: all are served.
	FailOpen bool `json:"fail_open"`
	// When the last lookup ended; null before the first.
	LastRefresh *time.Time `json:"last_refresh"`
	// When DNS last confirmed the set; null if never.
	LastGood *time.Time `json:"last_good"`
	// The last lookup's result: ok, empty, nxdomain, servfail, timeout, error.
	LastResult string `json:"last_result"`
	// Why the last lookup was not ok.
	LastError string `json:"last_error,omitempty"`
	// Since when there is no task to offer after there were some (the
	// set emptied, or every task refused connections); null otherwise.
	NoTaskSince *time.Time `json:"no_task_since"`
	// Requests waiting for a task now (wait_for_tasks).
	Waiting int `json:"waiting"`
	// Requests that have waited for a task, in all.
	Waited uint64 `json:"waited"`
}

// CaddyModule returns the Caddy module information.
func (adminSwarm) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.swarm",
		New: func() caddy.Module { return new(adminSwarm) },
	}
}

// Routes returns the route of the /swarm/upstreams endpoint.
func (a adminSwarm) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: "/swarm/upstreams",
		Handler: caddy.AdminHandlerFunc(a.handleUpstreams),
	}}
}

// handleUpstreams answers GET with the state of every task pool.
func (adminSwarm) handleUpstreams(w http.ResponseWriter, r *http.Request) error {
	return adminapi.GetJSON(swarmServices)(w, r)
}

// swarmServices returns the state of every task pool in the process,
// ordered by name and port.
func swarmServices() []swarmServiceStatus {
	swarmRegistry.Lock()
	services := make([]swarmServiceStatus, 0, len(swarmRegistry.pools))
	for key, pool := range swarmRegistry.pools {
		snap := pool.snapshot.Load()
		st := pool.loop.status.Load()
		waiting, waited := pool.waitCounts()
		var noTaskSince time.Time
		if o := pool.waits.outage.Load(); o != nil {
			noTaskSince = o.since
		}
		services = append(services, swarmServiceStatus{
			Name:        key.name,
			Port:        key.port,
			Resolvers:   pool.loop.servers,
			Versions:    key.versions,
			HealthURI:   key.healthURI,
			MaxStale:    key.maxStale.String(),
			Tasks:       snap.tasks,
			Stale:       snap.stale,
			FailOpen:    snap.failOpen,
			LastRefresh: timeOrNil(st.lastRefresh),
			LastGood:    timeOrNil(st.lastGood),
			LastResult:  string(st.lastResult),
			LastError:   errorText(st.lastErr),
			NoTaskSince: timeOrNil(noTaskSince),
			Waiting:     waiting,
			Waited:      waited,
		})
	}
	swarmRegistry.Unlock()
	slices.SortFunc(services, func(a, b swarmServiceStatus) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Port, b.Port))
	})
	return services
}

// timeOrNil returns nil for the zero time, so that JSON shows null.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Interface guards
var _ caddy.AdminRouter = (*adminSwarm)(nil)
