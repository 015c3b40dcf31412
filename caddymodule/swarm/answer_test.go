package swarm

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestSwarmReadAnswer(t *testing.T) {
	const qname = "tasks.app."
	a := func(name, ip string) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.ParseIP(ip)}
	}
	cname := func(name, target string) dns.RR {
		return &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: target}
	}
	aaaa := &dns.AAAA{Hdr: dns.RR_Header{Name: qname, Rrtype: dns.TypeAAAA, Class: dns.ClassINET}, AAAA: net.ParseIP("fd00::1")}
	txt := &dns.TXT{Hdr: dns.RR_Header{Name: qname, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"x"}}

	for _, tc := range []struct {
		name       string
		question   string // default: the one asked; "-": none
		rcode      int
		answer     []dns.RR
		wantAddrs  []string
		wantResult refreshResult
		wantErr    string
	}{
		{name: "a records", answer: []dns.RR{a(qname, "10.0.0.1"), a("TASKS.APP.", "10.0.0.2")},
			wantAddrs: []string{"10.0.0.1", "10.0.0.2"}, wantResult: resultOK},
		{name: "cname chain", answer: []dns.RR{cname(qname, "b.example."), cname("b.example.", "c.example."), a("c.example.", "10.0.0.9")},
			wantAddrs: []string{"10.0.0.9"}, wantResult: resultOK},
		{name: "unrelated records ignored", answer: []dns.RR{a(qname, "10.0.0.1"), a("other.example.", "10.9.9.9"), txt, aaaa},
			wantAddrs: []string{"10.0.0.1"}, wantResult: resultOK},
		{name: "unspecified address skipped", answer: []dns.RR{a(qname, "0.0.0.0"), a(qname, "10.0.0.1")},
			wantAddrs: []string{"10.0.0.1"}, wantResult: resultOK},
		{name: "empty", wantResult: resultEmpty, wantErr: "no A record"},
		{name: "dangling cname", answer: []dns.RR{cname(qname, "gone.example.")},
			wantResult: resultError, wantErr: "no usable A record"},
		{name: "only other types", answer: []dns.RR{txt, aaaa},
			wantResult: resultError, wantErr: "among 2 records"},
		{name: "other name", answer: []dns.RR{a("evil.example.", "10.0.0.1")},
			wantResult: resultError, wantErr: "no usable A record"},
		{name: "wrong question", question: "tasks.other.", answer: []dns.RR{a("tasks.other.", "10.0.0.1")},
			wantResult: resultError, wantErr: "does not match the question"},
		{name: "nxdomain", rcode: dns.RcodeNameError, wantResult: resultNXDomain, wantErr: "NXDOMAIN"},
		{name: "servfail", rcode: dns.RcodeServerFailure, wantResult: resultServFail, wantErr: "SERVFAIL"},
		{name: "refused", rcode: dns.RcodeRefused, wantResult: resultError, wantErr: "REFUSED"},
		{name: "servfail without question", question: "-", rcode: dns.RcodeServerFailure, wantResult: resultServFail, wantErr: "SERVFAIL"},
		{name: "addresses without question", question: "-", answer: []dns.RR{a(qname, "10.0.0.1")},
			wantResult: resultError, wantErr: "answer without the question"},
		{name: "nxdomain for another name", question: "tasks.other.", rcode: dns.RcodeNameError,
			wantResult: resultError, wantErr: "does not match the question"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := new(dns.Msg)
			resp.SetQuestion(qname, dns.TypeA)
			switch tc.question {
			case "":
			case "-":
				resp.Question = nil
			default:
				resp.SetQuestion(tc.question, dns.TypeA)
			}
			resp.Rcode = tc.rcode
			resp.Answer = tc.answer
			addrs, result, err := readAnswer(resp, qname, dns.TypeA)
			if result != tc.wantResult {
				t.Errorf("result %q, want %q", result, tc.wantResult)
			}
			if got := addrStrings(addrs); !slices.Equal(got, tc.wantAddrs) {
				t.Errorf("addresses %v, want %v", got, tc.wantAddrs)
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func addrStrings(addrs []netip.Addr) []string {
	var s []string
	for _, a := range addrs {
		s = append(s, a.String())
	}
	return s
}
