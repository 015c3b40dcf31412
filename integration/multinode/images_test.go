//go:build multinode

package multinode

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Image tags built on the host engine and loaded into every node.
const (
	edgeImage   = prefix + "/edge:test"
	whoamiImage = prefix + "/whoami:test"
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

// loadImages builds the edge and whoami from this checkout (static, FROM
// scratch) once, on the first node's own daemon, and loads them into the
// others. Not on the host engine: the harness then needs neither its lock
// (other suites hold it for many minutes) nor any cleanup there.
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
	write(t, filepath.Join(dir, "edge.Dockerfile"), "FROM scratch\nCOPY caddy /caddy\nCOPY Caddyfile /etc/caddy/Caddyfile\n"+
		"ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config\nENTRYPOINT [\"/caddy\"]\n"+
		"CMD [\"run\", \"--config\", \"/etc/caddy/Caddyfile\", \"--adapter\", \"caddyfile\"]\n")
	write(t, filepath.Join(dir, "whoami.Dockerfile"), "FROM scratch\nCOPY whoami /whoami\nENTRYPOINT [\"/whoami\"]\n")
	builder := c.nodes[0]
	for _, image := range []struct{ tag, dockerfile string }{{edgeImage, "edge.Dockerfile"}, {whoamiImage, "whoami.Dockerfile"}} {
		cmd := exec.Command("docker", "-H", builder.socket(), "build", "-q", "-t", image.tag, "-f", filepath.Join(dir, image.dockerfile), dir)
		cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s on %s: %v\n%s", image.tag, builder.name, err, out)
		}
	}
	tarball := filepath.Join(dir, "images.tar")
	builder.docker(t, "save", "-o", tarball, edgeImage, whoamiImage)
	for _, nd := range c.nodes[1:] {
		nd.docker(t, "load", "-q", "-i", tarball)
	}
	t.Logf("images built and loaded into %d nodes in %.1fs", len(c.nodes), time.Since(start).Seconds())
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
