package integration

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sony/sonyflake/v2"

	"github.com/swarmedge/swarmedge/integration/testsupport"
)

// Helpers shared by the tests that run the edge binary with the sonyflake
// app: the ID endpoint, request_id, and the figures.

// globalOptions opens every Caddyfile here: the harness's admin address,
// loopback only, plain HTTP. The sonyflake option or others follow it,
// then the closing brace.
const globalOptions = `{
	admin {{.AdminAddr}}
	default_bind 127.0.0.1
	auto_https off
`

// get is testsupport.Do with the default client.
func get(t testing.TB, method, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	return testsupport.Do(t, nil, method, url, header)
}

// referenceFlake is testsupport.ReferenceFlake.
func referenceFlake(t testing.TB, st sonyflake.Settings, machineID int) *sonyflake.Sonyflake {
	t.Helper()
	return testsupport.ReferenceFlake(t, st, machineID)
}

// idObject is one ID in titpetric/sonyflake's JSON shape.
type idObject struct {
	ID, MachineID, Sequence, Time int64
}

// idObjectPattern is that shape exactly: these keys in this order, msb 0,
// no spaces.
var idObjectPattern = regexp.MustCompile(`\{"id":(\d+),"machine-id":(\d+),"msb":0,"sequence":(\d+),"time":(\d+)\}`)

// parseIDObjects parses a body that must be exactly one ID object, or with
// batch, a JSON array of them.
func parseIDObjects(t testing.TB, body string, batch bool) []idObject {
	t.Helper()
	matches := idObjectPattern.FindAllStringSubmatch(body, -1)
	var objects []idObject
	var texts []string
	for _, m := range matches {
		texts = append(texts, m[0])
		objects = append(objects, idObject{ID: atoi64(t, m[1]), MachineID: atoi64(t, m[2]), Sequence: atoi64(t, m[3]), Time: atoi64(t, m[4])})
	}
	want := strings.Join(texts, ",")
	if batch {
		want = "[" + want + "]"
	}
	if len(objects) == 0 || (!batch && len(objects) != 1) || body != want {
		t.Fatalf("body is not in titpetric/sonyflake's shape (batch %v): %.300q", batch, body)
	}
	return objects
}

// parseIDLines parses a text body: one decimal ID per line.
func parseIDLines(t testing.TB, body string) []int64 {
	t.Helper()
	if !strings.HasSuffix(body, "\n") {
		t.Fatalf("text body %.100q does not end in a newline", body)
	}
	var ids []int64
	for line := range strings.SplitSeq(strings.TrimSuffix(body, "\n"), "\n") {
		ids = append(ids, atoi64(t, line))
	}
	return ids
}

func atoi64(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%q is not a decimal int64: %v", s, err)
	}
	return n
}

// testsStarted is when this test process started: every ID a test sees
// was minted after it.
var testsStarted = time.Now()

// maxAhead is how far the contract lets an edge's time field run ahead of
// its clock (stamping over the layout's ceiling), with a unit to spare.
const maxAhead = time.Second + 100*time.Millisecond

// checkFreshID checks that id, decoded in flake's layout, carries machineID
// and was minted during this test process: after it started (less a time
// unit, by which the time field truncates), and not ahead of the clock by
// more than the contract allows. On a loaded machine a request can take
// long; the order of events cannot change. Where obj is not nil, it checks
// that obj's fields are id's.
func checkFreshID(t testing.TB, flake *sonyflake.Sonyflake, machineID int, id int64, obj *idObject) {
	t.Helper()
	parts := flake.Decompose(id)
	if parts["machine"] != int64(machineID) {
		t.Errorf("ID %d: machine ID %d, want %d", id, parts["machine"], machineID)
	}
	minted, now := flake.ToTime(id), time.Now()
	if minted.Before(testsStarted.Add(-time.Second)) || minted.After(now.Add(maxAhead)) {
		t.Errorf("ID %d: minted at %s, not between the test's start %s and now %s (+%v)", id, stamp(minted), stamp(testsStarted), stamp(now), maxAhead)
	}
	if obj != nil {
		want := idObject{ID: id, MachineID: parts["machine"], Sequence: parts["sequence"], Time: parts["time"]}
		if *obj != want {
			t.Errorf("JSON fields %+v, want the library's decomposition %+v", *obj, want)
		}
	}
}

func stamp(at time.Time) string {
	return at.UTC().Format(time.RFC3339Nano)
}

// echoBackend is an upstream that answers with the X-Request-ID it
// received as the body, and sends an X-Request-ID of its own that the edge
// must replace.
func echoBackend(t testing.TB) *httptest.Server {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-ID", "from-upstream")
		_, _ = io.WriteString(w, r.Header.Get("X-Request-ID"))
	}))
	t.Cleanup(backend.Close)
	return backend
}
