package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"text/template"
	"time"

	"github.com/swarmedge/swarmedge/integration/edge"
	"github.com/swarmedge/swarmedge/integration/swarmsim"
)

// shippedEdgeEnv is the Go runtime tuning the edge ships with (image and
// stack file): GC less often, bounded by a memory limit. Worth ~+10 %
// requests/s on the proxy path.
var shippedEdgeEnv = []string{"GOGC=400", "GOMEMLIMIT=400MiB"}

// caddySites are the ports of the edge's sites besides the ID endpoint's
// (which is on the harness's HTTPPort), and what they proxy to.
type caddySites struct {
	Swarm, DynamicA, VIP                     int // the proxy path, one discovery each
	RequestIDOff, RequestIDOn, RequestIDUUID int // request_id variants, all to one task

	// WaitForTasks is the swarm site's wait_for_tasks, written only when
	// the binary knows the option (see acceptsWaitForTasks); 0: left out.
	WaitForTasks time.Duration

	Service  string
	TaskPort uint16
	DNS      netip.AddrPort
	VIPAddr  netip.AddrPort
	Task1    netip.AddrPort
}

// The edge's Caddyfile: rendered here with [[ ]] (the sites), then by the
// harness with {{ }} (its ports). Every Caddy peer on the proxy path gets
// the same retry setting, the one the contract recommends; the request_id
// sites proxy to one fixed task so that only the header work differs.
var caddyfileTemplate = template.Must(template.New("Caddyfile").Delims("[[", "]]").Parse(`{
	admin {{.AdminAddr}}
	default_bind 127.0.0.1
	auto_https off
	sonyflake {
		machine_id 1
	}
}

http://127.0.0.1:{{.HTTPPort}} {
	sonyflake
}

http://127.0.0.1:[[.Swarm]] {
	reverse_proxy {
		dynamic swarm [[.Service]] [[.TaskPort]] {
			resolvers [[.DNS]]
			refresh 1s[[if .WaitForTasks]]
			wait_for_tasks [[.WaitForTasks]][[end]]
		}
		lb_retries 2
	}
}

http://127.0.0.1:[[.DynamicA]] {
	reverse_proxy {
		dynamic a tasks.[[.Service]] [[.TaskPort]] {
			resolvers [[.DNS]]
			refresh 1s
		}
		lb_retries 2
	}
}

http://127.0.0.1:[[.VIP]] {
	reverse_proxy [[.VIPAddr]] {
		lb_retries 2
	}
}

http://127.0.0.1:[[.RequestIDOff]] {
	reverse_proxy [[.Task1]]
}

http://127.0.0.1:[[.RequestIDOn]] {
	request_id
	reverse_proxy [[.Task1]]
}

http://127.0.0.1:[[.RequestIDUUID]] {
	reverse_proxy [[.Task1]] {
		header_up X-Request-ID {http.request.uuid}
	}
}
`))

// launchEdge starts the real edge binary with every Caddy site, with the
// environment we ship.
func launchEdge(sim *swarmsim.Service, waitForTasks time.Duration) (*edge.Edge, caddySites, error) {
	sites := caddySites{
		WaitForTasks: waitForTasks,
		Service:      sim.Name(),
		TaskPort:     sim.Port(),
		DNS:          sim.DNS(),
		VIPAddr:      sim.VIP(),
		Task1:        sim.TaskAddr(1),
	}
	for _, port := range []*int{&sites.Swarm, &sites.DynamicA, &sites.VIP, &sites.RequestIDOff, &sites.RequestIDOn, &sites.RequestIDUUID} {
		var err error
		if *port, err = edge.FindFreePort(); err != nil {
			return nil, sites, err
		}
	}
	var caddyfile bytes.Buffer
	if err := caddyfileTemplate.Execute(&caddyfile, sites); err != nil {
		return nil, sites, err
	}
	e, err := edge.Launch(edge.Options{Caddyfile: caddyfile.String(), Env: shippedEdgeEnv})
	if err != nil {
		return nil, sites, fmt.Errorf("edge: %w", err)
	}
	return e, sites, nil
}

