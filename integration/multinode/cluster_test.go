//go:build multinode

// Package multinode runs the edge on a real multi-node Docker Swarm on one
// machine: N dockerd daemons, each in a network namespace of its own on one
// Linux bridge, with real overlay networking between them (see
// shared/design.md, "Testing on a real multi-node Swarm"). It needs root,
// /usr/sbin/dockerd (20.10) and, for the node loss comparison only,
// /usr/sbin/haproxy; it does not use the host's engine:
//
//	go test -tags multinode -v ./integration/multinode/
//
// Everything it makes is named with the prefix below and removed at the
// end, also on failure or interrupt; a run also removes what a killed
// earlier run left.
package multinode

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	prefix      = "swemn"          // every name this harness makes
	bridge      = prefix + "-br"   // the nodes' link layer
	bridgeAddr  = "172.30.99.1/24" // the host's end; nodes are .11, .12, …
	baseDir     = "/tmp/" + prefix // daemon configs, data and sockets
	overlayNet  = prefix + "-net"
	overlayCIDR = "10.77.0.0/24"
)

// node is one dockerd in its own network namespace.
type node struct {
	name string // also the namespace's
	ip   string // on the bridge
	dir  string
}

func (n *node) socket() string   { return "unix://" + filepath.Join(n.dir, "docker.sock") }
func (n *node) hostVeth() string { return n.name + "h" }

// docker runs the docker CLI against the node.
func (n *node) docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := run("docker", append([]string{"-H", n.socket()}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// cluster is the nodes of one Swarm; nodes[0] is its first manager.
type cluster struct {
	nodes []*node
}

// run runs a command and returns its combined output.
func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// must runs a command and fails the test if it fails.
func must(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := run(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// requireEnvironment skips where the harness cannot run, with a clear line.
func requireEnvironment(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("multinode: skipped: needs root (network namespaces, a bridge, dockerd)")
	}
	for _, bin := range []string{"/usr/sbin/dockerd", "docker", "ip", "iptables", "nsenter"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("multinode: skipped: no %s", bin)
		}
	}
}

// removeAll removes everything the harness may have made, in an order that
// works after a killed run: the processes in its namespaces (dockerd,
// containerd, shims, containers: by their PIDs), mounts under baseDir, the
// namespaces, veths and bridge, the DOCKER-USER rule, the data.
func removeAll(t testing.TB) {
	nsList, _ := run("ip", "netns", "list")
	for _, line := range strings.Split(nsList, "\n") {
		ns, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if !strings.HasPrefix(ns, prefix+"-") {
			continue
		}
		killNamespace(ns)
		_, _ = run("ip", "netns", "del", ns)
	}
	unmountUnder(baseDir)
	links, _ := run("ip", "-o", "link", "show")
	for _, line := range strings.Split(links, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(fields[1], ":"), "@")
			if strings.HasPrefix(name, prefix+"-") {
				_, _ = run("ip", "link", "del", name)
			}
		}
	}
	for {
		if _, err := run("iptables", forwardRule("-D")...); err != nil {
			break
		}
	}
	if err := os.RemoveAll(baseDir); err != nil {
		t.Logf("removing %s: %v", baseDir, err)
	}
}

