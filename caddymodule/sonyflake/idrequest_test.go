package sonyflake

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestPrefersText(t *testing.T) {
	for _, tc := range []struct {
		name   string
		accept []string // nil: no Accept header
		text   bool
	}{
		{name: "no Accept", accept: nil},
		{name: "empty", accept: []string{""}},
		{name: "text/plain", accept: []string{"text/plain"}, text: true},
		{name: "JSON q=0 leaves text", accept: []string{"text/plain, application/json;q=0"}, text: true},
		{name: "text q=0", accept: []string{"text/plain;q=0, */*"}},
		{name: "text q=0 beside everything", accept: []string{"*/*, text/plain;q=0"}},
		{name: "both, tie", accept: []string{"text/plain, application/json"}},
		{name: "both, text higher", accept: []string{"application/json;q=0.5, text/plain;q=0.6"}, text: true},
		{name: "both, JSON higher", accept: []string{"application/json;q=0.9, text/plain;q=0.8"}},
		{name: "thousandths", accept: []string{"application/json;q=0.001, text/plain;q=0.002"}, text: true},
		{name: "anything", accept: []string{"*/*"}},
		{name: "text/*", accept: []string{"text/*"}, text: true},
		{name: "application/* below text/*", accept: []string{"application/*;q=0.1, text/*"}, text: true},
		{name: "most specific range wins", accept: []string{"text/*;q=0.1, text/plain;q=0.9, application/json;q=0.5"}, text: true},
		{name: "most specific range wins, whichever order", accept: []string{"text/plain;q=0.1, text/*;q=0.9, application/json;q=0.5"}},
		{name: "*/* only for JSON", accept: []string{"text/plain;q=0.5, */*;q=0.6"}},
		{name: "browser", accept: []string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}},
		{name: "neither type acceptable", accept: []string{"image/png"}},
		{name: "case-insensitive", accept: []string{"TEXT/Plain, Application/JSON;Q=0"}, text: true},
		{name: "spaces", accept: []string{"  text/plain ; q=1 ,application/json ; q=0.3 "}, text: true},
		{name: "media type parameters", accept: []string{"text/plain;charset=utf-8;q=0.7, application/json;q=0.6"}, text: true},
		{name: "accept-ext after q", accept: []string{"text/plain;q=0.7;level=1, application/json;q=0.6"}, text: true},
		{name: "two header lines", accept: []string{"text/plain", "application/json;q=0"}, text: true},
		{name: "q above 1 skips the range", accept: []string{"text/plain;q=2, application/json;q=0.1"}},
		{name: "q 1.001 skips the range", accept: []string{"text/plain;q=1.001, application/json;q=0.1"}},
		{name: "q four decimals skips", accept: []string{"text/plain;q=0.5000, application/json;q=0.1"}},
		{name: "q not a number skips", accept: []string{"text/plain;q=high, application/json;q=0.1"}},
		{name: "q empty skips", accept: []string{"text/plain;q=, application/json;q=0.1"}},
		{name: "q negative skips", accept: []string{"text/plain;q=-1, application/json;q=0.1"}},
		{name: "q 1.000 is fine", accept: []string{"text/plain;q=1.000, application/json;q=0.9"}, text: true},
		{name: "q 0. is fine", accept: []string{"application/json;q=0., text/plain"}, text: true},
		{name: "no slash skipped", accept: []string{"text, application/json;q=0"}},
		{name: "*/json is malformed", accept: []string{"*/json;q=0, text/plain"}, text: true},
		{name: "space inside the type", accept: []string{"text /plain"}},
		{name: "empty subtype", accept: []string{"text/"}},
		{name: "empty elements", accept: []string{",,text/plain,,"}, text: true},
		{name: "substring is not a match", accept: []string{"text/plainish, application/jsonl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := prefersText(tc.accept); got != tc.text {
				t.Errorf("Accept %q: text = %v, want %v", tc.accept, got, tc.text)
			}
		})
	}
}

// The endpoint answers what Accept prefers; format= overrides it.
func TestEndpointHonoursAcceptQValues(t *testing.T) {
	for _, tc := range []struct {
		target, accept, contentType string
	}{
		{"/id", "text/plain, application/json;q=0", textContentType},
		{"/id", "application/json;q=0.2, text/plain;q=0.1", jsonContentType},
		{"/id?format=json", "text/plain, application/json;q=0", jsonContentType},
		{"/id?format=text", "application/json, text/plain;q=0", textContentType},
	} {
		h, _ := newTestHandler()
		r := httptest.NewRequest(http.MethodGet, tc.target, nil)
		r.Header.Set("Accept", tc.accept)
		w := serve(t, h, r)
		if got := w.Header().Get("Content-Type"); got != tc.contentType {
			t.Errorf("%s with Accept %q: Content-Type %q, want %q", tc.target, tc.accept, got, tc.contentType)
		}
	}
}
