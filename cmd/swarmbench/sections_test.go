package main

import (
	"maps"
	"testing"
)

func TestParseSections(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]bool
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "  ", want: nil},
		{in: "faults", want: map[string]bool{"faults": true}},
		{in: "cost, metrics,stamping", want: map[string]bool{"cost": true, "metrics": true, "stamping": true}},
		{in: "fault", wantErr: true},
		{in: "faults,", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseSections(tt.in)
		if (err != nil) != tt.wantErr || !maps.Equal(got, tt.want) {
			t.Errorf("parseSections(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	p := plan{sections: map[string]bool{"cost": true}}
	if !p.runs("cost") || p.runs("faults") || !(plan{}).runs("faults") {
		t.Error("plan.runs: a selection runs only its sections, no selection runs all")
	}
	if got := inSection(p, 1, "faults", []int{1, 2}); got != nil {
		t.Errorf("inSection of an unselected section = %v", got)
	}
	if got := inSection(p, 1, "cost", []int{1, 2}); len(got) != 2 || got[0] != 2 {
		t.Errorf("inSection in round 1 = %v, want reversed", got)
	}
}
