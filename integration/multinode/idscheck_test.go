//go:build multinode

package multinode

import (
	"context"
	"testing"
	"time"
)

// idsUnique asks the ID endpoint of the edge on every node under load for
// 5 s and checks that the edges have different machine IDs and minted
// disjoint sets of IDs, each with its own machine ID (see idProblems).
func idsUnique(t *testing.T, c *cluster) {
	t.Helper()
	var urls []string
	for _, nd := range c.nodes {
		urls = append(urls, "http://"+nd.ip+":"+edgePort+"/id?format=text")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := runLoad(ctx, urls, 4, 50)
	assertLoad(t, res)
	var edges []edgeIDs
	for i, nd := range c.nodes {
		e := edgeIDs{edge: nd.name, ids: res.ids[urls[i]]}
		var generators []struct {
			MachineID     int64 `json:"machine_id"`
			MachineIDBits int   `json:"machine_id_bits"`
		}
		if err := adminGet(nd, "/sonyflake/state", &generators); err != nil {
			t.Fatalf("the edge on %s: %v", nd.name, err)
		}
		for _, g := range generators {
			e.machineIDs = append(e.machineIDs, g.MachineID)
			e.machineIDBits = g.MachineIDBits
		}
		t.Logf("the edge on %s: machine IDs %v, %d IDs", nd.name, e.machineIDs, len(e.ids))
		edges = append(edges, e)
	}
	for _, p := range idProblems(edges) {
		t.Error(p)
	}
}
