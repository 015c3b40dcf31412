package main

import (
	"testing"

	"github.com/swarmedge/swarmedge/integration/edge"
)

// The probe tells a known subdirective from an unknown one with the real
// binary, so that a missing wait_for_tasks is the only reason it says no.
func TestAcceptsSwarmOption(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the edge binary")
	}
	bin := edge.Binary(t)
	for _, tt := range []struct {
		line string
		want bool
	}{
		{"refresh 1s", true},
		{"no_such_option 1s", false},
		{"refresh soon", false},
	} {
		got, err := acceptsSwarmOption(bin, tt.line)
		if err != nil || got != tt.want {
			t.Errorf("acceptsSwarmOption(%q) = %v, %v; want %v", tt.line, got, err, tt.want)
		}
	}
}
