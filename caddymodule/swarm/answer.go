package swarm

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// refreshResult is the outcome of one lookup, as counted in the metrics.
type refreshResult string

// The outcomes of a lookup.
const (
	resultOK       refreshResult = "ok"       // at least one address
	resultEmpty    refreshResult = "empty"    // NOERROR with no address
	resultNXDomain refreshResult = "nxdomain" // no such name
	resultServFail refreshResult = "servfail" // the server failed
	resultTimeout  refreshResult = "timeout"  // no answer in time
	resultError    refreshResult = "error"    // anything else: refused, bad answer, network error
)

// settles reports whether a result answers the question, so that no other
// server need be asked: addresses, an empty answer or no such name.
func (r refreshResult) settles() bool {
	return r == resultOK || r == resultEmpty || r == resultNXDomain
}

// readAnswer classifies an answer to (qname, qtype), qname absolute and
// lower-case, and returns its addresses. An answer to another question is
// an error; one with no question section (some servers send none with an
// error code) is read by its code. Records of qtype are taken for qname
// and for the names a CNAME chain in the answer leads to; other records
// are ignored, but an answer with records and no usable address is an
// error, not an empty set.
func readAnswer(resp *dns.Msg, qname string, qtype uint16) ([]netip.Addr, refreshResult, error) {
	if len(resp.Question) > 1 || len(resp.Question) == 1 &&
		(!strings.EqualFold(resp.Question[0].Name, qname) || resp.Question[0].Qtype != qtype) {
		return nil, resultError, fmt.Errorf("answer does not match the question %s %s", qname, dns.TypeToString[qtype])
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return nil, resultNXDomain, fmt.Errorf("NXDOMAIN: no such name %s (a service with no running task?)", qname)
	case dns.RcodeServerFailure:
		return nil, resultServFail, errors.New("SERVFAIL")
	default:
		return nil, resultError, fmt.Errorf("rcode %s", rcodeName(resp.Rcode))
	}
	if len(resp.Question) == 0 {
		return nil, resultError, fmt.Errorf("answer without the question %s %s", qname, dns.TypeToString[qtype])
	}

	owners := aliases(resp.Answer, qname)
	var addrs []netip.Addr
	for _, rr := range resp.Answer {
		if !owners[dns.CanonicalName(rr.Header().Name)] {
			continue
		}
		var ip net.IP
		switch rec := rr.(type) {
		case *dns.A:
			if qtype == dns.TypeA {
				ip = rec.A
			}
		case *dns.AAAA:
			if qtype == dns.TypeAAAA {
				ip = rec.AAAA
			}
		}
		if addr, ok := netip.AddrFromSlice(ip); ok && !addr.Unmap().IsUnspecified() {
			addrs = append(addrs, addr.Unmap())
		}
	}
	switch {
	case len(addrs) > 0:
		return addrs, resultOK, nil
	case len(resp.Answer) > 0:
		return nil, resultError, fmt.Errorf("no usable %s record for %s among %d records: %s",
			dns.TypeToString[qtype], qname, len(resp.Answer), describeRecords(resp.Answer))
	default:
		return nil, resultEmpty, fmt.Errorf("no %s record for %s", dns.TypeToString[qtype], qname)
	}
}

// aliases returns qname and the names a CNAME chain in answer leads to
// from it, canonical. Each name is added once, so a loop ends.
func aliases(answer []dns.RR, qname string) map[string]bool {
	owners := map[string]bool{qname: true}
	for followed := true; followed; {
		followed = false
		for _, rr := range answer {
			cname, ok := rr.(*dns.CNAME)
			if !ok || !owners[dns.CanonicalName(cname.Hdr.Name)] {
				continue
			}
			if target := dns.CanonicalName(cname.Target); !owners[target] {
				owners[target] = true
				followed = true
			}
		}
	}
	return owners
}

// rcodeName is the name of a response code, or its number.
func rcodeName(rcode int) string {
	if name, ok := dns.RcodeToString[rcode]; ok {
		return name
	}
	return fmt.Sprint(rcode)
}

// describeRecords summarises records for an error message.
func describeRecords(rrs []dns.RR) string {
	const most = 3
	parts := make([]string, 0, most+1)
	for i, rr := range rrs {
		if i == most {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, strings.Join(strings.Fields(rr.String()), " "))
	}
	return strings.Join(parts, "; ")
}
