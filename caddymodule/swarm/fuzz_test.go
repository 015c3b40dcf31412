package swarm

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/miekg/dns"
)

// FuzzReadAnswer feeds arbitrary messages (the seeds: answers, truncated
// ones, wrong types, CNAME chains, error codes) to the answer reader: it
// must not panic, must classify consistently, and must read the same bytes
// the same way when they come again (the unchanged-answer shortcut).
func FuzzReadAnswer(f *testing.F) {
	for _, seed := range answerSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) < 2 {
			return // shorter than an ID: the socket drops it
		}
		c := newDNSClient("tasks.app", []uint16{dns.TypeA}, []string{"127.0.0.1:53"})
		addrs, result, err := c.read(bytes.Clone(msg), answerKey{0, dns.TypeA}) // read canonicalizes in place
		checkAnswer(t, addrs, result, err)
		again, result2, err2 := c.read(bytes.Clone(msg), answerKey{0, dns.TypeA})
		if result2 != result || errorText(err2) != errorText(err) || !equalAddrs(again, addrs) {
			t.Fatalf("the same answer read twice: %q %v %v, then %q %v %v", result, addrs, err, result2, again, err2)
		}
	})
}

// FuzzCanonicalAnswer feeds arbitrary messages (the seeds: those of
// FuzzReadAnswer, and rotated answers as dnsmasq and Docker send them) to
// canonicalizeAnswer: the canonical form must read as the message does,
// be its own canonical form, and, for a plain answer, be the same
// whatever the order of the records.
func FuzzCanonicalAnswer(f *testing.F) {
	for _, seed := range answerSeeds() {
		f.Add(seed)
	}
	addrs := taskAddrs(20, false)
	f.Add(taskAnswer(f, 7, dns.TypeA, 0, true, true, append(addrs[5:], addrs[:5]...)...))
	f.Add(taskAnswer(f, 7, dns.TypeA, 600, false, false, addrs[:3]...))
	f.Fuzz(func(t *testing.T, msg []byte) {
		canon, plain := canonical(msg)
		wantAddrs, wantResult, wantErr := unpackAnswer(msg, "tasks.app.", dns.TypeA)
		gotAddrs, gotResult, gotErr := unpackAnswer(canon, "tasks.app.", dns.TypeA)
		if gotResult != wantResult || (gotErr == nil) != (wantErr == nil) || !equalAddrs(gotAddrs, wantAddrs) {
			t.Fatalf("the canonical form reads as %q %v %v, the message as %q %v %v",
				gotResult, gotAddrs, gotErr, wantResult, wantAddrs, wantErr)
		}
		if again, plainAgain := canonical(canon); !bytes.Equal(again, canon) || plainAgain != plain {
			t.Fatalf("the canonical form is not its own: %x became %x", canon, again)
		}
		if !plain {
			return
		}
		recs, _ := findPlainRecords(msg)
		reversed := bytes.Clone(msg)
		for i := range recs.count {
			from := recs.start + (recs.count-1-i)*recs.size
			copy(reversed[recs.start+i*recs.size:], msg[from:from+recs.size])
		}
		if got, _ := canonical(reversed); !bytes.Equal(got, canon) {
			t.Fatalf("the records reversed: canonical form %x, not %x", got, canon)
		}
	})
}

// checkAnswer checks the invariants of a read answer.
func checkAnswer(t *testing.T, addrs []netip.Addr, result refreshResult, err error) {
	t.Helper()
	switch {
	case result == resultOK && (err != nil || len(addrs) == 0):
		t.Fatalf("ok with %d addresses and error %v", len(addrs), err)
	case result != resultOK && (err == nil || addrs != nil):
		t.Fatalf("%q with addresses %v and error %v", result, addrs, err)
	}
	for i, a := range addrs {
		if !a.Is4() || a.IsUnspecified() {
			t.Fatalf("address %v in an answer to A", a)
		}
		if i > 0 && addrs[i-1].Compare(a) >= 0 {
			t.Fatalf("addresses not sorted and unique: %v", addrs)
		}
	}
}

