package sonyflake

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
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
		{"bad bits before the machine ID", App{MachineIDBits: 40, MachineIDEnv: "SWARMEDGE_TEST_NEVER_SET"}, []string{"machine_id_bits 40: must be 1 to 30"}},
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
