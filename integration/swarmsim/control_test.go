package swarmsim

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestControlAPI(t *testing.T) {
	s := startService(t, Config{Replicas: 3})
	api := httptest.NewServer(s.ControlHandler())
	t.Cleanup(api.Close)
	c := newClient(t, true)
	get(t, c, "http://"+s.TaskAddr(1).String()+"/", nil) // one request to count

	// Steps run in order: each one sees the state the ones before it left.
	for _, tc := range []struct {
		method, path string
		wantStatus   int
		check        func(t *testing.T, body string)
	}{
		{"GET", "/counts", 200, func(t *testing.T, body string) {
			var counts map[string]uint64
			decode(t, body, &counts)
			if counts["app.1"] != 1 || counts["app.2"] != 0 || len(counts) != 3 {
				t.Errorf("counts %v, want app.1: 1, app.2 and app.3: 0", counts)
			}
		}},
		{"POST", "/reset", 204, func(t *testing.T, _ string) {
			if n := s.Tasks()[0].Requests; n != 0 {
				t.Errorf("app.1 has %d requests after reset", n)
			}
		}},
		{"POST", "/scale?n=5", 204, func(t *testing.T, _ string) {
			if n := len(s.Tasks()); n != 5 {
				t.Errorf("%d tasks, want 5", n)
			}
		}},
		{"POST", "/kill?task=2&dns=keep", 204, func(t *testing.T, _ string) {
			if st := s.Tasks()[1]; st.State != "dead" || !st.InDNS {
				t.Errorf("task 2 %+v, want dead and in DNS", st)
			}
		}},
		{"POST", "/kill?task=3", 204, func(t *testing.T, _ string) {
			if st := s.Tasks()[2]; st.State != "dead" || st.InDNS {
				t.Errorf("task 3 %+v, want dead and out of DNS", st)
			}
		}},
		{"POST", "/health?task=4&state=fail&dns=keep", 204, func(t *testing.T, _ string) {
			if st := s.Tasks()[3]; st.State != "unhealthy" || !st.InDNS {
				t.Errorf("task 4 %+v, want unhealthy and in DNS", st)
			}
		}},
		{"POST", "/health?task=4&state=ok", 204, func(t *testing.T, _ string) {
			if st := s.Tasks()[3]; st.State != "running" {
				t.Errorf("task 4 %+v, want running", st)
			}
		}},
		{"GET", "/tasks", 200, func(t *testing.T, body string) {
			var tasks []TaskStatus
			decode(t, body, &tasks)
			if len(tasks) != 5 || tasks[1].Name != "app.2" || tasks[1].State != "dead" || tasks[0].Addr != s.TaskAddr(1) {
				t.Errorf("tasks %+v", tasks)
			}
		}},
		{"POST", "/dns?fault=servfail", 204, func(t *testing.T, _ string) {
			if r := mustExchange(t, s, "udp", "tasks.app", 0); r.Rcode != dns.RcodeServerFailure {
				t.Errorf("rcode %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
			}
		}},
		{"POST", "/dns?fault=none&nxdomain_delay=100ms", 204, func(t *testing.T, _ string) {
			start := time.Now()
			if r := mustExchange(t, s, "udp", "tasks.nothing", 0); r.Rcode != dns.RcodeNameError {
				t.Errorf("rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
			}
			if took := time.Since(start); took < 100*time.Millisecond {
				t.Errorf("NXDOMAIN in %s, want at least 100ms", took)
			}
		}},

		{"POST", "/scale?n=many", 400, nil},
		{"POST", "/scale", 400, nil},
		{"POST", "/scale?n=-1", 400, nil},
		{"POST", "/scale?n=1001", 400, nil},
		{"POST", "/kill?task=9", 400, nil},
		{"POST", "/kill?task=2", 400, nil}, // already dead
		{"POST", "/kill?task=1&dns=maybe", 400, nil},
		{"POST", "/health?task=1&state=meh", 400, nil},
		{"POST", "/health?task=1", 400, nil},
		{"POST", "/dns", 400, nil},
		{"POST", "/dns?fault=flaky", 400, nil},
		{"POST", "/dns?fault=drop&nxdomain_delay=-1s", 400, func(t *testing.T, _ string) {
			if r := mustExchange(t, s, "udp", "tasks.app", 0); r.Rcode != dns.RcodeSuccess {
				t.Errorf("a rejected change applied its fault: rcode %s", dns.RcodeToString[r.Rcode])
			}
		}},
		{"GET", "/scale?n=2", 405, nil},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, api.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body := string(b)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantStatus == 400 && (strings.Count(body, "\n") != 1 || len(body) < 10) {
				t.Errorf("400 body %q, want a one-line reason", body)
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
}

// decode unmarshals the JSON body into v.
func decode(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decoding %q: %v", body, err)
	}
}
