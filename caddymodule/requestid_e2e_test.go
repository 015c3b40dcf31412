package caddymodule

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
)

// Tests here run a whole Caddy in the process through caddytest: admin on
// localhost:2999, sites on 9080-9082. They must not run in parallel.

// e2eMachineID is the machine ID of the e2e configs (real clock); the unit
// tests' fake-clock slots use other IDs.
const e2eMachineID = 61900

// e2eConfig adapts a Caddyfile to JSON and adds the sonyflake app with an
// explicit machine ID.
func e2eConfig(t testing.TB, caddyfile string) string {
	t.Helper()
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatal(err)
	}
	var config map[string]any
	if err := json.Unmarshal(adapted, &config); err != nil {
		t.Fatal(err)
	}
	config["apps"].(map[string]any)["sonyflake"] = map[string]any{"machine_id": e2eMachineID}
	out, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// echoBackend answers with the request ID it received as the body, and
// sends an ID of its own that the edge must replace.
func echoBackend(t testing.TB) *httptest.Server {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-ID", "from-upstream")
		_, _ = io.WriteString(w, r.Header.Get("X-Request-ID"))
	}))
	t.Cleanup(backend.Close)
	return backend
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestRequestIDThroughCaddy(t *testing.T) {
	backend := echoBackend(t)
	accessLog := filepath.Join(t.TempDir(), "access.log")
	tester := caddytest.NewTester(t)
	tester.InitServer(e2eConfig(t, fmt.Sprintf(`{
	admin localhost:2999
	http_port 9080
	https_port 9443
	servers {
		trusted_proxies static 127.0.0.1/32
	}
}

http://localhost:9080 {
	log {
		output file %s
		format json
	}
	handle /refused {
		request_id
		reverse_proxy %s
	}
	handle /no-upstreams {
		request_id
		reverse_proxy {
			dynamic multi
		}
	}
	handle /trusting {
		request_id {
			trust_incoming
		}
		reverse_proxy %s
	}
	handle {
		request_id
		reverse_proxy %s
	}
}
`, accessLog, closedPort(t), backend.URL, backend.URL)), "json")

	// get sends a request with a client-chosen ID and returns the
	// response's ID values and body.
	get := func(path string, wantStatus int) ([]string, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://localhost:9080"+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-ID", "client-chosen")
		resp := tester.AssertResponseCode(req, wantStatus)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Values("X-Request-ID"), string(body)
	}
	isID := func(v string) bool { _, err := strconv.ParseInt(v, 10, 64); return err == nil }

	loggedIDs := make(map[string]string) // uri → the ID the client got
	ids, body := get("/proxied", http.StatusOK)
	if len(ids) != 1 || !isID(ids[0]) {
		t.Errorf("proxied: response X-Request-ID = %q, want only the edge's fresh ID (not the client's, not the upstream's)", ids)
	} else if body != ids[0] {
		t.Errorf("proxied: backend received %q, client got %q", body, ids[0])
	}
	loggedIDs["/proxied"] = strings.Join(ids, ",")

	for path, status := range map[string]int{"/refused": http.StatusBadGateway, "/no-upstreams": http.StatusServiceUnavailable} {
		ids, _ := get(path, status)
		if len(ids) != 1 || !isID(ids[0]) {
			t.Errorf("%s: %d response X-Request-ID = %q, want a fresh ID", path, status, ids)
		}
		loggedIDs[path] = strings.Join(ids, ",")
	}

	ids, body = get("/trusting", http.StatusOK)
	if len(ids) != 1 || ids[0] != "client-chosen" || body != "client-chosen" {
		t.Errorf("trusting, from a trusted proxy: response %q, backend %q: want the incoming ID kept", ids, body)
	}
	loggedIDs["/trusting"] = strings.Join(ids, ",")

	// Responses this small stay buffered in net/http until Caddy's handler
	// returns, after it wrote the access log line: the lines are there.
	f, err := os.Open(accessLog)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		var line struct {
			Request struct {
				URI string `json:"uri"`
			} `json:"request"`
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(scanner.Bytes(), &line); err != nil {
			t.Fatalf("access log line %q: %v", scanner.Text(), err)
		}
		want, ok := loggedIDs[line.Request.URI]
		if !ok {
			continue
		}
		delete(loggedIDs, line.Request.URI)
		if line.RequestID != want {
			t.Errorf("access log for %s: request_id = %q, want %q: %s", line.Request.URI, line.RequestID, want, scanner.Text())
		}
	}
	if len(loggedIDs) > 0 {
		t.Errorf("no access log line for %v", loggedIDs)
	}
}
