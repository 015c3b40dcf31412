package main

import (
	"fmt"
	"slices"
	"strings"
)

// The sections of the report, as --sections names them.
const (
	sectionIDs       = "ids"
	sectionProxy     = "proxy"
	sectionRequestID = "request_id"
	sectionMetrics   = "metrics"
	sectionStamping  = "stamping"
	sectionSkew      = "skew"
	sectionFaults    = "faults"
	sectionCost      = "cost"
	sectionNodeLoss  = "node_loss" // runs nothing: includes the multi-node harness's figures
)

var allSections = []string{sectionIDs, sectionProxy, sectionRequestID, sectionMetrics, sectionStamping, sectionSkew, sectionFaults, sectionCost, sectionNodeLoss}

// parseSections reads --sections: a comma-separated list of section names;
// empty selects them all (nil).
func parseSections(list string) (map[string]bool, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	sections := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(allSections, name) {
			return nil, fmt.Errorf("unknown section %q (known: %s)", name, strings.Join(allSections, ", "))
		}
		sections[name] = true
	}
	return sections, nil
}

// runs reports whether the plan runs the section.
func (p plan) runs(section string) bool {
	return p.sections == nil || p.sections[section]
}

// inSection is ts in round r's order when the plan runs the section, else
// nothing.
func inSection[T any](p plan, r int, section string, ts []T) []T {
	if !p.runs(section) {
		return nil
	}
	return inOrder(r, ts)
}
