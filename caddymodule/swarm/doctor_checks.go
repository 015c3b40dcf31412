package swarm

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// verdict is a check's outcome; a run's exit code is its worst verdict.
type verdict int

const (
	verdictOK verdict = iota
	verdictWarn
	verdictFail
)

func (v verdict) String() string { return [...]string{"ok", "warn", "fail"}[v] }

// MarshalText makes a verdict read as its word in --json.
func (v verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// finding is one check's line of the doctor's report.
type finding struct {
	// Check names what was checked, e.g. "dns tasks.app udp".
	Check string `json:"check"`
	// Verdict is ok, warn or fail.
	Verdict verdict `json:"verdict"`
	// Detail is what was seen.
	Detail string `json:"detail"`
	// Fix says what to do; empty when the verdict is ok.
	Fix string `json:"fix,omitempty"`
}

// dockerDNS is Docker's embedded DNS server, the one that knows tasks.
const dockerDNS = "127.0.0.11"

// checkResolvConf reads a resolv.conf text: its nameservers, ndots and
// search domains, and whether Docker's embedded DNS is among them. It
// returns the nameservers as host:port.
func checkResolvConf(text string) (finding, []string) {
	f := finding{Check: "resolv.conf"}
	conf, err := dns.ClientConfigFromReader(strings.NewReader(text))
	if err != nil || len(conf.Servers) == 0 {
		f.Verdict = verdictFail
		f.Detail = "no nameserver in resolv.conf"
		if err != nil {
			f.Detail = fmt.Sprintf("unreadable resolv.conf: %v", err)
		}
		f.Fix = "run the edge attached to an overlay network, where Docker writes nameserver 127.0.0.11"
		return f, nil
	}
	f.Detail = fmt.Sprintf("nameservers %s, ndots %d, search %s", strings.Join(conf.Servers, " "), conf.Ndots, orNone(conf.Search))
	if !slices.Contains(conf.Servers, dockerDNS) {
		f.Verdict = verdictWarn
		f.Fix = "127.0.0.11 (Docker's embedded DNS) is not a nameserver, so tasks.<service> will not resolve unless `resolvers` names a server that knows it: " +
			"host network mode has no embedded DNS; run the edge on an overlay network (ports published in mode: host still work)"
	}
	servers := make([]string, len(conf.Servers))
	for i, s := range conf.Servers {
		servers[i] = net.JoinHostPort(s, conf.Port)
	}
	return f, servers
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "(none)"
	}
	return strings.Join(list, " ")
}

// dnsAnswer is what one query for a name returned.
type dnsAnswer struct {
	rcode     int
	addrs     []netip.Addr // sorted
	truncated bool
	minTTL    uint32
	latency   time.Duration
}

