package sonyflake

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// netInterface is what machine ID resolution needs to know of a network
// interface: its name and its addresses with their prefix lengths.
type netInterface struct {
	Name  string
	Addrs []netip.Prefix
}

// listInterfaces enumerates this host's interfaces in the order the system
// lists them (the order the library's rule scans them in). The plugin does
// this itself because the library's lookup cannot be injected; tests feed
// interface lists straight to resolveMachineID instead.
func listInterfaces() ([]netInterface, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	list := make([]netInterface, 0, len(ifaces))
	for _, ifc := range ifaces {
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("listing the addresses of %s: %w", ifc.Name, err)
		}
		entry := netInterface{Name: ifc.Name}
		for _, a := range addrs {
			ipnet, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			addr, ok := netip.AddrFromSlice(ipnet.IP)
			if !ok {
				continue
			}
			ones, _ := ipnet.Mask.Size()
			entry.Addrs = append(entry.Addrs, netip.PrefixFrom(addr.Unmap(), ones))
		}
		list = append(list, entry)
	}
	return list, nil
}

// machineIDSource is the configured origin of the machine ID: at most one
// field is set; none means the library's rule.
type machineIDSource struct {
	explicit *int
	env      string
	cidr     string
	iface    string
}

// resolvedMachineID is a machine ID and where it came from, for the log.
type resolvedMachineID struct {
	id     int
	source string
	// addr is the address the ID was derived from; invalid for the
	// explicit and env sources.
	addr netip.Addr
	// warning is set when the library's rule picked one of several
	// candidate addresses: other nodes may pick colliding ones.
	warning string
}

// howToSet ends every error about a missing or unusable machine ID.
const howToSet = "set one in the global option sonyflake: machine_id <n>, machine_id env <VAR>, machine_id cidr <overlay subnet> (recommended in Swarm) or machine_id interface <name>"

// resolveMachineID finds the machine ID from src for machine IDs of bits
// bits. lookupEnv and interfaces are only called for the sources that need
// them. An explicit number is returned as is: the layout check names it
// when it is out of range.
func resolveMachineID(src machineIDSource, bits int, lookupEnv func(string) (string, bool), interfaces func() ([]netInterface, error)) (resolvedMachineID, error) {
	var set []string
	for _, s := range []struct {
		name  string
		isSet bool
	}{
		{"machine_id <n>", src.explicit != nil},
		{"machine_id env", src.env != ""},
		{"machine_id cidr", src.cidr != ""},
		{"machine_id interface", src.iface != ""},
	} {
		if s.isSet {
			set = append(set, s.name)
		}
	}
	if len(set) > 1 {
		return resolvedMachineID{}, fmt.Errorf("machine_id: set only one source, got %s", strings.Join(set, ", "))
	}
	switch {
	case src.explicit != nil:
		return resolvedMachineID{id: *src.explicit, source: "machine_id"}, nil
	case src.env != "":
		return machineIDFromEnv(src.env, bits, lookupEnv)
	}
	ifaces, err := interfaces()
	if err != nil {
		return resolvedMachineID{}, err
	}
	switch {
	case src.cidr != "":
		return machineIDFromCIDR(src.cidr, bits, ifaces)
	case src.iface != "":
		return machineIDFromInterface(src.iface, bits, ifaces)
	}
	return machineIDFromPrivateAddress(bits, ifaces)
}

func machineIDFromEnv(name string, bits int, lookupEnv func(string) (string, bool)) (resolvedMachineID, error) {
	val, ok := lookupEnv(name)
	if !ok {
		return resolvedMachineID{}, fmt.Errorf("machine_id env %s: the variable is not set; %s", name, howToSet)
	}
	id, err := strconv.Atoi(strings.TrimSpace(val))
	if err != nil {
		return resolvedMachineID{}, fmt.Errorf("machine_id env %s: value %q is not a number (for a global Swarm service {{.Task.Slot}} is the node ID, a string: use machine_id cidr <overlay subnet> instead)", name, val)
	}
	if max := 1<<bits - 1; id < 0 || id > max {
		return resolvedMachineID{}, fmt.Errorf("machine_id env %s: value %d is out of range: must be 0 to %d for machine_id_bits %d", name, id, max, bits)
	}
	return resolvedMachineID{id: id, source: "env " + name}, nil
}

