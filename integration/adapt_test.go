package integration

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/swarmedge/swarmedge"
	_ "github.com/swarmedge/swarmedge/caddymodule"
)

var update = flag.Bool("update", false, "rewrite the .json goldens in testdata/adapt from the adapter's output")

// TestAdapt adapts each testdata/adapt/NAME.caddyfile as `caddy adapt`
// would and compares the result with NAME.json, or, where NAME.error
// exists, expects adapting to fail with an error containing its text.
// Warnings fail the test: they include an unformatted Caddyfile.
func TestAdapt(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "adapt", "*.caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no testdata/adapt/*.caddyfile")
	}
	for _, input := range inputs {
		base := strings.TrimSuffix(input, ".caddyfile")
		t.Run(filepath.Base(base), func(t *testing.T) {
			caddyfile, err := os.ReadFile(input)
			if err != nil {
				t.Fatal(err)
			}
			checkAdapt(t, caddyfile, input, base)
		})
	}
}

// TestAdaptExample adapts Caddyfile.example with its environment variables
// unset (the defaults: example.json) and set (example_env.json), so that
// every placeholder is shown to take its value.
func TestAdaptExample(t *testing.T) {
	for _, tc := range []struct {
		golden string
		env    map[string]string
	}{
		{golden: "example"},
		{golden: "example_env", env: map[string]string{
			"SWARMEDGE_SERVICE":        "web",
			"SWARMEDGE_SERVICE_PORT":   "8080",
			"SWARMEDGE_RESOLVERS":      "127.0.0.53:5353 10.0.0.2",
			"SWARMEDGE_WAIT_FOR_TASKS": "30s",
			"SWARMEDGE_OVERLAY_CIDR":   "10.1.32.0/20",
			"SWARMEDGE_HTTP_PORT":      "8000",
			"SWARMEDGE_ADMIN":          "127.0.0.1:2999",
			"SWARMEDGE_BIND":           "127.0.0.1",
			"SWARMEDGE_METRICS_PORT":   "9100",
		}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			for _, name := range swarmedge.ExampleEnv {
				t.Setenv(name, "") // restored when the test ends
				if value, set := tc.env[name]; set {
					os.Setenv(name, value)
				} else {
					os.Unsetenv(name) // unset, not empty: the default applies
				}
			}
			if tc.env != nil && len(tc.env) != len(swarmedge.ExampleEnv) {
				t.Fatalf("set %d of the %d variables", len(tc.env), len(swarmedge.ExampleEnv))
			}
			checkAdapt(t, []byte(swarmedge.ExampleCaddyfile), "Caddyfile.example", filepath.Join("testdata", "adapt", tc.golden))
		})
	}
}

// checkAdapt adapts caddyfile as `caddy adapt` would and compares the
// result with base.json, or, where base.error exists, expects adapting to
// fail with an error containing its text. Warnings fail the test: they
// include an unformatted Caddyfile.
func checkAdapt(t *testing.T, caddyfile []byte, filename, base string) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	adapted, warnings, adaptErr := adapter.Adapt(caddyfile, map[string]any{"filename": filename})
	for _, w := range warnings {
		t.Errorf("warning: %s", w)
	}

	wantErr, err := os.ReadFile(base + ".error")
	switch {
	case err == nil:
		want := strings.TrimSpace(string(wantErr))
		if adaptErr == nil {
			t.Fatalf("adapted without error; want one containing %q", want)
		}
		if !strings.Contains(adaptErr.Error(), want) {
			t.Fatalf("error %q does not contain %q", adaptErr, want)
		}
		return
	case !errors.Is(err, fs.ErrNotExist):
		t.Fatal(err)
	}
	if adaptErr != nil {
		t.Fatal(adaptErr)
	}

	var got bytes.Buffer
	if err := json.Indent(&got, adapted, "", "\t"); err != nil {
		t.Fatal(err)
	}
	got.WriteByte('\n')
	golden := base + ".json"
	if *update {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./integration -run Adapt -update writes it)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("adapted config differs from %s (-update rewrites it):\n%s", golden, got.Bytes())
	}
}