// haproxy is HAProxy running in the foreground as a child process.
type haproxy struct {
	port   int
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // how it exited; read after exited is closed
}

// The documented Swarm setup: a fixed number of server slots filled from
// tasks.<service> through the resolvers section. HAProxy 2.6 re-resolves
// every `timeout resolve` (default 1s); `hold valid` only applies to
// do-resolve actions there, kept because the setup names it. `check` is a
// TCP connect every 2 s (the default), which the tasks do not count.
var haproxyTemplate = template.Must(template.New("haproxy.cfg").Parse(`global
	# no log, no stats socket: the benchmark reads neither

defaults
	mode http
	timeout connect 1s
	timeout client 30s
	timeout server 30s

resolvers swarm
	nameserver standin {{.DNS}}
	accepted_payload_size 8192
	hold valid 1s

frontend edge
	bind 127.0.0.1:{{.Port}}
	default_backend tasks

backend tasks
	balance roundrobin
	server-template task {{.Slots}} tasks.{{.Service}}:{{.TaskPort}} check resolvers swarm init-addr none resolve-prefer ipv4
`))

// haproxySlots is how many tasks HAProxy can hold: above every scale the
// benchmark uses.
const haproxySlots = 10

// startHAProxy starts HAProxy in front of sim's tasks and returns once it
// answers through a task.
func startHAProxy(sim *swarmsim.Service) (*haproxy, error) {
	port, err := edge.FindFreePort()
	if err != nil {
		return nil, err
	}
	var cfg bytes.Buffer
	if err := haproxyTemplate.Execute(&cfg, map[string]any{
		"DNS": sim.DNS(), "Port": port, "Slots": haproxySlots, "Service": sim.Name(), "TaskPort": sim.Port(),
	}); err != nil {
		return nil, err
	}
	return launchHAProxy(cfg.Bytes(), port, func(h *haproxy) error { return waitServing(h.url(), 10*time.Second, h.exited) })
}

// launchHAProxy runs HAProxy with cfg, listening on port, and returns once
// ready says it is up.
func launchHAProxy(cfg []byte, port int, ready func(*haproxy) error) (*haproxy, error) {
	dir, err := os.MkdirTemp("", "swarmbench-haproxy-")
	if err != nil {
		return nil, err
	}
	h := &haproxy{port: port, dir: dir, exited: make(chan struct{})}
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	out, err := os.Create(filepath.Join(dir, "output"))
	if err == nil {
		err = os.WriteFile(cfgPath, cfg, 0o644)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	h.cmd = exec.Command("haproxy", "-db", "-f", cfgPath)
	h.cmd.Stdout, h.cmd.Stderr = out, out
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with us, even after a crash
	if err := h.cmd.Start(); err != nil {
		out.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("haproxy: %w", err)
	}
	go func() {
		h.err = h.cmd.Wait()
		out.Close()
		close(h.exited)
	}()
	if err := ready(h); err != nil {
		select {
		case <-h.exited:
			err = fmt.Errorf("exited at start: %v", h.err)
		default:
		}
		output := h.output()
		h.stop()
		return nil, fmt.Errorf("haproxy: %w\nhaproxy output:\n%s", err, output)
	}
	return h, nil
}

func (h *haproxy) url() string { return fmt.Sprintf("http://127.0.0.1:%d/", h.port) }

func (h *haproxy) output() string {
	out, _ := os.ReadFile(filepath.Join(h.dir, "output"))
	return string(out)
}

// stop ends HAProxy (SIGTERM, then SIGKILL after a grace period) and
// removes its files. It reports an HAProxy that had died before.
func (h *haproxy) stop() error {
	defer os.RemoveAll(h.dir)
	select {
	case <-h.exited:
		return fmt.Errorf("haproxy exited early: %v\n%s", h.err, h.output())
	default:
	}
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(5 * time.Second):
		h.cmd.Process.Kill()
		<-h.exited
		return errors.New("haproxy ignored SIGTERM; killed")
	}
	return nil
}
