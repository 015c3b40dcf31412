// Package edge runs the real swarmedge binary (./cmd/caddy) in tests: it
// starts it with a Caddyfile, waits until the config is live, reloads it and
// stops it, and shows its output when the test fails.
//
// Caddyfiles passed to Start and Reload are Go templates over Ports, e.g.
//
//	{
//		admin {{.AdminAddr}}
//		default_bind 127.0.0.1
//		auto_https off
//	}
//	http://127.0.0.1:{{.HTTPPort}} {
//		respond "ok"
//	}
//
// The global option `admin {{.AdminAddr}}` is required: reloads go through
// it. An edge is ready when `caddy run --pingback` confirms that its config
// runs; a refused config is read from the process's exit. Caddy's data and config directories (storage,
// autosave) are redirected to a temp dir per edge. A test that restarts an
// edge on the same ports and storage (certificates, ACME account) starts
// both processes from one Node.
package edge

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// Ports are the template fields of a Caddyfile: free loopback ports picked
// for one edge.
type Ports struct {
	HTTPPort  int    // for the site address or the http_port option
	HTTPSPort int    // for the https_port option
	AdminAddr string // host:port for the admin option
}

// Node is what outlives one edge process: its ports and its directory,
// which holds the Caddyfile and Caddy's data and config directories. Edges
// started one after another from one node find the certificates and
// config of the one before.
type Node struct {
	Ports
	dir string
}

// NewNode picks free ports and a temp dir for edges started from it.
func NewNode(t testing.TB) *Node {
	t.Helper()
	ports, err := freePorts()
	if err != nil {
		t.Fatal(err)
	}
	return &Node{Ports: ports, dir: t.TempDir()}
}

// pickPorts picks the ports of each start of launchFresh; a test of the
// retry replaces it.
var pickPorts = freePorts

// freePorts picks free loopback ports for one edge.
func freePorts() (Ports, error) {
	var ports []int
	for len(ports) < 3 {
		port, err := FindFreePort()
		if err != nil {
			return Ports{}, err
		}
		if !slices.Contains(ports, port) { // each pick was free, not all at once
			ports = append(ports, port)
		}
	}
	return Ports{HTTPPort: ports[0], HTTPSPort: ports[1], AdminAddr: fmt.Sprintf("127.0.0.1:%d", ports[2])}, nil
}

// Edge is one running edge process.
type Edge struct {
	Ports

	bin     string
	dir     string
	ownsDir bool // Launch made dir for this edge alone: Stop removes it
	cmd     *exec.Cmd
	output  lockedBuffer
	exited  chan struct{} // closed when the process has exited
	err     error         // how it exited; read after exited is closed
	stopped bool
}

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
)

// Options describe an edge to launch.
type Options struct {
	Caddyfile string   // a template over Ports
	Env       []string // KEY=VALUE pairs added to this process's environment, e.g. GOGC
}

// Start runs an edge with caddyfile on a new Node and returns once its
// config is live. On error the process is gone and the error includes its
// output (a build failure of the binary fails the test). The edge is stopped
// when the test ends, and its output is logged if the test failed. An edge
// that exits because another process took one of its ports first is
// started again on fresh ports (see startAttempts), as the test log says.
func Start(t testing.TB, caddyfile string) (*Edge, error) {
	t.Helper()
	bin := Binary(t)
	e, err := launchFresh(bin, Options{Caddyfile: caddyfile}, func() (string, error) { return t.TempDir(), nil }, t.Logf)
	if err != nil {
		return nil, err
	}
	stopAtEnd(t, e)
	return e, nil
}

// MustStart is Start for tests that cannot go on without the edge: it
// fails the test if the edge does not start.
func MustStart(t testing.TB, caddyfile string) *Edge {
	t.Helper()
	e, err := Start(t, caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// StorageDir is Caddy's storage directory for the node's edges.
func (n *Node) StorageDir() string {
	return filepath.Join(n.dir, "data", "caddy")
}

// Start runs an edge on the node's ports and directory, as the function
// Start does; one edge of a node runs at a time. Its ports are the node's,
// which the test may have handed out already, so a taken port is not
// retried here: FindFreePort makes that unlikely.
func (n *Node) Start(t testing.TB, caddyfile string) (*Edge, error) {
	t.Helper()
	e, err := n.launch(Binary(t), Options{Caddyfile: caddyfile})
	if err != nil {
		return nil, err
	}
	stopAtEnd(t, e)
	return e, nil
}

// stopAtEnd stops e when the test ends and logs its output if the test
// failed.
func stopAtEnd(t testing.TB, e *Edge) {
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("edge output:\n%s", e.Output())
		}
	})
}

