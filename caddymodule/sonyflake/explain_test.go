package sonyflake

import (
	"net/netip"
	"strings"
	"testing"
)

func TestExplainMachineID(t *testing.T) {
	swarmTask := []netInterface{
		{Name: "lo", Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
		{Name: "eth0", Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.17.5/20")}},
		{Name: "eth1", Addrs: []netip.Prefix{netip.MustParsePrefix("172.18.0.3/16")}},
	}
	gwbridgeFirst := []netInterface{swarmTask[0], swarmTask[2], swarmTask[1]}
	noEnv := func(string) (string, bool) { return "", false }
	for _, tc := range []struct {
		name        string
		app         App
		ifaces      []netInterface
		id          int
		inSource    string
		inWarning   string
		wantWarning bool
	}{
		{"cidr of the overlay", App{MachineIDCIDR: "10.0.16.0/20"}, swarmTask, 261, "address 10.0.17.5 on eth0", "", false},
		{"library rule, several candidates", App{}, swarmTask, 4357, "first private address 10.0.17.5 on eth0", "another node may derive the same machine ID", true},
		{"interface on gwbridge", App{MachineIDInterface: "eth1"}, gwbridgeFirst, 3, "interface eth1: address 172.18.0.3", "docker_gwbridge", true},
		{"explicit", App{MachineID: new(7)}, swarmTask, 7, "machine_id", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp, err := explainMachineID(tc.app, noEnv, tc.ifaces)
			if err != nil {
				t.Fatal(err)
			}
			if exp.ID != tc.id || !strings.Contains(exp.Source, tc.inSource) {
				t.Errorf("ID %d from %q, want %d from %q", exp.ID, exp.Source, tc.id, tc.inSource)
			}
			if (exp.Warning != "") != tc.wantWarning || !strings.Contains(exp.Warning, tc.inWarning) {
				t.Errorf("warning %q, want one containing %q: %v", exp.Warning, tc.inWarning, tc.wantWarning)
			}
			if !strings.Contains(exp.Candidates, "172.18.0.3 on eth1") {
				t.Errorf("candidates %q do not list the gwbridge address", exp.Candidates)
			}
		})
	}
	if _, err := explainMachineID(App{MachineIDCIDR: "10.9.0.0/20"}, noEnv, swarmTask); err == nil || !strings.Contains(err.Error(), "no address of this host is in it") {
		t.Errorf("a CIDR with no address here: error %v", err)
	}
}