// killNamespace kills every process in the namespace, politely first.
func killNamespace(ns string) {
	for _, sig := range []string{"-TERM", "-KILL"} {
		out, _ := run("ip", "netns", "pids", ns)
		pids := strings.Fields(out)
		if len(pids) == 0 {
			return
		}
		_, _ = run("kill", append([]string{sig}, pids...)...)
		for i := 0; i < 100; i++ {
			if out, _ := run("ip", "netns", "pids", ns); strings.TrimSpace(out) == "" {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// unmountUnder unmounts every mount below dir, deepest first.
func unmountUnder(dir string) {
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		if fields := strings.Fields(line); len(fields) > 1 && strings.HasPrefix(fields[1], dir+"/") {
			points = append(points, fields[1])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		_ = syscall.Unmount(points[i], syscall.MNT_DETACH)
	}
}

// forwardRule is the DOCKER-USER rule that lets the bridge forward between
// its ports (the host engine's FORWARD policy drops them otherwise).
func forwardRule(op string) []string {
	return []string{op, "DOCKER-USER", "-i", bridge, "-o", bridge, "-j", "ACCEPT"}
}

// newCluster makes n nodes, starts their daemons and joins them into one
// Swarm with the given number of managers; everything is removed when the
// test ends or the process is interrupted.
func newCluster(t *testing.T, n, managers int) *cluster {
	requireEnvironment(t)
	removeAll(t)
	t.Cleanup(func() { removeAll(t) })
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	t.Cleanup(func() { signal.Stop(interrupted); close(done) })
	go func() {
		select {
		case <-interrupted:
			removeAll(t)
			os.Exit(2)
		case <-done:
		}
	}()

	must(t, "ip", "link", "add", bridge, "type", "bridge")
	must(t, "ip", "addr", "add", bridgeAddr, "dev", bridge)
	must(t, "ip", "link", "set", bridge, "up")
	must(t, "iptables", forwardRule("-I")...)

	c := new(cluster)
	for i := 1; i <= n; i++ {
		nd := &node{name: fmt.Sprintf("%s-n%d", prefix, i), ip: fmt.Sprintf("172.30.99.%d", 10+i), dir: filepath.Join(baseDir, fmt.Sprintf("n%d", i))}
		c.nodes = append(c.nodes, nd)
		startNode(t, nd, i)
	}
	start := time.Now()
	first := c.nodes[0]
	first.docker(t, "swarm", "init", "--advertise-addr", first.ip)
	managerToken := first.docker(t, "swarm", "join-token", "-q", "manager")
	workerToken := first.docker(t, "swarm", "join-token", "-q", "worker")
	for i, nd := range c.nodes[1:] {
		token := workerToken
		if i+1 < managers {
			token = managerToken
		}
		nd.docker(t, "swarm", "join", "--advertise-addr", nd.ip, "--token", token, first.ip+":2377")
	}
	first.docker(t, "network", "create", "--driver", "overlay", "--attachable", "--subnet", overlayCIDR, overlayNet)
	t.Logf("swarm of %d nodes (%d managers) formed in %.1fs", n, managers, time.Since(start).Seconds())
	return c
}

// startNode makes the node's namespace and veth and starts its dockerd.
func startNode(t *testing.T, nd *node, i int) {
	t.Helper()
	must(t, "ip", "netns", "add", nd.name)
	inner := nd.name + "c"
	must(t, "ip", "link", "add", nd.hostVeth(), "type", "veth", "peer", "name", inner)
	must(t, "ip", "link", "set", inner, "netns", nd.name)
	must(t, "ip", "link", "set", nd.hostVeth(), "master", bridge, "up")
	for _, args := range [][]string{
		{"addr", "add", nd.ip + "/24", "dev", inner},
		{"link", "set", inner, "up"},
		{"link", "set", "lo", "up"},
		{"route", "add", "default", "via", strings.TrimSuffix(bridgeAddr, "/24")},
	} {
		must(t, "ip", append([]string{"-n", nd.name}, args...)...)
	}
	if err := os.MkdirAll(nd.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`{"data-root":%q,"exec-root":%q,"pidfile":%q,"hosts":[%q],"bip":"172.31.%d.1/24",`+
		`"default-address-pools":[{"base":"172.31.%d.0/24","size":28}],"storage-driver":"fuse-overlayfs"}`,
		filepath.Join(nd.dir, "data"), filepath.Join(nd.dir, "exec"), filepath.Join(nd.dir, "docker.pid"),
		nd.socket(), 100+i, 200+i)
	configPath := filepath.Join(nd.dir, "daemon.json")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(nd.dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	// not `ip netns exec`: it remounts /sys and breaks cgroups
	cmd := exec.Command("nsenter", "--net=/var/run/netns/"+nd.name, "/usr/sbin/dockerd", "--config-file", configPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); logFile.Close() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := run("docker", "-H", nd.socket(), "info", "--format", "{{.ServerVersion}}"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(nd.dir, "dockerd.log"))
			t.Fatalf("dockerd of %s did not start in 60s:\n%s", nd.name, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
