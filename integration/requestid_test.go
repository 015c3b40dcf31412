package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sony/sonyflake/v2"

	"github.com/swarmedge/swarmedge/integration/edge"
	"github.com/swarmedge/swarmedge/integration/testsupport"
)

const requestIDMachineID = 5150

// TestRequestID runs request_id through the binary: the ID the client
// gets is the one the backend received, error responses carry it, the
// access log has it, trust_incoming keeps only valid IDs from trusted
// proxies, and the ID endpoint serves the request's own ID.
func TestRequestID(t *testing.T) {
	backend := echoBackend(t)
	accessLog := filepath.Join(t.TempDir(), "access.log")
	e := edge.MustStart(t, globalOptions+fmt.Sprintf(`	servers {
		trusted_proxies static 127.0.0.1/32
	}
	sonyflake {
		machine_id %d
	}
}
http://127.0.0.1:{{.HTTPPort}} {
	log {
		output file %s
		format json
	}
	handle /refused {
		request_id
		reverse_proxy 127.0.0.1:%d
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
	handle /id {
		request_id
		sonyflake
	}
	handle {
		request_id
		reverse_proxy %[5]s
	}
}
`, requestIDMachineID, accessLog, edge.FreePort(t), backend.URL, backend.URL))
	flake := referenceFlake(t, sonyflake.Settings{}, requestIDMachineID)

	// loggedIDs is the ID each client got, by request URI (each URI is
	// requested once), for the access log check at the end.
	loggedIDs := make(map[string]string)
	// request sends a request, with an incoming X-Request-ID unless it is
	// empty, and returns the response's single ID and the body.
	request := func(path, incoming string, wantStatus int) (string, string) {
		t.Helper()
		header := http.Header{}
		if incoming != "" {
			header.Set("X-Request-ID", incoming)
		}
		resp, body := get(t, http.MethodGet, e.URL(path), header)
		ids := resp.Header.Values("X-Request-ID")
		if resp.StatusCode != wantStatus || len(ids) != 1 {
			t.Fatalf("%s: %d with X-Request-ID %q, want %d with one ID", path, resp.StatusCode, ids, wantStatus)
		}
		loggedIDs[path] = ids[0]
		return ids[0], body
	}
	// freshID checks that id is one the edge minted just now.
	freshID := func(path, id string) {
		t.Helper()
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			t.Fatalf("%s: X-Request-ID %q is not a fresh Sonyflake ID", path, id)
		}
		checkFreshID(t, flake, requestIDMachineID, n, nil)
	}

	t.Run("proxied", func(t *testing.T) {
		// Neither the client's ID nor the upstream's: the edge's own.
		id, backendGot := request("/proxied", "client-chosen", http.StatusOK)
		freshID("/proxied", id)
		if backendGot != id {
			t.Errorf("backend received %q, client got %q", backendGot, id)
		}
	})

	t.Run("error responses", func(t *testing.T) {
		id, _ := request("/refused", "client-chosen", http.StatusBadGateway)
		freshID("/refused", id)
		id, _ = request("/no-upstreams", "client-chosen", http.StatusServiceUnavailable)
		freshID("/no-upstreams", id)
	})

	t.Run("trust_incoming", func(t *testing.T) {
		id, backendGot := request("/trusting?valid", "lb-7f3a:0001.x_y", http.StatusOK)
		if id != "lb-7f3a:0001.x_y" || backendGot != id {
			t.Errorf("valid incoming ID from a trusted proxy: client got %q, backend %q; want it kept", id, backendGot)
		}
		for i, invalid := range []string{"has space", "semi;colon", strings.Repeat("a", 129)} {
			path := fmt.Sprintf("/trusting?invalid=%d", i)
			id, backendGot := request(path, invalid, http.StatusOK)
			freshID(path, id)
			if backendGot != id {
				t.Errorf("invalid incoming ID %q: backend received %q, client got %q", invalid, backendGot, id)
			}
		}
	})

	t.Run("ID endpoint serves the request's ID", func(t *testing.T) {
		id, body := request("/id", "", http.StatusOK)
		if obj := parseIDObjects(t, body, false)[0]; strconv.FormatInt(obj.ID, 10) != id {
			t.Errorf("endpoint served %d, X-Request-ID %s: want one ID", obj.ID, id)
		}
		id, body = request("/id?count=3&format=text", "", http.StatusOK)
		if ids := parseIDLines(t, body); len(ids) != 3 || strconv.FormatInt(ids[0], 10) != id {
			t.Errorf("count=3: endpoint served %v, X-Request-ID %s: want the request's ID first", ids, id)
		}
	})

	// The edge writes the access log line as the response goes out, from
	// another process: poll for the lines.
	var lines []byte
	testsupport.Eventually(30*time.Second, func() bool {
		var err error
		if lines, err = os.ReadFile(accessLog); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return bytes.Count(lines, []byte("\n")) >= len(loggedIDs)
	})
	scanner := bufio.NewScanner(bytes.NewReader(lines))
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
		if want, ok := loggedIDs[line.Request.URI]; ok && line.RequestID == want {
			delete(loggedIDs, line.Request.URI)
		}
	}
	if len(loggedIDs) > 0 {
		t.Errorf("no access log line with request_id equal to the response's X-Request-ID for %v; log:\n%s", loggedIDs, lines)
	}
}
