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
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, input := range inputs {
		base := strings.TrimSuffix(input, ".caddyfile")
		t.Run(filepath.Base(base), func(t *testing.T) {
			caddyfile, err := os.ReadFile(input)
			if err != nil {
				t.Fatal(err)
			}
			adapted, warnings, adaptErr := adapter.Adapt(caddyfile, map[string]any{"filename": input})
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
		})
	}
}
