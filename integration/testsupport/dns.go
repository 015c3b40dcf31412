package testsupport

import (
	"fmt"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// StartDNS runs a DNS server on a loopback port, over UDP and TCP, that
// answers A queries for the names in records (TTL 60) and NXDOMAIN for
// other names; a known name has no other record type. It returns the
// server's host:port and stops when t ends.
func StartDNS(t testing.TB, records map[string]net.IP) string {
	t.Helper()
	answers := make(map[string]net.IP, len(records))
	for name, ip := range records {
		answers[dns.CanonicalName(name)] = ip
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetReply(req)
		q := req.Question[0]
		ip, known := answers[dns.CanonicalName(q.Name)]
		switch {
		case !known:
			resp.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			resp.Answer = append(resp.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A:   ip,
			})
		}
		_ = w.WriteMsg(resp)
	})
	tcp, udp := listenTCPAndUDP(t)
	for _, server := range []*dns.Server{{Listener: tcp, Handler: handler}, {PacketConn: udp, Handler: handler}} {
		go server.ActivateAndServe()
		t.Cleanup(func() { _ = server.Shutdown() })
	}
	return tcp.Addr().String()
}

// listenTCPAndUDP listens on one loopback port for both protocols.
func listenTCPAndUDP(t testing.TB) (net.Listener, net.PacketConn) {
	t.Helper()
	for range 20 {
		tcp, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		udp, err := net.ListenPacket("udp", tcp.Addr().String())
		if err == nil {
			return tcp, udp
		}
		tcp.Close()
	}
	t.Fatal(fmt.Errorf("no loopback port free for both TCP and UDP"))
	return nil, nil
}
