package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmedge/swarmedge/integration/edge"
	"github.com/swarmedge/swarmedge/integration/swarmsim"
	"github.com/swarmedge/swarmedge/integration/testsupport"
)

// TestDemoCommandsWork runs the demo on free ports and every command it
// prints, in order, checking that each does what the banner says.
func TestDemoCommandsWork(t *testing.T) {
	dir := t.TempDir() // Caddy's storage, instead of the user's
	t.Setenv("XDG_DATA_HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", dir)
	loopback := netip.MustParseAddr("127.0.0.1")
	opts := options{
		edge:    netip.AddrPortFrom(loopback, uint16(edge.FreePort(t))),
		admin:   netip.AddrPortFrom(loopback, uint16(edge.FreePort(t))),
		metrics: netip.AddrPortFrom(loopback, uint16(edge.FreePort(t))),
		control: netip.AddrPortFrom(loopback, 0),
		service: swarmsim.Config{Replicas: 5},
	}
	ctx, stop := context.WithCancel(context.Background())
	out, banner := io.Pipe()
	stopped := make(chan error, 1)
	go func() {
		stopped <- run(ctx, opts, banner)
		banner.Close()
	}()
	t.Cleanup(func() {
		stop()
		go io.Copy(io.Discard, out) // the goodbye line
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("the demo did not stop within a minute of Ctrl-C")
		}
		// Caddy stops a replaced admin server in the background: its port
		// closes soon after, not at once.
		for _, addr := range []netip.AddrPort{opts.edge, opts.admin, opts.metrics} {
			closed := testsupport.Eventually(30*time.Second, func() bool {
				conn, err := net.Dial("tcp", addr.String())
				if err == nil {
					conn.Close()
				}
				return err != nil
			})
			if !closed {
				t.Errorf("%s still accepts connections 30s after the demo stopped", addr)
			}
		}
	})

	var commands []string
	lines := bufio.NewScanner(out)
	for lines.Scan() && lines.Text() != bannerEnd {
		t.Log(lines.Text())
		if line := strings.TrimSpace(lines.Text()); strings.HasPrefix(line, "curl ") || strings.HasPrefix(line, "go run ") {
			commands = append(commands, line)
		}
	}
	if len(commands) < 10 {
		t.Fatalf("the banner shows %d commands; run ended? %v", len(commands), lines.Err())
	}
	edgeURL := "http://" + opts.edge.String()

	scaledToZero := false
	for _, command := range commands {
		if strings.HasPrefix(command, "go run ./cmd/caddy sonyflake decode $(") {
			checkDecode(t, command)
			continue
		}
		curl, pattern, piped := strings.Cut(command, " | grep ")
		method, urls := curlRequest(t, shellWords(t, curl))
		switch {
		case method == http.MethodPost:
			for _, resp := range fetch(t, method, urls) {
				if resp.status != http.StatusNoContent {
					t.Errorf("%s: %d %s", command, resp.status, resp.body)
				}
			}
			if strings.Contains(command, "/scale?") {
				scaledToZero = strings.Contains(command, "/scale?n=0")
			}
		case scaledToZero && urls[0] == edgeURL+"/":
			checkNoTaskAnswers503(t, command, urls[0])
		case piped:
			checkGrep(t, command, fetch(t, method, urls)[0], pattern)
		default:
			checkAnswer(t, command, edgeURL, fetch(t, method, urls))
		}
	}
}

// checkAnswer checks the answers to a GET command by what it asks for.
func checkAnswer(t *testing.T, command, edgeURL string, answers []answer) {
	t.Helper()
	for _, a := range answers {
		if a.status != http.StatusOK {
			t.Fatalf("%s: %d %s", command, a.status, a.body)
		}
	}
	first := answers[0].body
	switch url := answers[0].url; {
	case strings.HasSuffix(url, "/id"):
		var id struct {
			ID        int64 `json:"id"`
			MachineID int   `json:"machine-id"`
		}
		if err := json.Unmarshal([]byte(first), &id); err != nil || id.ID <= 0 || id.MachineID != 1 {
			t.Errorf("%s: %q is not an ID of machine 1 in JSON (%v)", command, first, err)
		}
	case strings.HasSuffix(url, "/id?format=text"):
		if _, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64); err != nil {
			t.Errorf("%s: %q is not a decimal ID", command, first)
		}
	case strings.HasSuffix(url, "/id?count=3"):
		var ids []map[string]any
		if err := json.Unmarshal([]byte(first), &ids); err != nil || len(ids) != 3 {
			t.Errorf("%s: %q is not a JSON array of 3 IDs (%v)", command, first, err)
		}
	case strings.HasSuffix(url, "/counts"):
		var counts map[string]uint64
		if err := json.Unmarshal([]byte(first), &counts); err != nil || len(counts) != 5 {
			t.Errorf("%s: %q is not the request counts of 5 tasks (%v)", command, first, err)
		}
	case strings.HasSuffix(url, "/swarm/upstreams"):
		var services []struct {
			Tasks []struct{ Served bool } `json:"tasks"`
		}
		if err := json.Unmarshal([]byte(first), &services); err != nil || len(services) != 1 || len(services[0].Tasks) != 5 {
			t.Errorf("%s: %q does not show one service of 5 tasks (%v)", command, first, err)
		}
	case len(answers) > 1:
		tasks := map[string]bool{}
		for _, a := range answers {
			tasks[strings.Fields(a.body)[0]] = true // "app.3 127.0.10.3:… request-id=…"
		}
		viaEdge := strings.HasPrefix(url, edgeURL)
		if viaEdge && len(tasks) < 2 || !viaEdge && len(tasks) != 1 {
			t.Errorf("%s: one connection reached tasks %v", command, tasks)
		}
	default:
		t.Errorf("%s: no check for this command", command)
	}
}

