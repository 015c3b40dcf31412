package sonyflake

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func ifc(name string, addrs ...string) netInterface {
	n := netInterface{Name: name}
	for _, a := range addrs {
		n.Addrs = append(n.Addrs, netip.MustParsePrefix(a))
	}
	return n
}

// swarmContainer is a task on an overlay network: its overlay address on
// eth0 and a docker_gwbridge address (the same range on every node) on eth1.
var swarmContainer = []netInterface{
	ifc("lo", "127.0.0.1/8", "::1/128"),
	ifc("eth0", "10.0.0.8/20"),
	ifc("eth1", "172.18.0.5/16"),
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func TestResolveMachineID(t *testing.T) {
	seven := 7
	for _, tc := range []struct {
		name    string
		src     machineIDSource
		bits    int
		env     map[string]string
		ifaces  []netInterface
		want    int
		warn    string   // substring of the warning; "" = no warning
		wantErr []string // substrings of the error
	}{
		{name: "explicit", src: machineIDSource{explicit: &seven}, want: 7},
		{name: "env", src: machineIDSource{env: "SLOT"}, env: map[string]string{"SLOT": "3"}, want: 3},
		{name: "env missing", src: machineIDSource{env: "SLOT"}, wantErr: []string{"env SLOT", "not set", "machine_id cidr"}},
		{name: "env node ID", src: machineIDSource{env: "SLOT"}, env: map[string]string{"SLOT": "k3x9v0m1q8"},
			wantErr: []string{"env SLOT", `"k3x9v0m1q8" is not a number`, "node ID", "machine_id cidr"}},
		{name: "env out of range", src: machineIDSource{env: "SLOT"}, bits: 8, env: map[string]string{"SLOT": "256"},
			wantErr: []string{"env SLOT", "256", "0 to 255", "machine_id_bits 8"}},
		{name: "env negative", src: machineIDSource{env: "SLOT"}, env: map[string]string{"SLOT": "-1"}, wantErr: []string{"env SLOT", "-1", "out of range"}},
		{name: "cidr overlay", src: machineIDSource{cidr: "10.0.0.0/20"}, ifaces: swarmContainer, want: 8},
		{name: "cidr offset", src: machineIDSource{cidr: "10.0.16.0/20"}, ifaces: []netInterface{ifc("eth0", "10.0.19.4/20")}, want: 3<<8 | 4},
		{name: "cidr no match", src: machineIDSource{cidr: "10.1.0.0/24"}, ifaces: swarmContainer,
			wantErr: []string{"cidr 10.1.0.0/24", "no address of this host", "10.0.0.8 on eth0", "172.18.0.5 on eth1"}},
		{name: "cidr too wide for bits", src: machineIDSource{cidr: "10.0.0.0/20"}, bits: 8, ifaces: swarmContainer,
			wantErr: []string{"cidr 10.0.0.0/20", "12 host bits", "machine_id_bits 8", "/24"}},
		{name: "cidr IPv6", src: machineIDSource{cidr: "fd00::/64"}, ifaces: swarmContainer, wantErr: []string{"fd00::/64", "IPv4"}},
		{name: "cidr no host bits", src: machineIDSource{cidr: "10.0.0.8/32"}, ifaces: swarmContainer, wantErr: []string{"no host bits"}},
		{name: "cidr malformed", src: machineIDSource{cidr: "10.0.0.0"}, ifaces: swarmContainer, wantErr: []string{"cidr 10.0.0.0", "network prefix"}},
		{name: "interface", src: machineIDSource{iface: "eth1"}, ifaces: swarmContainer, want: 5},
		{name: "interface low bits", src: machineIDSource{iface: "eth0"}, bits: 4, ifaces: []netInterface{ifc("eth0", "10.0.1.35/16")}, want: 35 & 15},
		{name: "interface missing", src: machineIDSource{iface: "eth9"}, ifaces: swarmContainer, wantErr: []string{"interface eth9", "no such interface", "lo, eth0, eth1"}},
		{name: "interface without IPv4", src: machineIDSource{iface: "eth0"}, ifaces: []netInterface{ifc("eth0", "fd00::5/64")},
			wantErr: []string{"interface eth0", "no IPv4", "machine_id cidr"}},
		{name: "default single private", ifaces: []netInterface{ifc("lo", "127.0.0.1/8"), ifc("eth0", "192.168.3.9/24")}, want: 3<<8 | 9},
		{name: "default several private", ifaces: swarmContainer, want: 8,
			warn: "10.0.0.8 on eth0, 172.18.0.5 on eth1"},
		{name: "default link-local counts like the library", ifaces: []netInterface{ifc("eth0", "169.254.1.2/16")}, want: 1<<8 | 2},
		{name: "default no private address", ifaces: []netInterface{ifc("lo", "127.0.0.1/8"), ifc("eth0", "203.0.113.7/24")},
			wantErr: []string{"no private IPv4", "203.0.113.7 on eth0", "machine_id <n>", "machine_id cidr <overlay subnet>"}},
		{name: "two sources", src: machineIDSource{explicit: &seven, cidr: "10.0.0.0/20"}, ifaces: swarmContainer,
			wantErr: []string{"only one source", "machine_id <n>, machine_id cidr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bits := tc.bits
			if bits == 0 {
				bits = defaultMachineIDBits
			}
			listed := false
			interfaces := func() ([]netInterface, error) { listed = true; return tc.ifaces, nil }
			got, err := resolveMachineID(tc.src, bits, env(tc.env), interfaces)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("got machine ID %d (%s), want an error", got.id, got.source)
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.id != tc.want {
				t.Errorf("machine ID = %d (%s), want %d", got.id, got.source, tc.want)
			}
			if tc.warn == "" && got.warning != "" {
				t.Errorf("unexpected warning %q", got.warning)
			}
			if tc.warn != "" && (!strings.Contains(got.warning, tc.warn) || !strings.Contains(got.warning, "machine_id cidr")) {
				t.Errorf("warning %q, want one naming %q and how to set a machine ID", got.warning, tc.warn)
			}
			if listed && (tc.src.explicit != nil || tc.src.env != "") {
				t.Error("listed interfaces for a source that does not need them")
			}
		})
	}
}

func TestResolveMachineIDDefaultNamesItsAddress(t *testing.T) {
	got, err := resolveMachineID(machineIDSource{}, 16, env(nil), func() ([]netInterface, error) { return swarmContainer, nil })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.source, "10.0.0.8") || !strings.Contains(got.source, "eth0") {
		t.Errorf("source %q, want the address and interface it came from", got.source)
	}
}

func TestResolveMachineIDInterfaceListingFails(t *testing.T) {
	boom := errors.New("netlink: permission denied")
	_, err := resolveMachineID(machineIDSource{cidr: "10.0.0.0/20"}, 16, env(nil), func() ([]netInterface, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the listing error", err)
	}
}
