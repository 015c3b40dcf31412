package swarm

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// UnmarshalCaddyfile sets up the transport from Caddyfile tokens. Syntax:
//
//	transport swarm {
//		tcp_user_timeout <duration>   # 0 turns it off
//		<any subdirective of the http transport>
//	}
//
// Every subdirective other than this transport's own is given to the http
// transport's parser, with its original position for error messages.
func (t *Transport) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume transport name
	if d.NextArg() {
		return d.ArgErr()
	}
	var httpBlock []caddyfile.Token
	for d.NextBlock(0) {
		switch d.Val() {
		case "tcp_user_timeout":
			if t.TCPUserTimeout != nil {
				return d.Err("swarm transport: tcp_user_timeout given twice")
			}
			var text string
			if !d.AllArgs(&text) {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(text)
			if err != nil {
				return d.Errf("swarm transport: tcp_user_timeout: bad duration %q: %v", text, err)
			}
			if dur < 0 {
				return d.Errf("swarm transport: tcp_user_timeout: must not be negative: %s", text)
			}
			timeout := caddy.Duration(dur)
			t.TCPUserTimeout = &timeout
		default:
			httpBlock = append(httpBlock, d.NextSegment()...)
		}
	}
	if len(httpBlock) == 0 {
		return nil
	}
	return t.HTTPTransport.UnmarshalCaddyfile(caddyfile.NewDispenser(asHTTPTransportBlock(httpBlock)))
}

// asHTTPTransportBlock wraps subdirective tokens as "http { … }", the
// braces on the lines of the first and last token so that the http
// transport's parser reads them as one block.
func asHTTPTransportBlock(tokens []caddyfile.Token) []caddyfile.Token {
	first, last := tokens[0], tokens[len(tokens)-1]
	name := caddyfile.Token{File: first.File, Line: first.Line - 1, Text: "http"}
	open := caddyfile.Token{File: first.File, Line: first.Line - 1, Text: "{"}
	closing := caddyfile.Token{File: last.File, Line: last.Line + 1, Text: "}"}
	return append(append([]caddyfile.Token{name, open}, tokens...), closing)
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Transport)(nil)
