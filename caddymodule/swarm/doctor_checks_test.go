package swarm

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// wantFinding checks a finding's verdict and that its detail and fix
// name what the user must read.
func wantFinding(t *testing.T, f finding, v verdict, inDetail, inFix string) {
	t.Helper()
	if f.Verdict != v {
		t.Errorf("%s: verdict %s, want %s (detail %q)", f.Check, f.Verdict, v, f.Detail)
	}
	if !strings.Contains(f.Detail, inDetail) {
		t.Errorf("%s: detail %q does not contain %q", f.Check, f.Detail, inDetail)
	}
	if !strings.Contains(f.Fix, inFix) {
		t.Errorf("%s: fix %q does not contain %q", f.Check, f.Fix, inFix)
	}
	if v == verdictOK && f.Fix != "" {
		t.Errorf("%s: ok with a fix %q", f.Check, f.Fix)
	}
	if v != verdictOK && f.Fix == "" {
		t.Errorf("%s: %s with no fix", f.Check, v)
	}
}

func TestCheckResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name, text      string
		verdict         verdict
		inDetail, inFix string
		servers         []string
	}{
		{"docker overlay", "search example.org\nnameserver 127.0.0.11\noptions ndots:0\n", verdictOK, "nameservers 127.0.0.11, ndots 0, search example.org", "", []string{"127.0.0.11:53"}},
		{"host network", "nameserver 10.1.2.3\nnameserver 10.1.2.4\n", verdictWarn, "nameservers 10.1.2.3 10.1.2.4, ndots 1, search (none)", "host network mode", []string{"10.1.2.3:53", "10.1.2.4:53"}},
		{"no nameserver", "search example.org\n", verdictFail, "no nameserver", "overlay network", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, servers := checkResolvConf(tc.text)
			wantFinding(t, f, tc.verdict, tc.inDetail, tc.inFix)
			if strings.Join(servers, ",") != strings.Join(tc.servers, ",") {
				t.Errorf("servers %q, want %q", servers, tc.servers)
			}
		})
	}
}

func TestCheckTaskName(t *testing.T) {
	n := namesFor("app")
	timeout := &dnsTimeoutError{}
	for _, tc := range []struct {
		name            string
		ans             dnsAnswer
		err             error
		verdict         verdict
		inDetail, inFix string
	}{
		{"healthy", dnsAnswer{addrs: addrs("10.0.16.3", "10.0.16.4"), minTTL: 600, latency: 2 * time.Millisecond}, nil, verdictOK, "2 tasks in 2ms, TTL 600: 10.0.16.3 10.0.16.4", ""},
		{"truncated", dnsAnswer{addrs: addrs("10.0.16.3"), truncated: true, minTTL: 600}, nil, verdictWarn, "truncated (TC)", "over TCP"},
		{"nxdomain", dnsAnswer{rcode: dns.RcodeNameError, latency: 12 * time.Second}, nil, verdictFail, "NXDOMAIN after 12s", "<stack>_app"},
		{"servfail", dnsAnswer{rcode: dns.RcodeServerFailure}, nil, verdictFail, "rcode SERVFAIL", "daemon log"},
		{"empty", dnsAnswer{}, nil, verdictFail, "no address", "docker service ps app"},
		{"black-holed", dnsAnswer{latency: 2 * time.Second}, timeout, verdictFail, "no answer within 2s", "does not answer"},
		{"garbage", dnsAnswer{}, errors.New("dns: bad rdata"), verdictFail, "bad rdata", "unusable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := checkTaskName(n, "udp", "127.0.0.11:53", tc.ans, tc.err)
			wantFinding(t, f, tc.verdict, tc.inDetail, tc.inFix)
			if f.Check != "dns tasks.app udp @127.0.0.11:53" {
				t.Errorf("check %q", f.Check)
			}
		})
	}
}

type dnsTimeoutError struct{}

func (*dnsTimeoutError) Error() string   { return "i/o timeout" }
func (*dnsTimeoutError) Timeout() bool   { return true }
func (*dnsTimeoutError) Temporary() bool { return true }

