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
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// freePorts picks free loopback ports for one edge.
func freePorts() (Ports, error) {
	var ports [3]int
	for i := range ports {
		var err error
		if ports[i], err = FindFreePort(); err != nil {
			return Ports{}, err
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
// when the test ends, and its output is logged if the test failed.
func Start(t testing.TB, caddyfile string) (*Edge, error) {
	t.Helper()
	return NewNode(t).Start(t, caddyfile)
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
// Start does; one edge of a node runs at a time.
func (n *Node) Start(t testing.TB, caddyfile string) (*Edge, error) {
	t.Helper()
	e, err := n.launch(Binary(t), Options{Caddyfile: caddyfile})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("edge output:\n%s", e.Output())
		}
	})
	return e, nil
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
	ports, err := freePorts()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "swarmedge-edge-")
	if err != nil {
		return nil, err
	}
	n := &Node{Ports: ports, dir: dir}
	e, err := n.launch(bin, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	e.ownsDir = true
	return e, nil
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
		e.Stop()
		return nil, fmt.Errorf("%w\nedge output:\n%s", err, e.Output())
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

// FindFreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FindFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
