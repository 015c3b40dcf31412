package main

import (
	"strings"
	"testing"
)

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		status  string
		want    int64
		wantErr bool
	}{
		{status: "Name:\tcaddy\nVmPeak:\t 900 kB\nVmRSS:\t   65536 kB\nThreads:\t9\n", want: 64 << 20},
		{status: "Name:\tcaddy\nThreads:\t9\n", wantErr: true},
		{status: "VmRSS:\t12 MB\n", wantErr: true},
		{status: "VmRSS:\tlots kB\n", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseVmRSS(tt.status)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("parseVmRSS(%q) = %d, %v; want %d, error %v", tt.status, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCostHosts(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(costHosts(3)), "\n")
	if len(lines) != 3*costTasksEach {
		t.Fatalf("%d lines, want %d", len(lines), 3*costTasksEach)
	}
	seen := map[string]bool{}
	perName := map[string]int{}
	for _, line := range lines {
		addr, name, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(addr, "127.20.") {
			t.Fatalf("line %q: want <127.20.x.y> <name>", line)
		}
		if seen[addr] {
			t.Fatalf("address %s twice", addr)
		}
		seen[addr] = true
		perName[name]++
	}
	for _, name := range []string{"tasks.svc1", "tasks.svc2", "tasks.svc3"} {
		if perName[name] != costTasksEach {
			t.Errorf("%s has %d addresses, want %d", name, perName[name], costTasksEach)
		}
	}
}
