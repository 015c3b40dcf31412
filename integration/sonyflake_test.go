package integration

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sony/sonyflake/v2"

	"github.com/swarmedge/swarmedge/integration/edge"
)

const endpointMachineID = 4242

const idEndpointCaddyfile = globalOptions + `	sonyflake {
		machine_id 4242
	}
}
http://127.0.0.1:{{.HTTPPort}} {
	respond "not found" 404
	sonyflake /id
}
`

// TestIDEndpoint checks the ID endpoint through the binary with the
// default layout: the titpetric/sonyflake shape, the text form, batches,
// refusals, and that each ID decodes to the configured machine ID and now.
func TestIDEndpoint(t *testing.T) {
	e := startEdge(t, idEndpointCaddyfile)
	flake := referenceFlake(t, sonyflake.Settings{}, endpointMachineID)

	t.Run("json", func(t *testing.T) {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			resp, body := get(t, method, e.URL("/id"), nil)
			assertIDResponse(t, resp, "application/json")
			obj := parseIDObjects(t, body, false)[0]
			checkFreshID(t, flake, endpointMachineID, obj.ID, &obj)
		}
	})

	t.Run("text", func(t *testing.T) {
		for _, c := range []struct {
			path   string
			header http.Header
		}{
			{"/id?format=text", nil},
			{"/id", http.Header{"Accept": {"text/plain"}}},
		} {
			resp, body := get(t, http.MethodGet, e.URL(c.path), c.header)
			assertIDResponse(t, resp, "text/plain; charset=utf-8")
			ids := parseIDLines(t, body)
			if len(ids) != 1 {
				t.Fatalf("%s %v: %d IDs, want 1", c.path, c.header, len(ids))
			}
			checkFreshID(t, flake, endpointMachineID, ids[0], nil)
		}
	})

	t.Run("count=1000", func(t *testing.T) {
		resp, body := get(t, http.MethodGet, e.URL("/id?count=1000"), nil)
		assertIDResponse(t, resp, "application/json")
		objects := parseIDObjects(t, body, true)
		if len(objects) != 1000 {
			t.Fatalf("%d IDs, want 1000", len(objects))
		}
		for i, obj := range objects {
			// Strictly increasing: also unique.
			if i > 0 && obj.ID <= objects[i-1].ID {
				t.Fatalf("ID %d at %d follows %d", obj.ID, i, objects[i-1].ID)
			}
			checkFreshID(t, flake, endpointMachineID, obj.ID, &obj)
		}

		resp, body = get(t, http.MethodGet, e.URL("/id?count=3&format=text"), nil)
		assertIDResponse(t, resp, "text/plain; charset=utf-8")
		if ids := parseIDLines(t, body); len(ids) != 3 {
			t.Errorf("count=3&format=text: %d lines, want 3", len(ids))
		}
	})

	t.Run("bad count", func(t *testing.T) {
		for _, query := range []string{"count=0", "count=1001", "count=-1", "count=ten", "count=", "count=1&count=2"} {
			resp, body := get(t, http.MethodGet, e.URL("/id?"+query), nil)
			line, rest, _ := strings.Cut(body, "\n")
			if resp.StatusCode != http.StatusBadRequest || line == "" || rest != "" {
				t.Errorf("%s: %d %q, want 400 with a one-line reason", query, resp.StatusCode, body)
			}
		}
	})

	t.Run("other methods", func(t *testing.T) {
		for _, method := range []string{http.MethodPut, http.MethodDelete} {
			resp, _ := get(t, method, e.URL("/id"), nil)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD, POST" {
				t.Errorf("%s: %d Allow %q, want 405 Allow \"GET, HEAD, POST\"", method, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
	})

	t.Run("HEAD", func(t *testing.T) {
		resp, body := get(t, http.MethodHead, e.URL("/id"), nil)
		assertIDResponse(t, resp, "application/json")
		if body != "" || resp.ContentLength <= 0 {
			t.Errorf("HEAD: body %q, Content-Length %d; want no body and the GET body's length", body, resp.ContentLength)
		}
	})

	t.Run("decode command", func(t *testing.T) {
		_, body := get(t, http.MethodGet, e.URL("/id"), nil)
		obj := parseIDObjects(t, body, false)[0]
		assertDecodeCommand(t, obj, flake)
	})
}

// TestIDEndpointCustomLayout checks IDs minted in a non-default layout
// against the library's decoding of that layout.
func TestIDEndpointCustomLayout(t *testing.T) {
	const machineID = 3000
	start := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	e := startEdge(t, globalOptions+fmt.Sprintf(`	sonyflake {
		machine_id %d
		start_time %s
		time_unit 1ms
		sequence_bits 10
		machine_id_bits 12
	}
}
http://127.0.0.1:{{.HTTPPort}} {
	sonyflake
}
`, machineID, start.Format(time.RFC3339)))
	flake := referenceFlake(t, sonyflake.Settings{StartTime: start, TimeUnit: time.Millisecond, BitsSequence: 10, BitsMachineID: 12}, machineID)

	_, body := get(t, http.MethodGet, e.URL("/?count=1000"), nil)
	objects := parseIDObjects(t, body, true)
	for _, obj := range objects {
		checkFreshID(t, flake, machineID, obj.ID, &obj)
	}
	assertDecodeCommand(t, objects[len(objects)-1], flake,
		"--start-time", start.Format(time.RFC3339), "--time-unit", "1ms", "--sequence-bits", "10", "--machine-id-bits", "12")
}

// assertIDResponse checks what every successful ID response carries.
func assertIDResponse(t *testing.T, resp *http.Response, contentType string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: status %d, want 200", resp.Request.Method, resp.Request.URL, resp.StatusCode)
	}
	if got := resp.Header.Get("Content-Type"); got != contentType {
		t.Errorf("%s %s: Content-Type %q, want %q", resp.Request.Method, resp.Request.URL, got, contentType)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s %s: Cache-Control %q, want no-store", resp.Request.Method, resp.Request.URL, got)
	}
}

