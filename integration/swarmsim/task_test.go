package swarmsim

import (
	"net/http"
	"slices"
	"testing"
)

func TestTaskResponse(t *testing.T) {
	s := startService(t, Config{Replicas: 2})
	c := newClient(t, true)
	addr := s.TaskAddr(2)
	url := "http://" + addr.String() + "/some/path"

	for _, tc := range []struct {
		name      string
		requestID string
		wantBody  string
	}{
		{"with request ID", "1234567890", "app.2 " + addr.String() + " request-id=1234567890\n"},
		{"without request ID", "", "app.2 " + addr.String() + " request-id=\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			header := http.Header{}
			if tc.requestID != "" {
				header.Set("X-Request-ID", tc.requestID)
			}
			resp, body := get(t, c, url, header)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d, want 200", resp.StatusCode)
			}
			if body != tc.wantBody {
				t.Errorf("body %q, want %q", body, tc.wantBody)
			}
			if got := resp.Header.Get("X-Task"); got != "app.2" {
				t.Errorf("X-Task %q, want app.2", got)
			}
			if got := resp.Header.Get("X-Seen-Request-ID"); got != tc.requestID {
				t.Errorf("X-Seen-Request-ID %q, want %q", got, tc.requestID)
			}
		})
	}
}

func TestTaskCountsAndReset(t *testing.T) {
	s := startService(t, Config{Replicas: 3})
	c := newClient(t, true)
	for slot, n := range map[int]int{1: 3, 2: 1} {
		for range n {
			get(t, c, "http://"+s.TaskAddr(slot).String()+"/", nil)
		}
	}
	get(t, c, "http://"+s.TaskAddr(3).String()+"/healthz", nil) // probes are not traffic

	want := map[string]uint64{"app.1": 3, "app.2": 1, "app.3": 0}
	for _, st := range s.Tasks() {
		if st.Requests != want[st.Name] {
			t.Errorf("%s: %d requests, want %d", st.Name, st.Requests, want[st.Name])
		}
	}
	s.ResetCounts()
	for _, st := range s.Tasks() {
		if st.Requests != 0 {
			t.Errorf("%s after reset: %d requests, want 0", st.Name, st.Requests)
		}
	}
}

func TestTaskHealth(t *testing.T) {
	for _, tc := range []struct {
		name      string
		policy    RecordPolicy
		wantInDNS bool
	}{
		{"unhealthy leaves DNS", DropRecord, false},
		{"unhealthy kept in DNS", KeepRecord, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startService(t, Config{Replicas: 3})
			c := newClient(t, true)
			healthz := "http://" + s.TaskAddr(2).String() + "/healthz"
			ip := s.TaskAddr(2).Addr().String()

			if resp, _ := get(t, c, healthz, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("healthy /healthz: %d, want 200", resp.StatusCode)
			}
			if err := s.SetHealthy(2, false, tc.policy); err != nil {
				t.Fatal(err)
			}
			if resp, _ := get(t, c, healthz, nil); resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("unhealthy /healthz: %d, want 500", resp.StatusCode)
			}
			listed := slices.Contains(answerAddrs(mustExchange(t, s, "udp", "tasks.app", 0)), ip)
			if listed != tc.wantInDNS {
				t.Errorf("unhealthy task in DNS: %v, want %v", listed, tc.wantInDNS)
			}

			if err := s.SetHealthy(2, true, DropRecord); err != nil {
				t.Fatal(err)
			}
			if resp, _ := get(t, c, healthz, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("healthy again /healthz: %d, want 200", resp.StatusCode)
			}
			if !slices.Contains(answerAddrs(mustExchange(t, s, "udp", "tasks.app", 0)), ip) {
				t.Error("task healthy again but not in DNS")
			}
		})
	}
}