// equalAddrs compares address lists.
func equalAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// answerSeeds are packed answers to "tasks.app. A" of every kind.
func answerSeeds() [][]byte {
	const qname = "tasks.app."
	reply := func(edit func(m *dns.Msg)) []byte {
		q := new(dns.Msg)
		q.SetQuestion(qname, dns.TypeA)
		m := new(dns.Msg)
		m.SetReply(q)
		edit(m)
		packed, err := m.Pack()
		if err != nil {
			panic(err)
		}
		return packed
	}
	a := func(name, ip string) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 600}, A: netip.MustParseAddr(ip).AsSlice()}
	}
	cname := func(name, target string) dns.RR {
		return &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: target}
	}
	full := reply(func(m *dns.Msg) {
		m.Answer = []dns.RR{a(qname, "10.0.0.2"), a(qname, "10.0.0.1"), a(qname, "10.0.0.2")}
	})
	return [][]byte{
		full,
		full[:len(full)-7], // cut mid-record
		reply(func(m *dns.Msg) { m.Truncated = true; m.Answer = []dns.RR{a(qname, "10.0.0.1")} }),
		reply(func(m *dns.Msg) {}), // empty
		reply(func(m *dns.Msg) { m.Rcode = dns.RcodeNameError }),
		reply(func(m *dns.Msg) { m.Rcode = dns.RcodeServerFailure; m.Question = nil }),
		reply(func(m *dns.Msg) {
			m.Answer = []dns.RR{&dns.AAAA{Hdr: dns.RR_Header{Name: qname, Rrtype: dns.TypeAAAA, Class: dns.ClassINET}, AAAA: netip.MustParseAddr("fd00::1").AsSlice()},
				&dns.TXT{Hdr: dns.RR_Header{Name: qname, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"x"}}}
		}),
		reply(func(m *dns.Msg) {
			m.Answer = []dns.RR{cname(qname, "b.example."), cname("b.example.", "c.example."), a("c.example.", "10.0.0.9")}
		}),
		reply(func(m *dns.Msg) { m.Answer = []dns.RR{cname(qname, "b.example."), cname("b.example.", qname)} }), // a loop
		reply(func(m *dns.Msg) {
			m.Question[0].Name = "tasks.other."
			m.Answer = []dns.RR{a("tasks.other.", "10.0.0.1")}
		}),
		reply(func(m *dns.Msg) { m.Response = false }),
		{0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xde, 0xad},
	}
}

// FuzzUnmarshalCaddyfile feeds arbitrary text to the `dynamic swarm`
// parser: it must not panic; an error names the file and line; a result
// survives the JSON config round trip.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, seed := range []string{
		"swarm app",
		"swarm app 8080 {\n\tname tasks.app.internal\n\trefresh 500ms\n\tresolvers 127.0.0.11 [::1]:5353 dns.example\n\tmax_stale 10m\n\tversions ipv4 ipv6\n\tdial_timeout 2s\n\tdial_fallback_delay -1s\n\thealth_uri /healthz?full=1\n\thealth_interval 3s\n\thealth_timeout 750ms\n}",
		"swarm {http.host}",
		"swarm app 0",
		"swarm app 80 81",
		"swarm app {\n\trefresh 1s\n\trefresh 2s\n}",
		"swarm app {\n\tresolvers udp/10.0.0.1 127.0.0.11:53-54\n}",
		"swarm app {\n\tversions ipv4 ipv4\n}",
		"swarm app {\n\thealth_uri healthz\n}",
		"swarm app {\n\tttl\n}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		var su Upstreams
		err := su.UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err != nil {
			if !strings.Contains(err.Error(), "Testfile") {
				t.Fatalf("error %q does not name the file and line", err)
			}
			return
		}
		if checkSwarmName("tasks."+su.Service) != nil || su.Port < 0 || su.Port > 65535 {
			t.Fatalf("accepted service %q port %d", su.Service, su.Port)
		}
		for _, r := range su.Resolvers {
			if _, err := normalizeResolver(r); err != nil {
				t.Fatalf("accepted resolver %q: %v", r, err)
			}
		}
		raw, err := json.Marshal(su)
		if err != nil {
			t.Fatal(err)
		}
		var back Upstreams
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("the config %s does not load back: %v", raw, err)
		}
		if again, _ := json.Marshal(back); string(again) != string(raw) {
			t.Fatalf("JSON round trip: %s became %s", raw, again)
		}
	})
}

// FuzzAdminQuery feeds arbitrary methods, queries and bodies to the admin
// endpoint: GET answers a JSON list whatever the query; any other method
// is refused with 405 and an Allow header.
func FuzzAdminQuery(f *testing.F) {
	f.Add("GET", "", "")
	f.Add("GET", "name=tasks.app&port=8080", "")
	f.Add("POST", "", "{}")
	f.Add("DELETE", "%zz", "")
	f.Add("get", "a=1;b", "")
	f.Fuzz(func(t *testing.T, method, query, body string) {
		req := httptest.NewRequest(http.MethodGet, "/swarm/upstreams", strings.NewReader(body))
		req.Method = method
		req.URL = &url.URL{Path: "/swarm/upstreams", RawQuery: query}
		rec := httptest.NewRecorder()
		err := adminSwarm{}.handleUpstreams(rec, req)
		if method != http.MethodGet {
			var apiErr caddy.APIError
			if !errors.As(err, &apiErr) || apiErr.HTTPStatus != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != http.MethodGet {
				t.Fatalf("%q: error %v, Allow %q; want 405 allowing GET", method, err, rec.Header().Get("Allow"))
			}
			return
		}
		var services []swarmServiceStatus
		if err != nil || rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &services) != nil {
			t.Fatalf("GET ?%s: error %v, status %d, body %q", query, err, rec.Code, rec.Body)
		}
	})
}