// queryOnce asks server for name's A records over network ("udp" or
// "tcp") and reads the answer the way the resolver loop does.
func queryOnce(ctx context.Context, server, network, name string, timeout time.Duration) (dnsAnswer, error) {
	qname := dns.CanonicalName(name)
	msg := new(dns.Msg)
	msg.SetQuestion(qname, dns.TypeA)
	client := dns.Client{Net: network, Timeout: timeout}
	start := time.Now()
	resp, _, err := client.ExchangeContext(ctx, msg, server)
	ans := dnsAnswer{latency: time.Since(start)}
	if err != nil {
		if resp == nil || !resp.Truncated {
			return ans, err
		}
	}
	ans.rcode, ans.truncated = resp.Rcode, resp.Truncated
	if resp.Rcode != dns.RcodeSuccess {
		return ans, nil
	}
	addrs, _, err := readAnswer(resp, qname, dns.TypeA)
	if err != nil && len(resp.Answer) > 0 {
		return ans, err
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	ans.addrs = addrs
	for i, rr := range resp.Answer {
		if ttl := rr.Header().Ttl; i == 0 || ttl < ans.minTTL {
			ans.minTTL = ttl
		}
	}
	return ans, nil
}

// taskNames are the names the doctor asks for one service.
type taskNames struct {
	service string // as the user knows it, e.g. "app"
	tasks   string // the task name, e.g. "tasks.app"
}

func namesFor(service string) taskNames {
	if svc, ok := strings.CutPrefix(service, "tasks."); ok {
		return taskNames{service: svc, tasks: service}
	}
	return taskNames{service: service, tasks: "tasks." + service}
}

// checkTaskName reports one query of the task name over one network.
func checkTaskName(n taskNames, network, server string, ans dnsAnswer, err error) finding {
	f := finding{Check: fmt.Sprintf("dns %s %s @%s", n.tasks, network, server)}
	switch {
	case err != nil && isTimeout(err):
		f.Verdict = verdictFail
		f.Detail = fmt.Sprintf("no answer within %s", ans.latency.Round(time.Millisecond))
		f.Fix = "the resolver does not answer: check that the edge's network is up (docker network inspect) and that `resolvers` names a reachable server"
	case err != nil:
		f.Verdict = verdictFail
		f.Detail = err.Error()
		f.Fix = "the resolver's answer is unusable; check `resolvers` and the network"
	case ans.rcode == dns.RcodeNameError:
		f.Verdict = verdictFail
		f.Detail = fmt.Sprintf("NXDOMAIN after %s", ans.latency.Round(time.Millisecond))
		f.Fix = fmt.Sprintf("no running task answers to %s: the edge is not attached to the service's network, the name is misspelt, "+
			"the service has no running task (scaled to 0 or failing its healthcheck), or it belongs to a stack and is named <stack>_%s", n.tasks, n.service)
	case ans.rcode != dns.RcodeSuccess:
		f.Verdict = verdictFail
		f.Detail = fmt.Sprintf("rcode %s after %s", dns.RcodeToString[ans.rcode], ans.latency.Round(time.Millisecond))
		f.Fix = "the resolver failed; ask it again, and check Docker's daemon log on this node"
	case len(ans.addrs) == 0 && !ans.truncated:
		f.Verdict = verdictFail
		f.Detail = "an answer with no address"
		f.Fix = "the service has no running, healthy task: docker service ps " + n.service
	default:
		f.Detail = fmt.Sprintf("%d tasks in %s, TTL %d: %s", len(ans.addrs), ans.latency.Round(time.Millisecond), ans.minTTL, describeFirst(ans.addrs, 10))
		if ans.truncated {
			f.Verdict = verdictWarn
			f.Detail += ", truncated (TC)"
			f.Fix = "the UDP answer holds only some tasks: swarmedge asks again over TCP, but clients that do not (Caddy's dynamic a, nginx) see only these"
		}
	}
	return f
}

// checkTransportsAgree compares the UDP and TCP task sets.
func checkTransportsAgree(n taskNames, udp, tcp dnsAnswer) finding {
	f := finding{Check: fmt.Sprintf("dns %s udp=tcp", n.tasks)}
	if slices.Equal(udp.addrs, tcp.addrs) {
		f.Detail = fmt.Sprintf("both list the same %d tasks", len(udp.addrs))
		return f
	}
	if udp.truncated && isSubset(udp.addrs, tcp.addrs) {
		f.Detail = fmt.Sprintf("UDP lists %d of TCP's %d tasks: truncated, as Docker does past 512 bytes", len(udp.addrs), len(tcp.addrs))
		return f
	}
	f.Verdict = verdictWarn
	f.Detail = fmt.Sprintf("UDP lists %s, TCP lists %s", describeAddrList(udp.addrs), describeAddrList(tcp.addrs))
	f.Fix = "the set changed between the two queries (a deploy?) or the resolver is inconsistent: run the doctor again"
	return f
}

func isSubset(small, big []netip.Addr) bool {
	for _, a := range small {
		if !slices.Contains(big, a) {
			return false
		}
	}
	return true
}

// describeFirst lists the first n addresses, and how many more there are.
func describeFirst(addrs []netip.Addr, n int) string {
	if len(addrs) <= n {
		return describeAddrList(addrs)
	}
	return fmt.Sprintf("%s and %d more", describeAddrList(addrs[:n]), len(addrs)-n)
}

func describeAddrList(addrs []netip.Addr) string {
	if len(addrs) == 0 {
		return "none"
	}
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = a.String()
	}
	return strings.Join(parts, " ")
}

