package edge

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

const retryTemplate = `{
	admin {{.AdminAddr}}
	default_bind 127.0.0.1
	auto_https off
}
http://127.0.0.1:{{.HTTPPort}} {
	respond "ok"
}
`

// holdPort listens on a loopback port until the test ends: a port another
// process took between the pick and the edge's bind.
func holdPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// recorder collects what launchFresh logs.
type recorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *recorder) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

// A port taken before the edge binds it (the admin port, then the HTTP
// port) makes the edge exit; the launcher starts it again on fresh ports,
// says so, and the edge serves.
func TestLaunchRetriesTakenPort(t *testing.T) {
	for _, field := range []string{"admin", "HTTP"} {
		t.Run(field, func(t *testing.T) {
			held := holdPort(t)
			picks := 0
			pickPorts = func() (Ports, error) {
				picks++
				p, err := freePorts()
				if picks == 1 {
					if field == "admin" {
						p.AdminAddr = fmt.Sprintf("127.0.0.1:%d", held)
					} else {
						p.HTTPPort = held
					}
				}
				return p, err
			}
			t.Cleanup(func() { pickPorts = freePorts })
			var log recorder
			e, err := launchFresh(Binary(t), Options{Caddyfile: retryTemplate}, func() (string, error) { return t.TempDir(), nil }, log.logf)
			if err != nil {
				t.Fatal(err)
			}
			stopAtEnd(t, e)
			if picks != 2 {
				t.Errorf("%d port picks, want 2", picks)
			}
			if e.HTTPPort == held || e.AdminAddr == fmt.Sprintf("127.0.0.1:%d", held) {
				t.Errorf("edge runs on the held port %d: %+v", held, e.Ports)
			}
			if len(log.lines) != 1 || !strings.Contains(log.lines[0], fmt.Sprintf("port %d was taken", held)) {
				t.Errorf("log %q, want one line naming port %d", log.lines, held)
			}
			resp, err := http.Get(e.URL("/"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		})
	}
}

// A taken port that is not one of the edge's (the config names it) is the
// config's fault: no retry, the error names it.
func TestLaunchKeepsForeignTakenPort(t *testing.T) {
	held := holdPort(t)
	picks := 0
	pickPorts = func() (Ports, error) { picks++; return freePorts() }
	t.Cleanup(func() { pickPorts = freePorts })
	var log recorder
	caddyfile := retryTemplate + fmt.Sprintf("http://127.0.0.1:%d {\n\trespond \"other\"\n}\n", held)
	_, err := launchFresh(Binary(t), Options{Caddyfile: caddyfile}, func() (string, error) { return t.TempDir(), nil }, log.logf)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d: bind: address already in use", held)) {
		t.Fatalf("start error %v, want the bind error on port %d", err, held)
	}
	if picks != 1 || len(log.lines) != 0 {
		t.Errorf("%d port picks and log %q, want 1 and none", picks, log.lines)
	}
}

// A start that keeps finding its ports taken gives up after startAttempts.
func TestLaunchGivesUp(t *testing.T) {
	held := holdPort(t)
	picks := 0
	pickPorts = func() (Ports, error) {
		picks++
		p, err := freePorts()
		p.AdminAddr = fmt.Sprintf("127.0.0.1:%d", held)
		return p, err
	}
	t.Cleanup(func() { pickPorts = freePorts })
	var log recorder
	_, err := launchFresh(Binary(t), Options{Caddyfile: retryTemplate}, func() (string, error) { return t.TempDir(), nil }, log.logf)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("start error %v, want the bind error", err)
	}
	if picks != startAttempts || len(log.lines) != startAttempts-1 {
		t.Errorf("%d port picks and %d log lines, want %d and %d", picks, len(log.lines), startAttempts, startAttempts-1)
	}
}

// FindFreePort draws from below the ephemeral range, where the kernel
// hands out no port by itself.
func TestFindFreePortBelowEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	for range 100 {
		port, err := FindFreePort()
		if err != nil {
			t.Fatal(err)
		}
		if port < minPort || port >= low {
			t.Fatalf("port %d outside %d-%d", port, minPort, low-1)
		}
	}
}
