package sonyflake

import (
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("sonyflake", parseSonyflakeOption)
	httpcaddyfile.RegisterHandlerDirective("sonyflake", parseSonyflakeDirective)
	// A terminal handler like respond: placed just before it, so a site can
	// answer `sonyflake /id` and `respond` everything else.
	httpcaddyfile.RegisterDirectiveOrder("sonyflake", httpcaddyfile.Before, "respond")
}

// parseSonyflakeOption sets up the sonyflake app from the global option:
//
//	{
//		sonyflake {
//			machine_id <n>
//			machine_id env <VAR>
//			machine_id cidr <prefix>
//			machine_id interface <name>
//			start_time <RFC3339>
//			time_unit <duration>
//			sequence_bits <n>
//			machine_id_bits <n>
//		}
//	}
//
// At most one machine_id line; without one, the library's rule applies.
func parseSonyflakeOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "sonyflake", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from the global option's tokens; see
// parseSonyflakeOption for the syntax.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the option name
	if d.NextArg() {
		return d.Errf("sonyflake: the global option takes a block, not arguments (got %q)", d.Val())
	}
	machineIDSet := false
	for d.NextBlock(0) {
		option := d.Val()
		args := d.RemainingArgs()
		if option == "machine_id" {
			if machineIDSet {
				return d.Errf("machine_id: set only once (one source)")
			}
			machineIDSet = true
			if err := a.unmarshalMachineID(d, args); err != nil {
				return err
			}
			continue
		}
		switch option {
		case "start_time", "time_unit", "sequence_bits", "machine_id_bits":
			if len(args) != 1 {
				return d.Errf("%s: want one value, got %d", option, len(args))
			}
		default:
			return d.Errf("sonyflake: unknown option %q", option)
		}
		arg := args[0]
		switch option {
		case "start_time":
			if _, err := time.Parse(time.RFC3339, arg); err != nil {
				return d.Errf("start_time %q: want RFC 3339, e.g. 2014-09-01T00:00:00Z", arg)
			}
			a.StartTime = arg
		case "time_unit":
			unit, err := caddy.ParseDuration(arg)
			if err != nil {
				return d.Errf("time_unit %q: want a duration such as 10ms", arg)
			}
			if unit <= 0 {
				return d.Errf("time_unit %s: must be at least 1ms (leave the line out for the default %s)", arg, defaultTimeUnit)
			}
			a.TimeUnit = new(caddy.Duration(unit))
		case "sequence_bits", "machine_id_bits":
			bits, err := strconv.Atoi(arg)
			if err != nil {
				return d.Errf("%s %q: want a whole number of bits", option, arg)
			}
			target, defaultBits := &a.SequenceBits, defaultSequenceBits
			if option == "machine_id_bits" {
				target, defaultBits = &a.MachineIDBits, defaultMachineIDBits
			}
			if bits < 1 {
				return d.Errf("%s %d: must be 1 to 30 (leave the line out for the default %d)", option, bits, defaultBits)
			}
			*target = &bits
		}
	}
	return nil
}

// unmarshalMachineID reads the arguments of a machine_id line.
func (a *App) unmarshalMachineID(d *caddyfile.Dispenser, args []string) error {
	switch len(args) {
	case 1:
		id, err := strconv.Atoi(args[0])
		if err != nil {
			return d.Errf("machine_id %q: want a number, or env <VAR>, cidr <prefix> or interface <name>", args[0])
		}
		a.MachineID = &id
	case 2:
		switch args[0] {
		case "env":
			a.MachineIDEnv = args[1]
		case "cidr":
			a.MachineIDCIDR = args[1]
		case "interface":
			a.MachineIDInterface = args[1]
		default:
			return d.Errf("machine_id %s: unknown source, want env, cidr or interface", args[0])
		}
	default:
		return d.Errf("machine_id: want <n>, env <VAR>, cidr <prefix> or interface <name>, got %d values", len(args))
	}
	return nil
}

// parseSonyflakeDirective sets up the ID endpoint from the directive:
//
//	sonyflake [<matcher>]
func parseSonyflakeDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from the directive's tokens: the
// directive takes no arguments and no block.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.Errf("sonyflake takes no arguments besides a matcher, got %q", d.Val())
	}
	if d.NextBlock(0) {
		return d.Errf("sonyflake takes no block, got %q", d.Val())
	}
	return nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)
