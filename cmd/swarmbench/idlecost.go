package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/swarmedge/swarmedge/integration/edge"
)

// The cost-per-service setup of issue 13: many services of 20 tasks each,
// one route (or backend) per service, no requests at all.
const (
	costTasksEach = 20
	costTaskPort  = 8080 // nothing listens: no request is sent
)

// costTaskBase is the first task address; the rest follow it. Nothing
// listens there: only DNS names them.
var costTaskBase = netip.MustParseAddr("127.20.0.1")

// processCost is what an idle process spent over a window.
type processCost struct {
	CPUShare float64 // CPU time over wall time: 1 is one core busy
	RSS      int64   // resident memory at the window's end, bytes
}

// idleCost is one side-by-side measurement.
type idleCost struct {
	Services               int
	Window                 time.Duration
	Edge, HAProxy, DNSmasq processCost
}

// costServiceName is service n's name (1-based).
func costServiceName(n int) string { return "svc" + strconv.Itoa(n) }

// costHosts is dnsmasq's hosts file: tasks.svc<N> → 20 addresses each.
func costHosts(services int) string {
	var b strings.Builder
	addr := costTaskBase
	for n := 1; n <= services; n++ {
		for range costTasksEach {
			fmt.Fprintf(&b, "%s tasks.%s\n", addr, costServiceName(n))
			addr = addr.Next()
		}
	}
	return b.String()
}

// costEdgeTemplate: one site, one route per service, each with its own
// `dynamic swarm` loop; rendered with [[ ]], then by the harness with {{ }}.
var costEdgeTemplate = template.Must(template.New("Caddyfile").Delims("[[", "]]").Parse(`{
	admin {{.AdminAddr}}
	default_bind 127.0.0.1
	auto_https off
}

http://127.0.0.1:{{.HTTPPort}} {
[[- range .Services]]
	handle_path /[[.]]/* {
		reverse_proxy {
			dynamic swarm [[.]] [[$.Port]] {
				resolvers [[$.DNS]]
				refresh 1s
			}
		}
	}
[[- end]]
}
`))

// costHAProxyTemplate: the same services as backends, as issue 13 wrote
// them, routed by the path's first segment like the edge's.
var costHAProxyTemplate = template.Must(template.New("haproxy.cfg").Parse(`global

defaults
	mode http
	timeout connect 1s
	timeout client 30s
	timeout server 30s

resolvers dns
	nameserver dnsmasq {{.DNS}}
	accepted_payload_size 8192
	hold valid 1s

frontend edge
	bind 127.0.0.1:{{.Listen}}
	use_backend %[path,field(2,/)]
{{range .Services}}
backend {{.}}
	server-template t {{$.Tasks}} tasks.{{.}}:{{$.Port}} resolvers dns init-addr none resolve-prefer ipv4
{{end}}`))

// measureIdleCost starts dnsmasq with the services, then the edge and
// HAProxy side by side, lets their loops settle, and measures both over
// the same window.
func measureIdleCost(ctx context.Context, services int, settle, window time.Duration) (cost idleCost, err error) {
	cost = idleCost{Services: services, Window: window}
	names := make([]string, services)
	for i := range names {
		names[i] = costServiceName(i + 1)
	}
	dns, err := startDNSmasq(costHosts(services))
	if err != nil {
		return cost, err
	}
	defer dns.stop()

	var caddyfile bytes.Buffer
	if err := costEdgeTemplate.Execute(&caddyfile, map[string]any{"Services": names, "Port": costTaskPort, "DNS": dns.addr}); err != nil {
		return cost, err
	}
	e, err := edge.Launch(edge.Options{Caddyfile: caddyfile.String(), Env: shippedEdgeEnv})
	if err != nil {
		return cost, fmt.Errorf("edge with %d services: %w", services, err)
	}
	defer func() { err = errors.Join(err, e.Stop()) }()

	port, err := edge.FindFreePort()
	if err != nil {
		return cost, err
	}
	var cfg bytes.Buffer
	if err := costHAProxyTemplate.Execute(&cfg, map[string]any{
		"DNS": dns.addr, "Listen": port, "Services": names, "Tasks": costTasksEach, "Port": costTaskPort,
	}); err != nil {
		return cost, err
	}
	h, err := launchHAProxy(cfg.Bytes(), port, func(h *haproxy) error {
		return waitListening(fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second, h.exited)
	})
	if err != nil {
		return cost, err
	}
	defer func() { err = errors.Join(err, h.stop()) }()

	if err := sleep(ctx, settle); err != nil {
		return cost, err
	}
	pids := []int{e.PID(), h.cmd.Process.Pid, dns.cmd.Process.Pid}
	costs, err := idleCosts(ctx, pids, window)
	if err != nil {
		return cost, err
	}
	cost.Edge, cost.HAProxy, cost.DNSmasq = costs[0], costs[1], costs[2]
	return cost, nil
}

