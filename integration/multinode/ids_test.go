package multinode

// This file has no build tag and no Docker: `go test ./integration/multinode/`
// shows that the IDs check of the multi-node harness can fail.

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
)

// edgeIDs is what one edge gave: the machine IDs of its generators (GET
// /sonyflake/state) and the IDs it minted under load.
type edgeIDs struct {
	edge          string
	machineIDs    []int64
	machineIDBits int
	ids           []string
}

// idProblems lists what makes the edges' IDs not unique across the Swarm,
// or the check vacuous: two edges with the same machine ID, an edge
// without a generator or without IDs, an ID
// that is not a number or whose machine ID is not its edge's, an ID minted
// twice (by one edge or by two). None means the check passed.
func idProblems(edges []edgeIDs) []string {
	var problems []string
	owner := map[int64]string{} // machine ID → edge
	for _, e := range edges {
		if len(e.machineIDs) == 0 {
			problems = append(problems, fmt.Sprintf("%s: no generator in /sonyflake/state", e.edge))
		}
		if len(e.ids) == 0 {
			problems = append(problems, fmt.Sprintf("%s: no IDs collected", e.edge))
		}
		for _, m := range e.machineIDs {
			if other, taken := owner[m]; taken {
				problems = append(problems, fmt.Sprintf("%s and %s both have machine ID %d", other, e.edge, m))
			}
			owner[m] = e.edge
		}
	}
	mintedBy := map[string]string{} // ID → edge
	for _, e := range edges {
		for _, id := range e.ids {
			if other, seen := mintedBy[id]; seen {
				problems = append(problems, fmt.Sprintf("ID %s minted twice (by %s and by %s)", id, other, e.edge))
				continue
			}
			mintedBy[id] = e.edge
			if p := machineIDProblem(e, id); p != "" {
				problems = append(problems, p)
			}
		}
	}
	return problems
}

// machineIDProblem says why id was not minted by one of e's generators,
// or nothing.
func machineIDProblem(e edgeIDs, id string) string {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n < 0 {
		return fmt.Sprintf("%s: ID %q is not a decimal sonyflake ID", e.edge, id)
	}
	if e.machineIDBits <= 0 || e.machineIDBits > 62 {
		return fmt.Sprintf("%s: machine_id_bits %d out of range", e.edge, e.machineIDBits)
	}
	if m := n & (1<<e.machineIDBits - 1); !slices.Contains(e.machineIDs, m) {
		return fmt.Sprintf("%s: ID %s has machine ID %d, the edge's are %v", e.edge, id, m, e.machineIDs)
	}
	return ""
}

func TestIDProblems(t *testing.T) {
	// IDs in the default layout: time<<24 | sequence<<16 | machine ID
	id := func(tick, seq, machine int64) string { return strconv.FormatInt(tick<<24|seq<<16|machine, 10) }
	tests := []struct {
		name  string
		edges []edgeIDs
		want  []string
	}{
		{"distinct machine IDs, disjoint IDs", []edgeIDs{
			{"n1", []int64{11}, 16, []string{id(1, 0, 11), id(1, 1, 11)}},
			{"n2", []int64{12}, 16, []string{id(1, 0, 12)}},
		}, nil},
		{"equal machine IDs", []edgeIDs{
			{"n1", []int64{11}, 16, []string{id(1, 0, 11)}},
			{"n2", []int64{11}, 16, []string{id(2, 0, 11)}},
		}, []string{"n1 and n2 both have machine ID 11"}},
		{"an ID from two edges", []edgeIDs{
			{"n1", []int64{11}, 16, []string{id(1, 0, 11)}},
			{"n2", []int64{12}, 16, []string{id(1, 0, 12), id(1, 0, 11)}},
		}, []string{"ID " + id(1, 0, 11) + " minted twice (by n1 and by n2)"}},
		{"an ID repeated by one edge", []edgeIDs{
			{"n1", []int64{11}, 16, []string{id(3, 2, 11), id(3, 2, 11)}},
		}, []string{"ID " + id(3, 2, 11) + " minted twice (by n1 and by n1)"}},
		{"an ID of another machine", []edgeIDs{
			{"n1", []int64{11}, 16, []string{id(3, 2, 13)}},
		}, []string{"n1: ID " + id(3, 2, 13) + " has machine ID 13, the edge's are [11]"}},
		{"no IDs", []edgeIDs{
			{"n1", []int64{11}, 16, []string{id(1, 0, 11)}},
			{"n2", []int64{12}, 16, nil},
		}, []string{"n2: no IDs collected"}},
		{"no generator, not a number", []edgeIDs{
			{"n1", nil, 16, []string{"abc"}},
		}, []string{"n1: no generator in /sonyflake/state", `n1: ID "abc" is not a decimal sonyflake ID`}},
	}
	for _, tt := range tests {
		if got := idProblems(tt.edges); !slices.Equal(got, tt.want) {
			t.Errorf("%s: idProblems = %q, want %q", tt.name, got, tt.want)
		}
	}
}
