package swarm

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/miekg/dns"
)

// resolvConfPath is where the system resolver's servers are read.
const resolvConfPath = "/etc/resolv.conf"

// resolverKey identifies a process-wide lookup loop.
type resolverKey struct {
	name      string // lower-case, without the final dot; looked up as absolute
	resolvers string // "host:port,…"; empty: the system resolver's
	versions  string // "ipv4", "ipv6" or "ipv4 ipv6"
}

// queryTypes returns the record types to ask for.
func (k resolverKey) queryTypes() []uint16 {
	var types []uint16
	if strings.Contains(k.versions, "ipv4") {
		types = append(types, dns.TypeA)
	}
	if strings.Contains(k.versions, "ipv6") {
		types = append(types, dns.TypeAAAA)
	}
	return types
}

// servers returns the DNS servers to ask.
func (k resolverKey) servers() []string {
	if k.resolvers != "" {
		return strings.Split(k.resolvers, ",")
	}
	return systemResolvers()
}

// systemResolvers returns the name servers of /etc/resolv.conf (Docker
// writes 127.0.0.11 there), read once per loop. Like Go's own resolver it
// falls back to the local host when the file is missing or lists none.
func systemResolvers() []string {
	conf, err := dns.ClientConfigFromFile(resolvConfPath)
	if err != nil || len(conf.Servers) == 0 {
		return []string{"127.0.0.1:53", "[::1]:53"}
	}
	servers := make([]string, 0, len(conf.Servers))
	for _, s := range conf.Servers {
		if server, err := normalizeResolver(net.JoinHostPort(s, conf.Port)); err == nil {
			servers = append(servers, server)
		}
	}
	return servers
}

// normalizeResolver turns "host" or "host:port" (an IP address or a host
// name) into "host:port", port 53 by default; an IP address is written
// canonically, so that two spellings of one server share a loop.
func normalizeResolver(addr string) (string, error) {
	if strings.Contains(addr, "/") {
		return "", fmt.Errorf("%q: no network prefix: queries go over UDP, and TCP for long answers", addr)
	}
	na, err := caddy.ParseNetworkAddressWithDefaults(addr, "udp", 53)
	if err != nil {
		return "", fmt.Errorf("bad address %q: %v", addr, err)
	}
	if na.StartPort != na.EndPort || checkSwarmPort(int(na.StartPort)) != nil {
		return "", fmt.Errorf("bad port in %q: one port, 1-65535", addr)
	}
	port := uint16(na.StartPort)
	if ip, err := netip.ParseAddr(na.Host); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), port).String(), nil
	}
	if strings.Contains(na.Host, ":") || checkSwarmName(na.Host) != nil {
		return "", fmt.Errorf("%q is not an IP address or host name with an optional port", addr)
	}
	return net.JoinHostPort(na.Host, strconv.Itoa(int(port))), nil
}
