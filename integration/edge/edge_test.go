package edge_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/swarmedge/swarmedge/integration/edge"
	"github.com/swarmedge/swarmedge/integration/testsupport"
)

const respondTemplate = `{
	admin {{.AdminAddr}}
	default_bind 127.0.0.1
	auto_https off
}
http://127.0.0.1:{{.HTTPPort}} {
	respond "BODY"
}
`

func TestStartReloadStop(t *testing.T) {
	e, err := edge.Start(t, strings.Replace(respondTemplate, "BODY", "first", 1))
	if err != nil {
		t.Fatal(err)
	}
	assertBody(t, e.URL("/"), "first")

	if err := e.Reload(strings.Replace(respondTemplate, "BODY", "second", 1)); err != nil {
		t.Fatal(err)
	}
	assertBody(t, e.URL("/"), "second")

	if err := e.Reload(strings.Replace(respondTemplate, `respond "BODY"`, "no_such_directive", 1)); err == nil {
		t.Fatal("reload with an unknown directive succeeded")
	}
	assertBody(t, e.URL("/"), "second")

	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(e.URL("/")); err == nil {
		t.Fatal("edge still answers after Stop")
	}
}

func TestStartRefusedConfig(t *testing.T) {
	_, err := edge.Start(t, strings.Replace(respondTemplate, `respond "BODY"`, "no_such_directive", 1))
	if err == nil {
		t.Fatal("edge started with an unknown directive")
	}
	if !strings.Contains(err.Error(), "no_such_directive") {
		t.Fatalf("start error does not name the bad directive: %v", err)
	}
}

// TestStartRefusedAtProvision: a config that adapts but fails while the
// apps provision, after the admin API is up, is a failed start with the
// edge's reason, read from its exit.
func TestStartRefusedAtProvision(t *testing.T) {
	_, err := edge.Start(t, strings.Replace(respondTemplate, `respond "BODY"`, `reverse_proxy 127.0.0.1:9 {
		transport http {
			tls_client_auth /nonexistent/client.pem /nonexistent/client.key
		}
	}`, 1))
	if err == nil || !strings.Contains(err.Error(), "edge exited during start") || !strings.Contains(err.Error(), "/nonexistent/client.pem") {
		t.Fatalf("start error %v, want the exit and the edge's reason naming /nonexistent/client.pem", err)
	}
}

func assertBody(t *testing.T, url, want string) {
	t.Helper()
	if resp, body := testsupport.Get(t, nil, url); resp.StatusCode != http.StatusOK || body != want {
		t.Fatalf("GET %s: %d %q, want 200 %q", url, resp.StatusCode, body, want)
	}
}
