package sonyflake

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
)

// gwbridgePrefix is docker_gwbridge's default range: the same on every
// node, so an address in it derives the same machine ID on two nodes.
var gwbridgePrefix = netip.MustParsePrefix("172.18.0.0/16")

// MachineIDExplanation is what `caddy swarm doctor` reports of the machine
// ID: which one a config picks on this host, from where, and the
// candidates it chose among.
type MachineIDExplanation struct {
	ID         int
	Source     string
	Candidates string
	// Warning is set when another node could derive the same machine ID.
	Warning string
}

// ExplainMachineID resolves the machine ID that the sonyflake app
// configured by appJSON (nil: the defaults) picks on this host, as
// Provision would, and says whether the pick could repeat on another node.
func ExplainMachineID(appJSON []byte) (MachineIDExplanation, error) {
	var a App
	if len(appJSON) > 0 {
		if err := json.Unmarshal(appJSON, &a); err != nil {
			return MachineIDExplanation{}, fmt.Errorf("reading the sonyflake app's config: %v", err)
		}
	}
	ifaces, err := listInterfaces()
	if err != nil {
		return MachineIDExplanation{}, err
	}
	return explainMachineID(a, os.LookupEnv, ifaces)
}

func explainMachineID(a App, lookupEnv func(string) (string, bool), ifaces []netInterface) (MachineIDExplanation, error) {
	_, _, bits, err := a.layoutSizes()
	if err != nil {
		return MachineIDExplanation{}, err
	}
	src := machineIDSource{explicit: a.MachineID, env: a.MachineIDEnv, cidr: a.MachineIDCIDR, iface: a.MachineIDInterface}
	res, err := resolveMachineID(src, bits, lookupEnv, func() ([]netInterface, error) { return ifaces, nil })
	if err != nil {
		return MachineIDExplanation{}, err
	}
	exp := MachineIDExplanation{
		ID:         res.id,
		Source:     res.source,
		Candidates: describeAddrs(ifaces, isLibraryPrivate),
		Warning:    res.warning,
	}
	if exp.Warning == "" && gwbridgePrefix.Contains(res.addr) {
		exp.Warning = fmt.Sprintf("the machine ID comes from an address in %s, docker_gwbridge's range, which every node has: two nodes can derive the same machine ID; %s", gwbridgePrefix, howToSet)
	}
	return exp, nil
}
