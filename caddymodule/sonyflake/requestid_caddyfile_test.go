package sonyflake

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard" // header, reverse_proxy
)

func TestRequestIDUnmarshalCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		input   string
		want    RequestID
		wantErr string // the whole error, which names the line
	}{
		{name: "defaults", input: `request_id`, want: RequestID{}},
		{name: "empty block", input: "request_id {\n}", want: RequestID{}},
		{name: "header", input: "request_id {\n\theader X-Correlation-ID\n}", want: RequestID{Header: "X-Correlation-ID"}},
		{name: "trust_incoming", input: "request_id {\n\ttrust_incoming\n}", want: RequestID{TrustIncoming: true}},
		{
			name:  "both",
			input: "request_id {\n\theader Trace-Id\n\ttrust_incoming\n}",
			want:  RequestID{Header: "Trace-Id", TrustIncoming: true},
		},
		{name: "argument on directive line", input: `request_id X-Request-ID`, wantErr: "wrong argument count or unexpected line ending after 'X-Request-ID', at Testfile:1"},
		{name: "header without name", input: "request_id {\n\theader\n}", wantErr: "wrong argument count or unexpected line ending after 'header', at Testfile:2"},
		{name: "header with two names", input: "request_id {\n\theader A B\n}", wantErr: "wrong argument count or unexpected line ending after 'B', at Testfile:2"},
		{name: "invalid header name", input: "request_id {\n\theader X-Request/ID\n}", wantErr: `request_id: header "X-Request/ID" is not a valid HTTP header name, at Testfile:2`},
		{name: "header that frames the message", input: "request_id {\n\theader Content-Length\n}", wantErr: `request_id: header "Content-Length" frames or routes the message, or is hop-by-hop: choose another name, e.g. X-Request-ID, at Testfile:2`},
		{name: "hop-by-hop header", input: "request_id {\n\theader connection\n}", wantErr: `request_id: header "connection" frames or routes the message, or is hop-by-hop: choose another name, e.g. X-Request-ID, at Testfile:2`},
		{name: "pseudo-header", input: "request_id {\n\theader :path\n}", wantErr: `request_id: header ":path" is an HTTP/2 pseudo-header, which only the protocol sets, at Testfile:2`},
		{name: "argument after trust_incoming", input: "request_id {\n\n\ttrust_incoming yes\n}", wantErr: "wrong argument count or unexpected line ending after 'yes', at Testfile:3"},
		{name: "unknown subdirective", input: "request_id {\n\tformat hex\n}", wantErr: `request_id: unrecognized subdirective "format", at Testfile:2`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got RequestID
			err := got.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The directive needs no `order` option, runs before header (so header can
// use {http.vars.request_id}) and takes a matcher.
func TestRequestIDDirectiveOrderAndMatcher(t *testing.T) {
	const input = `:8080 {
	header X-Seen {http.vars.request_id}
	request_id /api/* {
		header X-Trace
	}
}
`
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	var config struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Match  []map[string]any  `json:"match"`
						Handle []json.RawMessage `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(adapted, &config); err != nil {
		t.Fatal(err)
	}
	var handlers, matches []string
	for _, route := range config.Apps.HTTP.Servers["srv0"].Routes {
		for _, m := range route.Match {
			matches = append(matches, fmt.Sprint(m["path"]))
		}
		for _, h := range route.Handle {
			handlers = append(handlers, string(h))
		}
	}
	want := []string{`{"handler":"request_id","header":"X-Trace"}`, `{"handler":"headers","response":{"set":{"X-Seen":["{http.vars.request_id}"]}}}`}
	if !slices.Equal(handlers, want) {
		t.Errorf("handlers in order:\n%s\nwant:\n%s", strings.Join(handlers, "\n"), strings.Join(want, "\n"))
	}
	if !slices.Equal(matches, []string{"[/api/*]"}) {
		t.Errorf("matchers: %v, want request_id's path /api/*", matches)
	}
}
