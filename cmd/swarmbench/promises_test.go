package main

import (
	"strings"
	"testing"
	"time"
)

func TestCheckPromises(t *testing.T) {
	ms := time.Millisecond
	clean := map[string][]rateSummary{
		faultDNS:     {{Sent: 2600, Worst: 40 * ms}},
		faultKill:    {{Sent: 800, Worst: 30 * ms}},
		faultGap:     {{Sent: 1400, Worst: 3200 * ms}},
		faultNoTasks: {{Sent: 600, Failed: 600, Worst: 20 * ms, Statuses: map[int]int{503: 600}}},
	}
	with := func(fault string, s rateSummary) map[string][]rateSummary {
		rows := map[string][]rateSummary{}
		for f, r := range clean {
			rows[f] = r
		}
		rows[fault] = append([]rateSummary{clean[fault][0]}, s) // a second round breaks it
		return rows
	}
	tests := []struct {
		name       string
		rows       map[string][]rateSummary
		wait       time.Duration
		wantBroken []string // claims, by their first words
		wantSkip   []string
	}{
		{name: "all kept", rows: clean, wait: 10 * time.Second},
		{name: "one failed request in a DNS outage", rows: with(faultDNS, rateSummary{Sent: 2600, Failed: 1, Worst: 40 * ms}),
			wait: 10 * time.Second, wantBroken: []string{"DNS outage"}},
		{name: "a kill fails requests", rows: with(faultKill, rateSummary{Sent: 800, Failed: 12, Worst: 30 * ms}),
			wait: 10 * time.Second, wantBroken: []string{"a task killed"}},
		{name: "the gap held too long", rows: with(faultGap, rateSummary{Sent: 1400, Worst: 4800 * ms}),
			wait: 10 * time.Second, wantBroken: []string{"single-replica"}},
		{name: "the gap failed requests", rows: with(faultGap, rateSummary{Sent: 1400, Failed: 600, Worst: 30 * ms}),
			wait: 10 * time.Second, wantBroken: []string{"single-replica"}},
		{name: "no task answered slowly", rows: with(faultNoTasks, rateSummary{Sent: 600, Failed: 600, Worst: 1100 * ms, Statuses: map[int]int{503: 600}}),
			wait: 10 * time.Second, wantBroken: []string{"no task"}},
		{name: "no task held until timeouts", rows: with(faultNoTasks, rateSummary{Sent: 600, Failed: 600, Timeouts: 600, Worst: 20 * ms}),
			wait: 10 * time.Second, wantBroken: []string{"no task"}},
		{name: "no wait_for_tasks: the gap is not checked", rows: with(faultGap, rateSummary{Sent: 1400, Failed: 600}),
			wantSkip: []string{"single-replica"}},
		{name: "rows not run", rows: map[string][]rateSummary{}, wait: 10 * time.Second,
			wantSkip: []string{"DNS outage", "a task killed", "single-replica", "no task"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := &results{Faults: map[string]map[string][]rateSummary{}, WaitForTasks: tt.wait}
			for f, rounds := range tt.rows {
				res.Faults[f] = map[string][]rateSummary{peerSwarm: rounds}
			}
			vs := checkPromises(smokePlan, res)
			var broken, skipped []string
			for _, v := range vs {
				if v.broken {
					broken = append(broken, v.claim)
				}
				if v.skipped != "" {
					skipped = append(skipped, v.claim)
				}
			}
			assertClaims(t, "broken", broken, tt.wantBroken)
			assertClaims(t, "skipped", skipped, tt.wantSkip)
			err := brokenPromises(vs)
			if (err != nil) != (len(tt.wantBroken) > 0) {
				t.Fatalf("brokenPromises = %v, want an error: %v", err, len(tt.wantBroken) > 0)
			}
			if err != nil && !strings.Contains(err.Error(), "PROMISE BROKEN: "+tt.wantBroken[0]) {
				t.Errorf("error %q does not name the broken promise", err)
			}
		})
	}
}

func assertClaims(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %q, want %q", what, got, want)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("%s: %q, want %q", what, got, want)
		}
	}
}