// idleCosts measures the processes over the same window.
func idleCosts(ctx context.Context, pids []int, window time.Duration) ([]processCost, error) {
	before := make([]time.Duration, len(pids))
	for i, pid := range pids {
		var err error
		if before[i], err = processCPU(pid); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	if err := sleep(ctx, window); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	costs := make([]processCost, len(pids))
	for i, pid := range pids {
		after, err := processCPU(pid)
		if err != nil {
			return nil, err
		}
		costs[i].CPUShare = float64(after-before[i]) / float64(elapsed)
		if costs[i].RSS, err = processRSS(pid); err != nil {
			return nil, err
		}
	}
	return costs, nil
}

// processRSS is a process's resident memory (VmRSS), in bytes.
func processRSS(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(string(status))
}

// parseVmRSS reads the VmRSS line of /proc/<pid>/status.
func parseVmRSS(status string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		value, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		kb, ok := strings.CutSuffix(strings.TrimSpace(value), " kB")
		if !ok {
			return 0, fmt.Errorf("VmRSS %q: not in kB", strings.TrimSpace(value))
		}
		n, err := strconv.ParseInt(kb, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS %q: %w", kb, err)
		}
		return n * 1024, nil
	}
	return 0, errors.New("no VmRSS line")
}

// waitListening waits until addr accepts TCP connections.
func waitListening(addr string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			return conn.Close()
		}
		select {
		case <-exited:
			return errors.New("exited")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not listening after %v", addr, timeout)
}

// dnsmasq serves the cost setup's names from a hosts file, nothing else.
type dnsmasq struct {
	addr netip.AddrPort
	dir  string
	cmd  *exec.Cmd
}

func startDNSmasq(hosts string) (*dnsmasq, error) {
	port, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "swarmbench-dnsmasq-")
	if err == nil {
		err = os.Chmod(dir, 0o755) // dnsmasq reads it after dropping root
	}
	hostsPath := filepath.Join(dir, "hosts")
	if err == nil {
		err = os.WriteFile(hostsPath, []byte(hosts), 0o644)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	d := &dnsmasq{addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), dir: dir}
	d.cmd = exec.Command("dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
		"--no-resolv", "--no-hosts", "--addn-hosts="+hostsPath,
		"--bind-interfaces", "--listen-address=127.0.0.1", "--port="+strconv.Itoa(port))
	var out bytes.Buffer
	d.cmd.Stdout, d.cmd.Stderr = &out, &out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("dnsmasq: %w", err)
	}
	if err := waitListening(d.addr.String(), 5*time.Second, nil); err != nil {
		d.stop()
		return nil, fmt.Errorf("dnsmasq: %w\n%s", err, out.String())
	}
	return d, nil
}

// stop ends dnsmasq and removes its files.
func (d *dnsmasq) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()
	os.RemoveAll(d.dir)
}

// freeUDPPort is a UDP port free on 127.0.0.1 whose TCP twin is free too
// (dnsmasq listens on both).
func freeUDPPort() (int, error) {
	for range 20 {
		port, err := edge.FindFreePort()
		if err != nil {
			return 0, err
		}
		conn, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			conn.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port for UDP and TCP")
}