// Launch runs an edge as opts say, for programs other than tests, and
// returns once its config is live. On error the process is gone and the
// error includes its output. The caller must Stop the edge, which also
// removes its temp dir.
func Launch(opts Options) (*Edge, error) {
	bin, err := BuildBinary()
	if err != nil {
		return nil, err
	}
	var dirs []string
	e, err := launchFresh(bin, opts, func() (string, error) {
		dir, err := os.MkdirTemp("", "swarmedge-edge-")
		dirs = append(dirs, dir)
		return dir, err
	}, log.Printf)
	for _, dir := range dirs {
		if e == nil || dir != e.dir {
			os.RemoveAll(dir)
		}
	}
	if err != nil {
		return nil, err
	}
	e.ownsDir = true
	return e, nil
}

// startAttempts bounds the starts of one edge on fresh ports and a fresh
// directory when a port it was given is taken by the time it binds it.
const startAttempts = 3

// launchFresh runs bin on a new node, with ports from freePorts and a
// directory from newDir, and waits until its config is live. An edge that
// exits because one of its ports is taken is started again on a new node,
// up to startAttempts in all, and logf says so.
func launchFresh(bin string, opts Options, newDir func() (string, error), logf func(format string, args ...any)) (*Edge, error) {
	for attempt := 1; ; attempt++ {
		ports, err := pickPorts()
		if err != nil {
			return nil, err
		}
		dir, err := newDir()
		if err != nil {
			return nil, err
		}
		n := &Node{Ports: ports, dir: dir}
		e, err := n.launch(bin, opts)
		var taken *portTakenError
		if err == nil || !errors.As(err, &taken) || attempt == startAttempts {
			return e, err
		}
		logf("edge: port %d was taken when the edge bound it (attempt %d of %d); starting again on fresh ports", taken.port, attempt, startAttempts)
	}
}

// portTakenError is a start that failed because one of the node's ports
// was in use.
type portTakenError struct {
	port int
	err  error
}

func (e *portTakenError) Error() string { return e.err.Error() }
func (e *portTakenError) Unwrap() error { return e.err }

// bindInUse matches Go's error for a port in use, as the edge reports a
// listener it could not open (admin endpoint or server).
var bindInUse = regexp.MustCompile(`listen tcp 127\.0\.0\.1:(\d+): bind: address already in use`)

// takenPort returns one of the node's ports that output says was in use.
func (p Ports) takenPort(output string) (int, bool) {
	_, admin, _ := net.SplitHostPort(p.AdminAddr)
	ours := []string{strconv.Itoa(p.HTTPPort), strconv.Itoa(p.HTTPSPort), admin}
	for _, m := range bindInUse.FindAllStringSubmatch(output, -1) {
		if slices.Contains(ours, m[1]) {
			port, _ := strconv.Atoi(m[1])
			return port, true
		}
	}
	return 0, false
}

// launch runs bin on the node and waits until its config is live.
func (n *Node) launch(bin string, opts Options) (*Edge, error) {
	e := &Edge{
		Ports:  n.Ports,
		bin:    bin,
		dir:    n.dir,
		exited: make(chan struct{}),
	}
	path, err := e.writeCaddyfile(opts.Caddyfile)
	if err != nil {
		return nil, err
	}
	pingback, err := newPingback()
	if err != nil {
		return nil, err
	}
	defer pingback.Close()
	e.cmd = exec.Command(e.bin, "run", "--config", path, "--adapter", "caddyfile", "--pingback", pingback.address())
	e.cmd.Dir = e.dir
	e.cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(e.dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(e.dir, "config"))
	e.cmd.Env = append(e.cmd.Env, opts.Env...)
	e.cmd.Stdin = bytes.NewReader(pingback.token)
	e.cmd.Stdout = &e.output
	e.cmd.Stderr = &e.output
	// If this process dies without stopping the edge (go test's timeout, a
	// crash), the kernel still kills the edge.
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		e.err = e.cmd.Wait()
		close(e.exited)
	}()
	if err := e.waitReady(pingback); err != nil {
		exited := false
		select {
		case <-e.exited:
			exited = true
		default:
		}
		e.Stop()
		err = fmt.Errorf("%w\nedge output:\n%s", err, e.Output())
		if port, taken := e.takenPort(e.Output()); exited && taken {
			return nil, &portTakenError{port: port, err: err}
		}
		return nil, err
	}
	return e, nil
}

