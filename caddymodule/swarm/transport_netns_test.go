package swarm

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/miekg/dns"
)

// netnsEnv marks the copy of the test binary that runs in a network
// namespace of its own.
const netnsEnv = "SWARMEDGE_TEST_NETNS"

// inPrivateNetns runs the calling test in a copy of the test binary inside
// a new network namespace (loopback only), where iptables can make a task
// stop acknowledging without touching the host, and reports whether the
// caller is that copy. It skips without root or iptables.
func inPrivateNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == "1" {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("ip link set lo up: %v: %s", err, out)
		}
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	t.Logf("in a private network namespace:\n%s", out)
	if err != nil {
		t.Fatalf("in a private network namespace: %v", err)
	}
	return false
}

// cutOff makes ip stop answering, as a powered-off node does: no RST, no
// ACK; the returned func restores it.
func cutOff(t *testing.T, ip string) (restore func()) {
	t.Helper()
	rules := [][]string{{"-s", ip, "-j", "DROP"}, {"-d", ip, "-j", "DROP"}}
	for _, r := range rules {
		iptables(t, append([]string{"-I", "INPUT"}, r...)...)
	}
	var once sync.Once
	restore = func() {
		once.Do(func() {
			for _, r := range rules {
				iptables(t, append([]string{"-D", "INPUT"}, r...)...)
			}
		})
	}
	t.Cleanup(restore)
	return restore
}

func iptables(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
		t.Fatalf("iptables %v: %v: %s", args, err, out)
	}
}

// namedTask serves its name on ip:8080 and, while hang is set, answers
// nothing until the request ends.
type namedTask struct {
	name string
	hang atomic.Bool
}

func startNamedTask(t *testing.T, ip string) *namedTask {
	t.Helper()
	task := &namedTask{name: ip}
	ln, err := net.Listen("tcp", ip+":8080")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if task.hang.Load() {
			<-r.Context().Done()
			return
		}
		_, _ = io.WriteString(w, task.name)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return task
}

// startEdge loads a Caddy config that proxies 127.0.0.1:8000 to the tasks
// of tasks.app (found at dnsAddr), on port 8080, through a swarm
// transport with the given options; passive health: fail_duration 2s,
// max_fails 1; lb_retries 2; policy first, so that a healthy 127.0.0.2 is
// always chosen.
func startEdge(t *testing.T, dnsAddr string, transport map[string]any) {
	t.Helper()
	transport["protocol"] = "swarm"
	cfg := map[string]any{
		"admin": map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"edge": map[string]any{
			"listen": []string{"127.0.0.1:8000"},
			"routes": []any{map[string]any{"handle": []any{map[string]any{
				"handler":   "reverse_proxy",
				"transport": transport,
				"dynamic_upstreams": map[string]any{
					"source": "swarm", "service": "app", "port": 8080, "resolvers": []string{dnsAddr},
				},
				"load_balancing": map[string]any{"selection_policy": map[string]any{"policy": "first"}, "retries": 2},
				"health_checks":  map[string]any{"passive": map[string]any{"fail_duration": "2s", "max_fails": 1}},
			}}}},
		}}}},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(raw, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
}

// edgeGet sends one GET to the edge and returns the task that answered and
// how long it took.
func edgeGet(t *testing.T) (string, time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second}
	start := time.Now()
	resp, err := client.Get("http://127.0.0.1:8000/")
	if err != nil {
		t.Fatalf("GET after %v: %v", time.Since(start), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET after %v: status %d: %s", time.Since(start), resp.StatusCode, body)
	}
	return string(body), time.Since(start)
}

