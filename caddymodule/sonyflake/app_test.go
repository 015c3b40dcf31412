package sonyflake

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestAppProvisionRefusesUnusableSettings(t *testing.T) {
	tooBig := 70000
	for _, tc := range []struct {
		name string
		app  App
		want []string
	}{
		{"env not set", App{MachineIDEnv: "SWARMEDGE_TEST_NEVER_SET"}, []string{"sonyflake: machine_id env SWARMEDGE_TEST_NEVER_SET", "not set", "machine_id cidr <overlay subnet>"}},
		{"explicit out of range", App{MachineID: &tooBig}, []string{"machine_id 70000: must be 0 to 65535"}},
		// The layout is checked before a machine ID is derived from its bits.
		{"bad bits before the machine ID", App{MachineIDBits: new(40), MachineIDEnv: "SWARMEDGE_TEST_NEVER_SET"}, []string{"machine_id_bits 40: must be 1 to 30"}},
		// An explicit 0 in JSON is not the default.
		{"explicit zero sequence_bits", App{SequenceBits: new(0)}, []string{"sonyflake: sequence_bits 0: must be 1 to 30 (leave it out for the default 8)"}},
		{"explicit zero machine_id_bits", App{MachineIDBits: new(0)}, []string{"sonyflake: machine_id_bits 0: must be 1 to 30 (leave it out for the default 16)"}},
		{"explicit zero time_unit", App{TimeUnit: new(caddy.Duration(0))}, []string{"sonyflake: time_unit 0s: must be at least 1ms (leave it out for the default 10ms)"}},
		{"bad start_time", App{StartTime: "yesterday"}, []string{`start_time "yesterday"`, "RFC 3339"}},
		{"two sources", App{MachineID: new(int), MachineIDInterface: "eth0"}, []string{"only one source"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			err := tc.app.Provision(ctx)
			if err == nil {
				t.Fatal("Provision succeeded")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// A config refused after the sonyflake app was provisioned (another module
// fails) leaves the running generator as it was; the same settings in a
// config that starts take over.
func TestRefusedConfigLeavesGeneratorRunning(t *testing.T) {
	const machineID = 6050
	storage := t.TempDir()
	config := func(apps string) []byte {
		return []byte(`{"admin":{"disabled":true},"storage":{"module":"file_system","root":"` + storage + `"},"apps":{` + apps + `}}`)
	}
	if err := caddy.Load(config(`"sonyflake":{"machine_id":6050}`), true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { caddy.Stop() })
	s := processRegistry.slot(machineID)
	running := s.current.Load()
	if running == nil || running.layout != defaultLayout {
		t.Fatalf("running generator %+v, want the default layout", running)
	}

	split := `"sonyflake":{"machine_id":6050,"sequence_bits":10,"machine_id_bits":14}`
	failing := `"http":{"servers":{"s":{"listen":["127.0.0.1:0"],"routes":[{"handle":[{"handler":"request_id","header":"bad header"}]}]}}}`
	if err := caddy.Load(config(split+","+failing), true); err == nil || !strings.Contains(err.Error(), "bad header") {
		t.Fatalf("a config with an invalid request_id header: %v, want refused", err)
	}
	if s.current.Load() != running {
		t.Fatalf("the refused config's layout %+v took over", s.current.Load().layout)
	}
	before := running.lastID()
	if err := caddy.Load(config(split), true); err != nil {
		t.Fatal(err)
	}
	g := s.current.Load()
	if want := newLayout(time.Time{}, 0, 10, 14); g.layout != want {
		t.Fatalf("after a good config: layout %+v, want %+v", g.layout, want)
	}
	if id, err := g.next(time.Second); err != nil || id <= before {
		t.Fatalf("successor's first ID %d (%v), want above %d", id, err, before)
	}
}

// An ID request_id minted before a reload is decoded with the layout that
// minted it, not the one current when the endpoint serves it.
func TestEndpointDecodesPremintedIDInItsLayout(t *testing.T) {
	clock := &fakeClock{t: handlerT0}
	h := testHandler(testApp(defaultLayout, 10, clock.now, clock.sleep))
	before := newLayout(time.Time{}, 0, 10, 14)
	id := before.compose(before.unitsAt(handlerT0), 5, 10)
	r := httptest.NewRequest(http.MethodGet, "/id", nil)
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{mintedIDVar: mintedID{id: id, layout: before}}))
	w := serve(t, h, r)
	want := fmt.Sprintf(`{"id":%d,"machine-id":10,"msb":0,"sequence":5,"time":%d}`, id, before.unitsAt(handlerT0))
	if w.Body.String() != want {
		t.Fatalf("body %s, want %s", w.Body, want)
	}
}