// checkServiceName reports the plain service name's answer: one VIP, or
// the task set itself (endpoint mode dnsrr).
func checkServiceName(n taskNames, server string, plain, tasks dnsAnswer, err error) finding {
	f := finding{Check: fmt.Sprintf("dns %s @%s", n.service, server)}
	switch {
	case err != nil:
		f.Verdict = verdictWarn
		f.Detail = err.Error()
		f.Fix = "the service name does not resolve though its tasks may: check the name"
	case plain.rcode != dns.RcodeSuccess || len(plain.addrs) == 0:
		f.Verdict = verdictWarn
		f.Detail = fmt.Sprintf("rcode %s, no address", dns.RcodeToString[plain.rcode])
		f.Fix = "the service name does not resolve: the edge is not on the service's network, or the name is not the service's"
	case len(plain.addrs) == 1 && !slices.Contains(tasks.addrs, plain.addrs[0]):
		f.Detail = fmt.Sprintf("VIP %s (endpoint mode vip): the edge balances over the task addresses, not this VIP", plain.addrs[0])
	default:
		f.Detail = fmt.Sprintf("%d addresses, the tasks themselves (endpoint mode dnsrr)", len(plain.addrs))
	}
	return f
}

// edgeService is what the doctor reads of one task pool from the admin
// endpoint /swarm/upstreams.
type edgeService struct {
	Name        string       `json:"name"`
	Port        uint16       `json:"port"`
	Resolvers   []string     `json:"resolvers"`
	Tasks       []taskStatus `json:"tasks"`
	Stale       bool         `json:"stale"`
	FailOpen    bool         `json:"fail_open"`
	LastRefresh *time.Time   `json:"last_refresh"`
	LastGood    *time.Time   `json:"last_good"`
	LastResult  string       `json:"last_result"`
	LastError   string       `json:"last_error"`
}

// checkEdgeBelief compares what the running edge serves for a service
// with what DNS answers now (nil when DNS gave no usable answer).
func checkEdgeBelief(s edgeService, dnsNow []netip.Addr, now time.Time) finding {
	f := finding{Check: fmt.Sprintf("edge %s:%d", s.Name, s.Port)}
	var known, served, withheld []netip.Addr
	for _, t := range s.Tasks {
		addr, err := netip.ParseAddrPort(t.Address)
		if err != nil {
			continue
		}
		known = append(known, addr.Addr())
		if t.Served {
			served = append(served, addr.Addr())
		} else {
			withheld = append(withheld, addr.Addr())
		}
	}
	slices.SortFunc(known, netip.Addr.Compare)
	age := "never"
	if s.LastRefresh != nil {
		age = now.Sub(*s.LastRefresh).Round(time.Millisecond).String() + " ago"
	}
	f.Detail = fmt.Sprintf("serves %d of %d tasks, last lookup %s (%s)", len(served), len(s.Tasks), age, s.LastResult)
	switch {
	case s.Stale:
		f.Verdict = verdictFail
		f.Detail += ": stale, DNS has failed for longer than max_stale: " + s.LastError
		f.Fix = "the edge serves no task until DNS answers again: see the dns lines above"
	case len(s.Tasks) == 0:
		f.Verdict = verdictFail
		f.Fix = "the edge knows no task, so every request gets 503: see the dns lines above"
	case len(withheld) > 0:
		f.Verdict = verdictWarn
		f.Detail += "; withheld by health probes: " + describeAddrList(withheld)
		f.Fix = "those tasks fail health_uri: check them with caddy swarm health http://<task>:<port><health_uri>"
	case s.LastResult != string(resultOK):
		f.Verdict = verdictWarn
		f.Detail += ": " + s.LastError
		f.Fix = "the edge serves its last good set while DNS fails (up to max_stale)"
	}
	if dnsNow != nil && f.Verdict == verdictOK {
		if !slices.Equal(known, dnsNow) {
			f.Verdict = verdictWarn
			f.Detail += fmt.Sprintf("; DNS now lists %s, the edge %s", describeAddrList(dnsNow), describeAddrList(known))
			f.Fix = "the edge catches up at its next refresh; if this persists, the edge asks another resolver than this doctor (see resolvers)"
		}
	}
	return f
}

