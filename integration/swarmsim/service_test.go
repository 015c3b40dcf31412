package swarmsim

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
)

func TestStartRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"task base off loopback", Config{TaskBase: netip.MustParseAddr("10.0.0.2")}},
		{"task range leaves loopback", Config{TaskBase: netip.MustParseAddr("127.255.255.200")}},
		{"VIP off loopback", Config{VIP: netip.MustParseAddr("192.168.1.1")}},
		{"VIP among tasks", Config{VIP: netip.MustParseAddr("127.0.10.7")}},
		{"DNS off loopback", Config{DNS: netip.MustParseAddrPort("0.0.0.0:0")}},
		{"IPv6 VIP", Config{VIP: netip.MustParseAddr("::1")}},
		{"bad service name", Config{Name: "app..web"}},
		{"too many replicas", Config{Replicas: MaxReplicas + 1}},
		{"negative replicas", Config{Replicas: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := Start(tc.cfg); err == nil {
				s.Close()
				t.Errorf("Start(%+v) succeeded, want an error", tc.cfg)
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
			if err := s.Kill(2, tc.policy); err == nil {
				t.Error("killing a dead task succeeded, want an error")
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
		if err := s.Kill(slot, DropRecord); err == nil {
			t.Errorf("Kill(%d) succeeded, want an error", slot)
		}
		if err := s.SetHealthy(slot, false, DropRecord); err == nil {
			t.Errorf("SetHealthy(%d) succeeded, want an error", slot)
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
