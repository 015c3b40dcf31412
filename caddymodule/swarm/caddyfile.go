package swarm

import (
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func init() {
	caddy.RegisterModule(Upstreams{})
}

// UnmarshalCaddyfile sets up the module from Caddyfile tokens. Syntax:
//
//	dynamic swarm <service> [<port>] {
//		name                <dns name>
//		refresh             <duration>
//		resolvers           <host[:port]>...
//		max_stale           <duration>
//		versions            ipv4|ipv6...
//		dial_timeout        <duration>
//		dial_fallback_delay <duration>
//		health_uri          <uri>
//		health_interval     <duration>
//		health_timeout      <duration>
//		wait_for_tasks      <duration>
//		max_waiting         <requests>
//	}
//
// Each subdirective may appear once.
func (su *Upstreams) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume upstream source name

	if !d.NextArg() {
		return d.Errf("swarm: a service name is required")
	}
	su.Service = d.Val()
	if err := checkSwarmName("tasks." + su.Service); err != nil {
		return d.Errf("swarm: service: %v", err)
	}
	if d.NextArg() {
		port, err := strconv.Atoi(d.Val())
		if err == nil {
			err = checkSwarmPort(port)
		}
		if err != nil {
			return d.Errf("swarm: bad port %q: must be 1-65535", d.Val())
		}
		su.Port = port
	}
	if d.NextArg() {
		return d.ArgErr()
	}

	seen := make(map[string]bool)
	for d.NextBlock(0) {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("swarm: %s given twice", sub)
		}
		seen[sub] = true

		switch sub {
		case "name":
			if !d.AllArgs(&su.Name) {
				return d.ArgErr()
			}
			if err := checkSwarmName(su.Name); err != nil {
				return d.Errf("swarm: name: %v", err)
			}

		case "resolvers":
			su.Resolvers = d.RemainingArgs()
			if len(su.Resolvers) == 0 {
				return d.Errf("swarm: resolvers: at least one address is required")
			}
			for _, r := range su.Resolvers {
				if _, err := normalizeResolver(r); err != nil {
					return d.Errf("swarm: resolvers: %v", err)
				}
			}

		case "versions":
			su.Versions = d.RemainingArgs()
			if len(su.Versions) == 0 {
				return d.Errf("swarm: versions: ipv4, ipv6 or both is required")
			}
			if _, err := canonicalVersions(su.Versions); err != nil {
				return d.Errf("swarm: versions: %v", err)
			}

		case "health_uri":
			if !d.AllArgs(&su.HealthURI) {
				return d.ArgErr()
			}
			if err := checkHealthURI(su.HealthURI); err != nil {
				return d.Errf("swarm: health_uri: %v", err)
			}

		case "wait_for_tasks":
			dur, err := durationArg(d, sub)
			if err != nil {
				return err
			}
			if dur < 0 {
				return d.Errf("swarm: wait_for_tasks: must not be negative (0 turns it off), not %s", time.Duration(dur))
			}
			su.WaitForTasks = &dur

		case "max_waiting":
			var text string
			if !d.AllArgs(&text) {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(text)
			if err != nil || n < 1 {
				return d.Errf("swarm: max_waiting: must be a positive number of requests, not %q", text)
			}
			su.MaxWaiting = n

		default:
			field := su.durationField(sub)
			if field == nil {
				return d.Errf("swarm: unknown subdirective %q", sub)
			}
			dur, err := durationArg(d, sub)
			if err != nil {
				return err
			}
			// only dial_fallback_delay has a meaning for negative values
			if dur <= 0 && sub != "dial_fallback_delay" {
				return d.Errf("swarm: %s: must be positive, not %s", sub, time.Duration(dur))
			}
			*field = dur
		}
	}
	return nil
}

// durationArg reads the one duration argument of subdirective sub.
func durationArg(d *caddyfile.Dispenser, sub string) (caddy.Duration, error) {
	var text string
	if !d.AllArgs(&text) {
		return 0, d.ArgErr()
	}
	dur, err := caddy.ParseDuration(text)
	if err != nil {
		return 0, d.Errf("swarm: %s: bad duration %q: %v", sub, text, err)
	}
	return caddy.Duration(dur), nil
}

// durationField returns the field of a duration subdirective, or nil.
func (su *Upstreams) durationField(sub string) *caddy.Duration {
	return map[string]*caddy.Duration{
		"refresh":             &su.Refresh,
		"max_stale":           &su.MaxStale,
		"dial_timeout":        &su.DialTimeout,
		"dial_fallback_delay": &su.DialFallbackDelay,
		"health_interval":     &su.HealthInterval,
		"health_timeout":      &su.HealthTimeout,
	}[sub]
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Upstreams)(nil)
