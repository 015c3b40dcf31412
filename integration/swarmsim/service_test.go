package swarmsim

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestStartRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"task base off loopback", Config{TaskBase: netip.MustParseAddr("10.0.0.2")}, "task base 10.0.0.2 is not in 127.0.0.0/8"},
		{"task range leaves loopback", Config{TaskBase: netip.MustParseAddr("127.255.255.200")}, "last task address"},
		{"VIP off loopback", Config{VIP: netip.MustParseAddr("192.168.1.1")}, "VIP 192.168.1.1 is not in 127.0.0.0/8"},
		{"VIP among tasks", Config{VIP: netip.MustParseAddr("127.0.10.7")}, "VIP 127.0.10.7 is among the task addresses"},
		{"DNS off loopback", Config{DNS: netip.MustParseAddrPort("0.0.0.0:0")}, "DNS address 0.0.0.0 is not in 127.0.0.0/8"},
		{"IPv6 VIP", Config{VIP: netip.MustParseAddr("::1")}, "VIP ::1 is not in 127.0.0.0/8"},
		{"bad service name", Config{Name: "app..web"}, `service name "app..web" is not a DNS name`},
		{"too many replicas", Config{Replicas: MaxReplicas + 1}, fmt.Sprintf("replicas must be 0 to %d, not %d", MaxReplicas, MaxReplicas+1)},
		{"negative replicas", Config{Replicas: -1}, fmt.Sprintf("replicas must be 0 to %d, not -1", MaxReplicas)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Start(tc.cfg)
			if err == nil {
				s.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Start(%+v): error %v, want one containing %q", tc.cfg, err, tc.wantErr)
			}
		})
	}
}

func TestScaleChangesDNS(t *testing.T) {
	s := startService(t, Config{Replicas: 3})
	for _, n := range []int{3, 5, 1, 0, 2} {
		if err := s.Scale(n); err != nil {
			t.Fatalf("Scale(%d): %v", n, err)
		}
		r := mustExchange(t, s, "udp", "tasks.app", 0)
		if n == 0 {
			if r.Rcode != dns.RcodeNameError {
				t.Errorf("scaled to 0: rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
			}
			continue
		}
		if got, want := sortedAnswerAddrs(r), taskIPs(s, n); !slices.Equal(got, want) {
			t.Errorf("scaled to %d: answers %v, want %v", n, got, want)
		}
		if got := len(s.Tasks()); got != n {
			t.Errorf("scaled to %d: %d tasks", n, got)
		}
	}
}

func TestScaledDownTaskStops(t *testing.T) {
	s := startService(t, Config{Replicas: 2})
	conn := dialRaw(t, s.TaskAddr(2).String())
	conn.task(t)
	if err := s.Scale(1); err != nil {
		t.Fatal(err)
	}
	if !conn.closedByPeer() {
		t.Error("connection to a removed task stayed open")
	}
	if c, err := net.Dial("tcp", s.TaskAddr(2).String()); err == nil {
		c.Close()
		t.Error("removed task still accepts connections")
	}
}

func TestKillClosesOpenConnections(t *testing.T) {
	for _, tc := range []struct {
		name string
		via  func(s *Service) string
	}{
		{"direct", func(s *Service) string { return s.TaskAddr(2).String() }},
		{"through the VIP", func(s *Service) string { return s.VIP().String() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startService(t, Config{Replicas: 3})
			conn := dialRaw(t, tc.via(s))
			name := conn.task(t)
			if err := s.Kill(slotOf(t, s, name), DropRecord); err != nil {
				t.Fatal(err)
			}
			if !conn.closedByPeer() {
				t.Errorf("connection to killed %s stayed open", name)
			}
		})
	}
}

func TestKillRecordPolicy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		policy    RecordPolicy
		wantInDNS bool
	}{
		{"record dropped", DropRecord, false},
		{"stale record kept", KeepRecord, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startService(t, Config{Replicas: 3})
			dead := s.TaskAddr(2)
			if err := s.Kill(2, tc.policy); err != nil {
				t.Fatal(err)
			}
			if c, err := net.Dial("tcp", dead.String()); err == nil {
				c.Close()
				t.Error("killed task still accepts connections")
			}
			listed := slices.Contains(answerAddrs(mustExchange(t, s, "udp", "tasks.app", 0)), dead.Addr().String())
			if listed != tc.wantInDNS {
				t.Errorf("killed task in DNS: %v, want %v", listed, tc.wantInDNS)
			}
			if err := s.Kill(2, tc.policy); err == nil || !strings.Contains(err.Error(), "task app.2 is dead") {
				t.Errorf("killing a dead task: error %v, want one saying task app.2 is dead", err)
			}

			// The orchestrator replaces the dead task on the next Scale.
			if err := s.Scale(3); err != nil {
				t.Fatal(err)
			}
			if got, want := sortedAnswerAddrs(mustExchange(t, s, "udp", "tasks.app", 0)), taskIPs(s, 3); !slices.Equal(got, want) {
				t.Errorf("after Scale: answers %v, want %v", got, want)
			}
			if got := dialRaw(t, dead.String()).task(t); got != "app.2" {
				t.Errorf("replacement answered as %q, want app.2", got)
			}
		})
	}
}

func TestControlOfUnknownTask(t *testing.T) {
	s := startService(t, Config{Replicas: 2})
	for _, slot := range []int{0, 3, -1} {
		want := fmt.Sprintf("no task in slot %d (service has 2 slots)", slot)
		if err := s.Kill(slot, DropRecord); err == nil || err.Error() != want {
			t.Errorf("Kill(%d): error %v, want %q", slot, err, want)
		}
		if err := s.SetHealthy(slot, false, DropRecord); err == nil || err.Error() != want {
			t.Errorf("SetHealthy(%d): error %v, want %q", slot, err, want)
		}
	}
}

// slotOf returns the slot of the task called name.
func slotOf(t *testing.T, s *Service, name string) int {
	t.Helper()
	for _, st := range s.Tasks() {
		if st.Name == name {
			return st.Slot
		}
	}
	t.Fatalf("no task %q", name)
	return 0
}
