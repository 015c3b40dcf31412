package sonyflake

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestSonyflakeOptionCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		want        string // the app's JSON
	}{
		{"empty", `sonyflake`, `{}`},
		{"empty block", `sonyflake {
		}`, `{}`},
		{"explicit", `sonyflake {
			machine_id 10
		}`, `{"machine_id":10}`},
		{"env", `sonyflake {
			machine_id env SLOT
		}`, `{"machine_id_env":"SLOT"}`},
		{"cidr", `sonyflake {
			machine_id cidr 10.0.0.0/20
		}`, `{"machine_id_cidr":"10.0.0.0/20"}`},
		{"interface", `sonyflake {
			machine_id interface eth0
		}`, `{"machine_id_interface":"eth0"}`},
		{"layout", `sonyflake {
			start_time 2025-01-01T00:00:00Z
			time_unit 1ms
			sequence_bits 12
			machine_id_bits 10
		}`, `{"start_time":"2025-01-01T00:00:00Z","time_unit":1000000,"sequence_bits":12,"machine_id_bits":10}`},
		{"time_unit in days", `sonyflake {
			time_unit 1d
		}`, `{"time_unit":86400000000000}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app := new(App)
			if err := app.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input)); err != nil {
				t.Fatal(err)
			}
			if got := string(caddyconfig.JSON(app, nil)); got != tc.want {
				t.Errorf("JSON %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSonyflakeOptionCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		want        []string // substrings of the error, besides the line
		line        string
	}{
		{"argument on the option", `sonyflake 10`, []string{"takes a block", `"10"`}, ":1"},
		{"unknown option", "sonyflake {\n\tmachineid 3\n}", []string{`unknown option "machineid"`}, ":2"},
		{"machine_id without value", "sonyflake {\n\tmachine_id\n}", []string{"machine_id", "got 0 values"}, ":2"},
		{"machine_id too many values", "sonyflake {\n\tmachine_id cidr 10.0.0.0/20 extra\n}", []string{"machine_id", "got 3 values"}, ":2"},
		{"machine_id not a number", "sonyflake {\n\tmachine_id ten\n}", []string{`machine_id "ten"`, "want a number"}, ":2"},
		{"machine_id unknown source", "sonyflake {\n\tmachine_id dns tasks.edge\n}", []string{"machine_id dns", "unknown source"}, ":2"},
		{"machine_id twice", "sonyflake {\n\tmachine_id 1\n\tmachine_id env SLOT\n}", []string{"machine_id", "only once"}, ":3"},
		{"start_time missing", "sonyflake {\n\tstart_time\n}", []string{"start_time", "want one value, got 0"}, ":2"},
		{"start_time extra", "sonyflake {\n\tstart_time 2025-01-01T00:00:00Z now\n}", []string{"start_time", "got 2"}, ":2"},
		{"start_time not RFC 3339", "sonyflake {\n\tstart_time 2025-01-01\n}", []string{`start_time "2025-01-01"`, "RFC 3339"}, ":2"},
		{"time_unit bad", "sonyflake {\n\ttime_unit ten\n}", []string{`time_unit "ten"`, "duration"}, ":2"},
		{"time_unit missing", "sonyflake {\n\ttime_unit\n}", []string{"time_unit", "got 0"}, ":2"},
		{"sequence_bits not a number", "sonyflake {\n\tsequence_bits eight\n}", []string{`sequence_bits "eight"`, "whole number"}, ":2"},
		{"sequence_bits extra", "sonyflake {\n\tsequence_bits 8 9\n}", []string{"sequence_bits", "got 2"}, ":2"},
		{"machine_id_bits not a number", "sonyflake {\n\tmachine_id_bits 1.5\n}", []string{`machine_id_bits "1.5"`, "whole number"}, ":2"},
		{"machine_id_bits missing", "sonyflake {\n\tmachine_id_bits\n}", []string{"machine_id_bits", "got 0"}, ":2"},
		// JSON leaves a 0 out, so an explicit 0 would silently become the default.
		{"sequence_bits 0", "sonyflake {\n\tsequence_bits 0\n}", []string{"sequence_bits 0: must be 1 to 30", "default 8"}, ":2"},
		{"machine_id_bits 0", "sonyflake {\n\tmachine_id_bits 0\n}", []string{"machine_id_bits 0: must be 1 to 30", "default 16"}, ":2"},
		{"sequence_bits negative", "sonyflake {\n\tsequence_bits -3\n}", []string{"sequence_bits -3: must be 1 to 30"}, ":2"},
		{"time_unit 0s", "sonyflake {\n\ttime_unit 0s\n}", []string{"time_unit 0s: must be at least 1ms", "default 10ms"}, ":2"},
		{"time_unit 0", "sonyflake {\n\ttime_unit 0\n}", []string{"time_unit 0: must be at least 1ms"}, ":2"},
		{"time_unit negative", "sonyflake {\n\ttime_unit -10ms\n}", []string{"time_unit -10ms: must be at least 1ms"}, ":2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range append(tc.want, "Testfile"+tc.line) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestSonyflakeDirectiveCaddyfile(t *testing.T) {
	if err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(`sonyflake`)); err != nil {
		t.Fatal(err)
	}
	for input, want := range map[string]string{
		`sonyflake text`:                `no arguments besides a matcher, got "text"`,
		"sonyflake {\n\tformat text\n}": `no block, got "format"`,
	} {
		err := new(Handler).UnmarshalCaddyfile(caddyfile.NewTestDispenser(input))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Testfile:") {
			t.Errorf("%q: error %v, want one saying %q with the line", input, err, want)
		}
	}
}

// TestCaddyfileAdapts runs the whole adapter: the global option becomes
// the app, and the directive needs no order option and sits before respond.
func TestCaddyfileAdapts(t *testing.T) {
	input := `{
	sonyflake {
		machine_id cidr 10.0.0.0/20
	}
}
:8080 {
	respond "not here" 404
	sonyflake /id
}
`
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if got := string(cfg.Apps["sonyflake"]); got != `{"machine_id_cidr":"10.0.0.0/20"}` {
		t.Errorf("sonyflake app %s", got)
	}
	endpoint := strings.Index(string(out), `"handler":"sonyflake"`)
	respond := strings.Index(string(out), `"handler":"static_response"`)
	if endpoint < 0 || respond < 0 || endpoint > respond {
		t.Errorf("want the sonyflake handler before static_response:\n%s", out)
	}
}
