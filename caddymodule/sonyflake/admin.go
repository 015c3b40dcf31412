package sonyflake

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/swarmedge/swarmedge/caddymodule/internal/adminapi"
)

func init() {
	caddy.RegisterModule(adminSonyflake{})
}

// adminSonyflake provides the /sonyflake/state endpoint of the admin API:
// each machine ID's generator and the time of its last ID, which
// `caddy swarm doctor` compares with the wall clock. It reads the
// process-wide registry, because Caddy builds the admin router before it
// loads the apps.
//
// EXPERIMENTAL: Subject to change.
type adminSonyflake struct{}

// generatorState is one generator as GET /sonyflake/state shows it.
type generatorState struct {
	// The machine ID the generator mints for.
	MachineID int64 `json:"machine_id"`
	// The last ID handed out, or before the first, the ID it starts above.
	LastID int64 `json:"last_id"`
	// The instant of LastID's time field; it runs ahead of the clock while
	// demand is above the layout's ceiling.
	LastIDTime time.Time `json:"last_id_time"`
	// The layout's settings, as `caddy sonyflake decode` takes them.
	StartTime     time.Time `json:"start_time"`
	TimeUnit      string    `json:"time_unit"`
	SequenceBits  int       `json:"sequence_bits"`
	MachineIDBits int       `json:"machine_id_bits"`
}

// CaddyModule returns the Caddy module information.
func (adminSonyflake) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.sonyflake",
		New: func() caddy.Module { return new(adminSonyflake) },
	}
}

// Routes returns the route of the /sonyflake/state endpoint.
func (a adminSonyflake) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{
		Pattern: "/sonyflake/state",
		Handler: caddy.AdminHandlerFunc(a.handleState),
	}}
}

// handleState answers GET with the state of every started generator.
func (adminSonyflake) handleState(w http.ResponseWriter, r *http.Request) error {
	return adminapi.GetJSON(processRegistry.states)(w, r)
}

// states returns the state of each slot whose generator has started,
// ordered by machine ID.
func (r *registry) states() []generatorState {
	r.mu.Lock()
	slots := make([]*slot, 0, len(r.slots))
	for _, s := range r.slots {
		slots = append(slots, s)
	}
	r.mu.Unlock()
	states := []generatorState{}
	for _, s := range slots {
		g := s.current.Load()
		if g == nil {
			continue
		}
		l := g.layout
		states = append(states, generatorState{
			MachineID:     s.machineID,
			LastID:        g.lastID(),
			LastIDTime:    l.timeOf(g.lastUnits()),
			StartTime:     l.start,
			TimeUnit:      l.unit.String(),
			SequenceBits:  l.sequenceBits,
			MachineIDBits: l.machineIDBits,
		})
	}
	slices.SortFunc(states, func(a, b generatorState) int { return cmp.Compare(a.MachineID, b.MachineID) })
	return states
}

// Interface guards
var _ caddy.AdminRouter = (*adminSonyflake)(nil)
