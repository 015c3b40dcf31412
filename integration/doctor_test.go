package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/integration/edge"
	"github.com/swarmedge/swarmedge/integration/swarmsim"
)

// doctorFinding is one line of `caddy swarm doctor --json`.
type doctorFinding struct {
	Check   string `json:"check"`
	Verdict string `json:"verdict"`
	Detail  string `json:"detail"`
	Fix     string `json:"fix"`
}

// TestDoctor runs `caddy swarm doctor` against a running edge that fronts
// four stand-in services: one healthy, one whose tasks are gone
// (NXDOMAIN), one with more tasks than a UDP answer holds, and one whose
// resolver answers nothing. Each is found with the documented exit code.
func TestDoctor(t *testing.T) {
	services := map[string]*swarmsim.Service{}
	for i, svc := range []struct {
		name     string
		replicas int
	}{{"healthy", 3}, {"gone", 0}, {"big", 40}, {"silent", 2}} {
		// each service's tasks on addresses of their own
		base := netip.AddrFrom4([4]byte{127, 0, byte(21 + i), 1})
		s, err := swarmsim.Start(swarmsim.Config{Name: svc.name, Replicas: svc.replicas, TaskBase: base})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		services[svc.name] = s
	}
	var routes strings.Builder
	for _, name := range []string{"healthy", "gone", "big", "silent"} {
		s := services[name]
		fmt.Fprintf(&routes, "\thandle_path /%s/* {\n\t\treverse_proxy {\n\t\t\tdynamic swarm %s %d {\n\t\t\t\tresolvers %s\n\t\t\t}\n\t\t}\n\t}\n",
			name, name, s.Port(), s.DNS())
	}
	e := edge.MustStart(t, `{
	admin {{.AdminAddr}}
	sonyflake {
		machine_id 7
	}
}
http://127.0.0.1:{{.HTTPPort}} {
`+routes.String()+`}
`)
	// the edge has seen the silent service's tasks; now its resolver stops
	services["silent"].SetDNSFault(swarmsim.FaultDrop)

	resolvConf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolvConf, []byte("nameserver 127.0.0.11\noptions ndots:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	doctor := func(args ...string) (int, []doctorFinding, time.Duration) {
		t.Helper()
		args = append([]string{"swarm", "doctor", "--json", "--admin", e.AdminAddr, "--resolv-conf", resolvConf}, args...)
		cmd := exec.Command(edge.Binary(t), args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start)
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		var findings []doctorFinding
		dec := json.NewDecoder(&stdout)
		for dec.More() {
			var f doctorFinding
			if err := dec.Decode(&f); err != nil {
				t.Fatalf("doctor %v: output is not JSON lines: %v\nstderr: %s", args, err, stderr.String())
			}
			findings = append(findings, f)
		}
		t.Logf("doctor %s: exit %d in %s", strings.Join(args[len(args)-1:], " "), code, took.Round(time.Millisecond))
		for _, f := range findings {
			t.Logf("  %-4s %s: %s", f.Verdict, f.Check, f.Detail)
		}
		return code, findings, took
	}
	find := func(findings []doctorFinding, check string) doctorFinding {
		t.Helper()
		for _, f := range findings {
			if strings.HasPrefix(f.Check, check) {
				return f
			}
		}
		t.Fatalf("no finding %q", check)
		return doctorFinding{}
	}

	t.Run("healthy", func(t *testing.T) {
		code, findings, _ := doctor("healthy")
		if code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
		if f := find(findings, "dns tasks.healthy tcp"); !strings.HasPrefix(f.Detail, "3 tasks") {
			t.Errorf("tcp: %q, want 3 tasks", f.Detail)
		}
		if f := find(findings, "dns healthy @"); !strings.Contains(f.Detail, "VIP "+services["healthy"].VIP().Addr().String()) {
			t.Errorf("service name: %q, want its VIP", f.Detail)
		}
		if f := find(findings, "edge tasks.healthy"); !strings.Contains(f.Detail, "serves 3 of 3 tasks") {
			t.Errorf("edge: %q", f.Detail)
		}
		if f := find(findings, "machine-id"); !strings.HasPrefix(f.Detail, "7 from machine_id") {
			t.Errorf("machine-id: %q", f.Detail)
		}
		find(findings, "listen admin")
	})
	t.Run("nxdomain", func(t *testing.T) {
		code, findings, _ := doctor("gone")
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		if f := find(findings, "dns tasks.gone udp"); f.Verdict != "fail" || !strings.Contains(f.Detail, "NXDOMAIN") || !strings.Contains(f.Fix, "not attached") {
			t.Errorf("udp: %+v", f)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		code, findings, _ := doctor("big")
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if f := find(findings, "dns tasks.big udp"); f.Verdict != "warn" || !strings.Contains(f.Detail, "truncated (TC)") {
			t.Errorf("udp: %+v", f)
		}
		if f := find(findings, "dns tasks.big tcp"); f.Verdict != "ok" || !strings.HasPrefix(f.Detail, "40 tasks") {
			t.Errorf("tcp: %+v", f)
		}
	})
	t.Run("black-holed resolver", func(t *testing.T) {
		code, findings, took := doctor("silent")
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		if f := find(findings, "dns tasks.silent udp"); f.Verdict != "fail" || !strings.Contains(f.Detail, "no answer") {
			t.Errorf("udp: %+v", f)
		}
		// the doctor's own bound is 10 s; the margin is for a loaded box
		if took > 20*time.Second {
			t.Errorf("took %s with DNS black-holed, want about 10 s at most", took)
		}
	})
	t.Run("all services of the running config", func(t *testing.T) {
		code, findings, _ := doctor()
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		for _, svc := range []string{"healthy", "gone", "big", "silent"} {
			find(findings, "dns tasks."+svc+" udp")
		}
	})
}
