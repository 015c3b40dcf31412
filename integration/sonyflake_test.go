package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/sonyflake/v2"

	"github.com/swarmedge/swarmedge/integration/edge"
	"github.com/swarmedge/swarmedge/integration/testsupport"
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
	e := edge.MustStart(t, idEndpointCaddyfile)
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

	t.Run("over the ceiling", func(t *testing.T) {
		// 60 batches of 1000 at once: 2.3 s of the format's 25,600 IDs/s,
		// past the endpoint's 1 s bound for the later ones. Each from a
		// client address of its own: one client's share is 2 batches.
		const batches = 60
		type answer struct {
			resp *http.Response
			body string
		}
		answers := make(chan answer, batches)
		for i := range batches {
			go func() {
				resp, err := clientFrom(netip.AddrFrom4([4]byte{127, 0, 3, byte(1 + i)})).Get(e.URL("/id?count=1000&format=text"))
				if err != nil {
					answers <- answer{}
					return
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				answers <- answer{resp, string(body)}
			}()
		}
		seen := make(map[int64]bool)
		refused := 0
		for range batches {
			a := <-answers
			switch {
			case a.resp == nil:
				t.Fatal("request failed")
			case a.resp.StatusCode == http.StatusOK:
				for _, id := range parseIDLines(t, a.body) {
					if seen[id] {
						t.Fatalf("ID %d served twice", id)
					}
					seen[id] = true
				}
			case a.resp.StatusCode == http.StatusServiceUnavailable:
				refused++
				if line, rest, _ := strings.Cut(a.body, "\n"); line == "" || rest != "" || a.resp.Header.Get("Retry-After") == "" {
					t.Errorf("503: Retry-After %q, body %q; want Retry-After and a one-line reason", a.resp.Header.Get("Retry-After"), a.body)
				}
			default:
				t.Errorf("status %d: %s", a.resp.StatusCode, a.body)
			}
		}
		if refused == 0 || refused == batches {
			t.Errorf("%d of %d batches refused with 503, want some but not all", refused, batches)
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
	e := edge.MustStart(t, globalOptions+fmt.Sprintf(`	sonyflake {
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
	for _, c := range []struct{ name, source, wantErr string }{
		{"cidr", "cidr " + cidr, "machine_id cidr " + cidr + ": no address of this host is in it"},
		{"env", "env SWARMEDGE_TEST_NO_SUCH_SLOT", "set one in the global option sonyflake: machine_id <n>"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "cidr" && hostHasAddressIn(t, netip.MustParsePrefix(cidr)) {
				testsupport.SkipUnlessOptOut(t, "SWARMEDGE_SKIP_CIDR_TEST", "this host has an address in "+cidr)
			}
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
		})
	}
}

// TestStartRefusedExpiredLayout: 35 time bits of 10 ms from 2014 ran out in
// 2025; the edge refuses the layout at start and names the date.
func TestStartRefusedExpiredLayout(t *testing.T) {
	end := testsupport.DefaultStartTime.Add((1 << 35) * 10 * time.Millisecond)
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

func hostHasAddressIn(t testing.TB, prefix netip.Prefix) bool {
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

// reloadLayouts are the layouts the edge goes through in
// TestNoDuplicatesAcrossReloads, one per config, all with one machine ID.
// Each scales the time field differently (unit per 2^(sequence+machine ID
// bits) differs by at least 1.5× between any two), so an ID decodes to a
// time near now in exactly one of them: that tells which layout minted it.
var reloadLayouts = []struct {
	unit         time.Duration
	sequenceBits int
}{
	// Each change makes IDs larger (fewer time bits, a shorter unit): a
	// reload to smaller ones is refused (TestReloadLayoutChange).
	{10 * time.Millisecond, 8}, // the default
	{10 * time.Millisecond, 9},
	{5 * time.Millisecond, 9},
	{5 * time.Millisecond, 9}, // unchanged: the same generator goes on
	{3 * time.Millisecond, 9},
}

const reloadMachineID = 909

func reloadCaddyfile(generation int, backendURL string) string {
	l := reloadLayouts[generation]
	// The generation header makes each reload a real one, also where the
	// layout stays (Caddy skips a config equal to the running one).
	return globalOptions + fmt.Sprintf(`	sonyflake {
		machine_id %d
		time_unit %s
		sequence_bits %d
	}
}
http://127.0.0.1:{{.HTTPPort}} {
	header X-Config-Generation %d
	handle /id {
		sonyflake
	}
	handle {
		request_id
		reverse_proxy %s
	}
}
`, reloadMachineID, l.unit, l.sequenceBits, generation, backendURL)
}

// TestNoDuplicatesAcrossReloads hammers the ID endpoint and a proxied path
// with request_id while the edge reloads its config 4 times, 3 of them
// changing the layout under one machine ID: no request fails, no ID comes
// twice, and every layout's IDs are above all IDs before it.
func TestNoDuplicatesAcrossReloads(t *testing.T) {
	backend := echoBackend(t)
	testStart := time.Now()
	e := edge.MustStart(t, reloadCaddyfile(0, backend.URL))

	load := newIDLoad(e)
	for range 2 {
		load.run(load.hammerEndpoint)
		load.run(load.hammerProxied)
	}
	for generation := range reloadLayouts {
		if generation > 0 {
			if err := e.Reload(reloadCaddyfile(generation, backend.URL)); err != nil {
				load.stop()
				t.Fatal(err)
			}
		}
		// Some IDs from each config, whatever the speed of this machine.
		if err := load.waitForRequests(10, 100, time.Minute); err != nil {
			load.stop()
			t.Fatalf("config %d: %v", generation, err)
		}
	}
	results := load.stop()
	testEnd := time.Now()

	if len(results.failures) > 0 {
		t.Errorf("%d failed requests, e.g. %q", len(results.failures), results.failures[:min(5, len(results.failures))])
	}
	seen := make(map[int64]bool, len(results.ids))
	duplicates := 0
	for _, id := range results.ids {
		if seen[id] {
			duplicates++
		}
		seen[id] = true
	}
	if duplicates > 0 {
		t.Errorf("%d duplicate IDs among %d", duplicates, len(results.ids))
	}
	// request_id stamps every proxied response under every config: one
	// that stopped after a reload would show here.
	for generation := range reloadLayouts {
		count := results.proxied[strconv.Itoa(generation)]
		t.Logf("config %d: %d proxied responses with an ID, %d without", generation, count.stamped, count.unstamped)
		if count.unstamped > 0 || count.stamped == 0 {
			t.Errorf("config %d: %d of %d proxied responses carried no X-Request-ID; want an ID on every one",
				generation, count.unstamped, count.stamped+count.unstamped)
		}
	}
	for generation := range results.proxied {
		if n, err := strconv.Atoi(generation); err != nil || n < 0 || n >= len(reloadLayouts) {
			t.Errorf("proxied responses from config %q, which the test never loaded", generation)
		}
	}

	// Sort the IDs by the layout that minted them; layouts[i] is the ith
	// distinct layout in config order.
	type layoutIDs struct {
		flake           *sonyflake.Sonyflake
		lowest, highest int64
		count           int
	}
	var layouts []*layoutIDs
	for i, l := range reloadLayouts {
		if i == 0 || l != reloadLayouts[i-1] {
			layouts = append(layouts, &layoutIDs{
				flake: referenceFlake(t, sonyflake.Settings{TimeUnit: l.unit, BitsSequence: l.sequenceBits}, reloadMachineID),
			})
		}
	}
	for _, id := range results.ids {
		var minter *layoutIDs
		for _, l := range layouts {
			at := l.flake.ToTime(id)
			if l.flake.Decompose(id)["machine"] != reloadMachineID || at.Before(testStart.Add(-time.Second)) || at.After(testEnd.Add(time.Second)) {
				continue
			}
			if minter != nil {
				t.Fatalf("ID %d decodes to now in two layouts: the test's layouts are too alike", id)
			}
			minter = l
			if l.count == 0 || id < l.lowest {
				l.lowest = id
			}
			l.highest = max(l.highest, id)
			l.count++
		}
		if minter == nil {
			t.Errorf("ID %d decodes to machine ID %d and a time within the test in none of the layouts", id, reloadMachineID)
		}
	}
	var earlierHighest int64
	for i, l := range layouts {
		if l.count == 0 {
			t.Errorf("layout %d minted no ID", i)
			continue
		}
		if i > 0 && l.lowest <= earlierHighest {
			t.Errorf("layout %d's lowest ID %d is not above an earlier layout's highest, %d", i, l.lowest, earlierHighest)
		}
		earlierHighest = max(earlierHighest, l.highest)
	}
}

// idLoad runs client goroutines against an edge and collects the IDs they
// get. Its goroutines record failures instead of failing the test.
type idLoad struct {
	edge     *edge.Edge
	client   *http.Client
	done     chan struct{}
	wg       sync.WaitGroup
	endpoint atomic.Int64 // requests answered by the ID endpoint
	proxied  atomic.Int64 // requests answered through reverse_proxy

	mu      sync.Mutex
	results idLoadResults
}

type idLoadResults struct {
	ids      []int64
	failures []string
	proxied  map[string]proxiedCount // by the X-Config-Generation that answered
}

// proxiedCount counts the proxied responses of one config.
type proxiedCount struct {
	stamped   int // with an X-Request-ID
	unstamped int // without one
}

// add adds the results of other to r.
func (r *idLoadResults) add(other idLoadResults) {
	r.ids = append(r.ids, other.ids...)
	r.failures = append(r.failures, other.failures...)
	for generation, count := range other.proxied {
		if r.proxied == nil {
			r.proxied = make(map[string]proxiedCount)
		}
		sum := r.proxied[generation]
		sum.stamped += count.stamped
		sum.unstamped += count.unstamped
		r.proxied[generation] = sum
	}
}

func newIDLoad(e *edge.Edge) *idLoad {
	return &idLoad{
		edge:   e,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}},
		done:   make(chan struct{}),
	}
}

// run starts a goroutine that calls request until stop.
func (l *idLoad) run(request func() (idLoadResults, error)) {
	l.wg.Go(func() {
		var mine idLoadResults
		for {
			select {
			case <-l.done:
				l.mu.Lock()
				l.results.add(mine)
				l.mu.Unlock()
				return
			default:
			}
			got, err := request()
			if err != nil {
				mine.failures = append(mine.failures, err.Error())
				continue
			}
			mine.add(got)
		}
	})
}

// stop ends the load and returns what it collected.
func (l *idLoad) stop() idLoadResults {
	close(l.done)
	l.wg.Wait()
	return l.results
}

// waitForRequests returns once the endpoint and the proxied path have each
// answered the given number of requests more than when it was called.
func (l *idLoad) waitForRequests(endpoint, proxied int64, timeout time.Duration) error {
	endpointGoal, proxiedGoal := l.endpoint.Load()+endpoint, l.proxied.Load()+proxied
	return testsupport.Poll(fmt.Sprintf("%d endpoint and %d proxied requests answered", endpoint, proxied), timeout, func() (bool, string) {
		return l.endpoint.Load() >= endpointGoal && l.proxied.Load() >= proxiedGoal,
			fmt.Sprintf("%d endpoint, %d proxied to go", endpointGoal-l.endpoint.Load(), proxiedGoal-l.proxied.Load())
	})
}

// hammerEndpoint asks the ID endpoint for 20 IDs.
func (l *idLoad) hammerEndpoint() (idLoadResults, error) {
	status, _, body, err := l.get("/id?count=20&format=text")
	if err != nil {
		return idLoadResults{}, err
	}
	l.endpoint.Add(1)
	if status != http.StatusOK {
		return idLoadResults{}, fmt.Errorf("ID endpoint: status %d: %s", status, body)
	}
	var got idLoadResults
	for line := range strings.SplitSeq(strings.TrimSuffix(body, "\n"), "\n") {
		id, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			return idLoadResults{}, fmt.Errorf("ID endpoint: line %q: %v", line, err)
		}
		got.ids = append(got.ids, id)
	}
	if len(got.ids) != 20 {
		return idLoadResults{}, fmt.Errorf("ID endpoint: %d IDs, want 20", len(got.ids))
	}
	return got, nil
}

// hammerProxied sends a request through request_id and reverse_proxy; the
// echo backend answers with the ID it received. The response is counted
// for the config that answered it.
func (l *idLoad) hammerProxied() (idLoadResults, error) {
	status, header, body, err := l.get("/proxied")
	if err != nil {
		return idLoadResults{}, err
	}
	l.proxied.Add(1)
	generation := header.Get("X-Config-Generation")
	ids := header.Values("X-Request-ID")
	switch {
	case status != http.StatusOK:
		return idLoadResults{}, fmt.Errorf("proxied: status %d: %s", status, body)
	case body == "":
		// Served without an ID: the client sees only the upstream's.
		return idLoadResults{proxied: map[string]proxiedCount{generation: {unstamped: 1}}}, nil
	case len(ids) != 1 || ids[0] != body:
		return idLoadResults{}, fmt.Errorf("proxied: client got X-Request-ID %q, backend %q", ids, body)
	}
	id, err := strconv.ParseInt(ids[0], 10, 64)
	if err != nil {
		return idLoadResults{}, fmt.Errorf("proxied: X-Request-ID %q: %v", ids[0], err)
	}
	return idLoadResults{ids: []int64{id}, proxied: map[string]proxiedCount{generation: {stamped: 1}}}, nil
}

func (l *idLoad) get(path string) (status int, header http.Header, body string, err error) {
	resp, err := l.client.Get(l.edge.URL(path))
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

// clientFrom is an HTTP client whose connections come from addr, a
// loopback address: to the edge, a client of its own.
func clientFrom(addr netip.Addr) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: addr.AsSlice()}}
	return &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
}
