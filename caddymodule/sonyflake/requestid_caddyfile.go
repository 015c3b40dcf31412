package sonyflake

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("request_id", parseRequestIDCaddyfile)
	// Before header, so that header can use {http.vars.request_id}.
	httpcaddyfile.RegisterDirectiveOrder("request_id", httpcaddyfile.Before, "header")
}

// parseRequestIDCaddyfile sets up a request_id handler from the directive.
func parseRequestIDCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	r := new(RequestID)
	err := r.UnmarshalCaddyfile(h.Dispenser)
	return r, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	request_id [<matcher>] {
//		header <name>       # default X-Request-ID
//		trust_incoming      # keep a valid incoming ID from trusted_proxies
//	}
func (h *RequestID) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "header":
			if !d.NextArg() {
				return d.ArgErr()
			}
			h.Header = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
			if err := checkRequestIDHeader(h.Header); err != nil {
				return d.Err(err.Error())
			}
		case "trust_incoming":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.TrustIncoming = true
		default:
			return d.Errf("request_id: unrecognized subdirective %q", d.Val())
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*RequestID)(nil)