func TestCheckTransportsAgree(t *testing.T) {
	n := namesFor("tasks.app")
	all := addrs("10.0.16.3", "10.0.16.4", "10.0.16.5")
	for _, tc := range []struct {
		name     string
		udp, tcp dnsAnswer
		verdict  verdict
		inDetail string
	}{
		{"same", dnsAnswer{addrs: all}, dnsAnswer{addrs: all}, verdictOK, "same 3 tasks"},
		{"truncated subset", dnsAnswer{addrs: all[:1], truncated: true}, dnsAnswer{addrs: all}, verdictOK, "UDP lists 1 of TCP's 3"},
		{"disagree", dnsAnswer{addrs: addrs("10.0.16.9")}, dnsAnswer{addrs: all}, verdictWarn, "UDP lists 10.0.16.9, TCP lists 10.0.16.3 10.0.16.4 10.0.16.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := checkTransportsAgree(n, tc.udp, tc.tcp)
			wantFinding(t, f, tc.verdict, tc.inDetail, "")
		})
	}
}

func TestCheckServiceName(t *testing.T) {
	n := namesFor("app")
	tasks := dnsAnswer{addrs: addrs("10.0.16.3", "10.0.16.4")}
	for _, tc := range []struct {
		name            string
		plain           dnsAnswer
		verdict         verdict
		inDetail, inFix string
	}{
		{"vip", dnsAnswer{addrs: addrs("10.0.16.2")}, verdictOK, "VIP 10.0.16.2 (endpoint mode vip)", ""},
		{"dnsrr", tasks, verdictOK, "endpoint mode dnsrr", ""},
		{"nxdomain", dnsAnswer{rcode: dns.RcodeNameError}, verdictWarn, "rcode NXDOMAIN", "not on the service's network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantFinding(t, checkServiceName(n, "127.0.0.11:53", tc.plain, tasks, nil), tc.verdict, tc.inDetail, tc.inFix)
		})
	}
}

func TestCheckEdgeBelief(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	refreshed := now.Add(-800 * time.Millisecond)
	task := func(addr string, served bool) taskStatus { return taskStatus{Address: addr + ":80", Served: served} }
	for _, tc := range []struct {
		name            string
		svc             edgeService
		dnsNow          []netip.Addr
		verdict         verdict
		inDetail, inFix string
	}{
		{"in step", edgeService{Tasks: []taskStatus{task("10.0.16.4", true), task("10.0.16.3", true)}, LastRefresh: &refreshed, LastResult: "ok"},
			addrs("10.0.16.3", "10.0.16.4"), verdictOK, "serves 2 of 2 tasks, last lookup 800ms ago (ok)", ""},
		{"behind DNS", edgeService{Tasks: []taskStatus{task("10.0.16.3", true)}, LastRefresh: &refreshed, LastResult: "ok"},
			addrs("10.0.16.3", "10.0.16.4"), verdictWarn, "DNS now lists 10.0.16.3 10.0.16.4, the edge 10.0.16.3", "next refresh"},
		{"withheld", edgeService{Tasks: []taskStatus{task("10.0.16.3", true), task("10.0.16.4", false)}, LastRefresh: &refreshed, LastResult: "ok"},
			nil, verdictWarn, "withheld by health probes: 10.0.16.4", "health_uri"},
		{"stale", edgeService{Tasks: []taskStatus{task("10.0.16.3", false)}, Stale: true, LastResult: "timeout", LastError: "i/o timeout"},
			nil, verdictFail, "stale", "no task"},
		{"none", edgeService{LastResult: "nxdomain"}, nil, verdictFail, "serves 0 of 0 tasks, last lookup never", "503"},
		{"dns failing", edgeService{Tasks: []taskStatus{task("10.0.16.3", true)}, LastRefresh: &refreshed, LastResult: "timeout", LastError: "i/o timeout"},
			nil, verdictWarn, "i/o timeout", "max_stale"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.svc.Name, tc.svc.Port = "tasks.app", 80
			wantFinding(t, checkEdgeBelief(tc.svc, tc.dnsNow, now), tc.verdict, tc.inDetail, tc.inFix)
		})
	}
}