// listeningPorts returns the TCP ports in LISTEN state in a
// /proc/net/tcp or /proc/net/tcp6 text.
func listeningPorts(text string) (map[uint16]bool, error) {
	const listen = "0A"
	ports := map[uint16]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for line := 0; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if line == 0 || len(fields) < 4 {
			continue // the header
		}
		if fields[3] != listen {
			continue
		}
		_, portHex, ok := strings.Cut(fields[1], ":")
		if !ok {
			return nil, fmt.Errorf("line %d: local address %q is not ADDR:PORT", line+1, fields[1])
		}
		b, err := hex.DecodeString(portHex)
		if err != nil || len(b) != 2 {
			return nil, fmt.Errorf("line %d: port %q is not 4 hex digits", line+1, portHex)
		}
		ports[uint16(b[0])<<8|uint16(b[1])] = true
	}
	return ports, sc.Err()
}

// checkListeners reports whether each port the config asks for is
// listening.
func checkListeners(want map[string]uint16, listening map[uint16]bool) []finding {
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []finding
	for _, name := range names {
		port := want[name]
		f := finding{Check: "listen " + name, Detail: fmt.Sprintf("port %d listening", port)}
		if !listening[port] {
			f.Verdict = verdictFail
			f.Detail = fmt.Sprintf("nothing listens on port %d", port)
			f.Fix = "the config asks for it: another process holds the port, or the config did not load (docker service logs <edge>)"
		}
		out = append(out, f)
	}
	return out
}

// clockBehindIDs is how far the IDs may run ahead of the wall clock
// before the doctor calls it a clock problem: stamping runs up to 1 s
// ahead under load, and a restarted edge starts above its predecessor's
// reservation, about 2 s ahead.
const clockBehindIDs = 5 * time.Second

// checkClock compares the wall clock with the time of the last minted
// ID: a clock behind it makes minting wait or refuse.
func checkClock(now, lastID time.Time) finding {
	f := finding{Check: "clock"}
	if lastID.IsZero() {
		f.Detail = fmt.Sprintf("wall clock %s; no ID minted yet", now.UTC().Format(time.RFC3339))
		return f
	}
	behind := lastID.Sub(now)
	f.Detail = fmt.Sprintf("wall clock %s, last ID's time %s", now.UTC().Format(time.RFC3339Nano), lastID.UTC().Format(time.RFC3339Nano))
	switch {
	case behind > clockBehindIDs:
		f.Verdict = verdictFail
		f.Detail += fmt.Sprintf(": the clock is %s behind the IDs", behind.Round(time.Millisecond))
		f.Fix = "IDs continue above the last one, so requests wait or get 503 until the clock catches up: check NTP on this node (timedatectl)"
	case behind > 0:
		f.Detail += fmt.Sprintf(" (IDs run %s ahead: load above the format's ceiling, or a restart continuing above its predecessor)", behind.Round(time.Millisecond))
	}
	return f
}

// portOf returns the port of a listen address such as ":80",
// "tcp/0.0.0.0:443" or "localhost:2019".
func portOf(addr string) (uint16, error) {
	_, rest, found := strings.Cut(addr, "/")
	if !found {
		rest = addr
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return 0, fmt.Errorf("address %q has no port", addr)
	}
	p, err := strconv.ParseUint(rest[i+1:], 10, 16)
	if err != nil {
		return 0, fmt.Errorf("address %q: port: %v", addr, errors.Unwrap(err))
	}
	return uint16(p), nil
}
