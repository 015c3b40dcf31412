package swarm

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func TestSwarmTransportUnmarshalCaddyfile(t *testing.T) {
	dur := func(d time.Duration) *caddy.Duration { c := caddy.Duration(d); return &c }
	for _, tc := range []struct {
		name    string
		input   string
		want    Transport
		wantErr string
	}{
		{name: "bare", input: `swarm`, want: Transport{}},
		{name: "empty block", input: "swarm {\n}", want: Transport{}},
		{name: "own option", input: "swarm {\n\ttcp_user_timeout 5s\n}", want: Transport{TCPUserTimeout: dur(5 * time.Second)}},
		{name: "off", input: "swarm {\n\ttcp_user_timeout 0\n}", want: Transport{TCPUserTimeout: dur(0)}},
		{name: "http options around it", input: `swarm {
			dial_timeout 2s
			tcp_user_timeout 1500ms
			response_header_timeout 30s
			keepalive_interval 10s
			max_conns_per_host 64
			versions 1.1
		}`, want: Transport{
			TCPUserTimeout: dur(1500 * time.Millisecond),
			HTTPTransport: reverseproxy.HTTPTransport{
				DialTimeout:           caddy.Duration(2 * time.Second),
				ResponseHeaderTimeout: caddy.Duration(30 * time.Second),
				KeepAlive:             &reverseproxy.KeepAlive{ProbeInterval: caddy.Duration(10 * time.Second)},
				MaxConnsPerHost:       64,
				Versions:              []string{"1.1"},
			},
		}},
		{name: "http option with a block", input: `swarm {
			tls
			tls_trust_pool inline {
				trust_der MIIB
			}
			tcp_user_timeout 2s
		}`, want: Transport{
			TCPUserTimeout: dur(2 * time.Second),
			HTTPTransport: reverseproxy.HTTPTransport{
				TLS: &reverseproxy.TLSConfig{CARaw: []byte(`{"provider":"inline","trusted_ca_certs":["MIIB"]}`)},
			},
		}},
		{name: "argument", input: `swarm fast`, wantErr: "wrong argument count"},
		{name: "negative", input: "swarm {\n\ttcp_user_timeout -1s\n}", wantErr: "tcp_user_timeout: must not be negative"},
		{name: "bad duration", input: "swarm {\n\ttcp_user_timeout soon\n}", wantErr: `tcp_user_timeout: bad duration "soon"`},
		{name: "missing duration", input: "swarm {\n\ttcp_user_timeout\n}", wantErr: "wrong argument count"},
		{name: "twice", input: "swarm {\n\ttcp_user_timeout 1s\n\ttcp_user_timeout 2s\n}", wantErr: "tcp_user_timeout given twice"},
		{name: "unknown, with its line", input: "swarm {\n\tdial_timeout 1s\n\tttl 5s\n}", wantErr: "unrecognized subdirective ttl, at Testfile:3"},
		{name: "bad http option, with its line", input: "swarm {\n\ttcp_user_timeout 1s\n\tdial_timeout forever\n}", wantErr: "Testfile:3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Transport
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