// waitReady waits for the edge's confirmation that its initial config is
// running, or for its exit. `caddy run --pingback` (what `caddy start`
// uses) sends the confirmation only after the config loaded and every app
// started; a refused config ends the process instead, so a start is never
// taken for ready by a racing look at the admin API.
func (e *Edge) waitReady(pingback *pingback) error {
	confirmed := make(chan error, 1)
	go func() { confirmed <- pingback.wait() }()
	timeout := time.NewTimer(readyTimeout)
	defer timeout.Stop()
	select {
	case err := <-confirmed:
		if err != nil {
			return fmt.Errorf("edge start: %w", err)
		}
	case <-e.exited:
		return fmt.Errorf("edge exited during start: %v", e.err)
	case <-timeout.C:
		return fmt.Errorf("edge not ready after %v: no start confirmation", readyTimeout)
	}
	// Confirmed: the config runs. An exit racing the confirmation would
	// still be a failed start.
	select {
	case <-e.exited:
		return fmt.Errorf("edge exited right after start: %v", e.err)
	default:
		return nil
	}
}

// Reload replaces the running config with caddyfile through `caddy reload`,
// which returns once the new config is live. A refused config leaves the
// old one running and comes back as the error.
func (e *Edge) Reload(caddyfile string) error {
	path, err := e.writeCaddyfile(caddyfile)
	if err != nil {
		return err
	}
	cmd := exec.Command(e.bin, "reload", "--address", e.AdminAddr, "--config", path, "--adapter", "caddyfile")
	cmd.Dir = e.dir
	cmd.Env = e.cmd.Env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("caddy reload: %w\n%s", err, out)
	}
	return nil
}

// URL is the address of path on the HTTP port, for a Caddyfile that serves
// http://127.0.0.1:{{.HTTPPort}}.
func (e *Edge) URL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", e.HTTPPort, path)
}

// PID is the edge's process ID.
func (e *Edge) PID() int {
	return e.cmd.Process.Pid
}

// Output is what the edge has written to stdout and stderr so far.
func (e *Edge) Output() string {
	return e.output.String()
}

// Kill ends the edge with SIGKILL, as a crash or `kill -9` would, and
// waits for it to exit; Stop does nothing after it.
func (e *Edge) Kill() {
	e.stopped = true
	e.cmd.Process.Kill()
	<-e.exited
}

// Stop sends SIGTERM and waits for the edge to exit, killing it after a
// grace period, then removes the temp dir Launch made for it. It reports an edge that had
// exited before (a crash), one that needed killing, and an unclean exit.
// Later calls do nothing.
func (e *Edge) Stop() error {
	if e.stopped {
		return nil
	}
	e.stopped = true
	if e.ownsDir {
		defer os.RemoveAll(e.dir)
	}
	select {
	case <-e.exited:
		return fmt.Errorf("edge exited before Stop: %v", e.err)
	default:
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(stopTimeout):
		e.cmd.Process.Kill()
		<-e.exited
		return fmt.Errorf("edge still running %v after SIGTERM; killed", stopTimeout)
	}
	if e.err != nil {
		return fmt.Errorf("edge exit after SIGTERM: %w", e.err)
	}
	return nil
}

// writeCaddyfile renders text with the edge's Ports into its Caddyfile; the
// running edge read its own copy at start, so rewriting it is safe.
func (e *Edge) writeCaddyfile(text string) (string, error) {
	tmpl, err := template.New("Caddyfile").Parse(text)
	if err != nil {
		return "", fmt.Errorf("caddyfile template: %w", err)
	}
	var rendered bytes.Buffer
	if err := tmpl.Execute(&rendered, e.Ports); err != nil {
		return "", fmt.Errorf("caddyfile template: %w", err)
	}
	path := filepath.Join(e.dir, "Caddyfile")
	return path, os.WriteFile(path, rendered.Bytes(), 0o644)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := FindFreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// FindFreePort returns a TCP port on 127.0.0.1 that was free a moment ago,
// for a listener that another process binds later. It is drawn at random
// from below the kernel's ephemeral range (ip_local_port_range): a port
// picked by binding port 0 is one the kernel hands out again, to the next
// process binding port 0 (go test runs packages in parallel) or as the
// local port of an outgoing connection, before the edge binds it. Below
// that range only another caller of this function can take it.
func FindFreePort() (int, error) {
	low := ephemeralLow()
	for range 100 {
		port := minPort + rand.IntN(low-minPort)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken
		}
		l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port in %d-%d after 100 tries", minPort, low-1)
}

// minPort is the lowest port FindFreePort picks: above the well-known and
// most registered ports.
const minPort = 10000

// ephemeralLow is the first port of the kernel's ephemeral range, 32768 if
// it cannot be read.
func ephemeralLow() int {
	const fallback = 32768
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return fallback
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		return fallback
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil || low <= minPort+1000 {
		return fallback
	}
	return low
}

// lockedBuffer collects the output of the process's two pipes while tests
// read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