// Each way a task on a lost node fails a request (a pooled connection
// whose peer stops acknowledging, a dial that times out, a response that
// does not come) makes Caddy retry the GET on another task, counts as a
// passive failure so that the task is not chosen for fail_duration, even
// though DNS still lists it, and the task is chosen again once it answers.
func TestSwarmTransportDeadTaskFailsOverAndComesBack(t *testing.T) {
	if !inPrivateNetns(t) {
		return
	}
	dnsServer := startTestDNSServer(t, func(q dns.Question) *dns.Msg {
		return aRecords(q.Name, "127.0.0.2", "127.0.0.3")
	})
	a := startNamedTask(t, "127.0.0.2")
	startNamedTask(t, "127.0.0.3")

	for _, tc := range []struct {
		name      string
		transport map[string]any
		fail      func(t *testing.T) (restore func())
		warm      bool          // a pooled connection to a exists when it fails
		min, max  time.Duration // the failing GET's time
	}{
		// a long dial_timeout: net/http's own redial of the dead task
		// (a reused connection failed) would show
		{name: "tcp_user_timeout on a pooled connection", transport: map[string]any{"tcp_user_timeout": "2s", "dial_timeout": "3s"}, warm: true,
			fail: func(t *testing.T) func() { return cutOff(t, "127.0.0.2") }, min: 1500 * time.Millisecond, max: 4 * time.Second},
		{name: "dial timeout", transport: map[string]any{},
			fail: func(t *testing.T) func() { return cutOff(t, "127.0.0.2") }, min: 800 * time.Millisecond, max: 2500 * time.Millisecond},
		{name: "response timeout", transport: map[string]any{"response_header_timeout": "1s"}, warm: true,
			fail: func(t *testing.T) func() {
				a.hang.Store(true)
				restore := func() { a.hang.Store(false) }
				t.Cleanup(restore)
				return restore
			},
			min: 800 * time.Millisecond, max: 2500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			startEdge(t, dnsServer.addr, tc.transport)
			if tc.warm {
				if task, _ := edgeGet(t); task != "127.0.0.2" {
					t.Fatalf("warm-up answered by %s, want 127.0.0.2 (policy first)", task)
				}
			}
			restore := tc.fail(t)
			task, took := edgeGet(t)
			if task != "127.0.0.3" || took < tc.min || took > tc.max {
				t.Fatalf("the GET that met the failure: answered by %s after %v, want 127.0.0.3 after %v–%v", task, took, tc.min, tc.max)
			}
			t.Logf("failed over in %v", took)
			for range 5 {
				if task, took := edgeGet(t); task != "127.0.0.3" || took > 500*time.Millisecond {
					t.Fatalf("within fail_duration: answered by %s after %v, want 127.0.0.3 at once", task, took)
				}
			}
			restore()
			deadline := time.Now().Add(10 * time.Second)
			for {
				task, _ := edgeGet(t)
				if task == "127.0.0.2" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the task answers again but is not chosen 10 s later")
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// A POST already sent to a task that stops acknowledging is not retried on
// another task (it may have taken effect there): it fails after about
// tcp_user_timeout with 504, Caddy's status for an upstream error that is
// a timeout (ETIMEDOUT), and the next request goes to another task.
func TestSwarmTransportPostToDeadTaskFails(t *testing.T) {
	if !inPrivateNetns(t) {
		return
	}
	dnsServer := startTestDNSServer(t, func(q dns.Question) *dns.Msg {
		return aRecords(q.Name, "127.0.0.2", "127.0.0.3")
	})
	startNamedTask(t, "127.0.0.2")
	startNamedTask(t, "127.0.0.3")
	startEdge(t, dnsServer.addr, map[string]any{"tcp_user_timeout": "2s"})
	if task, _ := edgeGet(t); task != "127.0.0.2" {
		t.Fatalf("warm-up answered by %s, want 127.0.0.2 (policy first)", task)
	}
	cutOff(t, "127.0.0.2")
	start := time.Now()
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Post("http://127.0.0.1:8000/", "text/plain", strings.NewReader("order 1"))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("POST after %v: %v", took, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout || took < 1500*time.Millisecond || took > 4*time.Second {
		t.Fatalf("the POST to the cut-off task: status %d after %v (%q), want 504 after 1.5–4 s", resp.StatusCode, took, body)
	}
	t.Logf("the POST failed with %d after %v", resp.StatusCode, took)
	if task, took := edgeGet(t); task != "127.0.0.3" || took > 500*time.Millisecond {
		t.Fatalf("the next GET: answered by %s after %v, want 127.0.0.3 at once", task, took)
	}
}