// assertDecodeCommand runs `caddy sonyflake decode` of the built binary on
// obj's ID with flags and checks the line it prints against the library.
func assertDecodeCommand(t *testing.T, obj idObject, flake *sonyflake.Sonyflake, flags ...string) {
	t.Helper()
	args := append([]string{"sonyflake", "decode"}, flags...)
	out, err := exec.Command(edge.Binary(t), append(args, fmt.Sprint(obj.ID))...).CombinedOutput()
	if err != nil {
		t.Fatalf("caddy %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var id, machineID, sequence int64
	var minted string
	if _, err := fmt.Sscanf(string(out), "%d time=%s machine-id=%d sequence=%d\n", &id, &minted, &machineID, &sequence); err != nil {
		t.Fatalf("caddy sonyflake decode printed %q: %v", out, err)
	}
	mintedAt, err := time.Parse(time.RFC3339Nano, minted)
	if err != nil {
		t.Fatalf("caddy sonyflake decode printed time %q: %v", minted, err)
	}
	if id != obj.ID || machineID != obj.MachineID || sequence != obj.Sequence || !mintedAt.Equal(flake.ToTime(obj.ID)) {
		t.Errorf("caddy sonyflake decode printed %q, want ID %d time %s machine-id %d sequence %d",
			out, obj.ID, flake.ToTime(obj.ID).UTC().Format(time.RFC3339Nano), obj.MachineID, obj.Sequence)
	}
}

// TestStartRefusedWithoutMachineID: a machine ID that cannot be resolved
// stops the edge at start with an error that says what to do.
func TestStartRefusedWithoutMachineID(t *testing.T) {
	// TEST-NET-2: no host should have an address in it (this box has one
	// in TEST-NET-1, 192.0.2.0/24).
	const cidr = "198.51.100.0/24"
	if hostHasAddressIn(t, netip.MustParsePrefix(cidr)) {
		t.Skipf("this host has an address in %s", cidr)
	}
	for _, c := range []struct{ source, wantErr string }{
		{"cidr " + cidr, "machine_id cidr " + cidr + ": no address of this host is in it"},
		{"env SWARMEDGE_TEST_NO_SUCH_SLOT", "set one in the global option sonyflake: machine_id <n>"},
	} {
		_, err := edge.Start(t, globalOptions+`	sonyflake {
		machine_id `+c.source+`
	}
}
http://127.0.0.1:{{.HTTPPort}} {
	sonyflake
}
`)
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("machine_id %s: start error %v, want one containing %q", c.source, err, c.wantErr)
		}
	}
}

// TestStartRefusedExpiredLayout: 35 time bits of 10 ms from 2014 ran out in
// 2025; the edge refuses the layout at start and names the date.
func TestStartRefusedExpiredLayout(t *testing.T) {
	end := time.Date(2014, 9, 1, 0, 0, 0, 0, time.UTC).Add((1 << 35) * 10 * time.Millisecond)
	_, err := edge.Start(t, globalOptions+`	sonyflake {
		machine_id 1
		sequence_bits 12
		machine_id_bits 16
	}
}
http://127.0.0.1:{{.HTTPPort}} {
	sonyflake
}
`)
	want := "ends on " + end.Format("2006-01-02")
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("start error %v, want one containing %q", err, want)
	}
}

func hostHasAddressIn(t *testing.T, prefix netip.Prefix) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok {
			if addr, ok := netip.AddrFromSlice(ipnet.IP); ok && prefix.Contains(addr.Unmap()) {
				return true
			}
		}
	}
	return false
}
