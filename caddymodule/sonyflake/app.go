package sonyflake

import (
	"fmt"
	"os"
	"time"

	"github.com/swarmedge/swarmedge/caddymodule/internal/metrics"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(App{})
}

// App is the process-wide Sonyflake generator that the ID endpoint and
// request stamping mint from. Configure it with the global option
// `sonyflake`; without it, every setting takes its default.
//
// The generator is kept per machine ID for the life of the process, so a
// config reload never runs two generators with one machine ID. At most one
// machine ID source may be set; with none, the library's rule applies (the
// low machine_id_bits bits of the first private IPv4 address).
type App struct {
	// An explicit machine ID, 0 to 2^machine_id_bits-1.
	MachineID *int `json:"machine_id,omitempty"`

	// The name of an environment variable that holds the machine ID, e.g.
	// one set to {{.Task.Slot}} in a Swarm service.
	MachineIDEnv string `json:"machine_id_env,omitempty"`

	// A network prefix, e.g. the overlay's 10.0.0.0/20: the machine ID is
	// the low bits of this host's address inside it.
	MachineIDCIDR string `json:"machine_id_cidr,omitempty"`

	// A network interface name: the machine ID is the low bits of its first
	// IPv4 address.
	MachineIDInterface string `json:"machine_id_interface,omitempty"`

	// The instant the time field counts from, RFC 3339. Default:
	// 2014-09-01T00:00:00Z, the epoch of titpetric/sonyflake's IDs, so that
	// new IDs sort after ones it issued.
	StartTime string `json:"start_time,omitempty"`

	// The length of one tick of the time field. At least 1ms. Default: 10ms.
	TimeUnit caddy.Duration `json:"time_unit,omitempty"`

	// Bits of the sequence number: 2^sequence_bits IDs per time unit.
	// 1 to 30. Default: 8.
	SequenceBits int `json:"sequence_bits,omitempty"`

	// Bits of the machine ID. 1 to 30, and with sequence_bits at most 31.
	// Default: 16.
	MachineIDBits int `json:"machine_id_bits,omitempty"`

	layout layout
	slot   *slot
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "sonyflake",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision resolves the layout and the machine ID and attaches the app to
// that machine ID's process-wide generator.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	var start time.Time
	if a.StartTime != "" {
		var err error
		if start, err = time.Parse(time.RFC3339, a.StartTime); err != nil {
			return fmt.Errorf("sonyflake: start_time %q: want RFC 3339, e.g. 2014-09-01T00:00:00Z", a.StartTime)
		}
	}
	a.layout = newLayout(start, time.Duration(a.TimeUnit), a.SequenceBits, a.MachineIDBits)
	// The bits must be sound before a machine ID is derived from them.
	if err := a.layout.check(0); err != nil {
		return fmt.Errorf("sonyflake: %w", err)
	}
	src := machineIDSource{explicit: a.MachineID, env: a.MachineIDEnv, cidr: a.MachineIDCIDR, iface: a.MachineIDInterface}
	res, err := resolveMachineID(src, a.layout.machineIDBits, os.LookupEnv, listInterfaces)
	if err != nil {
		return fmt.Errorf("sonyflake: %w", err)
	}
	if err := a.layout.validate(res.id, time.Now()); err != nil {
		return fmt.Errorf("sonyflake: %w", err)
	}
	if res.warning != "" {
		a.logger.Warn(res.warning, zap.Int("machine_id", res.id))
	}
	a.logger.Info("sonyflake machine ID", zap.Int("machine_id", res.id), zap.String("source", res.source))
	a.slot = slotFor(int64(res.id), a.layout, monotonicNow, time.Sleep)
	return metrics.Register(ctx.GetMetricsRegistry(), mintMetrics.collectors()...)
}

// Start does nothing: minting needs no background work.
func (a *App) Start() error { return nil }

// Stop does nothing: the generator outlives the config (see slot).
func (a *App) Stop() error { return nil }

// mint returns one ID and the layout it was minted in, waiting at most
// maxWait for a time unit with sequence numbers left.
func (a *App) mint(maxWait time.Duration) (int64, layout, error) {
	return a.slot.next(maxWait)
}

// mintN appends n consecutive IDs to dst; see mint.
func (a *App) mintN(dst []int64, n int, maxWait time.Duration) ([]int64, layout, error) {
	return a.slot.nextN(dst, n, maxWait)
}

// currentLayout is the layout the app's IDs are minted in now: after a
// reload that changed the settings, the newest config's.
func (a *App) currentLayout() layout { return a.slot.current.Load().layout }

// sonyflakeApp returns the config's sonyflake app, loading it with defaults
// when the config has none.
func sonyflakeApp(ctx caddy.Context) (*App, error) {
	app, err := ctx.App("sonyflake")
	if err != nil {
		return nil, err
	}
	return app.(*App), nil
}

// Interface guards
var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