const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:07E3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:C350 0100007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
`

func TestListeningPorts(t *testing.T) {
	ports, err := listeningPorts(procNetTCP)
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 2 || !ports[80] || !ports[2019] {
		t.Errorf("listening %v, want 80 and 2019 (port 50000 is an established connection)", ports)
	}
	if _, err := listeningPorts("header\n 0: 0100007F 00000000:0000 0A\n"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("malformed address: error %v, want one naming line 2", err)
	}
}

func TestCheckListeners(t *testing.T) {
	got := checkListeners(map[string]uint16{"admin": 2019, "srv0 :443": 443}, map[uint16]bool{2019: true})
	if len(got) != 2 {
		t.Fatalf("%d findings, want 2", len(got))
	}
	wantFinding(t, got[0], verdictOK, "port 2019 listening", "")
	wantFinding(t, got[1], verdictFail, "nothing listens on port 443", "did not load")
}

func TestCheckClock(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	wantFinding(t, checkClock(now, time.Time{}), verdictOK, "no ID minted yet", "")
	wantFinding(t, checkClock(now, now.Add(-time.Second)), verdictOK, "last ID's time", "")
	wantFinding(t, checkClock(now, now.Add(300*time.Millisecond)), verdictOK, "IDs run 300ms ahead", "")
	wantFinding(t, checkClock(now, now.Add(90*time.Second)), verdictFail, "the clock is 1m30s behind the IDs", "NTP")
}

func TestPortOf(t *testing.T) {
	for in, want := range map[string]uint16{":80": 80, "tcp/0.0.0.0:443": 443, "localhost:2019": 2019, "[::1]:2019": 2019} {
		if got, err := portOf(in); err != nil || got != want {
			t.Errorf("portOf(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"unix//run/caddy.sock", "localhost:http"} {
		if _, err := portOf(in); err == nil || !strings.Contains(err.Error(), in) {
			t.Errorf("portOf(%q): error %v, want one naming the address", in, err)
		}
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		verdicts []verdict
		code     int
	}{{nil, 0}, {[]verdict{verdictOK}, 0}, {[]verdict{verdictOK, verdictWarn}, 1}, {[]verdict{verdictWarn, verdictFail}, 2}} {
		var fs []finding
		for _, v := range tc.verdicts {
			fs = append(fs, finding{Verdict: v})
		}
		code, err := exitStatus(fs)
		if code != tc.code || (code == 0) != (err == nil) {
			t.Errorf("exitStatus(%v) = %d, %v; want %d", tc.verdicts, code, err, tc.code)
		}
	}
}

func TestQueryOnce(t *testing.T) {
	var many []string
	for i := range 40 {
		many = append(many, netip.AddrFrom4([4]byte{10, 0, 16, byte(10 + i)}).String())
	}
	srv := startTestDNSServer(t, func(q dns.Question) *dns.Msg {
		switch q.Name {
		case "tasks.app.":
			return aRecords(q.Name, many...)
		case "tasks.gone.":
			return &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeNameError}}
		}
		return nil // black-holed
	})
	ctx := context.Background()
	udp, err := queryOnce(ctx, srv.addr, "udp", "tasks.app", time.Second)
	if err != nil || !udp.truncated || len(udp.addrs) == 0 || len(udp.addrs) >= 40 {
		t.Errorf("udp: %d addresses, truncated %v, error %v; want some of 40, truncated", len(udp.addrs), udp.truncated, err)
	}
	tcp, err := queryOnce(ctx, srv.addr, "tcp", "tasks.app", time.Second)
	if err != nil || tcp.truncated || len(tcp.addrs) != 40 || tcp.minTTL != 600 {
		t.Errorf("tcp: %d addresses, truncated %v, TTL %d, error %v; want all 40, TTL 600", len(tcp.addrs), tcp.truncated, tcp.minTTL, err)
	}
	if gone, err := queryOnce(ctx, srv.addr, "udp", "tasks.gone", time.Second); err != nil || gone.rcode != dns.RcodeNameError {
		t.Errorf("nxdomain: rcode %d, error %v", gone.rcode, err)
	}
	start := time.Now()
	if _, err := queryOnce(ctx, srv.addr, "udp", "tasks.silent", 300*time.Millisecond); !isTimeout(err) {
		t.Errorf("black-holed: error %v, want a timeout", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("black-holed query took %s with a 300ms timeout", took)
	}
}
