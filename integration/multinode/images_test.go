//go:build multinode

package multinode

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Image tags built on the first node and loaded into every node.
const (
	edgeImage     = prefix + "/edge:test"
	whoamiImage   = prefix + "/whoami:test"
	dynamicAImage = prefix + "/caddy-dynamic-a:test" // the same binary, Caddy's own discovery
	haproxyImage  = prefix + "/haproxy:test"
)

// edgeCaddyfile is the edge's config in the harness: the recommended one,
// with probes every second and the admin API reachable from the host.
const edgeCaddyfile = `{
	admin 0.0.0.0:2019
	sonyflake {
		machine_id cidr ` + overlayCIDR + `
	}
}
:80 {
	request_id
	sonyflake /id
	reverse_proxy {
		dynamic swarm app 80 {
			resolvers 127.0.0.11
			refresh 1s
			health_uri /health
			health_interval 1s
			health_timeout 1s
		}
		lb_retries 2
		fail_duration 10s
		transport swarm {
			tcp_user_timeout 2s
			dial_timeout 1s
		}
	}
}
`

// dynamicACaddyfile is stock Caddy's way to the same tasks, for the node
// loss comparison: `dynamic a` and the `http` transport, with the edge's
// retry settings.
const dynamicACaddyfile = `:80 {
	reverse_proxy {
		dynamic a tasks.app 80 {
			resolvers 127.0.0.11
			refresh 1s
		}
		lb_retries 2
		fail_duration 10s
		transport http {
			dial_timeout 1s
		}
	}
}
`

// haproxyConfig is HAProxy's documented Swarm setup, for the node loss
// comparison: server slots filled from tasks.app by Docker's DNS, with a
// probe of /health every second and the edge's two retries.
const haproxyConfig = `global
	# no log: the harness reads the clients' figures

defaults
	mode http
	timeout connect 1s
	timeout client 30s
	timeout server 30s
	retries 2
	option redispatch 1

resolvers docker
	nameserver dns 127.0.0.11:53
	accepted_payload_size 8192
	hold valid 1s

frontend edge
	bind :80
	default_backend tasks

backend tasks
	balance roundrobin
	option httpchk GET /health
	server-template t 6 tasks.app:80 check inter 1s resolvers docker init-addr none resolve-prefer ipv4
`

// caddyDockerfile runs /caddy with the Caddyfile named.
func caddyDockerfile(caddyfile string) string {
	return "FROM scratch\nCOPY caddy /caddy\nCOPY " + caddyfile + " /etc/caddy/Caddyfile\n" +
		"ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config\nENTRYPOINT [\"/caddy\"]\n" +
		"CMD [\"run\", \"--config\", \"/etc/caddy/Caddyfile\", \"--adapter\", \"caddyfile\"]\n"
}

// loadImages builds the edge, stock Caddy, HAProxy and whoami (FROM
// scratch; the Go ones static, from this checkout; HAProxy the host's
// binary with its libraries) once, on the first node's own daemon, and
// loads them into the others. Not on the host engine: the harness then
// needs neither its lock (other suites hold it for many minutes) nor any
// cleanup there.
func loadImages(t *testing.T, c *cluster) {
	t.Helper()
	start := time.Now()
	root := moduleRoot(t)
	dir := t.TempDir()
	for _, b := range []struct{ pkg, name string }{{"./cmd/caddy", "caddy"}, {"./cmd/whoami", "whoami"}} {
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, b.name), b.pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	write(t, filepath.Join(dir, "Caddyfile"), edgeCaddyfile)
	write(t, filepath.Join(dir, "edge.Dockerfile"), caddyDockerfile("Caddyfile"))
	write(t, filepath.Join(dir, "dynamic-a.Caddyfile"), dynamicACaddyfile)
	write(t, filepath.Join(dir, "dynamic-a.Dockerfile"), caddyDockerfile("dynamic-a.Caddyfile"))
	write(t, filepath.Join(dir, "whoami.Dockerfile"), "FROM scratch\nCOPY whoami /whoami\nENTRYPOINT [\"/whoami\"]\n")
	builder := c.nodes[0]
	images := []struct{ tag, dockerfile string }{
		{edgeImage, "edge.Dockerfile"}, {whoamiImage, "whoami.Dockerfile"}, {dynamicAImage, "dynamic-a.Dockerfile"},
	}
	if haveHAProxy() {
		haproxyRoot(t, filepath.Join(dir, "haproxy-root"))
		write(t, filepath.Join(dir, "haproxy.Dockerfile"), "FROM scratch\nCOPY haproxy-root/ /\n"+
			"ENTRYPOINT [\"/usr/sbin/haproxy\", \"-db\", \"-f\", \"/etc/haproxy/haproxy.cfg\"]\n")
		images = append(images, struct{ tag, dockerfile string }{haproxyImage, "haproxy.Dockerfile"})
	}
	var tags []string
	for _, image := range images {
		tags = append(tags, image.tag)
		cmd := exec.Command("docker", "-H", builder.socket(), "build", "-q", "-t", image.tag, "-f", filepath.Join(dir, image.dockerfile), dir)
		cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s on %s: %v\n%s", image.tag, builder.name, err, out)
		}
	}
	tarball := filepath.Join(dir, "images.tar")
	builder.docker(t, append([]string{"save", "-o", tarball}, tags...)...)
	for _, nd := range c.nodes[1:] {
		nd.docker(t, "load", "-q", "-i", tarball)
	}
	t.Logf("images built and loaded into %d nodes in %.1fs", len(c.nodes), time.Since(start).Seconds())
}

// haproxyBinary is the host's HAProxy, copied into an image for the node
// loss comparison.
const haproxyBinary = "/usr/sbin/haproxy"

// haveHAProxy reports whether the host has HAProxy and ldd to copy it.
func haveHAProxy() bool {
	_, errHAProxy := os.Stat(haproxyBinary)
	_, errLdd := exec.LookPath("ldd")
	return errHAProxy == nil && errLdd == nil
}

// haproxyRoot lays out the host's HAProxy under root: the binary, the
// libraries `ldd` names (at their paths, symlinks resolved) and the config.
func haproxyRoot(t *testing.T, root string) {
	t.Helper()
	files := []string{haproxyBinary}
	for _, line := range strings.Split(must(t, "ldd", haproxyBinary), "\n") {
		// "libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
		for _, field := range strings.Fields(line) {
			if strings.HasPrefix(field, "/") {
				files = append(files, field)
			}
		}
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("HAProxy image: %v", err)
		}
		dst := filepath.Join(root, file)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "etc/haproxy"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "etc/haproxy/haproxy.cfg"), haproxyConfig)
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// moduleRoot is the directory of go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(string(out[:len(out)-1]))
}