func machineIDFromCIDR(cidr string, bits int, ifaces []netInterface) (resolvedMachineID, error) {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return resolvedMachineID{}, fmt.Errorf("machine_id cidr %s: want a network prefix such as 10.0.0.0/20: %v", cidr, err)
	}
	prefix = prefix.Masked()
	if !prefix.Addr().Is4() {
		return resolvedMachineID{}, fmt.Errorf("machine_id cidr %s: must be an IPv4 prefix", cidr)
	}
	hostBits := 32 - prefix.Bits()
	if hostBits == 0 {
		return resolvedMachineID{}, fmt.Errorf("machine_id cidr %s: has no host bits; give the network's prefix, e.g. 10.0.0.0/20", cidr)
	}
	if hostBits > bits {
		return resolvedMachineID{}, fmt.Errorf("machine_id cidr %s: its %d host bits do not fit machine_id_bits %d: use a prefix of /%d or longer, or machine_id_bits %d",
			cidr, hostBits, bits, 32-bits, hostBits)
	}
	for _, ifc := range ifaces {
		for _, a := range ifc.Addrs {
			if addr := a.Addr(); addr.Is4() && prefix.Contains(addr) {
				id := int(ipv4Uint(addr) - ipv4Uint(prefix.Addr()))
				return resolvedMachineID{id: id, source: fmt.Sprintf("cidr %s: address %s on %s", prefix, addr, ifc.Name), addr: addr}, nil
			}
		}
	}
	return resolvedMachineID{}, fmt.Errorf("machine_id cidr %s: no address of this host is in it (this host has %s); attach the service to that network or pin its subnet in the stack file",
		cidr, describeAddrs(ifaces, anyAddr))
}

func machineIDFromInterface(name string, bits int, ifaces []netInterface) (resolvedMachineID, error) {
	var names []string
	for _, ifc := range ifaces {
		names = append(names, ifc.Name)
		if ifc.Name != name {
			continue
		}
		for _, a := range ifc.Addrs {
			if addr := a.Addr(); addr.Is4() {
				return resolvedMachineID{id: lowBits(addr, bits), source: fmt.Sprintf("interface %s: address %s", name, addr), addr: addr}, nil
			}
		}
		return resolvedMachineID{}, fmt.Errorf("machine_id interface %s: it has no IPv4 address; %s", name, howToSet)
	}
	return resolvedMachineID{}, fmt.Errorf("machine_id interface %s: no such interface (this host has %s)", name, strings.Join(names, ", "))
}

// machineIDFromPrivateAddress applies the library's rule: the first private
// IPv4 address that is not loopback, its low bits bits.
func machineIDFromPrivateAddress(bits int, ifaces []netInterface) (resolvedMachineID, error) {
	var first netip.Addr
	var firstIface string
	candidates := 0
	for _, ifc := range ifaces {
		for _, a := range ifc.Addrs {
			if addr := a.Addr(); isLibraryPrivate(addr) {
				if candidates == 0 {
					first, firstIface = addr, ifc.Name
				}
				candidates++
			}
		}
	}
	if candidates == 0 {
		return resolvedMachineID{}, fmt.Errorf("no machine ID: this host has no private IPv4 address to derive one from (it has %s); %s",
			describeAddrs(ifaces, anyAddr), howToSet)
	}
	res := resolvedMachineID{id: lowBits(first, bits), source: fmt.Sprintf("first private address %s on %s", first, firstIface), addr: first}
	if candidates > 1 {
		res.warning = fmt.Sprintf("machine ID taken from the first of several private addresses (%s): another node may derive the same machine ID (e.g. from docker_gwbridge, the same range on every node) and mint duplicate IDs; %s",
			describeAddrs(ifaces, isLibraryPrivate), howToSet)
	}
	return res, nil
}

// isLibraryPrivate is the library's test for a candidate address: IPv4 in
// 10/8, 172.16/12, 192.168/16 or link-local 169.254/16.
func isLibraryPrivate(addr netip.Addr) bool {
	return addr.Is4() && (addr.IsPrivate() || addr.IsLinkLocalUnicast())
}

// anyAddr keeps every address in describeAddrs.
func anyAddr(netip.Addr) bool { return true }

// describeAddrs lists the addresses that match keep as "addr on iface".
func describeAddrs(ifaces []netInterface, keep func(netip.Addr) bool) string {
	var parts []string
	for _, ifc := range ifaces {
		for _, a := range ifc.Addrs {
			if keep(a.Addr()) {
				parts = append(parts, a.Addr().String()+" on "+ifc.Name)
			}
		}
	}
	if len(parts) == 0 {
		return "no addresses"
	}
	return strings.Join(parts, ", ")
}

func ipv4Uint(addr netip.Addr) uint32 {
	b := addr.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// lowBits is the low bits bits of an IPv4 address.
func lowBits(addr netip.Addr, bits int) int {
	return int(ipv4Uint(addr) & (1<<bits - 1))
}
