package sonyflake

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/swarmedge/swarmedge/caddymodule/internal/metrics"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"
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
// config reload never runs two generators with one machine ID, and a new
// config's settings take over when it starts: IDs keep increasing across
// reloads and restarts (see slot.start), or the config is refused. At most one
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

	// The length of one tick of the time field. At least 1ms. Default
	// (when absent): 10ms. A pointer, so that an explicit 0 is an error
	// rather than the default.
	TimeUnit *caddy.Duration `json:"time_unit,omitempty"`

	// Bits of the sequence number: 2^sequence_bits IDs per time unit.
	// 1 to 30. Default (when absent): 8.
	SequenceBits *int `json:"sequence_bits,omitempty"`

	// Bits of the machine ID. 1 to 30, and with sequence_bits at most 31.
	// Default (when absent): 16.
	MachineIDBits *int `json:"machine_id_bits,omitempty"`

	layout    layout
	machineID int64
	registry  *registry // processRegistry; tests inject their own
	slot      *slot
	storage   certmagic.Storage
	logger    *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "sonyflake",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision resolves the layout and the machine ID. It changes nothing
// about minting: a config refused after provisioning leaves the running
// generator as it was.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	var start time.Time
	if a.StartTime != "" {
		var err error
		if start, err = time.Parse(time.RFC3339, a.StartTime); err != nil {
			return fmt.Errorf("sonyflake: start_time %q: want RFC 3339, e.g. 2014-09-01T00:00:00Z", a.StartTime)
		}
	}
	unit, sequenceBits, machineIDBits, err := a.layoutSizes()
	if err != nil {
		return fmt.Errorf("sonyflake: %w", err)
	}
	a.layout = newLayout(start, unit, sequenceBits, machineIDBits)
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
	a.machineID = int64(res.id)
	if a.registry == nil {
		a.registry = processRegistry
	}
	a.slot = a.registry.slot(a.machineID)
	a.storage = ctx.Storage()
	return metrics.Register(ctx.GetMetricsRegistry(), mintMetrics.collectors()...)
}

// layoutSizes returns the configured time unit and bit counts, with the
// defaults for those left out. An explicit 0 or less is an error naming
// the setting: it would otherwise silently become the default.
func (a *App) layoutSizes() (unit time.Duration, sequenceBits, machineIDBits int, err error) {
	unit, sequenceBits, machineIDBits = defaultTimeUnit, defaultSequenceBits, defaultMachineIDBits
	if a.TimeUnit != nil {
		if unit = time.Duration(*a.TimeUnit); unit <= 0 {
			return 0, 0, 0, fmt.Errorf("time_unit %s: must be at least 1ms (leave it out for the default %s)", unit, defaultTimeUnit)
		}
	}
	for _, b := range []struct {
		name   string
		set    *int
		target *int
	}{{"sequence_bits", a.SequenceBits, &sequenceBits}, {"machine_id_bits", a.MachineIDBits, &machineIDBits}} {
		if b.set == nil {
			continue
		}
		if *b.set < 1 {
			return 0, 0, 0, fmt.Errorf("%s %d: must be 1 to 30 (leave it out for the default %d)", b.name, *b.set, *b.target)
		}
		*b.target = *b.set
	}
	return unit, sequenceBits, machineIDBits, nil
}

// Start makes this config's layout the one its machine ID mints in (see
// slot.start): it may wait up to a second, or refuse the config.
func (a *App) Start() error { return a.slot.start(a.layout, a.storage, a.logger) }

// Stop does nothing: the generator outlives the config (see slot), and a
// config refused after its Start must not take it from the running one.
func (a *App) Stop() error { return nil }

const (
	// maxRunAhead is how far stamping may run the time field ahead of the
	// clock when demand is above the ceiling; the storage reservation
	// covers it.
	maxRunAhead = time.Second

	// endpointLead is how far ahead of the clock the endpoint may reserve
	// (and then wait for its IDs): the first half of stamping's run-ahead,
	// so that stamping always finds IDs within its own.
	endpointLead = maxRunAhead / 2
)

// mintedID is an ID with the layout it was minted in, which a reload may
// have changed since.
type mintedID struct {
	id     int64
	layout layout
}

// stamp mints one ID for request_id. Stamping comes first: its ID may lie
// up to maxRunAhead ahead of the clock, and beyond that it waits at most
// maxWait.
func (a *App) stamp(maxWait time.Duration) (mintedID, error) {
	id, l, err := a.slot.reserve(1, maxRunAhead, maxWait)
	return mintedID{id: id, layout: l}, err
}

// mintN appends n consecutive IDs for the ID endpoint to dst. They are
// handed out once due, and reserved only within endpointLead of the clock:
// while stamping runs ahead, the endpoint waits for the clock, at most
// maxWait in all.
func (a *App) mintN(dst []int64, n int, maxWait time.Duration) ([]int64, layout, error) {
	for {
		first, l, err := a.slot.reserve(n, 0, min(maxWait, endpointLead))
		if err == nil {
			return l.appendRun(dst, first, n), l, nil
		}
		var wait *waitError
		if !errors.As(err, &wait) || wait.Wait > maxWait {
			return dst, l, err
		}
		pause := max(wait.Wait-endpointLead, a.layout.unit)
		a.slot.reg.sleep(pause)
		maxWait -= pause
	}
}

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