// checkGrep checks that a GET piped into grep prints something: the
// answer is 200 and some line of it contains pattern.
func checkGrep(t *testing.T, command string, a answer, pattern string) {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("%s: %d %s", command, a.status, a.body)
	}
	for line := range strings.Lines(a.body) {
		if strings.Contains(line, pattern) {
			return
		}
	}
	t.Errorf("%s: no line of the answer contains %q", command, pattern)
}

// checkNoTaskAnswers503 checks a request to the edge after scaling to 0:
// once DNS has confirmed it (two answers) and any wait for a task has run
// out, the edge answers 503, and from then on at once: it waits neither
// for DNS nor for a task (wait_for_tasks, 10 s by default). "At once" is
// judged against that wait with a margin for a loaded machine, not in
// milliseconds.
func checkNoTaskAnswers503(t *testing.T, command, url string) {
	t.Helper()
	testsupport.WaitFor(t, command+": the edge answers 503", time.Minute, func() bool {
		return fetch(t, http.MethodGet, []string{url})[0].status == http.StatusServiceUnavailable
	})
	begin := time.Now()
	a := fetch(t, http.MethodGet, []string{url})[0]
	if took := time.Since(begin); a.status != http.StatusServiceUnavailable || took > 5*time.Second {
		t.Errorf("%s: then %d after %v, want 503 at once (not after a wait for DNS or a task)", command, a.status, took)
	}
}

// checkDecode runs the decode command with the ID its inner curl fetches,
// with the edge binary for `go run ./cmd/caddy`.
func checkDecode(t *testing.T, command string) {
	t.Helper()
	inner := regexp.MustCompile(`\$\((curl [^)]*)\)`).FindStringSubmatch(command)
	if inner == nil {
		t.Fatalf("%s: no $(curl …)", command)
	}
	method, urls := curlRequest(t, shellWords(t, inner[1]))
	id := strings.TrimSpace(fetch(t, method, urls)[0].body)
	out, err := exec.Command(edge.Binary(t), "sonyflake", "decode", id).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "machine-id=1") {
		t.Errorf("%s: %v\n%s", command, err, out)
	}
}

// answer is one response as curl shows it.
type answer struct {
	url    string
	status int
	body   string
}

// fetch requests urls one after another on one connection, as curl does.
func fetch(t *testing.T, method string, urls []string) []answer {
	t.Helper()
	client := &http.Client{
		Transport: &http.Transport{MaxConnsPerHost: 1},
		Timeout:   30 * time.Second, // a bound for a loaded machine
	}
	defer client.CloseIdleConnections()
	var answers []answer
	for _, url := range urls {
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		answers = append(answers, answer{url: url, status: resp.StatusCode, body: string(body)})
	}
	return answers
}

// curlRequest reads the method and URLs of a curl command line that uses
// only -s, -i and -X.
func curlRequest(t *testing.T, args []string) (method string, urls []string) {
	t.Helper()
	method = http.MethodGet
	for i := 1; i < len(args); i++ {
		switch arg := args[i]; {
		case arg == "-s" || arg == "-i":
		case arg == "-X" && i+1 < len(args):
			i++
			method = args[i]
		case strings.HasPrefix(arg, "http://"):
			urls = append(urls, arg)
		default:
			t.Fatalf("%v: the test knows no curl argument %q", args, arg)
		}
	}
	if len(urls) == 0 {
		t.Fatalf("%v: no URL", args)
	}
	return method, urls
}

// shellWords splits a command line as a shell would for the quoting the
// banner uses (single quotes), stopping at a comment.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	for rest := strings.TrimSpace(line); rest != "" && !strings.HasPrefix(rest, "#"); rest = strings.TrimSpace(rest) {
		if strings.HasPrefix(rest, "'") {
			end := strings.Index(rest[1:], "'")
			if end < 0 {
				t.Fatalf("%s: unbalanced quote", line)
			}
			words = append(words, rest[1:1+end])
			rest = rest[2+end:]
			continue
		}
		end := strings.IndexAny(rest, " \t")
		if end < 0 {
			end = len(rest)
		}
		words = append(words, rest[:end])
		rest = rest[end:]
	}
	return words
}
